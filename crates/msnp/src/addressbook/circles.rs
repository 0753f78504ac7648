//! Circles in the address book (MSNP18): each circle the owner is in or
//! invited to is a `Circle` contact of their book and a
//! `CircleInverseInfo` of the `CircleResult`, which also carries the
//! signed ticket `USR SHA A` hands back; a circle's own book (`abId` = the
//! circle) lists its members.

use super::{DEFAULT_AB, NS, Operation, Unreadable, soap_answer};
use crate::circle::{CircleId, CircleRole, CircleState};
use crate::soap::{Element, Envelope, escape_xml};

fn text(e: &Element, path: &[&str]) -> Option<String> {
    e.text_at(path).filter(|t| !t.is_empty()).map(str::to_string)
}

/// Who an invitation names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Invitee {
    Handle(String),
    /// The contact id a circle's book gave (see [`super::member_contact_id`]).
    ContactId(String),
}

/// The longest circle name taken (the service's own limit on display names).
pub const MAX_CIRCLE_NAME: usize = 256;

/// The address book a request names: `abId`, or `abHandle/ABId` in the
/// later shape; the default one when none.
pub(super) fn address_book(e: &Element) -> &str {
    e.text_at(&["abId"]).or_else(|| e.text_at(&["abHandle", "ABId"])).filter(|id| !id.is_empty()).unwrap_or(DEFAULT_AB)
}

/// The circle a request's book is, if it is one.
pub(super) fn circle_book(e: &Element) -> Result<CircleId, Unreadable> {
    CircleId::parse_guid(address_book(e)).ok_or(Unreadable::OtherAddressBook)
}

/// `ManageWLConnection`: an invitation (in the circle's book) or an answer
/// to one (in one's own).
pub(super) fn manage_connection(e: &Element) -> Result<Operation, Unreadable> {
    if e.text_at(&["connection"]) != Some("true") || e.text_at(&["relationshipType"]) != Some("5") {
        return Err(Unreadable::BadArgument("a circle connection"));
    }
    let contact = text(e, &["contactId"]).ok_or(Unreadable::BadArgument("contactId"))?;
    let action = e.text_at(&["action"]).ok_or(Unreadable::BadArgument("action"))?;
    if address_book(e) == DEFAULT_AB {
        let circle = CircleId::parse_guid(&contact).ok_or(Unreadable::BadArgument("contactId"))?;
        return match action {
            "1" => Ok(Operation::AnswerCircle { circle, accept: true }),
            "2" => Ok(Operation::AnswerCircle { circle, accept: false }),
            _ => Err(Unreadable::BadArgument("action")),
        };
    }
    let circle = circle_book(e)?;
    if action != "1" || e.text_at(&["relationshipRole"]) != Some("3") {
        return Err(Unreadable::BadArgument("relationshipRole"));
    }
    Ok(Operation::InviteToCircle { circle, invitee: Invitee::ContactId(contact), message: invite_message(e) })
}

fn invite_message(e: &Element) -> Option<String> {
    e.child("annotations")?
        .children_named("Annotation")
        .find(|a| a.text_at(&["Name"]) == Some("MSN.IM.InviteMessage"))
        .and_then(|a| text(a, &["Value"]))
}

