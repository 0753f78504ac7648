//! The requests of the address book and membership services, both ways:
//! a client encodes them ([`Operation::to_xml`], [`super::request`]), a
//! server reads them ([`Operation::parse`]); and the answers to the
//! changes ([`Answer`]), which a server encodes and a client reads back.
//!
//! The element paths are those WLM 8.x/2009, Pidgin, bitlbee and papyon
//! send; unknown children are ignored, as the service did.

pub use super::circles::{Invitee, MAX_CIRCLE_NAME};
use super::circles::{address_book, circle_book, manage_connection};
use super::{DEFAULT_AB, NS, Role};
use crate::circle::CircleId;
use crate::soap::{Element, Envelope, escape_xml};

/// The most contacts, members or groups one request may name: more than a
/// client sends at once (bitlbee batches ADL by 140), few enough that one
/// request cannot hold the store for long.
pub const MAX_ITEMS: usize = 150;

/// A member of a role, as a membership change names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MemberRef {
    Handle(String),
    /// The `MembershipId` the membership list gave.
    Id(u64),
}

/// A contact a group change names: by the GUID the address book gave, or
/// (a contact not yet in the book) by handle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ContactRef {
    Guid(String),
    Handle(String),
}

/// What `ABContactUpdate` changes in one contact; only the properties the
/// request names in `propertiesChanged` are `Some`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ContactUpdate {
    /// The contact's GUID; the owner's own contact may be named by type alone.
    pub guid: Option<String>,
    /// The owner's own contact (`contactType` `Me`).
    pub is_me: bool,
    pub display_name: Option<String>,
    /// `AB.NickName`; an empty name clears it.
    pub nickname: Option<String>,
    pub messenger_user: Option<bool>,
}

/// One operation of the two services.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Operation {
    /// `FindMembership`; with `deltas_since`, only the changes since then.
    FindMembership { deltas_since: Option<String> },
    /// `ABFindAll`; with `deltas_since`, only the changes since then.
    FindAll { deltas_since: Option<String> },
    /// `ABFindContactsPaged` (WLM 2009, Pidgin's MSNP18): the same address
    /// book, asked and answered in the later shape.
    FindContactsPaged { deltas_since: Option<String> },
    /// `ABContactAdd`: a contact into the address book (the forward list).
    ContactAdd { handle: String, messenger_user: bool, allow: bool },
    /// `ABContactDelete`.
    ContactDelete { guids: Vec<String> },
    /// `ABContactUpdate`.
    ContactUpdate { contacts: Vec<ContactUpdate> },
    /// `ABGroupAdd`.
    GroupAdd { name: String },
    /// `ABGroupDelete`.
    GroupDelete { guids: Vec<String> },
    /// `ABGroupUpdate`: new names, by group GUID.
    GroupUpdate { groups: Vec<(String, String)> },
    /// `ABGroupContactAdd`.
    GroupContactAdd { group: String, contacts: Vec<ContactRef> },
    /// `ABGroupContactDelete`.
    GroupContactDelete { group: String, guids: Vec<String> },
    /// `AddMember` (Sharing service).
    AddMember { role: Role, members: Vec<MemberRef> },
    /// `DeleteMember` (Sharing service).
    DeleteMember { role: Role, members: Vec<MemberRef> },
    /// `CreateCircle` (Sharing service): a new circle, its maker its
    /// administrator.
    CreateCircle { name: String },
    /// `ABFindContactsPaged` of a circle's own book: its members.
    FindCircle { circle: CircleId },
    /// Invite someone into a circle: `CreateContact` in the circle's book
    /// (by handle), or `ManageWLConnection` there with the member role
    /// (by the contact id the book gave them), with the invitation's text.
    InviteToCircle { circle: CircleId, invitee: Invitee, message: Option<String> },
    /// `ManageWLConnection` in one's own book naming the circle: accept
    /// (action 1) or decline (action 2) its invitation.
    AnswerCircle { circle: CircleId, accept: bool },
    /// `BreakConnection` in a circle's book: leave it.
    LeaveCircle { circle: CircleId },
}

