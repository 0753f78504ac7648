//! `SYN`, the lists and groups, and the user's properties.

use std::sync::Arc;

use backend::lists::{Group, ListSnapshot, OppositeList};
use backend::presence::OnlineUser;
use backend::service::ModeChange;
use msnp::reply::GroupRef;
use msnp::request::{AdcTarget, NsRequest, decode_friendly};
use msnp::sync::{ContactData, SyncData};
use msnp::{ErrorCode, ListKind, Reply, TrId, urlencode};

use super::{Flow, NsSession, push_presence};
use crate::connection::Writer;

fn group_ref(g: &Group) -> GroupRef {
    GroupRef { id: g.id, guid: g.guid.clone(), name: g.name.clone() }
}

/// The dialect-neutral sync data of a snapshot.
pub(super) fn sync_data(s: &ListSnapshot) -> SyncData {
    let group = |id: &u32| s.groups.iter().find(|g| g.id == *id).map(group_ref);
    SyncData {
        serial: s.serial,
        timestamp: msnp::time::msnp_timestamp(s.modified_ms),
        prompt: s.prompt,
        privacy: s.privacy,
        friendly: s.friendly.clone(),
        phones: s.phones.clone(),
        groups: s.groups.iter().map(group_ref).collect(),
        contacts: s
            .entries
            .iter()
            .map(|e| ContactData {
                handle: e.handle.clone(),
                friendly: e.friendly.clone(),
                guid: e.guid.clone(),
                bits: e.lists.0,
                groups: e.groups.iter().filter_map(group).collect(),
                phones: e.phones.clone(),
            })
            .collect(),
    }
}

/// A repeated mode is echoed like a change where the dialect's service did
/// so, and is 218 where it did not.
fn mode_answer(dialect: msnp::Dialect, change: Result<ModeChange, ErrorCode>) -> Result<u32, ErrorCode> {
    match change? {
        ModeChange::Changed { serial } => Ok(serial),
        ModeChange::Unchanged { serial } if dialect.echoes_repeated_mode() => Ok(serial),
        ModeChange::Unchanged { .. } => Err(ErrorCode::AlreadyInMode),
    }
}

fn opposite_rule(dialect: msnp::Dialect) -> OppositeList {
    if dialect.accepts_add_to_opposite_list() { OppositeList::Accept } else { OppositeList::Refuse }
}

impl NsSession {
    /// The lists the sign-in read, while still current; else the store's.
    async fn first_or_fresh_snapshot(&mut self, user: &OnlineUser) -> Result<ListSnapshot, ErrorCode> {
        if let Some(snapshot) = self.loaded_lists.take().and_then(|l| user.current_snapshot(*l)) {
            return Ok(snapshot);
        }
        self.shared.backend.list_snapshot(user).await
    }

