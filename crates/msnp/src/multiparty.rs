//! Group conversations of MSNP21 (network 10, `10:<guid>@live.com`): made
//! with a `PUT` to the empty GUID (the `PUT ... OK` names the new one),
//! joined and invited to with `PUT`s of `circles+xml` rosters, left with a
//! `DEL` of one's roster entry, spoken in with `SDG` to the group. The
//! documents are the circles' (MSNP18); only the address differs.

use crate::circle::{
    CircleDocument, NotifType, Said, SdgStyle, left_notification_from, roster_notification, said_message,
};
use crate::routed::{Headers, RoutedAddress, RoutedMessage};

/// The network id of group conversations.
pub const GROUP_NETWORK: u32 = 10;
/// The address a client creates a group conversation at.
pub const NEW_GROUP: &str = "00000000-0000-0000-0000-000000000000@live.com";

/// A group conversation's id: its GUID, lowercase.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct GroupId(String);

impl GroupId {
    /// A fresh id from 16 random bytes.
    pub fn from_random(b: [u8; 16]) -> GroupId {
        let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
        GroupId(format!("{}-{}-{}-{}-{}", &hex[..8], &hex[8..12], &hex[12..16], &hex[16..20], &hex[20..]))
    }

    /// The group a routed address names (`10:<guid>@live.com`), if one;
    /// the empty GUID (the address to make one at) is none.
    pub fn of_address(address: &RoutedAddress) -> Option<GroupId> {
        if address.network != GROUP_NETWORK || address.name.eq_ignore_ascii_case(NEW_GROUP) {
            return None;
        }
        GroupId::of_guid(address.name.strip_suffix("@live.com")?)
    }

    /// The group a bare GUID names (`xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx`).
    pub fn of_guid(guid: &str) -> Option<GroupId> {
        let guid = guid.to_ascii_lowercase();
        let shape = guid.len() == 36
            && guid
                .char_indices()
                .all(|(i, c)| if [8, 13, 18, 23].contains(&i) { c == '-' } else { c.is_ascii_hexdigit() });
        shape.then_some(GroupId(guid))
    }

    /// `10:<guid>@live.com`.
    pub fn address(&self) -> String {
        format!("{GROUP_NETWORK}:{}@live.com", self.0)
    }

    pub fn guid(&self) -> &str {
        &self.0
    }
}

/// Whether a routed address is the one groups are made at.
pub fn is_new_group(address: &RoutedAddress) -> bool {
    address.network == GROUP_NETWORK && address.name.eq_ignore_ascii_case(NEW_GROUP)
}

/// The payload of the `PUT ... OK` that answers a group's making: from the
/// new group, to its maker.
pub fn made(to: &str, group: &GroupId) -> RoutedMessage {
    RoutedMessage {
        routing: Headers::default().with("Routing", "1.0").with("To", format!("1:{to}")).with("From", group.address()),
        reliability: Headers::default().with("Reliability", "1.0"),
        content: Headers::default()
            .with("Publication", "1.0")
            .with("Uri", "/circle")
            .with("Content-Type", "application/multiparty+xml")
            .with("Content-Length", "0"),
        body: Default::default(),
    }
}

/// The `NFY PUT` that tells `to` they were invited (empty, `Full`), or who
/// is in the group now (its roster, `Partial`).
pub fn notification(to: &str, group: &GroupId, roster: Option<&[String]>) -> RoutedMessage {
    match roster {
        None => roster_notification(to, group.address(), NotifType::Full, None),
        Some(members) => {
            let doc = CircleDocument { roster: members.to_vec(), presence: None };
            roster_notification(to, group.address(), NotifType::Partial, Some(&doc))
        }
    }
}

/// The `NFY DEL` that tells `to` that `who` left the group.
pub fn left(to: &str, group: &GroupId, who: &str) -> RoutedMessage {
    left_notification_from(to, group.address(), who)
}

/// The `SDG` that carries `said` in the group from one endpoint of `from`.
pub fn message(group: &GroupId, from: &str, from_endpoint: Option<&str>, said: &Said) -> RoutedMessage {
    said_message(&format!("{};path=IM", group.address()), from, from_endpoint, said, SdgStyle::Direct)
}

/// The `PUT` payload with which `handle` (on `machine`) joins a group.
pub fn join(handle: &str, machine: &crate::endpoint::MachineGuid, group: &GroupId) -> RoutedMessage {
    let body = CircleDocument { roster: vec![handle.to_string()], presence: None }.to_xml();
    RoutedMessage {
        routing: Headers::default()
            .with("Routing", "1.0")
            .with("To", group.address())
            .with("From", format!("1:{handle};epid={}", machine.as_str())),
        reliability: Headers::default().with("Reliability", "1.0"),
        content: Headers::default()
            .with("Publication", "1.0")
            .with("Uri", "/circle")
            .with("Content-Type", crate::circle::CIRCLES_XML)
            .with("Content-Length", body.len().to_string()),
        body: body.into_bytes().into(),
    }
}

/// The handles a `PUT` to a group names in its roster.
pub fn roster_of(message: &RoutedMessage) -> Option<Vec<String>> {
    CircleDocument::parse(&message.body).map(|d| d.roster)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_are_named_by_their_address_and_the_empty_one_makes_them() {
        let g = GroupId::from_random([0xab; 16]);
        let address = RoutedAddress::parse(&g.address()).unwrap();
        assert_eq!(GroupId::of_address(&address), Some(g.clone()));
        let new = RoutedAddress::parse(&format!("10:{NEW_GROUP}")).unwrap();
        assert!(is_new_group(&new) && GroupId::of_address(&new).is_none());
        assert_eq!(GroupId::of_address(&RoutedAddress::parse("10:nope@live.com").unwrap()), None);
        assert_eq!(GroupId::of_address(&RoutedAddress::parse(&format!("9:{}@live.com", g.guid())).unwrap()), None);
        let answer = made("alice@example.com", &g);
        assert_eq!(GroupId::of_address(&answer.from().unwrap()), Some(g.clone()));
        let roster = notification("bob@example.com", &g, Some(&["alice@example.com".to_string()]));
        assert_eq!(roster_of(&roster), Some(vec!["alice@example.com".to_string()]));
    }
}
