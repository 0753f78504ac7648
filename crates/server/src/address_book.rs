//! The address book and membership services of MSNP13+ clients
//! (`abservice.asmx`, `SharingService.asmx`): a thin front that reads the
//! SOAP request, checks its ticket and translates each operation into the
//! same domain calls `ADC`, `REM`, `ADG` and the rest make, so that the
//! membership lists and the address book are views of the lists MSNP2-12
//! clients see through `SYN` (one store of truth).
//!
//! The views: the forward list is the address book (with groups and the
//! names the owner gave); the allow, block and reverse lists are the
//! memberships of those roles; "pending" is derived: someone on the reverse
//! list whom the owner has neither allowed nor blocked yet.

use std::collections::HashSet;
use std::sync::Arc;

use backend::lists::{ListSnapshot, OppositeList};
use backend::presence::OnlineUser;
use backend::store::{ListChanges, Removal};
use msnp::addressbook::{
    self, AddressBook, Answer as Done, Contact, ContactRef, ContactUpdate, Fault, Group, Invitee, Member, MemberRef,
    Operation, Role, ServiceRequest, Unreadable,
};
use msnp::circle::CircleId;
use msnp::{ErrorCode, ListKind};

use crate::shared::Shared;

/// A SOAP answer: HTTP status and the envelope.
pub struct Answer {
    pub status: u16,
    pub body: String,
}

fn fault(fault: Fault, text: &str) -> Answer {
    Answer { status: 500, body: fault.to_xml(text) }
}

fn ok(body: String) -> Answer {
    Answer { status: 200, body }
}

/// A domain refusal as the services' fault; `missing` is the fault for
/// "not there" in the operation at hand.
fn refused(code: ErrorCode, missing: Fault, present: Fault) -> Answer {
    let f = match code {
        ErrorCode::AlreadyThere | ErrorCode::GroupExists => present,
        ErrorCode::NotOnList | ErrorCode::InvalidGroup | ErrorCode::NotInGroup => missing,
        ErrorCode::InvalidUser | ErrorCode::InvalidUsername | ErrorCode::InvalidParameter => {
            return fault(Fault::InvalidPassportUser, "No such Messenger user");
        }
        ErrorCode::ListFull | ErrorCode::TooManyGroups => Fault::QuotaLimitReached,
        ErrorCode::InternalServer | ErrorCode::ServerBusy => Fault::InternalError,
        _ => Fault::BadArgument,
    };
    fault(f, &format!("Refused ({})", code.code()))
}

/// Handles one request to either service. `cookie` is the `MSPAuth`
/// cookie's token, which MSNP13/14 clients send instead of a ticket in the
/// envelope.
pub async fn serve(shared: &Arc<Shared>, body: &[u8], cookie: Option<&str>) -> Answer {
    let Some(ServiceRequest { ticket, operation }) =
        std::str::from_utf8(body).ok().and_then(addressbook::parse_request)
    else {
        return fault(Fault::BadArgument, "Malformed request");
    };
    // The ticket RST issued for the service, or the sign-in's MSPAuth: its
    // owner, signed in here.
    let Some(ticket) = ticket.as_deref().or(cookie) else {
        return fault(Fault::BadContextToken, "No ticket");
    };
    let Some(user) = shared.backend.web_user(ticket).await else {
        return fault(Fault::BadContextToken, "Invalid or expired ticket");
    };
    let operation = match Operation::parse(&operation) {
        Ok(op) => op,
        Err(Unreadable::Unknown(name)) => return fault(Fault::NotImplemented, &format!("{name} is not offered")),
        Err(Unreadable::BadArgument(what)) => return fault(Fault::BadArgument, &format!("Bad or missing {what}")),
        Err(Unreadable::OtherAddressBook) => return fault(Fault::AccessDenied, "Not your address book"),
    };
    let book = Book { shared, user: &user };
    match operation {
        Operation::FindMembership { deltas_since } => book.find(deltas_since, View::Memberships).await,
        Operation::FindAll { deltas_since } => book.find(deltas_since, View::AddressBook).await,
        Operation::FindContactsPaged { deltas_since } => book.find(deltas_since, View::ContactsPaged).await,
        Operation::ContactAdd { handle, messenger_user, allow } => {
            book.contact_add(&handle, messenger_user, allow).await
        }
        Operation::ContactDelete { guids } => book.contact_delete(&guids).await,
        Operation::ContactUpdate { contacts } => book.contact_update(&contacts).await,
        Operation::GroupAdd { name } => book.group_add(&name).await,
        Operation::GroupDelete { guids } => book.group_delete(&guids).await,
        Operation::GroupUpdate { groups } => book.group_update(&groups).await,
        Operation::GroupContactAdd { group, contacts } => book.group_contact_add(&group, &contacts).await,
        Operation::GroupContactDelete { group, guids } => book.group_contact_delete(&group, &guids).await,
        Operation::AddMember { role, members } => book.member_change(role, &members, true).await,
        Operation::DeleteMember { role, members } => book.member_change(role, &members, false).await,
        Operation::CreateCircle { name } => book.create_circle(&name).await,
        Operation::FindCircle { circle } => book.find_circle(&circle).await,
        Operation::InviteToCircle { circle, invitee, message } => {
            book.invite_to_circle(&circle, invitee, message).await
        }
        Operation::AnswerCircle { circle, accept } => book.answer_circle(&circle, accept).await,
        Operation::LeaveCircle { circle } => book.leave_circle(&circle).await,
    }
}