    pub(super) async fn list_request(&mut self, request: NsRequest, user: &Arc<OnlineUser>, w: &mut Writer) -> Flow {
        let backend = self.shared.backend.clone();
        let dialect = w.dialect;
        match request {
            NsRequest::Syn { trid, version } => match self.first_or_fresh_snapshot(user).await {
                Ok(snap) => {
                    for reply in msnp::sync::batch(dialect, trid, &version, &sync_data(&snap)) {
                        w.push(&reply);
                    }
                }
                Err(code) => w.push(&Reply::error(code, trid)),
            },
            NsRequest::Lst { trid, list } => {
                if list == ListKind::Pending {
                    w.push(&Reply::error(ErrorCode::InvalidParameter, trid));
                } else {
                    match backend.list_snapshot(user).await {
                        Ok(snap) => {
                            for reply in msnp::sync::list_lines(dialect, trid, list, &sync_data(&snap)) {
                                w.push(&reply);
                            }
                        }
                        Err(code) => w.push(&Reply::error(code, trid)),
                    }
                }
            }
            NsRequest::Lsg { trid } => match backend.list_snapshot(user).await {
                Ok(snap) => {
                    let groups: Vec<GroupRef> =
                        std::iter::once(msnp::sync::group_zero()).chain(snap.groups.iter().map(group_ref)).collect();
                    let total = groups.len();
                    for (i, group) in groups.into_iter().enumerate() {
                        w.push(&Reply::Lsg { trid, serial: snap.serial, index: i + 1, total, group, in_sync: false });
                    }
                }
                Err(code) => w.push(&Reply::error(code, trid)),
            },
            NsRequest::Gtc { trid, mode } => match mode_answer(dialect, backend.set_prompt(user, mode).await) {
                Ok(serial) => w.push(&Reply::Gtc { trid, serial, mode, in_sync: false }),
                Err(code) => w.push(&Reply::error(code, trid)),
            },
            NsRequest::Blp { trid, mode } => match mode_answer(dialect, backend.set_privacy(user, mode).await) {
                Ok(serial) => w.push(&Reply::Blp { trid, serial, mode, in_sync: false }),
                Err(code) => w.push(&Reply::error(code, trid)),
            },
            NsRequest::Add { trid, list, handle, friendly, group } => {
                if let Err(code) = self.add(trid, list, handle, friendly, group, user, w).await {
                    w.push(&Reply::error(code, trid));
                }
            }
            NsRequest::Adc { trid, list, target } => {
                if let Err(code) = self.adc(trid, list, target, user, w).await {
                    w.push(&Reply::error(code, trid));
                }
            }
            NsRequest::Rem { trid, list, target, group } => {
                if let Err(code) = self.rem(trid, list, &target, group.as_deref(), user, w).await {
                    w.push(&Reply::error(code, trid));
                }
            }
            NsRequest::Adg { trid, name } => match backend.create_group(user, &name).await {
                Ok((serial, g)) => w.push(&Reply::Adg { trid, serial, group: group_ref(&g) }),
                Err(code) => w.push(&Reply::error(code, trid)),
            },
            NsRequest::Rmg { trid, group } => {
                // MSN 7.0 sends the group's URL-encoded name instead of its GUID.
                let reference = self.group_reference(user, &group);
                match backend.delete_group(user, &reference).await {
                    Ok((serial, g)) => w.push(&Reply::Rmg { trid, serial, group: group_ref(&g) }),
                    Err(code) => w.push(&Reply::error(code, trid)),
                }
            }
            NsRequest::Reg { trid, group, name } => match backend.rename_group(user, &group, &name).await {
                Ok((serial, g)) => w.push(&Reply::Reg { trid, serial, group: group_ref(&g) }),
                Err(code) => w.push(&Reply::error(code, trid)),
            },
            NsRequest::Rea { trid, handle, friendly } => match backend.rename(user, &handle, &friendly).await {
                Ok(serial) => w.push(&Reply::Rea { trid, serial, handle, friendly }),
                Err(code) => w.push(&Reply::error(code, trid)),
            },
            NsRequest::Prp { trid, kind, value } => {
                let result = if kind == "MFN" && dialect.uses_guids() {
                    match value.as_deref().map(|v| decode_friendly(&urlencode::encode(v))) {
                        Some(Ok(name)) => backend.rename(user, &user.handle, &name).await,
                        _ => Err(ErrorCode::InvalidFriendlyName),
                    }
                } else {
                    backend.set_phone(user, &kind, value.as_deref()).await
                };
                match result {
                    Ok(serial) => w.push(&Reply::Prp { trid, serial, kind, value, in_sync: false }),
                    Err(code) => w.push(&Reply::error(code, trid)),
                }
            }
            NsRequest::Sbp { trid, contact_guid, kind, value } => {
                let result = if backend.resolve_contact(user, &contact_guid).is_none() {
                    Err(ErrorCode::InvalidParameter)
                } else if kind == "MFN" {
                    match urlencode::decode(&value) {
                        Ok(name) => backend.set_nickname(user, &contact_guid, &name).await,
                        Err(_) => Err(ErrorCode::InvalidFriendlyName),
                    }
                } else {
                    // Other contact properties are the contact's own to set;
                    // the echo acknowledges the client's local change.
                    Ok(())
                };
                match result {
                    Ok(()) => w.push(&Reply::Sbp { trid, contact_guid, kind, value }),
                    Err(code) => w.push(&Reply::error(code, trid)),
                }
            }
            other => {
                // Every request is handled above or in the caller.
                w.push(&Reply::Error { code: ErrorCode::NotExpected, trid: other.trid() });
            }
        }
        Flow::Continue
    }

    /// The group a client named: by id or GUID, or by its encoded name.
    fn group_reference(&self, user: &OnlineUser, reference: &str) -> String {
        user.with_lists(|l| {
            if l.group(reference).is_some() {
                return reference.to_string();
            }
            let name = urlencode::decode(reference).unwrap_or_default();
            l.groups.iter().find(|g| g.name == name).map(|g| g.guid.clone()).unwrap_or_else(|| reference.to_string())
        })
    }

