//! Properties of a user and of their contacts: phones, nicknames, personal
//! messages, the friendly name.

use super::*;

impl Backend {
    // ----- properties -----------------------------------------------------

    /// `PRP` of a phone property: stores it (an empty value clears it) and
    /// tells online contacts who may see it.
    pub async fn set_phone(&self, user: &OnlineUser, kind: &str, value: Option<&str>) -> Result<u32, ErrorCode> {
        if !PHONE_KINDS.contains(&kind) {
            return Err(ErrorCode::InvalidParameter);
        }
        let value = value.filter(|v| !v.is_empty());
        if let Some(v) = value {
            let flag = matches!(kind, "MOB" | "MBE");
            if v.len() > 95 || v.chars().any(char::is_control) || (flag && v != "Y" && v != "N") {
                return Err(ErrorCode::InvalidParameter);
            }
        }
        let serial = self.store.set_property(user.account_id, kind, value, true).await.map_err(store_error)?;
        let watchers: Vec<String> = user.with_lists(|l| {
            l.members(ListKind::Reverse).filter(|k| l.bits(k).contains(ListKind::Allow)).map(str::to_string).collect()
        });
        for key in watchers {
            if let Some(w) = self.registry.get(&key) {
                w.deliver(NsEvent::ContactProperty {
                    serial,
                    handle: user.handle.clone(),
                    kind: kind.to_string(),
                    value: value.map(str::to_string),
                });
            }
        }
        Ok(serial)
    }

    /// `SBP ... MFN`: the name the user gives a forward-list contact.
    pub async fn set_nickname(&self, user: &OnlineUser, contact_guid: &str, nickname: &str) -> Result<(), ErrorCode> {
        let key = self.resolve_contact(user, contact_guid).ok_or(ErrorCode::InvalidParameter)?;
        let account = self.store.account(&key).await.map_err(store_error)?.ok_or(ErrorCode::InvalidParameter)?;
        self.store.set_nickname(user.account_id, account.id, Some(nickname)).await.map_err(store_error)
    }

    /// `UUX`: stores the personal message and shows it to watchers (as `UBX`
    /// on MSNP11+ connections).
    pub async fn set_personal_message(&self, user: &OnlineUser, payload: &str) -> Result<(), ErrorCode> {
        self.store.set_property(user.account_id, PERSONAL_MESSAGE, Some(payload), false).await.map_err(store_error)?;
        user.update_presence(|p| p.personal_message = Some(payload.to_string()));
        if user.presence_line().is_some() {
            self.notify_watchers(
                user,
                NsEvent::PersonalMessage {
                    handle: user.handle.clone(),
                    payload: payload.to_string(),
                    endpoints: user.endpoint_list(),
                },
            );
        }
        Ok(())
    }

    /// `IMS ON|OFF`: whether the user accepts switchboard invitations.
    pub fn set_accepts_invitations(&self, user: &OnlineUser, on: bool) {
        user.update_presence(|p| p.refuses_invitations = !on);
    }

    /// `REA` of the user's own handle: stores the new friendly name and shows
    /// it to watchers.
    pub async fn rename(&self, user: &OnlineUser, handle: &str, friendly: &str) -> Result<u32, ErrorCode> {
        if !handle.eq_ignore_ascii_case(&user.handle) {
            return Err(ErrorCode::InvalidParameter);
        }
        let serial = self.store.set_friendly_name(user.account_id, friendly).await.map_err(store_error)?;
        user.update_presence(|p| p.friendly = friendly.to_string());
        if let Some(line) = user.presence_line() {
            self.notify_watchers(user, NsEvent::Presence(line));
        }
        Ok(serial)
    }

    /// The display picture the storage service keeps for an account.
    pub async fn profile_photo(&self, account: AccountId) -> Result<Option<StoredPhoto>, ErrorCode> {
        self.store.photo(account).await.map_err(store_error)
    }

    /// Sets or clears the user's display picture in the storage service.
    pub async fn set_profile_photo(&self, user: &OnlineUser, photo: Option<StoredPhoto>) -> Result<(), ErrorCode> {
        self.set_account_photo(user.account_id, photo).await
    }

    /// Sets or clears an account's display picture, signed in or not (the
    /// web messenger sets it outside any sign-in).
    pub async fn set_account_photo(&self, account: AccountId, photo: Option<StoredPhoto>) -> Result<(), ErrorCode> {
        self.store.set_photo(account, photo).await.map_err(store_error)
    }
}