/// The inside of a circle operation's element.
pub(super) fn operation_xml(op: &Operation) -> String {
    let book = |c: &CircleId| format!("<abHandle><ABId>{}</ABId><Puid>0</Puid><Cid>0</Cid></abHandle>", c.guid());
    let connection = |book: String, contact: &str, role: u8, action: u8, message: &Option<String>| {
        let annotations = match message {
            Some(m) => format!(
                "<annotations><Annotation><Name>MSN.IM.InviteMessage</Name><Value>{}</Value></Annotation></annotations>",
                escape_xml(m)
            ),
            None => String::new(),
        };
        format!(
            "{book}<contactId>{}</contactId><connection>true</connection><presenceConnection>false</presenceConnection><action>{action}</action><relationshipType>5</relationshipType><relationshipRole>{role}</relationshipRole>{annotations}",
            escape_xml(contact)
        )
    };
    match op {
        Operation::CreateCircle { name } => format!(
            concat!(
                "<properties><Domain>1</Domain><HostedDomain>live.com</HostedDomain><Type>2</Type><MembershipAccess>0</MembershipAccess>",
                "<IsPresenceEnabled>true</IsPresenceEnabled><RequestMembershipOption>2</RequestMembershipOption>",
                "<DisplayName>{}</DisplayName></properties><callerInfo><PublicDisplayName></PublicDisplayName></callerInfo>"
            ),
            escape_xml(name)
        ),
        Operation::FindCircle { circle } => format!(
            "<abView>MessengerClient8</abView><extendedContent>AB AllGroups CircleResult</extendedContent>{}",
            book(circle)
        ),
        Operation::InviteToCircle { circle, invitee: Invitee::Handle(handle), .. } => format!(
            "{}<contactInfo><contactType>LivePending</contactType><passportName>{}</passportName><isMessengerUser>true</isMessengerUser></contactInfo>",
            book(circle),
            escape_xml(handle)
        ),
        Operation::InviteToCircle { circle, invitee: Invitee::ContactId(id), message } => {
            connection(book(circle), id, 3, 1, message)
        }
        Operation::AnswerCircle { circle, accept } => {
            connection(format!("<abId>{DEFAULT_AB}</abId>"), &circle.guid(), 0, if *accept { 1 } else { 2 }, &None)
        }
        Operation::LeaveCircle { circle } => {
            format!("{}<contactId>00000000-0000-0000-0000-000000000000</contactId>", book(circle))
        }
        // Only the circle operations are written here.
        _ => String::new(),
    }
}

/// A circle as its member's address book shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CircleEntry {
    pub id: CircleId,
    pub name: String,
    pub role: CircleRole,
    pub state: CircleState,
    /// Who invited the owner, while the invitation waits.
    pub inviter: Option<String>,
    pub invite_message: Option<String>,
}

/// A member of a circle, as the circle's book lists them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CircleMember {
    pub handle: String,
    pub display_name: String,
    pub cid: u64,
    pub role: CircleRole,
    pub state: CircleState,
}

/// The contact id a circle's book gives a member: from their CID, in a
/// range no address-book contact GUID or circle id uses.
pub fn member_contact_id(cid: u64) -> String {
    format!("00000000-0000-0000-0001-{:012x}", cid & 0xffff_ffff_ffff)
}

/// The CID back from [`member_contact_id`].
pub fn member_cid(contact_id: &str) -> Option<u64> {
    let hex = contact_id.strip_prefix("00000000-0000-0000-0001-")?;
    (hex.len() == 12).then(|| u64::from_str_radix(hex, 16).ok())?
}

/// The `Circle` contacts of the owner's book.
pub(super) fn circle_contacts_xml(circles: &[CircleEntry], changed: &str) -> String {
    circles
        .iter()
        .map(|c| {
            let inviter = match (&c.inviter, &c.invite_message) {
                (Some(who), message) => format!(
                    "<InviterEmail>{}</InviterEmail>{}",
                    escape_xml(who),
                    message.as_ref().map(|m| format!("<InviterMessage>{}</InviterMessage>", escape_xml(m))).unwrap_or_default()
                ),
                _ => String::new(),
            };
            format!(
                concat!(
                    "<Contact><contactId>{guid}</contactId><contactInfo><contactType>Circle</contactType><quickName>circle</quickName>",
                    "<passportName>{handle}</passportName><IsPassportNameHidden>false</IsPassportNameHidden><displayName>{name}</displayName>",
                    "<puid>0</puid><CID>{cid}</CID><isMessengerUser>false</isMessengerUser>",
                    "<NetworkInfoList><NetworkInfo><DomainId>1</DomainId><SourceId>WL</SourceId><DomainTag>{guid}</DomainTag><DisplayName>{name}</DisplayName>",
                    "<RelationshipType>5</RelationshipType><RelationshipState>{state}</RelationshipState><RelationshipRole>{role}</RelationshipRole>",
                    "<NDRCount>0</NDRCount>{inviter}<CreateDate>{changed}</CreateDate><LastUpdated>{changed}</LastUpdated></NetworkInfo></NetworkInfoList>",
                    "</contactInfo><propertiesChanged /><fDeleted>false</fDeleted><lastChange>{changed}</lastChange></Contact>"
                ),
                guid = c.id.guid(),
                handle = c.id.handle(),
                name = escape_xml(&c.name),
                cid = c.id.cid(),
                state = c.state.number(),
                role = c.role.number(),
                inviter = inviter,
                changed = escape_xml(changed),
            )
        })
        .collect()
}

