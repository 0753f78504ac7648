//! The address book and membership services of MSNP13+ (`abservice.asmx`,
//! `SharingService.asmx`), both directions: the answers a server writes
//! and a client reads back, and the requests a client sends.
//!
//! Only the elements clients are known to read are written (bitlbee,
//! Pidgin, papyon and WLM read these paths); everything is escaped.

mod changes;
mod circles;

pub use changes::{
    Answer, ContactRef, ContactUpdate, Fault, Invitee, MAX_CIRCLE_NAME, MAX_ITEMS, MemberRef, Operation, Unreadable,
};
pub use circles::{
    CircleEntry, CircleMember, circle_book_response, create_circle_response, create_contact_response,
    manage_connection_response, member_cid, member_contact_id, parse_circle_book_response, parse_circle_result,
    parse_create_circle_response,
};

use crate::soap::{Element, Envelope, escape_xml};

/// The namespace of both services.
pub const NS: &str = "http://www.msn.com/webservices/AddressBook";

/// The default address book's id.
pub const DEFAULT_AB: &str = "00000000-0000-0000-0000-000000000000";

/// A membership role: which list a member is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Allow,
    Block,
    Reverse,
    Pending,
}

impl Role {
    pub const ALL: [Role; 4] = [Role::Allow, Role::Block, Role::Reverse, Role::Pending];

    pub fn name(self) -> &'static str {
        match self {
            Role::Allow => "Allow",
            Role::Block => "Block",
            Role::Reverse => "Reverse",
            Role::Pending => "Pending",
        }
    }

    pub fn from_name(name: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.name() == name)
    }

    /// The list a role is a view of.
    pub fn list(self) -> crate::ListKind {
        match self {
            Role::Allow => crate::ListKind::Allow,
            Role::Block => crate::ListKind::Block,
            Role::Reverse => crate::ListKind::Reverse,
            Role::Pending => crate::ListKind::Pending,
        }
    }

    /// The role that shows a list (none for the forward list: that is the
    /// address book).
    pub fn of_list(list: crate::ListKind) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.list() == list)
    }
}

/// A member of a role.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub id: u64,
    pub handle: String,
    pub display_name: String,
    /// ISO 8601.
    pub changed: String,
    /// In a delta answer: no longer in this role.
    pub deleted: bool,
}

/// One contact of the address book.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Contact {
    pub guid: String,
    pub handle: String,
    pub display_name: String,
    /// The owner's own entry (`contactType` `Me`).
    pub is_me: bool,
    /// On the forward list (`isMessengerUser`).
    pub messenger_user: bool,
    pub cid: u64,
    pub group_guids: Vec<String>,
    /// `AB.NickName`: the name the owner gave the contact.
    pub nickname: Option<String>,
    pub changed: String,
    /// In a delta answer: no longer in the address book.
    pub deleted: bool,
}

/// A group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    pub guid: String,
    pub name: String,
    pub changed: String,
    /// In a delta answer: deleted.
    pub deleted: bool,
}

/// What `ABFindAll` answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddressBook {
    pub owner_handle: String,
    pub owner_cid: u64,
    pub groups: Vec<Group>,
    /// The owner's `Me` contact first, then the others.
    pub contacts: Vec<Contact>,
    pub changed: String,
    /// The circles the owner is in or invited to (MSNP18).
    pub circles: Vec<CircleEntry>,
    /// The signed circle ticket (its XML), which `ABFindContactsPaged`
    /// carries in its `CircleResult`.
    pub circle_ticket: Option<String>,
}

/// An answer envelope of the two services around `body`.
pub fn soap_answer(body: &str) -> String {
    crate::soap::envelope(
        &format!(
            r#"<ServiceHeader xmlns="{NS}"><Version>15.01.1408.0000</Version><CacheKeyChanged>false</CacheKeyChanged><PreferredHostName>contacts.msn.com</PreferredHostName></ServiceHeader>"#
        ),
        body,
    )
}