fn unix_now_secs() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

/// A circle operation refused: 933 (not a member, or no such circle) is
/// access denied, whichever it was.
fn circle_refused(code: ErrorCode) -> Answer {
    match code {
        ErrorCode::InvalidCircleMembership => fault(Fault::AccessDenied, "Not a member of that circle"),
        other => refused(other, Fault::MemberDoesNotExist, Fault::MemberAlreadyExists),
    }
}

#[derive(Clone, Copy)]
enum View {
    Memberships,
    AddressBook,
    /// The address book in `ABFindContactsPaged`'s shape.
    ContactsPaged,
}

/// One request's caller and the domain.
struct Book<'a> {
    shared: &'a Arc<Shared>,
    user: &'a Arc<OnlineUser>,
}

fn done(operation: &str) -> Answer {
    ok(addressbook::soap_answer(&Done::Done { operation: operation.to_string() }.to_xml()))
}

fn with_guid(operation: &str, guid: String) -> Answer {
    ok(addressbook::soap_answer(&Done::Guid { operation: operation.to_string(), guid }.to_xml()))
}

impl Book<'_> {
    async fn snapshot(&self) -> Result<ListSnapshot, Answer> {
        self.shared.backend.list_snapshot(self.user).await.map_err(|_| fault(Fault::InternalError, "Try again later"))
    }

    /// `FindMembership` or `ABFindAll`, whole or (with `deltas_since`) the
    /// changes since the `lastChange` a previous answer gave.
    async fn find(&self, deltas_since: Option<String>, view: View) -> Answer {
        let snapshot = match self.snapshot().await {
            Ok(s) => s,
            Err(a) => return a,
        };
        let changes = match deltas_since {
            None => None,
            Some(since) => {
                let Some(since_ms) = msnp::time::parse_timestamp_ms(&since) else {
                    return fault(Fault::BadArgument, "Bad lastChange");
                };
                match self.shared.backend.list_changes(self.user, since_ms).await {
                    Ok(Some(changes)) => Some(changes),
                    // Older than what the server remembers: the client
                    // must ask again for everything.
                    Ok(None) => return fault(Fault::FullSyncRequired, "Full sync required"),
                    Err(_) => return fault(Fault::InternalError, "Try again later"),
                }
            }
        };
        match view {
            View::Memberships => {
                ok(addressbook::find_membership_response(&roles(&snapshot, changes.as_ref()), &changed(&snapshot)))
            }
            View::AddressBook => {
                ok(addressbook::ab_find_all_response(&address_book(self.user, &snapshot, changes.as_ref())))
            }
            View::ContactsPaged => {
                let mut book = address_book(self.user, &snapshot, changes.as_ref());
                // Circles and their ticket: MSNP18's answer carries them.
                let backend = &self.shared.backend;
                let Ok(circles) = backend.circles(self.user).await else {
                    return fault(Fault::InternalError, "Try again later");
                };
                let ticket = backend.circle_ticket(self.user, &circles);
                book.circles = circles
                    .iter()
                    .filter_map(|c| {
                        let me = c.member(self.user.account_id)?;
                        Some(addressbook::CircleEntry {
                            id: c.id.clone(),
                            name: c.name.clone(),
                            role: me.role,
                            state: me.state,
                            inviter: me.inviter.clone(),
                            invite_message: me.invite_message.clone(),
                        })
                    })
                    .collect();
                book.circle_ticket = Some(ticket.to_xml());
                ok(addressbook::ab_find_contacts_paged_response(&book))
            }
        }
    }

    async fn create_circle(&self, name: &str) -> Answer {
        match self.shared.backend.create_circle(self.user, name).await {
            Ok(id) => ok(addressbook::create_circle_response(&id)),
            Err(e) => circle_refused(e),
        }
    }

    /// A circle's own book: its members, for a member or an invitee.
    async fn find_circle(&self, circle: &CircleId) -> Answer {
        let stored = match self.shared.backend.circle(self.user, circle).await {
            Ok(c) => c,
            Err(e) => return circle_refused(e),
        };
        let members: Vec<addressbook::CircleMember> = stored
            .members
            .iter()
            .map(|m| addressbook::CircleMember {
                handle: m.handle.clone(),
                display_name: m.friendly.clone(),
                cid: m.account as u64,
                role: m.role,
                state: m.state,
            })
            .collect();
        ok(addressbook::circle_book_response(circle, &members, &msnp::time::iso8601(unix_now_secs())))
    }

    async fn invite_to_circle(&self, circle: &CircleId, invitee: Invitee, message: Option<String>) -> Answer {
        let backend = &self.shared.backend;
        let handle = match &invitee {
            Invitee::Handle(h) => h.clone(),
            // The book named them by the id it gave: find them among the
            // circle's (CreateContact came first).
            Invitee::ContactId(id) => {
                let cid = addressbook::member_cid(id);
                let stored = match backend.circle(self.user, circle).await {
                    Ok(c) => c,
                    Err(e) => return circle_refused(e),
                };
                match stored.members.iter().find(|m| Some(m.account as u64) == cid) {
                    Some(m) => m.handle.clone(),
                    None => return fault(Fault::ContactDoesNotExist, "No such contact in the circle"),
                }
            }
        };
        let cid = match backend.invite_to_circle(self.user, circle, &handle, message).await {
            Ok(account) => account as u64,
            Err(e) => return circle_refused(e),
        };
        match invitee {
            Invitee::Handle(_) => ok(addressbook::create_contact_response(&handle, cid)),
            Invitee::ContactId(id) => ok(addressbook::manage_connection_response(&id)),
        }
    }

    async fn answer_circle(&self, circle: &CircleId, accept: bool) -> Answer {
        match self.shared.backend.answer_circle(self.user, circle, accept).await {
            Ok(()) => ok(addressbook::manage_connection_response(&circle.guid())),
            Err(e) => circle_refused(e),
        }
    }

    async fn leave_circle(&self, circle: &CircleId) -> Answer {
        match self.shared.backend.leave_circle(self.user, circle).await {
            Ok(()) => done("BreakConnection"),
            Err(e) => circle_refused(e),
        }
    }

    async fn contact_add(&self, handle: &str, messenger_user: bool, allow: bool) -> Answer {
        // The address book here is the forward list: only Messenger
        // contacts have a place in it.
        if !messenger_user {
            return fault(Fault::BadArgument, "Only Messenger contacts can be added");
        }
        let backend = &self.shared.backend;
        let outcome = match backend.add_to_list(self.user, ListKind::Forward, handle, OppositeList::Accept).await {
            Ok(o) => o,
            Err(e) => return refused(e, Fault::InvalidPassportUser, Fault::ContactAlreadyExists),
        };
        // `EnableAllowListManagement`: the service also allowed the new
        // contact, unless they were blocked.
        if allow {
            let key = handle.to_ascii_lowercase();
            let bits = self.user.with_lists(|l| l.bits(&key));
            if !bits.contains(ListKind::Allow)
                && !bits.contains(ListKind::Block)
                && let Err(e) = backend.add_to_list(self.user, ListKind::Allow, handle, OppositeList::Accept).await
            {
                return refused(e, Fault::InvalidPassportUser, Fault::MemberAlreadyExists);
            }
        }
        with_guid("ABContactAdd", outcome.guid)
    }

    async fn contact_delete(&self, guids: &[String]) -> Answer {
        for guid in guids {
            if let Err(e) = self.shared.backend.remove_from_list(self.user, ListKind::Forward, guid).await {
                return refused(e, Fault::ContactDoesNotExist, Fault::ContactDoesNotExist);
            }
        }
        done("ABContactDelete")
    }

    async fn contact_update(&self, contacts: &[ContactUpdate]) -> Answer {
        let backend = &self.shared.backend;
        for c in contacts {
            let is_me = c.is_me || c.guid.as_deref() == Some(addressbook::DEFAULT_AB);
            if is_me {
                // The owner's own contact: the display name is the friendly
                // name every watcher sees (as `REA`/`PRP MFN`).
                if let Some(name) = &c.display_name {
                    if !is_friendly_name(name) {
                        return fault(Fault::BadArgument, "Not a name Messenger can show");
                    }
                    if let Err(e) = backend.rename(self.user, &self.user.handle, name).await {
                        return refused(e, Fault::ContactDoesNotExist, Fault::BadArgument);
                    }
                }
                continue;
            }
            let Some(guid) = c.guid.as_deref() else { return fault(Fault::BadArgument, "No contactId") };
            if backend.resolve_contact(self.user, guid).is_none() {
                return fault(Fault::ContactDoesNotExist, "No such contact");
            }
            if let Some(nickname) = &c.nickname {
                if !nickname.is_empty() && !is_friendly_name(nickname) {
                    return fault(Fault::BadArgument, "Not a name Messenger can show");
                }
                if let Err(e) = backend.set_nickname(self.user, guid, nickname).await {
                    return refused(e, Fault::ContactDoesNotExist, Fault::BadArgument);
                }
            }
            // No longer a Messenger contact: out of the address book.
            if c.messenger_user == Some(false)
                && let Err(e) = backend.remove_from_list(self.user, ListKind::Forward, guid).await
            {
                return refused(e, Fault::ContactDoesNotExist, Fault::ContactDoesNotExist);
            }
        }
        done("ABContactUpdate")
    }

    async fn group_add(&self, name: &str) -> Answer {
        if !is_group_name(name) {
            return fault(Fault::BadArgument, "Not a group name Messenger can show");
        }
        match self.shared.backend.create_group(self.user, name).await {
            Ok((_, group)) => with_guid("ABGroupAdd", group.guid),
            Err(e) => refused(e, Fault::GroupDoesNotExist, Fault::GroupAlreadyExists),
        }
    }

    async fn group_delete(&self, guids: &[String]) -> Answer {
        for guid in guids {
            if let Err(e) = self.shared.backend.delete_group(self.user, guid).await {
                return refused(e, Fault::GroupDoesNotExist, Fault::GroupDoesNotExist);
            }
        }
        done("ABGroupDelete")
    }

    async fn group_update(&self, groups: &[(String, String)]) -> Answer {
        for (guid, name) in groups {
            if !is_group_name(name) {
                return fault(Fault::BadArgument, "Not a group name Messenger can show");
            }
            if let Err(e) = self.shared.backend.rename_group(self.user, guid, name).await {
                return refused(e, Fault::GroupDoesNotExist, Fault::GroupAlreadyExists);
            }
        }
        done("ABGroupUpdate")
    }

    /// Puts contacts into a group; a contact named by handle and not yet in
    /// the address book is added to it first, as the service did.
    async fn group_contact_add(&self, group: &str, contacts: &[ContactRef]) -> Answer {
        let backend = &self.shared.backend;
        if self.user.with_lists(|l| l.group(group).is_none()) {
            return fault(Fault::GroupDoesNotExist, "No such group");
        }
        let mut last_guid = String::new();
        for contact in contacts {
            let guid = match contact {
                ContactRef::Guid(g) => g.clone(),
                ContactRef::Handle(handle) => {
                    let key = handle.to_ascii_lowercase();
                    let existing = self.user.with_lists(|l| {
                        l.contact(&key)
                            .filter(|c| c.bits.contains(ListKind::Forward))
                            .map(|_| l.guid_of(&key).unwrap_or_default())
                    });
                    match existing {
                        Some(g) => g,
                        None => {
                            match backend.add_to_list(self.user, ListKind::Forward, handle, OppositeList::Accept).await
                            {
                                Ok(o) => o.guid,
                                Err(e) => return refused(e, Fault::InvalidPassportUser, Fault::ContactAlreadyExists),
                            }
                        }
                    }
                }
            };
            match backend.add_to_group(self.user, &guid, group).await {
                // Already in the group: nothing to change, and not an error
                // to a client that adds what it believes is missing.
                Ok(_) | Err(ErrorCode::AlreadyThere) => {}
                Err(e) => return refused(e, Fault::ContactDoesNotExist, Fault::ContactAlreadyExists),
            }
            last_guid = guid;
        }
        with_guid("ABGroupContactAdd", last_guid)
    }

    async fn group_contact_delete(&self, group: &str, guids: &[String]) -> Answer {
        for guid in guids {
            match self.shared.backend.remove_from_group(self.user, guid, group).await {
                Ok(_) => {}
                Err(ErrorCode::InvalidGroup) => return fault(Fault::GroupDoesNotExist, "No such group"),
                Err(e) => return refused(e, Fault::ContactDoesNotExist, Fault::ContactDoesNotExist),
            }
        }
        done("ABGroupContactDelete")
    }

    fn on_reverse_list(&self, member: &MemberRef) -> bool {
        self.user.with_lists(|l| match member {
            MemberRef::Handle(h) => l.bits(&h.to_ascii_lowercase()).contains(ListKind::Reverse),
            // By id only through the membership list the client just read.
            MemberRef::Id(_) => false,
        })
    }

    /// `AddMember`/`DeleteMember`: the allow and block lists. The reverse
    /// list is the server's; a pending member stops being one when allowed
    /// or blocked, so deleting one only acknowledges.
    async fn member_change(&self, role: Role, members: &[MemberRef], add: bool) -> Answer {
        let operation = if add { "AddMember" } else { "DeleteMember" };
        let list = match role {
            Role::Allow | Role::Block => role.list(),
            Role::Pending if !add => return done(operation),
            // Accepting someone, WLM and aMSN move them from Pending to
            // Reverse themselves: already so here, so it only acknowledges.
            Role::Reverse if add && members.iter().all(|m| self.on_reverse_list(m)) => return done(operation),
            Role::Reverse | Role::Pending => return fault(Fault::AccessDenied, "Only the server changes that role"),
        };
        let mut snapshot = None;
        for member in members {
            let handle = match member {
                MemberRef::Handle(h) => h.clone(),
                MemberRef::Id(id) => {
                    if snapshot.is_none() {
                        match self.snapshot().await {
                            Ok(s) => snapshot = Some(s),
                            Err(a) => return a,
                        }
                    }
                    let entries = snapshot.as_ref().map(|s| &s.entries[..]).unwrap_or_default();
                    match entries.iter().find(|e| e.contact_id as u64 == *id && e.lists.contains(list)) {
                        Some(e) => e.handle.clone(),
                        None => return fault(Fault::MemberDoesNotExist, "No such member"),
                    }
                }
            };
            let backend = &self.shared.backend;
            let result = if add {
                backend.add_to_list(self.user, list, &handle, OppositeList::Accept).await.map(|_| ())
            } else {
                backend.remove_from_list(self.user, list, &handle).await.map(|_| ())
            };
            if let Err(e) = result {
                return refused(e, Fault::MemberDoesNotExist, Fault::MemberAlreadyExists);
            }
        }
        done(operation)
    }
}

