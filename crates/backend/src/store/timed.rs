//! A [`Store`] that times every call of the store it wraps, for the
//! operator's dashboard (`msnd_store_seconds` on `/metrics`).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use async_trait::async_trait;
use msnp::{ListKind, PrivacyMode, PromptMode};

use super::{
    Account, AccountSummary, CircleLimits, CircleMessage, Credentials, ListChange, ListChanges, MailboxLimits,
    MembershipChange, NewAccount, OfflineMessage, Store, StoreError, StoredCircle, StoredPhoto,
};
use crate::lists::{AccountId, ListSnapshot};
use msnp::circle::CircleId;

/// Upper bounds of the latency buckets, in seconds (Prometheus' `le`).
pub const BUCKETS: [f64; 11] = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0];

/// A cumulative latency histogram.
#[derive(Debug, Default)]
pub struct Latency {
    /// Calls at or under each bound (not cumulative; summed when rendered).
    buckets: [AtomicU64; BUCKETS.len()],
    count: AtomicU64,
    sum_micros: AtomicU64,
}

impl Latency {
    pub fn record(&self, seconds: f64) {
        if let Some(i) = BUCKETS.iter().position(|b| seconds <= *b) {
            self.buckets[i].fetch_add(1, Ordering::Relaxed);
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum_micros.fetch_add((seconds * 1e6) as u64, Ordering::Relaxed);
    }

    /// (bound, cumulative count) for each bucket, then the count and the sum
    /// in seconds.
    pub fn snapshot(&self) -> (Vec<(f64, u64)>, u64, f64) {
        let mut running = 0;
        let buckets = BUCKETS
            .iter()
            .zip(&self.buckets)
            .map(|(bound, n)| {
                running += n.load(Ordering::Relaxed);
                (*bound, running)
            })
            .collect();
        (buckets, self.count.load(Ordering::Relaxed), self.sum_micros.load(Ordering::Relaxed) as f64 / 1e6)
    }
}

/// Times each call of `inner` into `latency`.
pub struct TimedStore {
    pub inner: Arc<dyn Store>,
    pub latency: Arc<Latency>,
}

impl TimedStore {
    async fn time<T>(&self, call: impl std::future::Future<Output = T>) -> T {
        let start = Instant::now();
        let result = call.await;
        self.latency.record(start.elapsed().as_secs_f64());
        result
    }
}

#[async_trait]
impl Store for TimedStore {
    async fn create_account(&self, account: NewAccount) -> Result<AccountId, StoreError> {
        self.time(self.inner.create_account(account)).await
    }
    async fn delete_account(&self, handle_key: &str) -> Result<(), StoreError> {
        self.time(self.inner.delete_account(handle_key)).await
    }
    async fn set_disabled(&self, handle_key: &str, disabled: bool) -> Result<(), StoreError> {
        self.time(self.inner.set_disabled(handle_key, disabled)).await
    }
    async fn set_credentials(&self, handle_key: &str, credentials: Credentials) -> Result<(), StoreError> {
        self.time(self.inner.set_credentials(handle_key, credentials)).await
    }
    async fn list_accounts(&self) -> Result<Vec<AccountSummary>, StoreError> {
        self.time(self.inner.list_accounts()).await
    }
    async fn account(&self, handle_key: &str) -> Result<Option<Account>, StoreError> {
        self.time(self.inner.account(handle_key)).await
    }
    async fn list_snapshot(&self, id: AccountId) -> Result<ListSnapshot, StoreError> {
        self.time(self.inner.list_snapshot(id)).await
    }
    async fn photo(&self, id: AccountId) -> Result<Option<StoredPhoto>, StoreError> {
        self.time(self.inner.photo(id)).await
    }
    async fn set_photo(&self, id: AccountId, photo: Option<StoredPhoto>) -> Result<(), StoreError> {
        self.time(self.inner.set_photo(id, photo)).await
    }
    async fn list_changes(&self, id: AccountId, since_ms: i64) -> Result<Option<ListChanges>, StoreError> {
        self.time(self.inner.list_changes(id, since_ms)).await
    }
    async fn set_list_membership(
        &self,
        owner: AccountId,
        contact: AccountId,
        list: ListKind,
        member: bool,
        new_guid: &str,
    ) -> Result<ListChange, StoreError> {
        self.time(self.inner.set_list_membership(owner, contact, list, member, new_guid)).await
    }
    async fn create_group(&self, owner: AccountId, name: &str, guid: &str) -> Result<(u32, u32), StoreError> {
        self.time(self.inner.create_group(owner, name, guid)).await
    }
    async fn delete_group(&self, owner: AccountId, id: u32) -> Result<u32, StoreError> {
        self.time(self.inner.delete_group(owner, id)).await
    }
    async fn rename_group(&self, owner: AccountId, id: u32, name: &str) -> Result<u32, StoreError> {
        self.time(self.inner.rename_group(owner, id, name)).await
    }
    async fn set_group_membership(
        &self,
        owner: AccountId,
        contact: AccountId,
        group: u32,
        member: bool,
    ) -> Result<u32, StoreError> {
        self.time(self.inner.set_group_membership(owner, contact, group, member)).await
    }
    async fn set_property(
        &self,
        id: AccountId,
        kind: &str,
        value: Option<&str>,
        bump: bool,
    ) -> Result<u32, StoreError> {
        self.time(self.inner.set_property(id, kind, value, bump)).await
    }
    async fn store_offline_message(
        &self,
        recipient: AccountId,
        message: OfflineMessage,
        limits: MailboxLimits,
    ) -> Result<OfflineMessage, StoreError> {
        self.time(self.inner.store_offline_message(recipient, message, limits)).await
    }
    async fn offline_messages(&self, recipient: AccountId) -> Result<Vec<OfflineMessage>, StoreError> {
        self.time(self.inner.offline_messages(recipient)).await
    }
    async fn delete_offline_messages(&self, recipient: AccountId, ids: &[i64]) -> Result<usize, StoreError> {
        self.time(self.inner.delete_offline_messages(recipient, ids)).await
    }
    async fn set_nickname(
        &self,
        owner: AccountId,
        contact: AccountId,
        nickname: Option<&str>,
    ) -> Result<(), StoreError> {
        self.time(self.inner.set_nickname(owner, contact, nickname)).await
    }
    async fn set_privacy(&self, id: AccountId, mode: PrivacyMode) -> Result<u32, StoreError> {
        self.time(self.inner.set_privacy(id, mode)).await
    }
    async fn set_prompt(&self, id: AccountId, mode: PromptMode) -> Result<u32, StoreError> {
        self.time(self.inner.set_prompt(id, mode)).await
    }
    async fn set_friendly_name(&self, id: AccountId, friendly: &str) -> Result<u32, StoreError> {
        self.time(self.inner.set_friendly_name(id, friendly)).await
    }
    async fn create_circle(
        &self,
        owner: AccountId,
        id: &CircleId,
        name: &str,
        limits: CircleLimits,
    ) -> Result<(), StoreError> {
        self.time(self.inner.create_circle(owner, id, name, limits)).await
    }
    async fn circle(&self, id: &CircleId) -> Result<Option<StoredCircle>, StoreError> {
        self.time(self.inner.circle(id)).await
    }
    async fn circles_of(&self, account: AccountId) -> Result<Vec<StoredCircle>, StoreError> {
        self.time(self.inner.circles_of(account)).await
    }
    async fn change_membership(
        &self,
        id: &CircleId,
        account: AccountId,
        change: MembershipChange,
        limits: CircleLimits,
    ) -> Result<(), StoreError> {
        self.time(self.inner.change_membership(id, account, change, limits)).await
    }
    async fn store_circle_message(
        &self,
        id: &CircleId,
        message: CircleMessage,
        keep: usize,
    ) -> Result<i64, StoreError> {
        self.time(self.inner.store_circle_message(id, message, keep)).await
    }
    async fn circle_messages_after(&self, id: &CircleId, after_id: i64) -> Result<Vec<CircleMessage>, StoreError> {
        self.time(self.inner.circle_messages_after(id, after_id)).await
    }
    async fn mark_circle_seen(&self, id: &CircleId, account: AccountId, seen_id: i64) -> Result<(), StoreError> {
        self.time(self.inner.mark_circle_seen(id, account, seen_id)).await
    }
}