/// The `FindMembership` answer: the Messenger service and its roles.
pub fn find_membership_response(roles: &[(Role, Vec<Member>)], changed: &str) -> String {
    let mut memberships = String::new();
    for (role, members) in roles {
        memberships.push_str(&format!("<Membership><MemberRole>{}</MemberRole><Members>", role.name()));
        for m in members {
            memberships.push_str(&format!(
                concat!(
                    r#"<Member xsi:type="PassportMember"><MembershipId>{id}</MembershipId><Type>Passport</Type>"#,
                    "<DisplayName>{name}</DisplayName><State>Accepted</State><Deleted>{deleted}</Deleted>",
                    "<LastChanged>{changed}</LastChanged><JoinedDate>{changed}</JoinedDate><ExpirationDate>0001-01-01T00:00:00</ExpirationDate>",
                    "<Changes /><PassportName>{handle}</PassportName><IsPassportNameHidden>false</IsPassportNameHidden>",
                    "<PassportId>0</PassportId><CID>{id}</CID><PassportChanges /></Member>"
                ),
                id = m.id,
                name = escape_xml(&m.display_name),
                changed = escape_xml(&m.changed),
                handle = escape_xml(&m.handle),
                deleted = m.deleted,
            ));
        }
        memberships.push_str("</Members><MembershipIsComplete>true</MembershipIsComplete></Membership>");
    }
    soap_answer(&format!(
        concat!(
            r#"<FindMembershipResponse xmlns="{ns}"><FindMembershipResult><Services><Service>"#,
            "<Memberships>{memberships}</Memberships>",
            "<Info><Handle><Id>1</Id><Type>Messenger</Type><ForeignId /></Handle><InverseRequired>false</InverseRequired><AuthorizationCriteria>Everyone</AuthorizationCriteria><IsBot>false</IsBot></Info>",
            "<Changes /><LastChange>{changed}</LastChange><Deleted>false</Deleted></Service></Services>",
            "<OwnerNamespace><Info><Handle><Id>{ab}</Id><IsPassportNameHidden>false</IsPassportNameHidden><CID>0</CID></Handle><CreatorPuid>0</CreatorPuid><CreatorCID>0</CreatorCID><CreatorPassportName /><CircleAttributes><IsPresenceEnabled>false</IsPresenceEnabled><Domain>WindowsLive</Domain></CircleAttributes><MessengerApplicationServiceCreated>false</MessengerApplicationServiceCreated></Info><Changes /><CreateDate>{changed}</CreateDate><LastChange>{changed}</LastChange></OwnerNamespace>",
            "</FindMembershipResult></FindMembershipResponse>"
        ),
        ns = NS,
        memberships = memberships,
        changed = escape_xml(changed),
        ab = DEFAULT_AB,
    ))
}

fn contact_xml(c: &Contact) -> String {
    let groups: String = c.group_guids.iter().map(|g| format!("<guid>{}</guid>", escape_xml(g))).collect();
    let annotations = match &c.nickname {
        Some(n) => format!(
            "<annotations><Annotation><Name>AB.NickName</Name><Value>{}</Value></Annotation></annotations>",
            escape_xml(n)
        ),
        None => String::new(),
    };
    format!(
        concat!(
            "<Contact><contactId>{guid}</contactId><contactInfo>{annotations}<contactType>{kind}</contactType>",
            "<quickName>{name}</quickName><passportName>{handle}</passportName><IsPassportNameHidden>false</IsPassportNameHidden>",
            "<displayName>{name}</displayName><puid>0</puid>",
            "{groups}<CID>{cid}</CID><IsNotMobileVisible>false</IsNotMobileVisible><isMobileIMEnabled>false</isMobileIMEnabled>",
            "<isMessengerUser>{messenger}</isMessengerUser><isFavorite>false</isFavorite><isSmtp>false</isSmtp>",
            "<hasSpace>false</hasSpace><spotWatchState>NoDevice</spotWatchState><birthdate>0001-01-01T00:00:00</birthdate>",
            "<primaryEmailType>ContactEmailPersonal</primaryEmailType><PrimaryLocation>ContactLocationPersonal</PrimaryLocation>",
            "<PrimaryPhone>ContactPhonePersonal</PrimaryPhone><IsPrivate>false</IsPrivate><Gender>Unspecified</Gender><TimeZone>None</TimeZone></contactInfo>",
            "<propertiesChanged /><fDeleted>{deleted}</fDeleted><lastChange>{changed}</lastChange></Contact>"
        ),
        guid = escape_xml(&c.guid),
        annotations = annotations,
        kind = if c.is_me { "Me" } else { "Regular" },
        name = escape_xml(&c.display_name),
        handle = escape_xml(&c.handle),
        groups = if groups.is_empty() { String::new() } else { format!("<groupIds>{groups}</groupIds>") },
        cid = c.cid,
        messenger = c.messenger_user,
        changed = escape_xml(&c.changed),
        deleted = c.deleted,
    )
}