/// A name set over SOAP obeys the rules of one set with `REA`: every
/// dialect must be able to carry it.
fn is_friendly_name(name: &str) -> bool {
    msnp::request::decode_friendly(&msnp::urlencode::encode(name)).is_ok()
}

/// The same for a group name, as `ADG` would take it.
fn is_group_name(name: &str) -> bool {
    msnp::request::decode_group_name(&msnp::urlencode::encode(name)).is_ok()
}

/// The `lastChange` of an answer: the lists' modification time, to the
/// millisecond, which a delta request hands back.
fn changed(s: &ListSnapshot) -> String {
    msnp::time::msnp_timestamp(s.modified_ms)
}

/// Which entries an answer shows: all, or (a delta) those changed.
fn shown(changes: Option<&ListChanges>) -> impl Fn(i64) -> bool + '_ {
    let changed: Option<HashSet<i64>> = changes.map(|c| c.contacts.iter().copied().collect());
    move |id| changed.as_ref().is_none_or(|c| c.contains(&id))
}

/// The membership roles: the allow, block and reverse lists, and the
/// pending members (reverse, neither allowed nor blocked). A delta restates
/// every changed entry in each role, present or deleted, and names removed
/// entries as deleted everywhere.
fn roles(s: &ListSnapshot, changes: Option<&ListChanges>) -> Vec<(Role, Vec<Member>)> {
    let stamp = changed(s);
    let shown = shown(changes);
    let removed: Vec<&str> = changes
        .map(|c| {
            c.removed
                .iter()
                .filter_map(|r| match r {
                    Removal::Contact { handle: Some(h), .. } => Some(h.as_str()),
                    _ => None,
                })
                .filter(|h| !s.entries.iter().any(|e| e.handle.eq_ignore_ascii_case(h)))
                .collect()
        })
        .unwrap_or_default();
    Role::ALL
        .into_iter()
        .map(|role| {
            let in_role = |e: &backend::lists::ListEntry| match role {
                Role::Allow | Role::Block | Role::Reverse => e.lists.contains(role.list()),
                Role::Pending => {
                    e.lists.contains(ListKind::Reverse)
                        && !e.lists.contains(ListKind::Allow)
                        && !e.lists.contains(ListKind::Block)
                }
            };
            let mut members: Vec<Member> = s
                .entries
                .iter()
                .filter(|e| shown(e.contact_id))
                .filter(|e| changes.is_some() || in_role(e))
                .map(|e| Member {
                    id: e.contact_id as u64,
                    handle: e.handle.clone(),
                    display_name: e.friendly.clone(),
                    changed: stamp.clone(),
                    deleted: !in_role(e),
                })
                .collect();
            members.extend(removed.iter().map(|h| Member {
                id: 0,
                handle: h.to_string(),
                display_name: h.to_string(),
                changed: stamp.clone(),
                deleted: true,
            }));
            (role, members)
        })
        .collect()
}