/// Why a request could not be read as an operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unreadable {
    /// An operation these services do not have.
    Unknown(String),
    /// A known operation missing what it needs, or naming too much.
    BadArgument(&'static str),
    /// An address book other than the caller's own.
    OtherAddressBook,
}

fn text(e: &Element, path: &[&str]) -> Option<String> {
    e.text_at(path).filter(|t| !t.is_empty()).map(str::to_string)
}

fn bounded<T>(items: Vec<T>, what: &'static str) -> Result<Vec<T>, Unreadable> {
    if items.is_empty() || items.len() > MAX_ITEMS { Err(Unreadable::BadArgument(what)) } else { Ok(items) }
}

/// The GUIDs under `parent/list/item`.
fn guids(e: &Element, parent: &str, item: &str, leaf: &str) -> Vec<String> {
    e.child(parent)
        .map(|p| {
            p.children_named(item)
                .filter_map(|x| if leaf.is_empty() { text(x, &[]) } else { text(x, &[leaf]) })
                .collect()
        })
        .unwrap_or_default()
}

/// `deltasOnly` with its `lastChange`, if the client asked for changes only.
fn deltas_since(e: &Element) -> Option<String> {
    (e.text_at(&["deltasOnly"]) == Some("true")).then(|| text(e, &["lastChange"])).flatten()
}

fn group_filter(e: &Element) -> Vec<String> {
    e.path(&["groupFilter", "groupIds"])
        .map(|g| g.children_named("guid").filter_map(|x| text(x, &[])).collect())
        .unwrap_or_default()
}

fn memberships(e: &Element) -> Result<(Role, Vec<MemberRef>), Unreadable> {
    let memberships = e.child("memberships").ok_or(Unreadable::BadArgument("memberships"))?;
    let mut found: Option<(Role, Vec<MemberRef>)> = None;
    for m in memberships.children_named("Membership") {
        let role = m.text_at(&["MemberRole"]).and_then(Role::from_name).ok_or(Unreadable::BadArgument("MemberRole"))?;
        // One role per request: every client sends one, and a change that
        // spans roles is two requests with two answers.
        if found.as_ref().is_some_and(|(r, _)| *r != role) {
            return Err(Unreadable::BadArgument("one role per request"));
        }
        let members = found.get_or_insert((role, Vec::new()));
        for member in m.child("Members").into_iter().flat_map(|ms| ms.children_named("Member")) {
            let reference = match (text(member, &["PassportName"]), text(member, &["MembershipId"])) {
                (Some(handle), _) => MemberRef::Handle(handle),
                (None, Some(id)) => MemberRef::Id(id.parse().map_err(|_| Unreadable::BadArgument("MembershipId"))?),
                (None, None) => return Err(Unreadable::BadArgument("Member")),
            };
            members.1.push(reference);
        }
    }
    let (role, members) = found.ok_or(Unreadable::BadArgument("Membership"))?;
    Ok((role, bounded(members, "Members")?))
}

fn contact_update(c: &Element) -> ContactUpdate {
    let info = c.child("contactInfo");
    let changed: Vec<&str> = c.text_at(&["propertiesChanged"]).unwrap_or("").split_whitespace().collect();
    let named = |p: &str| changed.iter().any(|x| x.eq_ignore_ascii_case(p));
    let nickname = info.and_then(|i| i.child("annotations")).and_then(|a| {
        a.children_named("Annotation")
            .find(|x| x.text_at(&["Name"]) == Some("AB.NickName"))
            .map(|x| x.text_at(&["Value"]).unwrap_or("").to_string())
    });
    ContactUpdate {
        guid: text(c, &["contactId"]),
        is_me: info.and_then(|i| i.text_at(&["contactType"])) == Some("Me"),
        display_name: named("DisplayName").then(|| info.and_then(|i| text(i, &["displayName"]))).flatten(),
        nickname: if named("Annotation") { Some(nickname.unwrap_or_default()) } else { None },
        messenger_user: named("IsMessengerUser")
            .then(|| info.and_then(|i| i.text_at(&["isMessengerUser"])).map(|v| v == "true"))
            .flatten(),
    }
}