/// `<CircleResult>`: the circles and the ticket (the signed ticket's XML,
/// escaped here as the service sent it).
pub(super) fn circle_result_xml(circles: &[CircleEntry], ticket: &str) -> String {
    let infos: String = circles
        .iter()
        .map(|c| {
            format!(
                concat!(
                    "<CircleInverseInfo><Content><Handle><Id>{guid}</Id></Handle><Info><Domain>1</Domain><HostedDomain>live.com</HostedDomain>",
                    "<Type>2</Type><MembershipAccess>0</MembershipAccess><IsPresenceEnabled>true</IsPresenceEnabled>",
                    "<RequestMembershipOption>2</RequestMembershipOption><DisplayName>{name}</DisplayName>",
                    "<ProfileLastUpdated>0001-01-01T00:00:00</ProfileLastUpdated><Changes /><CreateDate>0001-01-01T00:00:00</CreateDate>",
                    "<LastChanged>0001-01-01T00:00:00</LastChanged></Info></Content><PersonalInfo><MembershipInfo><CirclePersonalMembership>",
                    "<Role>{role}</Role><State>{state}</State></CirclePersonalMembership></MembershipInfo><Name>{name}</Name>",
                    "<IsNotMobileVisible>false</IsNotMobileVisible><IsFavorite>false</IsFavorite><IsFamily>false</IsFamily><Changes />",
                    "</PersonalInfo><Deleted>false</Deleted></CircleInverseInfo>"
                ),
                guid = c.id.guid(),
                name = escape_xml(&c.name),
                role = c.role.name(),
                state = c.state.name(),
            )
        })
        .collect();
    let circles = if infos.is_empty() { String::new() } else { format!("<Circles>{infos}</Circles>") };
    format!("<CircleResult>{circles}<CircleTicket>{}</CircleTicket></CircleResult>", escape_xml(ticket))
}

/// Reads the circles and the ticket from an `ABFindContactsPaged` answer
/// of the owner's book (a client's side).
pub fn parse_circle_result(xml: &str) -> Option<(Vec<CircleEntry>, String)> {
    let envelope = Envelope::parse(xml)?;
    let result = envelope.body.find("CircleResult")?;
    let ticket = result.text_at(&["CircleTicket"])?.to_string();
    let mut infos = Vec::new();
    result.find_all("CircleInverseInfo", &mut infos);
    let circles = infos
        .into_iter()
        .filter_map(|i| {
            let id = CircleId::parse_guid(i.text_at(&["Content", "Handle", "Id"])?)?;
            let membership = i.path(&["PersonalInfo", "MembershipInfo", "CirclePersonalMembership"])?;
            let invited = circle_network_info(&envelope.body, &id);
            Some(CircleEntry {
                name: i.text_at(&["Content", "Info", "DisplayName"]).unwrap_or("").to_string(),
                role: CircleRole::from_name(membership.text_at(&["Role"])?)?,
                state: CircleState::from_name(membership.text_at(&["State"])?)?,
                inviter: invited.and_then(|n| n.text_at(&["InviterEmail"])).map(str::to_string),
                invite_message: invited.and_then(|n| n.text_at(&["InviterMessage"])).map(str::to_string),
                id,
            })
        })
        .collect();
    Some((circles, ticket))
}

/// The `NetworkInfo` of the owner's `Circle` contact for `id`.
fn circle_network_info<'a>(body: &'a Element, id: &CircleId) -> Option<&'a Element> {
    let mut contacts = Vec::new();
    body.find_all("Contact", &mut contacts);
    contacts
        .into_iter()
        .find(|c| c.text_at(&["contactId"]).and_then(CircleId::parse_guid).as_ref() == Some(id))
        .and_then(|c| c.path(&["contactInfo", "NetworkInfoList", "NetworkInfo"]))
}

