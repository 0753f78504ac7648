//! The address book and membership services of MSNP13+ clients
//! (`abservice.asmx`, `SharingService.asmx`): a thin front that reads the
//! SOAP request, checks its ticket and answers from the same lists that
//! MSNP2-12 clients see through `SYN` (one store of truth).

use std::sync::Arc;

use backend::lists::ListSnapshot;
use backend::presence::OnlineUser;
use msnp::ListKind;
use msnp::addressbook::{self, AddressBook, Contact, Group, Member, Role, ServiceRequest};
use msnp::soap::escape_xml;

use crate::shared::Shared;

/// A SOAP answer: HTTP status and the envelope.
pub struct Answer {
    pub status: u16,
    pub body: String,
}

fn fault(code: &str, text: &str) -> Answer {
    Answer {
        status: 500,
        body: format!(
            concat!(
                r#"<?xml version="1.0" encoding="utf-8"?><soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/">"#,
                "<soap:Body><soap:Fault><faultcode>{}</faultcode><faultstring>{}</faultstring>",
                r#"<detail><errorcode xmlns="http://www.msn.com/webservices/AddressBook">{}</errorcode></detail></soap:Fault></soap:Body></soap:Envelope>"#
            ),
            "soap:Client",
            escape_xml(text),
            escape_xml(code)
        ),
    }
}

/// Handles one request to either service.
pub async fn serve(shared: &Arc<Shared>, body: &[u8]) -> Answer {
    let Some(ServiceRequest { ticket, operation }) =
        std::str::from_utf8(body).ok().and_then(addressbook::parse_request)
    else {
        return fault("BadRequest", "Malformed request");
    };
    // The ticket RST issued for the service: its owner, signed in here.
    let Some(user) = shared.backend.web_user(&ticket).await else {
        return fault("BadContextToken", "Invalid or expired ticket");
    };
    let snapshot = match shared.backend.list_snapshot(&user).await {
        Ok(s) => s,
        Err(_) => return fault("InternalError", "Try again later"),
    };
    match operation.name.as_str() {
        "FindMembership" => {
            Answer { status: 200, body: addressbook::find_membership_response(&roles(&snapshot), &changed(&snapshot)) }
        }
        "ABFindAll" => Answer { status: 200, body: addressbook::ab_find_all_response(&book(&user, &snapshot)) },
        _ => fault("NotImplemented", "Unknown operation"),
    }
}

fn changed(s: &ListSnapshot) -> String {
    msnp::time::iso8601(s.modified_ms / 1000)
}

/// The membership roles: the allow, block, reverse and pending lists.
fn roles(s: &ListSnapshot) -> Vec<(Role, Vec<Member>)> {
    let changed = changed(s);
    [
        (Role::Allow, ListKind::Allow),
        (Role::Block, ListKind::Block),
        (Role::Reverse, ListKind::Reverse),
        (Role::Pending, ListKind::Pending),
    ]
    .into_iter()
    .map(|(role, list)| {
        let members = s
            .list(list)
            .map(|e| Member {
                id: e.contact_id as u64,
                handle: e.handle.clone(),
                display_name: e.friendly.clone(),
                changed: changed.clone(),
            })
            .collect();
        (role, members)
    })
    .collect()
}

/// The address book: my own contact, then the forward list with groups
/// and the names I gave.
fn book(user: &OnlineUser, s: &ListSnapshot) -> AddressBook {
    let changed = changed(s);
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
        changed: changed.clone(),
    };
    let contacts = s.list(ListKind::Forward).map(|e| Contact {
        guid: e.guid.clone(),
        handle: e.handle.clone(),
        display_name: e.friendly.clone(),
        is_me: false,
        messenger_user: true,
        cid: e.contact_id as u64,
        group_guids: e.groups.iter().filter_map(group_guid).collect(),
        nickname: e.nickname.clone(),
        changed: changed.clone(),
    });
    AddressBook {
        owner_handle: user.handle.clone(),
        owner_cid: user.account_id as u64,
        groups: s
            .groups
            .iter()
            .map(|g| Group { guid: g.guid.clone(), name: g.name.clone(), changed: changed.clone() })
            .collect(),
        contacts: std::iter::once(me).chain(contacts).collect(),
        changed,
    }
}