/// The address book: my own contact, then the forward list with groups and
/// the names I gave. A delta holds the changed contacts and groups, the
/// removed ones as deleted, and my own contact always.
fn address_book(user: &OnlineUser, s: &ListSnapshot, changes: Option<&ListChanges>) -> AddressBook {
    let stamp = changed(s);
    let shown = shown(changes);
    let group_guid = |id: &u32| s.groups.iter().find(|g| g.id == *id).map(|g| g.guid.clone());
    let me = Contact {
        guid: addressbook::DEFAULT_AB.to_string(),
        handle: user.handle.clone(),
        display_name: s.friendly.clone(),
        is_me: true,
        messenger_user: false,
        cid: user.account_id as u64,
        group_guids: Vec::new(),
        nickname: None,
        changed: stamp.clone(),
        deleted: false,
    };
    let mut contacts: Vec<Contact> = std::iter::once(me)
        .chain(s.entries.iter().filter(|e| shown(e.contact_id)).map(|e| Contact {
            guid: e.guid.clone(),
            handle: e.handle.clone(),
            display_name: e.friendly.clone(),
            is_me: false,
            messenger_user: true,
            cid: e.contact_id as u64,
            group_guids: e.groups.iter().filter_map(group_guid).collect(),
            nickname: e.nickname.clone().filter(|n| !n.is_empty()),
            changed: stamp.clone(),
            // A changed entry that left the forward list left the book.
            deleted: !e.lists.contains(ListKind::Forward),
        }))
        .filter(|c| changes.is_some() || !c.deleted)
        .collect();
    let changed_groups: Option<HashSet<u32>> = changes.map(|c| c.groups.iter().copied().collect());
    let mut groups: Vec<Group> = s
        .groups
        .iter()
        .filter(|g| changed_groups.as_ref().is_none_or(|c| c.contains(&g.id)))
        .map(|g| Group { guid: g.guid.clone(), name: g.name.clone(), changed: stamp.clone(), deleted: false })
        .collect();
    for removal in changes.map(|c| &c.removed[..]).unwrap_or_default() {
        match removal {
            Removal::Contact { guid, handle } if !contacts.iter().any(|c| &c.guid == guid) => contacts.push(Contact {
                guid: guid.clone(),
                handle: handle.clone().unwrap_or_default(),
                display_name: handle.clone().unwrap_or_default(),
                is_me: false,
                messenger_user: false,
                cid: 0,
                group_guids: Vec::new(),
                nickname: None,
                changed: stamp.clone(),
                deleted: true,
            }),
            Removal::Group { guid } if !groups.iter().any(|g| &g.guid == guid) => {
                groups.push(Group { guid: guid.clone(), name: String::new(), changed: stamp.clone(), deleted: true })
            }
            _ => {}
        }
    }
    AddressBook {
        owner_handle: user.handle.clone(),
        owner_cid: user.account_id as u64,
        groups,
        contacts,
        changed: stamp,
        circles: Vec::new(),
        circle_ticket: None,
    }
}