impl Operation {
    /// The operation's element name.
    pub fn name(&self) -> &'static str {
        match self {
            Operation::FindMembership { .. } => "FindMembership",
            Operation::FindAll { .. } => "ABFindAll",
            Operation::FindContactsPaged { .. } => "ABFindContactsPaged",
            Operation::ContactAdd { .. } => "ABContactAdd",
            Operation::ContactDelete { .. } => "ABContactDelete",
            Operation::ContactUpdate { .. } => "ABContactUpdate",
            Operation::GroupAdd { .. } => "ABGroupAdd",
            Operation::GroupDelete { .. } => "ABGroupDelete",
            Operation::GroupUpdate { .. } => "ABGroupUpdate",
            Operation::GroupContactAdd { .. } => "ABGroupContactAdd",
            Operation::GroupContactDelete { .. } => "ABGroupContactDelete",
            Operation::AddMember { .. } => "AddMember",
            Operation::DeleteMember { .. } => "DeleteMember",
            Operation::CreateCircle { .. } => "CreateCircle",
            Operation::FindCircle { .. } => "ABFindContactsPaged",
            Operation::InviteToCircle { invitee: Invitee::Handle(_), .. } => "CreateContact",
            Operation::InviteToCircle { .. } | Operation::AnswerCircle { .. } => "ManageWLConnection",
            Operation::LeaveCircle { .. } => "BreakConnection",
        }
    }

    /// The path of the service the operation belongs to.
    pub fn path(&self) -> &'static str {
        match self {
            Operation::FindMembership { .. }
            | Operation::AddMember { .. }
            | Operation::DeleteMember { .. }
            | Operation::CreateCircle { .. } => "/abservice/SharingService.asmx",
            _ => "/abservice/abservice.asmx",
        }
    }

    /// The SOAP action a client names.
    pub fn action(&self) -> String {
        format!("{NS}/{}", self.name())
    }

    /// Reads the operation element of a request (see [`super::parse_request`]).
    pub fn parse(e: &Element) -> Result<Operation, Unreadable> {
        // Circles have books of their own; everything else is in one's own.
        let circle_operation = matches!(
            e.name.as_str(),
            "ABFindContactsPaged" | "CreateContact" | "ManageWLConnection" | "BreakConnection"
        );
        if !circle_operation && address_book(e) != DEFAULT_AB {
            return Err(Unreadable::OtherAddressBook);
        }
        let op = match e.name.as_str() {
            "ABFindContactsPaged" if address_book(e) != DEFAULT_AB => Operation::FindCircle { circle: circle_book(e)? },
            "CreateContact" => Operation::InviteToCircle {
                circle: circle_book(e)?,
                invitee: Invitee::Handle(
                    text(e, &["contactInfo", "passportName"])
                        .or_else(|| e.find("Email").and_then(|x| text(x, &[])))
                        .ok_or(Unreadable::BadArgument("passportName"))?,
                ),
                message: None,
            },
            "ManageWLConnection" => manage_connection(e)?,
            "BreakConnection" => Operation::LeaveCircle { circle: circle_book(e)? },
            "CreateCircle" => {
                let name = text(e, &["properties", "DisplayName"])
                    .or_else(|| e.find("DisplayName").and_then(|x| text(x, &[])))
                    .ok_or(Unreadable::BadArgument("DisplayName"))?;
                if name.chars().count() > MAX_CIRCLE_NAME {
                    return Err(Unreadable::BadArgument("DisplayName"));
                }
                Operation::CreateCircle { name }
            }
            "FindMembership" => Operation::FindMembership { deltas_since: deltas_since(e) },
            "ABFindAll" => Operation::FindAll { deltas_since: deltas_since(e) },
            "ABFindContactsPaged" => Operation::FindContactsPaged {
                deltas_since: (e.text_at(&["filterOptions", "DeltasOnly"]) == Some("true"))
                    .then(|| text(e, &["filterOptions", "LastChanged"]))
                    .flatten(),
            },
            "ABContactAdd" => {
                let contacts: Vec<&Element> =
                    e.child("contacts").map(|c| c.children_named("Contact").collect()).unwrap_or_default();
                // One contact at a time: that is what every client sends,
                // and the answer names one GUID.
                let [contact] = contacts[..] else { return Err(Unreadable::BadArgument("one Contact")) };
                let handle =
                    text(contact, &["contactInfo", "passportName"]).ok_or(Unreadable::BadArgument("passportName"))?;
                Operation::ContactAdd {
                    handle,
                    messenger_user: contact.text_at(&["contactInfo", "isMessengerUser"]) != Some("false"),
                    allow: e.text_at(&["options", "EnableAllowListManagement"]) == Some("true"),
                }
            }
            "ABContactDelete" => {
                Operation::ContactDelete { guids: bounded(guids(e, "contacts", "Contact", "contactId"), "contactId")? }
            }
            "ABContactUpdate" => {
                let contacts = e.child("contacts").map(|c| c.children_named("Contact").map(contact_update).collect());
                let contacts = bounded(contacts.unwrap_or_default(), "Contact")?;
                if contacts.iter().any(|c| c.guid.is_none() && !c.is_me) {
                    return Err(Unreadable::BadArgument("contactId"));
                }
                Operation::ContactUpdate { contacts }
            }
            "ABGroupAdd" => Operation::GroupAdd {
                name: text(e, &["groupInfo", "GroupInfo", "name"]).ok_or(Unreadable::BadArgument("name"))?,
            },
            "ABGroupDelete" => Operation::GroupDelete { guids: bounded(group_filter(e), "groupIds")? },
            "ABGroupUpdate" => {
                let groups = e.child("groups").map(|gs| {
                    gs.children_named("Group")
                        .map(|g| (text(g, &["groupId"]), text(g, &["groupInfo", "name"])))
                        .collect::<Vec<_>>()
                });
                let groups = bounded(groups.unwrap_or_default(), "Group")?;
                let groups = groups
                    .into_iter()
                    .map(|(id, name)| id.zip(name).ok_or(Unreadable::BadArgument("groupId and name")))
                    .collect::<Result<_, _>>()?;
                Operation::GroupUpdate { groups }
            }
            "ABGroupContactAdd" | "ABGroupContactDelete" => {
                let [group] = &group_filter(e)[..] else { return Err(Unreadable::BadArgument("one group")) };
                let contacts = e.child("contacts").map(|c| {
                    c.children_named("Contact")
                        .map(|c| match (text(c, &["contactId"]), text(c, &["contactInfo", "passportName"])) {
                            (Some(guid), _) => Ok(ContactRef::Guid(guid)),
                            (None, Some(handle)) => Ok(ContactRef::Handle(handle)),
                            (None, None) => Err(Unreadable::BadArgument("contactId")),
                        })
                        .collect::<Result<Vec<_>, _>>()
                });
                let contacts = bounded(contacts.unwrap_or(Ok(Vec::new()))?, "Contact")?;
                if e.name == "ABGroupContactAdd" {
                    Operation::GroupContactAdd { group: group.clone(), contacts }
                } else {
                    let guids = contacts
                        .into_iter()
                        .map(|c| match c {
                            ContactRef::Guid(g) => Ok(g),
                            ContactRef::Handle(_) => Err(Unreadable::BadArgument("contactId")),
                        })
                        .collect::<Result<_, _>>()?;
                    Operation::GroupContactDelete { group: group.clone(), guids }
                }
            }
            "AddMember" => {
                let (role, members) = memberships(e)?;
                Operation::AddMember { role, members }
            }
            "DeleteMember" => {
                let (role, members) = memberships(e)?;
                Operation::DeleteMember { role, members }
            }
            other => return Err(Unreadable::Unknown(other.to_string())),
        };
        Ok(op)
    }

    /// The operation element, as a client sends it inside [`super::request`].
    pub fn to_xml(&self) -> String {
        let ab = format!("<abId>{DEFAULT_AB}</abId>");
        let contact_ids = |guids: &[String]| {
            guids
                .iter()
                .map(|g| format!("<Contact><contactId>{}</contactId></Contact>", escape_xml(g)))
                .collect::<String>()
        };
        let group_filter = |guids: &[&String]| {
            let ids: String = guids.iter().map(|g| format!("<guid>{}</guid>", escape_xml(g))).collect();
            format!("<groupFilter><groupIds>{ids}</groupIds></groupFilter>")
        };
        let deltas = |since: &Option<String>| match since {
            Some(s) => format!("<deltasOnly>true</deltasOnly><lastChange>{}</lastChange>", escape_xml(s)),
            None => "<deltasOnly>false</deltasOnly><lastChange>0001-01-01T00:00:00.0000000-08:00</lastChange>".into(),
        };
        let inner = match self {
            Operation::CreateCircle { .. }
            | Operation::FindCircle { .. }
            | Operation::InviteToCircle { .. }
            | Operation::AnswerCircle { .. }
            | Operation::LeaveCircle { .. } => super::circles::operation_xml(self),
            Operation::FindMembership { deltas_since } => format!(
                "<serviceFilter><Types><ServiceType>Messenger</ServiceType></Types></serviceFilter><View>Full</View>{}",
                deltas(deltas_since)
            ),
            Operation::FindAll { deltas_since } => format!("{ab}<abView>Full</abView>{}", deltas(deltas_since)),
            Operation::FindContactsPaged { deltas_since } => format!(
                concat!(
                    "<abView>MessengerClient8</abView><extendedContent>AB AllGroups CircleResult</extendedContent>",
                    "<filterOptions><DeltasOnly>{}</DeltasOnly><LastChanged>{}</LastChanged>",
                    "<ContactFilter><IncludeHiddenContacts>true</IncludeHiddenContacts></ContactFilter></filterOptions>"
                ),
                deltas_since.is_some(),
                escape_xml(deltas_since.as_deref().unwrap_or("0001-01-01T00:00:00.0000000-08:00"))
            ),
            Operation::ContactAdd { handle, messenger_user, allow } => format!(
                concat!(
                    "{ab}<contacts><Contact><contactInfo><contactType>LivePending</contactType><passportName>{handle}</passportName>",
                    "<isMessengerUser>{messenger}</isMessengerUser></contactInfo></Contact></contacts>",
                    "<options><EnableAllowListManagement>{allow}</EnableAllowListManagement></options>"
                ),
                ab = ab,
                handle = escape_xml(handle),
                messenger = messenger_user,
                allow = allow
            ),
            Operation::ContactDelete { guids } => format!("{ab}<contacts>{}</contacts>", contact_ids(guids)),
            Operation::ContactUpdate { contacts } => {
                let contacts: String = contacts
                    .iter()
                    .map(|c| {
                        let mut info = String::new();
                        let mut changed = Vec::new();
                        if c.is_me {
                            info.push_str("<contactType>Me</contactType>");
                        }
                        if let Some(name) = &c.display_name {
                            info.push_str(&format!("<displayName>{}</displayName>", escape_xml(name)));
                            changed.push("DisplayName");
                        }
                        if let Some(nick) = &c.nickname {
                            info.push_str(&format!(
                                "<annotations><Annotation><Name>AB.NickName</Name><Value>{}</Value></Annotation></annotations>",
                                escape_xml(nick)
                            ));
                            changed.push("Annotation");
                        }
                        if let Some(m) = c.messenger_user {
                            info.push_str(&format!("<isMessengerUser>{m}</isMessengerUser>"));
                            changed.push("IsMessengerUser");
                        }
                        let id = c.guid.as_ref().map(|g| format!("<contactId>{}</contactId>", escape_xml(g))).unwrap_or_default();
                        format!(
                            "<Contact>{id}<contactInfo>{info}</contactInfo><propertiesChanged>{}</propertiesChanged></Contact>",
                            changed.join(" ")
                        )
                    })
                    .collect();
                format!("{ab}<contacts>{contacts}</contacts>")
            }
            Operation::GroupAdd { name } => format!(
                concat!(
                    "{ab}<groupAddOptions><fRenameOnMsgrConflict>false</fRenameOnMsgrConflict></groupAddOptions>",
                    "<groupInfo><GroupInfo><name>{name}</name><groupType>C8529CE2-6EAD-434d-881F-341E17DB3FF8</groupType>",
                    "<fMessenger>false</fMessenger></GroupInfo></groupInfo>"
                ),
                ab = ab,
                name = escape_xml(name)
            ),
            Operation::GroupDelete { guids } => format!("{ab}{}", group_filter(&guids.iter().collect::<Vec<_>>())),
            Operation::GroupUpdate { groups } => {
                let groups: String = groups
                    .iter()
                    .map(|(id, name)| {
                        format!(
                            "<Group><groupId>{}</groupId><groupInfo><name>{}</name></groupInfo><propertiesChanged>GroupName</propertiesChanged></Group>",
                            escape_xml(id),
                            escape_xml(name)
                        )
                    })
                    .collect();
                format!("{ab}<groups>{groups}</groups>")
            }
            Operation::GroupContactAdd { group, contacts } => {
                let contacts: String = contacts
                    .iter()
                    .map(|c| match c {
                        ContactRef::Guid(g) => format!("<Contact><contactId>{}</contactId></Contact>", escape_xml(g)),
                        ContactRef::Handle(h) => format!(
                            "<Contact><contactInfo><passportName>{}</passportName><isMessengerUser>true</isMessengerUser></contactInfo></Contact>",
                            escape_xml(h)
                        ),
                    })
                    .collect();
                format!("{ab}{}<contacts>{contacts}</contacts>", group_filter(&[group]))
            }
            Operation::GroupContactDelete { group, guids } => {
                format!("{ab}{}<contacts>{}</contacts>", group_filter(&[group]), contact_ids(guids))
            }
            Operation::AddMember { role, members } | Operation::DeleteMember { role, members } => {
                let members: String = members
                    .iter()
                    .map(|m| {
                        let who = match m {
                            MemberRef::Handle(h) => format!("<PassportName>{}</PassportName>", escape_xml(h)),
                            MemberRef::Id(id) => format!("<MembershipId>{id}</MembershipId>"),
                        };
                        format!(
                            r#"<Member xsi:type="PassportMember" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><Type>Passport</Type><State>Accepted</State>{who}</Member>"#
                        )
                    })
                    .collect();
                format!(
                    concat!(
                        "<serviceHandle><Id>0</Id><Type>Messenger</Type><ForeignId></ForeignId></serviceHandle>",
                        "<memberships><Membership><MemberRole>{role}</MemberRole><Members>{members}</Members></Membership></memberships>"
                    ),
                    role = role.name(),
                    members = members
                )
            }
        };
        format!(r#"<{name} xmlns="{NS}">{inner}</{name}>"#, name = self.name())
    }
}

