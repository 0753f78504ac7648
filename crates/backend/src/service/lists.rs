//! The four lists and groups: `SYN`/`LST` snapshots, `ADD`/`ADC`/`REM`, the
//! privacy and prompt modes, and what each change tells the other side.

use super::*;

impl Backend {
    /// The lists and settings for `SYN` and `LST`, read from the store.
    pub async fn list_snapshot(&self, user: &OnlineUser) -> Result<ListSnapshot, ErrorCode> {
        self.store.list_snapshot(user.account_id).await.map_err(store_error)
    }

    /// What changed on the user's lists after `since_ms`, for the address
    /// book's delta answers; `None` if the store cannot tell.
    pub async fn list_changes(&self, user: &OnlineUser, since_ms: i64) -> Result<Option<ListChanges>, ErrorCode> {
        self.store.list_changes(user.account_id, since_ms).await.map_err(store_error)
    }

    /// `user` went on or off `contact`'s reverse list: update the contact's
    /// lists in memory and tell them, on whichever node they are.
    fn reverse_list_changed(&self, contact: &str, user: &OnlineUser, member: bool, event: NsEvent) {
        if let Some(c) = self.registry.get(contact) {
            c.set_list(&user.key, ListKind::Reverse, member);
            c.deliver(event);
        } else if let Some(cluster) = self.cluster.get() {
            // To every node rather than the one the directory names: a user
            // signing in elsewhere right now may not be in this node's copy
            // of the directory yet, and a missed change would leave their
            // lists wrong for the whole session. List changes are rare.
            let envelope = Envelope::ListChanged {
                to: contact.to_string(),
                contact: user.key.clone(),
                list: ListKind::Reverse,
                member,
                event,
            };
            cluster.broadcast(envelope);
        }
    }

    /// A change `user` made to their own lists from a stand-in (the web
    /// services of a cluster node other than theirs): the sign-in's node
    /// keeps its lists in memory as the store now has them.
    fn own_list_changed(&self, user: &OnlineUser, contact: &str, list: ListKind, member: bool) {
        if self.registry.get(&user.key).is_some() {
            user.deliver_to_others(NsEvent::OwnListChanged { contact: contact.to_string(), list, member });
            return;
        }
        if let Some((cluster, node)) = self.remote(&user.key) {
            let envelope =
                Envelope::OwnListChanged { to: user.key.clone(), contact: contact.to_string(), list, member };
            cluster.send(&node, envelope);
        }
    }

    /// Finds a contact by handle, or (MSNP10+) by contact GUID; returns the
    /// handle key.
    pub fn resolve_contact(&self, user: &OnlineUser, target: &str) -> Option<String> {
        if target.contains('@') {
            Some(target.to_ascii_lowercase())
        } else {
            user.with_lists(|l| l.key_of_guid(target).map(str::to_string))
        }
    }

    /// `ADD`/`ADC`: puts someone on one of the user's lists.
    pub async fn add_to_list(
        &self,
        user: &OnlineUser,
        list: ListKind,
        handle: &str,
        opposite: OppositeList,
    ) -> Result<AddOutcome, ErrorCode> {
        let handle = Handle::parse(handle)?;
        let key = handle.key();
        if list == ListKind::Forward && key == user.key {
            return Err(ErrorCode::InvalidParameter);
        }
        user.with_lists(|l| l.check_add(list, key, opposite, &self.config))?;
        let contact = self.store.account(key).await.map_err(store_error)?.ok_or(ErrorCode::InvalidUser)?;
        let allowed_before = user.with_lists(|l| l.allows(key));
        let change = self
            .store
            .set_list_membership(user.account_id, contact.id, list, true, &secrets::new_guid())
            .await
            .map_err(store_error)?;
        user.with_lists_mut(|l| {
            l.set(key, list, true);
            l.set_guid(key, &change.guid);
        });
        self.own_list_changed(user, key, list, true);

        let mut initial_presence = None;
        match list {
            ListKind::Forward => {
                if let Some(serial) = change.contact_serial {
                    let event = NsEvent::ListAdded {
                        list: ListKind::Reverse,
                        serial,
                        handle: user.handle.clone(),
                        friendly: user.presence().friendly,
                    };
                    self.reverse_list_changed(key, user, true, event);
                }
                if user.presence().started {
                    initial_presence = self.contact_presence(user, key).await;
                }
            }
            _ => self.refresh_view(user, key, allowed_before),
        }
        Ok(AddOutcome { serial: change.owner_serial, guid: change.guid, initial_presence })
    }