/// The `ABFindAll` answer.
pub fn ab_find_all_response(ab: &AddressBook) -> String {
    ab_answer(ab, ["ABFindAll", "groups", "contacts", "ab"])
}

/// The `ABFindContactsPaged` answer: the same address book under the later
/// shape's names (`Groups`, `Contacts`, `Ab`).
pub fn ab_find_contacts_paged_response(ab: &AddressBook) -> String {
    ab_answer(ab, ["ABFindContactsPaged", "Groups", "Contacts", "Ab"])
}

fn ab_answer(ab: &AddressBook, [op, groups_tag, contacts_tag, ab_tag]: [&str; 4]) -> String {
    let groups: String = ab
        .groups
        .iter()
        .map(|g| {
            format!(
                concat!(
                    "<Group><groupId>{guid}</groupId><groupInfo><annotations><Annotation><Name>MSN.IM.Display</Name><Value>1</Value></Annotation></annotations>",
                    "<groupType>C8529CE2-6EAD-434d-881F-341E17DB3FF8</groupType><name>{name}</name><IsNotMobileVisible>false</IsNotMobileVisible>",
                    "<IsPrivate>false</IsPrivate><IsFavorite>false</IsFavorite></groupInfo><propertiesChanged /><fDeleted>{deleted}</fDeleted><lastChange>{changed}</lastChange></Group>"
                ),
                guid = escape_xml(&g.guid),
                name = escape_xml(&g.name),
                changed = escape_xml(&g.changed),
                deleted = g.deleted,
            )
        })
        .collect();
    let mut contacts: String = ab.contacts.iter().map(contact_xml).collect();
    contacts.push_str(&circles::circle_contacts_xml(&ab.circles, &ab.changed));
    let circle_result = match (&ab.circle_ticket, op) {
        (Some(ticket), "ABFindContactsPaged") => circles::circle_result_xml(&ab.circles, ticket),
        _ => String::new(),
    };
    soap_answer(&format!(
        concat!(
            r#"<{op}Response xmlns="{ns}"><{op}Result><{gt}>{groups}</{gt}><{ct}>{contacts}</{ct}>{circle_result}"#,
            "<{at}><abId>{ab}</abId><abInfo><ownerPuid>0</ownerPuid><OwnerCID>{cid}</OwnerCID><ownerEmail>{owner}</ownerEmail>",
            "<fDefault>true</fDefault><joinedNamespace>false</joinedNamespace><IsBot>false</IsBot><IsParentManaged>false</IsParentManaged>",
            "<SubscribeExternalPartner>false</SubscribeExternalPartner><NotifyExternalPartner>false</NotifyExternalPartner>",
            "<AddressBookType>Individual</AddressBookType></abInfo><lastChange>{changed}</lastChange>",
            "<DynamicItemLastChanged>0001-01-01T00:00:00</DynamicItemLastChanged><createDate>{changed}</createDate><propertiesChanged /></{at}>",
            "</{op}Result></{op}Response>"
        ),
        op = op,
        gt = groups_tag,
        ct = contacts_tag,
        at = ab_tag,
        ns = NS,
        groups = groups,
        contacts = contacts,
        circle_result = circle_result,
        ab = DEFAULT_AB,
        cid = ab.owner_cid,
        owner = escape_xml(&ab.owner_handle),
        changed = escape_xml(&ab.changed),
    ))
}