/// The answer to `ABFindContactsPaged` of a circle's own book: its members.
pub fn circle_book_response(circle: &CircleId, members: &[CircleMember], changed: &str) -> String {
    let contacts: String = members
        .iter()
        .map(|m| {
            format!(
                concat!(
                    "<Contact><contactId>{id}</contactId><contactInfo><contactType>{kind}</contactType><quickName>{handle}</quickName>",
                    "<passportName>{handle}</passportName><IsPassportNameHidden>false</IsPassportNameHidden><displayName>{name}</displayName>",
                    "<puid>0</puid><CID>{cid}</CID><isMessengerUser>true</isMessengerUser><NetworkInfoList><NetworkInfo><DomainId>1</DomainId>",
                    "<SourceId>WL</SourceId><RelationshipType>5</RelationshipType><RelationshipState>{state}</RelationshipState>",
                    "<RelationshipRole>{role}</RelationshipRole><NDRCount>0</NDRCount></NetworkInfo></NetworkInfoList></contactInfo>",
                    "<propertiesChanged /><fDeleted>false</fDeleted><lastChange>{changed}</lastChange></Contact>"
                ),
                id = member_contact_id(m.cid),
                kind = if m.state == CircleState::Accepted { "Live" } else { "LivePending" },
                handle = escape_xml(&m.handle),
                name = escape_xml(&m.display_name),
                cid = m.cid,
                state = m.state.number(),
                role = m.role.number(),
                changed = escape_xml(changed),
            )
        })
        .collect();
    soap_answer(&format!(
        concat!(
            r#"<ABFindContactsPagedResponse xmlns="{ns}"><ABFindContactsPagedResult><Contacts>{contacts}</Contacts>"#,
            "<Ab><abId>{guid}</abId><abInfo><ownerPuid>0</ownerPuid><OwnerCID>{cid}</OwnerCID><ownerEmail>{handle}</ownerEmail>",
            "<fDefault>true</fDefault><joinedNamespace>false</joinedNamespace><IsBot>false</IsBot><IsParentManaged>false</IsParentManaged>",
            "<AddressBookType>Group</AddressBookType></abInfo><lastChange>{changed}</lastChange></Ab>",
            "</ABFindContactsPagedResult></ABFindContactsPagedResponse>"
        ),
        ns = NS,
        contacts = contacts,
        guid = circle.guid(),
        cid = circle.cid(),
        handle = circle.handle(),
        changed = escape_xml(changed),
    ))
}

/// Reads a circle's book back: its members (a client's side).
pub fn parse_circle_book_response(xml: &str) -> Option<Vec<CircleMember>> {
    let envelope = Envelope::parse(xml)?;
    let contacts = envelope.body.find("ABFindContactsPagedResult")?.child("Contacts")?;
    Some(
        contacts
            .children_named("Contact")
            .filter_map(|c| {
                let info = c.child("contactInfo")?;
                let network = info.path(&["NetworkInfoList", "NetworkInfo"])?;
                let number = |name: &str| network.text_at(&[name])?.parse::<u8>().ok();
                Some(CircleMember {
                    handle: info.text_at(&["passportName"])?.to_string(),
                    display_name: info.text_at(&["displayName"]).unwrap_or("").to_string(),
                    cid: info.text_at(&["CID"])?.parse().ok()?,
                    role: if number("RelationshipRole")? == CircleRole::Admin.number() {
                        CircleRole::Admin
                    } else {
                        CircleRole::Member
                    },
                    state: if number("RelationshipState")? == CircleState::Accepted.number() {
                        CircleState::Accepted
                    } else {
                        CircleState::WaitingResponse
                    },
                })
            })
            .collect(),
    )
}

/// `CreateCircle`'s answer: the new circle's id.
pub fn create_circle_response(circle: &CircleId) -> String {
    soap_answer(&format!(
        r#"<CreateCircleResponse xmlns="{NS}"><CreateCircleResult><Id>{}</Id></CreateCircleResult></CreateCircleResponse>"#,
        circle.guid()
    ))
}