    /// `REM`: takes someone off one of the user's lists. `target` is a handle
    /// or, for the forward list of MSNP10+, a contact GUID.
    pub async fn remove_from_list(
        &self,
        user: &OnlineUser,
        list: ListKind,
        target: &str,
    ) -> Result<Removed, ErrorCode> {
        let key = if target.contains('@') {
            Handle::parse(target)?.key().to_string()
        } else {
            self.resolve_contact(user, target).ok_or(ErrorCode::NotOnList)?
        };
        user.with_lists(|l| l.check_remove(list, &key))?;
        let guid = user.with_lists(|l| l.guid_of(&key).unwrap_or_default());
        let Some(contact) = self.store.account(&key).await.map_err(store_error)? else {
            // The account was deleted behind our back; forget it here too.
            user.set_list(&key, list, false);
            return Err(ErrorCode::NotOnList);
        };
        let allowed_before = user.with_lists(|l| l.allows(&key));
        let change =
            self.store.set_list_membership(user.account_id, contact.id, list, false, "").await.map_err(store_error)?;
        user.set_list(&key, list, false);
        self.own_list_changed(user, &key, list, false);
        match list {
            ListKind::Forward => {
                if let Some(serial) = change.contact_serial {
                    let event = NsEvent::ListRemoved { list: ListKind::Reverse, serial, handle: user.handle.clone() };
                    self.reverse_list_changed(&key, user, false, event);
                }
            }
            _ => self.refresh_view(user, &key, allowed_before),
        }
        Ok(Removed { serial: change.owner_serial, handle: contact.handle, guid })
    }

    // ----- groups ---------------------------------------------------------

    /// `ADG`: creates a group.
    pub async fn create_group(&self, user: &OnlineUser, name: &str) -> Result<(u32, Group), ErrorCode> {
        user.with_lists(|l| l.check_new_group(name))?;
        let guid = secrets::new_guid();
        let (id, serial) = self.store.create_group(user.account_id, name, &guid).await.map_err(|e| match e {
            // Two endpoints adding groups at once can pass the count check
            // together; the store's id limit holds regardless.
            StoreError::TooManyGroups => ErrorCode::TooManyGroups,
            other => store_error(other),
        })?;
        let group = Group { id, guid, name: name.to_string() };
        user.with_lists_mut(|l| l.groups.push(group.clone()));
        Ok((serial, group))
    }

    /// `RMG`: deletes a group; its members stay on the forward list, in no
    /// group (group 0 to older dialects).
    pub async fn delete_group(&self, user: &OnlineUser, reference: &str) -> Result<(u32, Group), ErrorCode> {
        if reference == "0" {
            return Err(ErrorCode::CannotRemoveGroupZero);
        }
        let group = self.find_group(user, reference)?;
        let serial = self.store.delete_group(user.account_id, group.id).await.map_err(store_error)?;
        user.with_lists_mut(|l| {
            l.groups.retain(|g| g.id != group.id);
            let members: Vec<String> = l.members(ListKind::Forward).map(str::to_string).collect();
            for key in members {
                l.set_group_member(&key, group.id, false);
            }
        });
        Ok((serial, group))
    }

    /// `REG`: renames a group.
    pub async fn rename_group(
        &self,
        user: &OnlineUser,
        reference: &str,
        name: &str,
    ) -> Result<(u32, Group), ErrorCode> {
        let mut group = self.find_group(user, reference)?;
        if group.name != name && user.with_lists(|l| l.groups.iter().any(|g| g.name == name)) {
            return Err(ErrorCode::GroupExists);
        }
        let serial = self.store.rename_group(user.account_id, group.id, name).await.map_err(store_error)?;
        group.name = name.to_string();
        user.with_lists_mut(|l| {
            if let Some(g) = l.groups.iter_mut().find(|g| g.id == group.id) {
                g.name = name.to_string();
            }
        });
        Ok((serial, group))
    }