/// The `NOT` document (ABCH's notification) that tells an MSNP13+ client
/// its memberships or address book changed on the server, so that it asks
/// the services again: someone put it on, or took it off, their forward
/// list. `pid` is the CID's two halves in hex, low first.
pub fn changed_notice(cid: u64, handle: &str) -> String {
    let data = format!(
        concat!(
            r#"<NotificationData xmlns:xsd="http://www.w3.org/2001/XMLSchema" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">"#,
            "<Service>ABCHInternal</Service><CID>{cid}</CID><LastModifiedDate>0001-01-01T00:00:00</LastModifiedDate>",
            "<HasNewItem>false</HasNewItem></NotificationData>"
        ),
        cid = cid as i64
    );
    format!(
        concat!(
            r#"<NOTIFICATION id="0" siteid="45705" siteurl="http://contacts.msn.com">"#,
            r#"<TO pid="0x{low:08x}:0x{high:08x}" name="{handle}"><VIA agent="messenger"/></TO>"#,
            r#"<MSG id="0"><SUBSCR url="s.htm"/><ACTION url="a.htm"/><BODY>{body}</BODY></MSG></NOTIFICATION>"#
        ),
        low = cid as u32,
        high = cid >> 32,
        handle = escape_xml(handle),
        body = escape_xml(&data)
    )
}

/// Reads a [`changed_notice`] back: the CID whose lists changed, if the
/// notice is the address book's.
pub fn parse_changed_notice(xml: &str) -> Option<u64> {
    let notice = Element::parse(xml)?;
    let data = Element::parse(notice.text_at(&["MSG", "BODY"])?)?;
    (data.text_at(&["Service"]) == Some("ABCHInternal"))
        .then(|| data.text_at(&["CID"])?.parse::<i64>().ok())?
        .map(|c| c as u64)
}

/// A request as a client sends it: the ticket in `ABAuthHeader` and the
/// operation `body` (an element in the service namespace).
pub fn request(ticket: &str, body: &str) -> String {
    crate::soap::envelope(
        &format!(
            concat!(
                r#"<ABApplicationHeader xmlns="{ns}"><ApplicationId>CFE80F9D-180F-4399-82AB-413F33A1FA11</ApplicationId><IsMigration>false</IsMigration><PartnerScenario>Initial</PartnerScenario></ABApplicationHeader>"#,
                r#"<ABAuthHeader xmlns="{ns}"><ManagedGroupRequest>false</ManagedGroupRequest><TicketToken>{ticket}</TicketToken></ABAuthHeader>"#
            ),
            ns = NS,
            ticket = escape_xml(ticket)
        ),
        body,
    )
}

/// The `FindMembership` request for the Messenger service, whole.
pub fn find_membership_request(ticket: &str) -> String {
    request(ticket, &Operation::FindMembership { deltas_since: None }.to_xml())
}

/// The `ABFindAll` request for the default address book, whole.
pub fn ab_find_all_request(ticket: &str) -> String {
    request(ticket, &Operation::FindAll { deltas_since: None }.to_xml())
}

/// The same without a ticket in the envelope, as Windows Live Messenger
/// 8.0 (MSNP13/14) sends it: the ticket travels in the `MSPAuth` cookie.
pub fn request_without_ticket(body: &str) -> String {
    request("", body).replace("<TicketToken></TicketToken>", "")
}

/// What a server reads from a request: the ticket, when the envelope
/// carries one (`TicketToken`, MSNP15+; MSNP13/14 send the `MSPAuth`
/// cookie instead), and the operation.
#[derive(Debug, Clone)]
pub struct ServiceRequest {
    pub ticket: Option<String>,
    pub operation: Element,
}

/// Reads a request: a SOAP envelope whose operation is in the service
/// namespace.
pub fn parse_request(xml: &str) -> Option<ServiceRequest> {
    let envelope = Envelope::parse(xml)?;
    let operation = envelope.operation()?.clone();
    if operation.namespace.as_deref() != Some(NS) {
        return None;
    }
    let ticket = envelope.header.find("TicketToken").map(|t| t.text.trim().to_string()).filter(|t| !t.is_empty());
    Some(ServiceRequest { ticket, operation })
}