/// Reads [`create_circle_response`] back.
pub fn parse_create_circle_response(xml: &str) -> Option<CircleId> {
    let envelope = Envelope::parse(xml)?;
    CircleId::parse_guid(envelope.body.find("CreateCircleResult")?.text_at(&["Id"])?)
}

/// `CreateContact`'s answer in a circle's book: the invited member.
pub fn create_contact_response(handle: &str, cid: u64) -> String {
    soap_answer(&format!(
        concat!(
            r#"<CreateContactResponse xmlns="{ns}"><CreateContactResult><contactId>{id}</contactId><contactInfo>"#,
            "<contactType>LivePending</contactType><quickName>{handle}</quickName><passportName>{handle}</passportName>",
            "<displayName>{handle}</displayName><puid>0</puid><CID>{cid}</CID><isMessengerUser>false</isMessengerUser></contactInfo>",
            "<propertiesChanged /><fDeleted>false</fDeleted></CreateContactResult></CreateContactResponse>"
        ),
        ns = NS,
        id = member_contact_id(cid),
        handle = escape_xml(handle),
        cid = cid,
    ))
}

/// `ManageWLConnection`'s answer: the contact the connection is with.
pub fn manage_connection_response(contact_id: &str) -> String {
    soap_answer(&format!(
        r#"<ManageWLConnectionResponse xmlns="{NS}"><ManageWLConnectionResult><clientErrorData /><contactId>{}</contactId></ManageWLConnectionResult></ManageWLConnectionResponse>"#,
        escape_xml(contact_id)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn circle() -> CircleId {
        CircleId::from_hex("00000000002a").unwrap()
    }

    #[test]
    fn circle_operations_read_back_as_sent() {
        let parse = |xml: &str| Operation::parse(&crate::addressbook::parse_request(xml).unwrap().operation);
        for op in [
            Operation::CreateCircle { name: "Book club & co".into() },
            Operation::FindCircle { circle: circle() },
            Operation::InviteToCircle { circle: circle(), invitee: Invitee::Handle("c@x.com".into()), message: None },
            Operation::InviteToCircle {
                circle: circle(),
                invitee: Invitee::ContactId(member_contact_id(7)),
                message: Some("come <in>".into()),
            },
            Operation::AnswerCircle { circle: circle(), accept: true },
            Operation::AnswerCircle { circle: circle(), accept: false },
            Operation::LeaveCircle { circle: circle() },
        ] {
            assert_eq!(parse(&crate::addressbook::request("t", &op.to_xml())), Ok(op.clone()), "{}", op.name());
        }
        let parse = |op: &str| parse(&crate::addressbook::request("t", op));
        let ns = NS;
        // A circle operation in a book that is no circle's.
        assert_eq!(
            parse(&format!(
                r#"<BreakConnection xmlns="{ns}"><abHandle><ABId>11111111-0000-0000-0000-000000000000</ABId></abHandle></BreakConnection>"#
            )),
            Err(Unreadable::OtherAddressBook)
        );
        let long = "x".repeat(MAX_CIRCLE_NAME + 1);
        assert!(parse(&format!(r#"<CreateCircle xmlns="{ns}"><properties><DisplayName>{long}</DisplayName></properties></CreateCircle>"#)).is_err());
    }

    #[test]
    fn a_members_contact_id_names_their_cid() {
        assert_eq!(member_cid(&member_contact_id(77)), Some(77));
        assert_eq!(member_cid(&circle().guid()), None);
    }

    #[test]
    fn the_circle_book_reads_back() {
        let members = vec![
            CircleMember {
                handle: "a@x.com".into(),
                display_name: "A & co".into(),
                cid: 1,
                role: CircleRole::Admin,
                state: CircleState::Accepted,
            },
            CircleMember {
                handle: "b@x.com".into(),
                display_name: "B".into(),
                cid: 2,
                role: CircleRole::Member,
                state: CircleState::WaitingResponse,
            },
        ];
        let xml = circle_book_response(&circle(), &members, "2026-01-01T00:00:00Z");
        assert_eq!(parse_circle_book_response(&xml), Some(members));
        assert_eq!(parse_create_circle_response(&create_circle_response(&circle())), Some(circle()));
    }
}