    fn find_group(&self, user: &OnlineUser, reference: &str) -> Result<Group, ErrorCode> {
        user.with_lists(|l| l.group(reference).cloned()).ok_or(ErrorCode::InvalidGroup)
    }

    /// Puts a forward-list contact (by handle or GUID) into a group.
    pub async fn add_to_group(&self, user: &OnlineUser, contact: &str, group: &str) -> Result<GroupChange, ErrorCode> {
        self.change_group(user, contact, group, true).await
    }

    /// Takes a forward-list contact out of a group (it stays on the list).
    pub async fn remove_from_group(
        &self,
        user: &OnlineUser,
        contact: &str,
        group: &str,
    ) -> Result<GroupChange, ErrorCode> {
        self.change_group(user, contact, group, false).await
    }

    async fn change_group(
        &self,
        user: &OnlineUser,
        contact: &str,
        group: &str,
        member: bool,
    ) -> Result<GroupChange, ErrorCode> {
        let group = self.find_group(user, group)?;
        let key = self.resolve_contact(user, contact).ok_or(ErrorCode::NotOnList)?;
        let (on_forward, in_group, guid) = user.with_lists(|l| match l.contact(&key) {
            Some(c) => {
                (c.bits.contains(ListKind::Forward), c.groups.contains(group.id), l.guid_of(&key).unwrap_or_default())
            }
            None => (false, false, String::new()),
        });
        if !on_forward {
            return Err(ErrorCode::NotOnList);
        }
        match (member, in_group) {
            (true, true) => return Err(ErrorCode::AlreadyThere),
            (false, false) => return Err(ErrorCode::NotInGroup),
            _ => {}
        }
        let account = self.store.account(&key).await.map_err(store_error)?.ok_or(ErrorCode::NotOnList)?;
        let serial = self
            .store
            .set_group_membership(user.account_id, account.id, group.id, member)
            .await
            .map_err(store_error)?;
        user.with_lists_mut(|l| l.set_group_member(&key, group.id, member));
        Ok(GroupChange { serial, group, handle: account.handle, friendly: account.friendly, guid })
    }

    /// `BLP`: changes the privacy mode; watchers whose view flips are told.
    pub async fn set_privacy(&self, user: &OnlineUser, mode: PrivacyMode) -> Result<ModeChange, ErrorCode> {
        if user.with_lists(|l| l.privacy) == mode {
            return Ok(ModeChange::Unchanged { serial: self.list_serial(user).await? });
        }
        let before: Vec<(String, bool)> =
            user.with_lists(|l| l.members(ListKind::Reverse).map(|k| (k.to_string(), l.allows(k))).collect());
        let serial = self.store.set_privacy(user.account_id, mode).await.map_err(store_error)?;
        user.with_lists_mut(|l| l.privacy = mode);
        for (key, allowed_before) in before {
            self.refresh_view(user, &key, allowed_before);
        }
        Ok(ModeChange::Changed { serial })
    }

    /// The current list serial (read for an unchanged mode: nothing in
    /// memory keeps it).
    async fn list_serial(&self, user: &OnlineUser) -> Result<u32, ErrorCode> {
        Ok(self.store.list_snapshot(user.account_id).await.map_err(store_error)?.serial)
    }

    /// `GTC`: stores the reverse-list prompt setting.
    pub async fn set_prompt(&self, user: &OnlineUser, mode: PromptMode) -> Result<ModeChange, ErrorCode> {
        if user.with_lists(|l| l.prompt) == mode {
            return Ok(ModeChange::Unchanged { serial: self.list_serial(user).await? });
        }
        let serial = self.store.set_prompt(user.account_id, mode).await.map_err(store_error)?;
        user.with_lists_mut(|l| l.prompt = mode);
        Ok(ModeChange::Changed { serial })
    }
}