fn text(e: &Element, path: &[&str]) -> String {
    e.text_at(path).unwrap_or("").to_string()
}

/// Reads a `FindMembership` answer back (a client's side).
pub fn parse_find_membership_response(xml: &str) -> Option<Vec<(Role, Vec<Member>)>> {
    let envelope = Envelope::parse(xml)?;
    let mut memberships = Vec::new();
    envelope.body.find_all("Membership", &mut memberships);
    memberships
        .into_iter()
        .map(|m| {
            let role = Role::from_name(m.text_at(&["MemberRole"])?)?;
            let members = m
                .child("Members")
                .map(|ms| {
                    ms.children_named("Member")
                        .map(|x| Member {
                            id: x.text_at(&["MembershipId"]).and_then(|i| i.parse().ok()).unwrap_or(0),
                            handle: text(x, &["PassportName"]),
                            display_name: text(x, &["DisplayName"]),
                            changed: text(x, &["LastChanged"]),
                            deleted: x.text_at(&["Deleted"]) == Some("true"),
                        })
                        .collect()
                })
                .unwrap_or_default();
            Some((role, members))
        })
        .collect()
}

/// Reads an `ABFindAll` or `ABFindContactsPaged` answer back (a client's
/// side).
pub fn parse_ab_find_all_response(xml: &str) -> Option<AddressBook> {
    let (circles, circle_ticket) = match parse_circle_result(xml) {
        Some((circles, ticket)) => (circles, Some(ticket)),
        None => (Vec::new(), None),
    };
    let envelope = Envelope::parse(xml)?;
    let result = envelope.body.find("ABFindAllResult").or_else(|| envelope.body.find("ABFindContactsPagedResult"))?;
    let child = |lower: &str, upper: &str| result.child(lower).or_else(|| result.child(upper));
    let groups = child("groups", "Groups")
        .map(|gs| {
            gs.children_named("Group")
                .map(|g| Group {
                    guid: text(g, &["groupId"]),
                    name: text(g, &["groupInfo", "name"]),
                    changed: text(g, &["lastChange"]),
                    deleted: g.text_at(&["fDeleted"]) == Some("true"),
                })
                .collect()
        })
        .unwrap_or_default();
    let contacts = child("contacts", "Contacts")
        .map(|cs| {
            cs.children_named("Contact")
                .filter_map(|c| {
                    let info = c.child("contactInfo")?;
                    if info.text_at(&["contactType"]) == Some("Circle") {
                        return None;
                    }
                    let nickname = info.child("annotations").and_then(|a| {
                        a.children_named("Annotation")
                            .find(|x| x.text_at(&["Name"]) == Some("AB.NickName"))
                            .map(|x| text(x, &["Value"]))
                    });
                    Some(Contact {
                        guid: text(c, &["contactId"]),
                        handle: text(info, &["passportName"]),
                        display_name: text(info, &["displayName"]),
                        is_me: info.text_at(&["contactType"]) == Some("Me"),
                        messenger_user: info.text_at(&["isMessengerUser"]) == Some("true"),
                        cid: info.text_at(&["CID"]).and_then(|i| i.parse().ok()).unwrap_or(0),
                        group_guids: info
                            .child("groupIds")
                            .map(|g| g.children_named("guid").map(|x| x.text.trim().to_string()).collect())
                            .unwrap_or_default(),
                        nickname,
                        changed: text(c, &["lastChange"]),
                        deleted: c.text_at(&["fDeleted"]) == Some("true"),
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    let ab = if result.child("ab").is_some() { "ab" } else { "Ab" };
    Some(AddressBook {
        owner_handle: text(result, &[ab, "abInfo", "ownerEmail"]),
        owner_cid: result.text_at(&[ab, "abInfo", "OwnerCID"]).and_then(|i| i.parse().ok()).unwrap_or(0),
        groups,
        contacts,
        changed: text(result, &[ab, "lastChange"]),
        circles,
        circle_ticket,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_read_back() {
        let roles = vec![
            (
                Role::Allow,
                vec![Member {
                    id: 7,
                    handle: "bob@x.com".into(),
                    display_name: "Bob <&>".into(),
                    changed: "2026-01-01T00:00:00Z".into(),
                    deleted: false,
                }],
            ),
            (Role::Reverse, vec![]),
        ];
        let xml = find_membership_response(&roles, "2026-01-01T00:00:00Z");
        assert_eq!(parse_find_membership_response(&xml).unwrap(), roles);
        let ab = AddressBook {
            owner_handle: "me@x.com".into(),
            owner_cid: 1,
            groups: vec![Group { guid: "g1".into(), name: "Friends & Co".into(), changed: "c".into(), deleted: true }],
            contacts: vec![
                Contact {
                    guid: "c0".into(),
                    handle: "me@x.com".into(),
                    display_name: "Me".into(),
                    is_me: true,
                    messenger_user: false,
                    cid: 1,
                    group_guids: vec![],
                    nickname: None,
                    changed: "c".into(),
                    deleted: false,
                },
                Contact {
                    guid: "c1".into(),
                    handle: "bob@x.com".into(),
                    display_name: "Bob".into(),
                    is_me: false,
                    messenger_user: true,
                    cid: 7,
                    group_guids: vec!["g1".into()],
                    nickname: Some("Bobby <3".into()),
                    changed: "c".into(),
                    deleted: true,
                },
            ],
            changed: "c".into(),
            circles: vec![],
            circle_ticket: None,
        };
        assert_eq!(parse_ab_find_all_response(&ab_find_all_response(&ab)).unwrap(), ab);
        // The later shape carries circles and their ticket.
        let ab = AddressBook {
            circles: vec![CircleEntry {
                id: crate::circle::CircleId::from_hex("0000000000ff").unwrap(),
                name: "Book club <3".into(),
                role: crate::circle::CircleRole::Member,
                state: crate::circle::CircleState::WaitingResponse,
                inviter: Some("bob@x.com".into()),
                invite_message: Some("join us".into()),
            }],
            circle_ticket: Some("<SignedTicket><Data>x</Data></SignedTicket>".into()),
            ..ab
        };
        assert_eq!(parse_ab_find_all_response(&ab_find_contacts_paged_response(&ab)).unwrap(), ab);
    }

    #[test]
    fn each_role_is_the_view_of_one_list() {
        for role in Role::ALL {
            assert_eq!(Role::of_list(role.list()), Some(role));
        }
        assert_eq!(Role::of_list(crate::ListKind::Forward), None, "the forward list is the address book");
    }

    #[test]
    fn the_changed_notice_reads_back() {
        let xml = changed_notice(0x1_0000_0002, "a&b@x.com");
        assert!(xml.contains(r#"pid="0x00000002:0x00000001""#), "{xml}");
        assert_eq!(parse_changed_notice(&xml), Some(0x1_0000_0002));
        assert_eq!(parse_changed_notice("<NOTIFICATION/>"), None);
    }

    #[test]
    fn requests_carry_their_ticket_and_operation() {
        let r = parse_request(&ab_find_all_request("t=a&p=b")).unwrap();
        assert_eq!((r.ticket.as_deref(), r.operation.name.as_str()), (Some("t=a&p=b"), "ABFindAll"));
        assert_eq!(r.operation.text_at(&["deltasOnly"]), Some("false"));
        assert_eq!(parse_request(&find_membership_request("t")).unwrap().operation.name, "FindMembership");
        // Another namespace, or no ticket: not a request of the service.
        let other = find_membership_request("t").replace(NS, "urn:other");
        assert!(parse_request(&other).is_none());
        // No ticket in the envelope: the cookie must carry it.
        let no_ticket = request_without_ticket(&Operation::FindMembership { deltas_since: None }.to_xml());
        assert_eq!(parse_request(&no_ticket).unwrap().ticket, None);
    }
}
