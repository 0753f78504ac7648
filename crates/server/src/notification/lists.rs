//! `SYN`, the lists and groups, and the user's properties.

use std::sync::Arc;

use backend::lists::{Group, ListSnapshot, OppositeList};
use backend::presence::OnlineUser;
use backend::service::ModeChange;
use msnp::reply::GroupRef;
use msnp::request::{AdcTarget, SyncVersion, decode_friendly};
use msnp::sync::{ContactData, SyncData};
use msnp::{ErrorCode, ListKind, PrivacyMode, PromptMode, Reply, TrId, urlencode};

use super::dispatch::Handled;
use super::{Flow, NsSession};
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

    pub(super) async fn syn(
        &mut self,
        user: &Arc<OnlineUser>,
        trid: TrId,
        version: &SyncVersion,
        w: &mut Writer,
    ) -> Handled {
        let snap = self.first_or_fresh_snapshot(user).await?;
        for reply in msnp::sync::batch(w.dialect, trid, version, &sync_data(&snap)) {
            w.push(&reply);
        }
        Ok(Flow::Continue)
    }

    pub(super) async fn lst(&mut self, user: &Arc<OnlineUser>, trid: TrId, list: ListKind, w: &mut Writer) -> Handled {
        if list == ListKind::Pending {
            return Err(ErrorCode::InvalidParameter);
        }
        let snap = self.shared.backend.list_snapshot(user).await?;
        for reply in msnp::sync::list_lines(w.dialect, trid, list, &sync_data(&snap)) {
            w.push(&reply);
        }
        Ok(Flow::Continue)
    }

    pub(super) async fn lsg(&mut self, user: &Arc<OnlineUser>, trid: TrId, w: &mut Writer) -> Handled {
        let snap = self.shared.backend.list_snapshot(user).await?;
        let groups: Vec<GroupRef> =
            std::iter::once(msnp::sync::group_zero()).chain(snap.groups.iter().map(group_ref)).collect();
        let total = groups.len();
        for (i, group) in groups.into_iter().enumerate() {
            w.push(&Reply::Lsg { trid, serial: snap.serial, index: i + 1, total, group, in_sync: false });
        }
        Ok(Flow::Continue)
    }

    pub(super) async fn gtc(
        &mut self,
        user: &Arc<OnlineUser>,
        trid: TrId,
        mode: PromptMode,
        w: &mut Writer,
    ) -> Handled {
        let serial = mode_answer(w.dialect, self.shared.backend.set_prompt(user, mode).await)?;
        w.push(&Reply::Gtc { trid, serial, mode, in_sync: false });
        Ok(Flow::Continue)
    }

    pub(super) async fn blp(
        &mut self,
        user: &Arc<OnlineUser>,
        trid: TrId,
        mode: PrivacyMode,
        w: &mut Writer,
    ) -> Handled {
        let serial = mode_answer(w.dialect, self.shared.backend.set_privacy(user, mode).await)?;
        w.push(&Reply::Blp { trid, serial, mode, in_sync: false });
        Ok(Flow::Continue)
    }

    pub(super) async fn adg(&mut self, user: &Arc<OnlineUser>, trid: TrId, name: &str, w: &mut Writer) -> Handled {
        let (serial, g) = self.shared.backend.create_group(user, name).await?;
        w.push(&Reply::Adg { trid, serial, group: group_ref(&g) });
        Ok(Flow::Continue)
    }

    pub(super) async fn rmg(&mut self, user: &Arc<OnlineUser>, trid: TrId, group: &str, w: &mut Writer) -> Handled {
        // MSN 7.0 sends the group's URL-encoded name instead of its GUID.
        let reference = self.group_reference(user, group);
        let (serial, g) = self.shared.backend.delete_group(user, &reference).await?;
        w.push(&Reply::Rmg { trid, serial, group: group_ref(&g) });
        Ok(Flow::Continue)
    }

    pub(super) async fn reg(
        &mut self,
        user: &Arc<OnlineUser>,
        trid: TrId,
        group: &str,
        name: &str,
        w: &mut Writer,
    ) -> Handled {
        let (serial, g) = self.shared.backend.rename_group(user, group, name).await?;
        w.push(&Reply::Reg { trid, serial, group: group_ref(&g) });
        Ok(Flow::Continue)
    }

    pub(super) async fn rea(
        &mut self,
        user: &Arc<OnlineUser>,
        trid: TrId,
        handle: String,
        friendly: String,
        w: &mut Writer,
    ) -> Handled {
        let serial = self.shared.backend.rename(user, &handle, &friendly).await?;
        w.push(&Reply::Rea { trid, serial, handle, friendly });
        Ok(Flow::Continue)
    }

    /// `PRP`: my name (MSNP10+) or a phone number.
    pub(super) async fn prp(
        &mut self,
        user: &Arc<OnlineUser>,
        trid: TrId,
        kind: String,
        value: Option<String>,
        w: &mut Writer,
    ) -> Handled {
        let backend = self.shared.backend.clone();
        let serial = if kind == "MFN" && w.dialect.uses_guids() {
            match value.as_deref().map(|v| decode_friendly(&urlencode::encode(v))) {
                Some(Ok(name)) => backend.rename(user, &user.handle, &name).await?,
                _ => return Err(ErrorCode::InvalidFriendlyName),
            }
        } else {
            backend.set_phone(user, &kind, value.as_deref()).await?
        };
        w.push(&Reply::Prp { trid, serial, kind, value, in_sync: false });
        Ok(Flow::Continue)
    }

    /// `SBP`: a contact's property (MSNP10+).
    pub(super) async fn sbp(
        &mut self,
        user: &Arc<OnlineUser>,
        trid: TrId,
        contact_guid: String,
        kind: String,
        value: String,
        w: &mut Writer,
    ) -> Handled {
        let backend = self.shared.backend.clone();
        if backend.resolve_contact(user, &contact_guid).is_none() {
            return Err(ErrorCode::InvalidParameter);
        }
        if kind == "MFN" {
            let name = urlencode::decode(&value).map_err(|_| ErrorCode::InvalidFriendlyName)?;
            backend.set_nickname(user, &contact_guid, &name).await?;
        }
        // Other contact properties are the contact's own to set; the echo
        // acknowledges the client's local change.
        w.push(&Reply::Sbp { trid, contact_guid, kind, value });
        Ok(Flow::Continue)
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
    pub(super) async fn add(
        &mut self,
        user: &Arc<OnlineUser>,
        trid: TrId,
        list: ListKind,
        handle: String,
        friendly: String,
        group: Option<u32>,
        w: &mut Writer,
    ) -> Handled {
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
            return Ok(Flow::Continue);
        }
        let outcome = backend.add_to_list(user, list, &handle, opposite_rule(w.dialect)).await?;
        let mut serial = outcome.serial;
        if let Some(g) = group {
            serial = backend.add_to_group(user, &handle, &g.to_string()).await?.serial;
        }
        let group = (list == ListKind::Forward).then(|| group.unwrap_or(0));
        w.push(&Reply::Add { trid, list, serial, handle, friendly, group, guid: Some(outcome.guid) });
        if let Some(contact) = outcome.initial_presence {
            self.push_presence(w, Some(trid), contact);
        }
        Ok(Flow::Continue)
    }

    /// `ADC` (MSNP10+).
    pub(super) async fn adc(
        &mut self,
        user: &Arc<OnlineUser>,
        trid: TrId,
        list: ListKind,
        target: AdcTarget,
        w: &mut Writer,
    ) -> Handled {
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
                    self.push_presence(w, Some(trid), contact);
                }
            }
        }
        Ok(Flow::Continue)
    }

    /// `REM`: off a list, or (with a group) out of one group only.
    pub(super) async fn rem(
        &mut self,
        user: &Arc<OnlineUser>,
        trid: TrId,
        list: ListKind,
        target: &str,
        group: Option<&str>,
        w: &mut Writer,
    ) -> Handled {
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
        Ok(Flow::Continue)
    }
}