/// What a change is answered with (the two finds have their own answers).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// The operation succeeded and returns nothing: `<NameResponse/>`.
    Done { operation: String },
    /// `ABContactAdd`, `ABGroupAdd`, `ABGroupContactAdd`: the GUID made or named.
    Guid { operation: String, guid: String },
}

impl Answer {
    /// The answer's `<soap:Body>` content.
    pub fn to_xml(&self) -> String {
        match self {
            Answer::Done { operation } => format!(r#"<{operation}Response xmlns="{NS}" />"#),
            Answer::Guid { operation, guid } => format!(
                r#"<{operation}Response xmlns="{NS}"><{operation}Result><guid>{}</guid></{operation}Result></{operation}Response>"#,
                escape_xml(guid)
            ),
        }
    }

    /// Reads an answer envelope back (a client's side).
    pub fn parse(xml: &str) -> Option<Answer> {
        let envelope = Envelope::parse(xml)?;
        let response = envelope.operation()?;
        let operation = response.name.strip_suffix("Response")?.to_string();
        match response.child(&format!("{operation}Result")).and_then(|r| text(r, &["guid"])) {
            Some(guid) => Some(Answer::Guid { operation, guid }),
            None => Some(Answer::Done { operation }),
        }
    }
}

/// A fault of the two services: the `errorcode` clients read, and a text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    BadArgument,
    ContactAlreadyExists,
    ContactDoesNotExist,
    GroupAlreadyExists,
    GroupDoesNotExist,
    MemberAlreadyExists,
    MemberDoesNotExist,
    InvalidPassportUser,
    /// A list is as long as it may be.
    QuotaLimitReached,
    /// The ticket is not a current sign-in's.
    BadContextToken,
    /// A change made by someone else's ticket, or to an address book not
    /// the caller's.
    AccessDenied,
    /// `deltasOnly` from before the oldest change the server remembers.
    FullSyncRequired,
    NotImplemented,
    InternalError,
}