    /// `ADD` (MSNP2-9). A forward-list add may name a group (MSNP7+); adding
    /// someone already on the forward list with a group puts them into it.
    #[allow(clippy::too_many_arguments)]
    async fn add(
        &mut self,
        trid: TrId,
        list: ListKind,
        handle: String,
        friendly: String,
        group: Option<u32>,
        user: &Arc<OnlineUser>,
        w: &mut Writer,
    ) -> Result<(), ErrorCode> {
        let backend = self.shared.backend.clone();
        let group = group.filter(|g| *g != 0);
        if let Some(g) = group {
            user.with_lists(|l| l.group(&g.to_string()).map(|_| ())).ok_or(ErrorCode::InvalidGroup)?;
        }
        let on_forward = user.with_lists(|l| l.bits(&handle.to_ascii_lowercase()).contains(ListKind::Forward));
        if list == ListKind::Forward && on_forward {
            let g = group.ok_or(ErrorCode::AlreadyThere)?;
            let change = backend.add_to_group(user, &handle, &g.to_string()).await?;
            w.push(&Reply::AddToGroup {
                trid,
                serial: change.serial,
                handle,
                friendly,
                guid: change.guid,
                group: group_ref(&change.group),
            });
            return Ok(());
        }
        let outcome = backend.add_to_list(user, list, &handle, opposite_rule(w.dialect)).await?;
        let mut serial = outcome.serial;
        if let Some(g) = group {
            serial = backend.add_to_group(user, &handle, &g.to_string()).await?.serial;
        }
        let group = (list == ListKind::Forward).then(|| group.unwrap_or(0));
        w.push(&Reply::Add { trid, list, serial, handle, friendly, group, guid: Some(outcome.guid) });
        if let Some(contact) = outcome.initial_presence {
            push_presence(w, Some(trid), contact);
        }
        Ok(())
    }

    /// `ADC` (MSNP10+).
    async fn adc(
        &mut self,
        trid: TrId,
        list: ListKind,
        target: AdcTarget,
        user: &Arc<OnlineUser>,
        w: &mut Writer,
    ) -> Result<(), ErrorCode> {
        let backend = self.shared.backend.clone();
        match target {
            AdcTarget::Group { contact_guid, group_guid } => {
                if list != ListKind::Forward {
                    return Err(ErrorCode::InvalidParameter);
                }
                let change = backend.add_to_group(user, &contact_guid, &group_guid).await?;
                w.push(&Reply::AddToGroup {
                    trid,
                    serial: change.serial,
                    handle: change.handle,
                    friendly: change.friendly,
                    guid: change.guid,
                    group: group_ref(&change.group),
                });
            }
            AdcTarget::Handle { handle, friendly } => {
                let outcome = backend.add_to_list(user, list, &handle, opposite_rule(w.dialect)).await?;
                let friendly = friendly.unwrap_or_else(|| handle.clone());
                w.push(&Reply::Add {
                    trid,
                    list,
                    serial: outcome.serial,
                    handle,
                    friendly,
                    group: None,
                    guid: Some(outcome.guid),
                });
                if let Some(contact) = outcome.initial_presence {
                    push_presence(w, Some(trid), contact);
                }
            }
        }
        Ok(())
    }

    /// `REM`: off a list, or (with a group) out of one group only.
    async fn rem(
        &mut self,
        trid: TrId,
        list: ListKind,
        target: &str,
        group: Option<&str>,
        user: &Arc<OnlineUser>,
        w: &mut Writer,
    ) -> Result<(), ErrorCode> {
        let backend = self.shared.backend.clone();
        match (list, group) {
            (ListKind::Forward, Some("0")) if !w.dialect.uses_guids() => {
                // "Out of group 0" is how Gaim moves a contact that was in no
                // group into another: nothing to store.
                let key = backend.resolve_contact(user, target).ok_or(ErrorCode::NotOnList)?;
                user.with_lists(|l| l.check_remove(ListKind::Forward, &key))?;
                let serial = backend.list_snapshot(user).await?.serial;
                w.push(&Reply::Rem {
                    trid,
                    list,
                    serial,
                    handle: target.to_string(),
                    guid: None,
                    group: Some(msnp::sync::group_zero()),
                });
            }
            (ListKind::Forward, Some(g)) => {
                let change = backend.remove_from_group(user, target, g).await?;
                w.push(&Reply::Rem {
                    trid,
                    list,
                    serial: change.serial,
                    handle: target.to_string(),
                    guid: Some(change.guid),
                    group: Some(group_ref(&change.group)),
                });
            }
            _ => {
                let removed = backend.remove_from_list(user, list, target).await?;
                let handle = if target.contains('@') { target.to_string() } else { removed.handle };
                w.push(&Reply::Rem {
                    trid,
                    list,
                    serial: removed.serial,
                    handle,
                    guid: Some(removed.guid),
                    group: None,
                });
            }
        }
        Ok(())
    }
}
