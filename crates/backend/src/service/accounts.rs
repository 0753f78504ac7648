//! Accounts: creating, importing and deleting them, and changing a password
//! (which ends what the old one opened).

use super::*;

impl Backend {
    /// A new password's hash and sealed secret. The hash runs on the
    /// password pool behind any login waiting there (and off the async
    /// workers, which a 20 ms hash would stall).
    async fn credentials(&self, handle: &Handle, password: &str) -> Result<Credentials, AccountError> {
        if password.is_empty() {
            return Err(AccountError::EmptyPassword);
        }
        let hash = self
            .hashing
            .hash(password.to_string())
            .await
            .ok_or_else(|| SecretError::Hash("the password pool has stopped".into()))??;
        Ok(Credentials { password_hash: hash, sealed_secret: Some(self.key.seal(handle.key(), password)) })
    }

    /// Creates an account. The friendly name defaults to the handle.
    pub async fn create_account(
        &self,
        handle: &str,
        friendly: Option<&str>,
        password: &str,
    ) -> Result<(), AccountError> {
        let handle = Handle::parse(handle).map_err(AccountError::InvalidHandle)?;
        let friendly = friendly.unwrap_or(handle.as_str());
        decode_friendly(&urlencode::encode(friendly)).map_err(|_| AccountError::InvalidName)?;
        let credentials = self.credentials(&handle, password).await?;
        self.store
            .create_account(NewAccount { handle: handle.as_str().into(), friendly: friendly.into(), credentials })
            .await?;
        Ok(())
    }

    /// Creates many accounts at once (`msnd user import`): the password
    /// hashes run on every core, the inserts go to the store concurrently so
    /// its group commit batches them. Accounts that already exist are left as
    /// they are. Returns how many were created.
    pub async fn import_accounts(&self, accounts: Vec<ImportedAccount>) -> Result<usize, AccountError> {
        let workers = std::thread::available_parallelism().map_or(2, |n| n.get());
        let mut created = 0;
        for batch in accounts.chunks(workers * 64) {
            let mut prepared = Vec::with_capacity(batch.len());
            for a in batch {
                let handle = Handle::parse(&a.handle).map_err(AccountError::InvalidHandle)?;
                let friendly = a.friendly.clone().unwrap_or_else(|| handle.as_str().to_string());
                decode_friendly(&urlencode::encode(&friendly)).map_err(|_| AccountError::InvalidName)?;
                if a.password.is_empty() {
                    return Err(AccountError::EmptyPassword);
                }
                // Hashing is the cost of an import: skip accounts that exist
                // before paying it (a re-run of a bulk import is then cheap).
                if self.store.account(handle.key()).await?.is_some() {
                    continue;
                }
                prepared.push((handle, friendly, a.password.clone()));
            }
            // Hash on plain threads, off the async workers: this is a batch
            // job, not the serving path.
            let (prepared, hashes) = tokio::task::spawn_blocking(move || {
                let per_thread = prepared.len().div_ceil(workers).max(1);
                let hashes: Vec<Result<String, SecretError>> = std::thread::scope(|scope| {
                    let jobs: Vec<_> = prepared
                        .chunks(per_thread)
                        .map(|chunk| {
                            scope.spawn(move || {
                                chunk.iter().map(|(_, _, p)| secrets::hash_password(p)).collect::<Vec<_>>()
                            })
                        })
                        .collect();
                    jobs.into_iter().flat_map(|j| j.join().unwrap_or_default()).collect()
                });
                (prepared, hashes)
            })
            .await
            .map_err(|e| SecretError::Hash(e.to_string()))?;
            let inserts = prepared.into_iter().zip(hashes).map(|((handle, friendly, password), hash)| async move {
                let credentials =
                    Credentials { password_hash: hash?, sealed_secret: Some(self.key.seal(handle.key(), &password)) };
                match self
                    .store
                    .create_account(NewAccount { handle: handle.as_str().into(), friendly, credentials })
                    .await
                {
                    Ok(_) => Ok(1),
                    Err(StoreError::AccountExists) => Ok(0),
                    Err(e) => Err(AccountError::from(e)),
                }
            });
            for r in futures::future::join_all(inserts).await {
                created += r?;
            }
        }
        Ok(created)
    }

    pub async fn delete_account(&self, handle: &str) -> Result<(), AccountError> {
        Ok(self.store.delete_account(&handle.to_ascii_lowercase()).await?)
    }

    /// Changes a password and ends what the old one opened, as someone
    /// changing a leaked password expects: the sign-in (`OUT`), its
    /// web-service tokens, and every ticket not yet used, on every node.
    /// Tickets also carry the credentials they were issued under, so a
    /// ticket checked by a process that missed this (a `msnd user passwd`
    /// beside a running server) is refused too.
    pub async fn set_password(&self, handle: &str, password: &str) -> Result<(), AccountError> {
        let handle = Handle::parse(handle).map_err(AccountError::InvalidHandle)?;
        let credentials = self.credentials(&handle, password).await?;
        self.store.set_credentials(handle.key(), credentials).await?;
        self.end_credentials_here(handle.key());
        if let Some(cluster) = self.cluster.get() {
            for node in cluster.peers() {
                cluster.send(&node, Envelope::CredentialsChanged { to: handle.key().to_string() });
            }
        }
        Ok(())
    }

    /// Voids this node's tickets and web tokens of an account and ends its
    /// sign-in here.
    pub(super) fn end_credentials_here(&self, key: &str) {
        self.tickets.revoke(key);
        self.web_tokens.lock().retain(|_, c| c.key != key);
        self.kick(key);
    }

    pub async fn list_accounts(&self) -> Result<Vec<AccountSummary>, AccountError> {
        Ok(self.store.list_accounts().await?)
    }
}