impl Fault {
    pub fn code(self) -> &'static str {
        match self {
            Fault::BadArgument => "BadArgument",
            Fault::ContactAlreadyExists => "ContactAlreadyExists",
            Fault::ContactDoesNotExist => "ContactDoesNotExist",
            Fault::GroupAlreadyExists => "GroupAlreadyExists",
            Fault::GroupDoesNotExist => "GroupDoesNotExist",
            Fault::MemberAlreadyExists => "MemberAlreadyExists",
            Fault::MemberDoesNotExist => "MemberDoesNotExist",
            Fault::InvalidPassportUser => "InvalidPassportUser",
            Fault::QuotaLimitReached => "QuotaLimitReached",
            Fault::BadContextToken => "BadContextToken",
            Fault::AccessDenied => "AccessDenied",
            Fault::FullSyncRequired => "FullSyncRequired",
            Fault::NotImplemented => "NotImplemented",
            Fault::InternalError => "InternalError",
        }
    }

    const ALL: [Fault; 14] = [
        Fault::BadArgument,
        Fault::ContactAlreadyExists,
        Fault::ContactDoesNotExist,
        Fault::GroupAlreadyExists,
        Fault::GroupDoesNotExist,
        Fault::MemberAlreadyExists,
        Fault::MemberDoesNotExist,
        Fault::InvalidPassportUser,
        Fault::QuotaLimitReached,
        Fault::BadContextToken,
        Fault::AccessDenied,
        Fault::FullSyncRequired,
        Fault::NotImplemented,
        Fault::InternalError,
    ];

    /// The fault's envelope.
    pub fn to_xml(self, text: &str) -> String {
        let side = if matches!(self, Fault::InternalError) { "soap:Server" } else { "soap:Client" };
        crate::soap::fault(side, text, &format!(r#"<errorcode xmlns="{NS}">{}</errorcode>"#, self.code()))
    }

    /// Reads a fault envelope back: its error code.
    pub fn parse(xml: &str) -> Option<Fault> {
        let envelope = Envelope::parse(xml)?;
        let code = envelope.body.find("Fault")?.text_at(&["detail", "errorcode"])?;
        Fault::ALL.into_iter().find(|f| f.code() == code)
    }
}

#[cfg(test)]
mod tests {
    use super::super::{parse_request, request};
    use super::*;

    fn every_operation() -> Vec<Operation> {
        let g = || "0d3c4e1a-58e2-4b6f-9c8e-1d2f3a4b5c6d".to_string();
        vec![
            Operation::FindMembership { deltas_since: None },
            Operation::FindMembership { deltas_since: Some("2026-12-05T10:00:00.250Z".into()) },
            Operation::FindAll { deltas_since: None },
            Operation::FindAll { deltas_since: Some("2026-12-05T10:00:00Z".into()) },
            Operation::FindContactsPaged { deltas_since: None },
            Operation::FindContactsPaged { deltas_since: Some("2026-12-05T10:00:00Z".into()) },
            Operation::ContactAdd { handle: "bob@x.com".into(), messenger_user: true, allow: true },
            Operation::ContactAdd { handle: "b&b@x.com".into(), messenger_user: false, allow: false },
            Operation::ContactDelete { guids: vec![g(), "other".into()] },
            Operation::ContactUpdate {
                contacts: vec![
                    ContactUpdate { is_me: true, display_name: Some("Me <3".into()), ..Default::default() },
                    ContactUpdate { guid: Some(g()), nickname: Some("Bobby".into()), ..Default::default() },
                    ContactUpdate {
                        guid: Some(g()),
                        nickname: Some(String::new()),
                        messenger_user: Some(false),
                        ..Default::default()
                    },
                ],
            },
            Operation::GroupAdd { name: "Friends & Co".into() },
            Operation::GroupDelete { guids: vec![g()] },
            Operation::GroupUpdate { groups: vec![(g(), "Work".into())] },
            Operation::GroupContactAdd {
                group: g(),
                contacts: vec![ContactRef::Guid(g()), ContactRef::Handle("c@x.com".into())],
            },
            Operation::GroupContactDelete { group: g(), guids: vec![g()] },
            Operation::AddMember { role: Role::Allow, members: vec![MemberRef::Handle("bob@x.com".into())] },
            Operation::DeleteMember {
                role: Role::Pending,
                members: vec![MemberRef::Id(42), MemberRef::Handle("c@x.com".into())],
            },
        ]
    }

    #[test]
    fn every_operation_reads_back_as_sent() {
        for op in every_operation() {
            let xml = request("t=ticket&p=x", &op.to_xml());
            let read = parse_request(&xml).unwrap_or_else(|| panic!("{}", op.name()));
            assert_eq!(read.ticket.as_deref(), Some("t=ticket&p=x"));
            assert_eq!(Operation::parse(&read.operation), Ok(op.clone()), "{xml}");
        }
    }

    #[test]
    fn answers_and_faults_read_back() {
        let wrap = |body: String| crate::soap::envelope("", &body);
        for a in [
            Answer::Done { operation: "ABContactDelete".into() },
            Answer::Guid { operation: "ABGroupAdd".into(), guid: "g-1".into() },
        ] {
            assert_eq!(Answer::parse(&wrap(a.to_xml())), Some(a));
        }
        for f in Fault::ALL {
            assert_eq!(Fault::parse(&f.to_xml("why <not>")), Some(f));
        }
    }

    #[test]
    fn requests_that_name_too_much_or_too_little_are_refused() {
        let parse = |op: &str| Operation::parse(&parse_request(&request("t", op)).unwrap().operation);
        let ns = NS;
        assert_eq!(
            parse(&format!(r#"<ABContactDelete xmlns="{ns}"><contacts/></ABContactDelete>"#)),
            Err(Unreadable::BadArgument("contactId"))
        );
        let many: String = (0..=MAX_ITEMS).map(|i| format!("<Contact><contactId>{i}</contactId></Contact>")).collect();
        assert!(
            parse(&format!(r#"<ABContactDelete xmlns="{ns}"><contacts>{many}</contacts></ABContactDelete>"#)).is_err()
        );
        assert_eq!(
            parse(&format!(r#"<ABFindAll xmlns="{ns}"><abId>11111111-0000-0000-0000-000000000000</abId></ABFindAll>"#)),
            Err(Unreadable::OtherAddressBook)
        );
        assert_eq!(parse(&format!(r#"<ABEatAll xmlns="{ns}"/>"#)), Err(Unreadable::Unknown("ABEatAll".into())));
        let two_roles = format!(
            r#"<AddMember xmlns="{ns}"><memberships><Membership><MemberRole>Allow</MemberRole><Members><Member><PassportName>a@x.com</PassportName></Member></Members></Membership><Membership><MemberRole>Block</MemberRole><Members><Member><PassportName>a@x.com</PassportName></Member></Members></Membership></memberships></AddMember>"#
        );
        assert!(parse(&two_roles).is_err());
    }
}
