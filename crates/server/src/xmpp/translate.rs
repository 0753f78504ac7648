//! The mapping between XMPP's stanzas and the domain's states, lists and
//! words; docs/PROTOCOL-SUPPORT.md has the presence table.

use backend::lists::{Group, ListEntry};
use msnp::circle::Said;
use msnp::{ListKind, OnlineState};
use xmpp::Element;
use xmpp::NS_CLIENT;
use xmpp::write::name;
use xmpp_parsers::presence::Show;

pub const NS_CHATSTATES: &str = "http://jabber.org/protocol/chatstates";
pub const NS_ATTENTION: &str = "urn:xmpp:attention:0";
pub const NS_CARBONS: &str = "urn:xmpp:carbons:2";
pub const NS_FORWARD: &str = "urn:xmpp:forward:0";
pub const NS_ROSTER: &str = "jabber:iq:roster";
pub const NS_BLOCKING: &str = "urn:xmpp:blocking";
pub const NS_VCARD: &str = "vcard-temp";
pub const NS_PING: &str = "urn:xmpp:ping";
pub const NS_DISCO_INFO: &str = "http://jabber.org/protocol/disco#info";
pub const NS_DISCO_ITEMS: &str = "http://jabber.org/protocol/disco#items";
pub const NS_NICK: &str = "http://jabber.org/protocol/nick";
/// The node our entity capabilities name.
pub const CAPS_NODE: &str = "https://mariposa.invalid/xmpp";

/// What disco#info lists: exactly what this front answers.
pub const FEATURES: &[&str] =
    &[NS_DISCO_INFO, NS_DISCO_ITEMS, NS_PING, NS_BLOCKING, NS_VCARD, NS_CARBONS, NS_CHATSTATES, NS_ATTENTION];
// The MUC service (`conference.<domain>`) answers disco#info of its own.

/// The XMPP `show` for an MSN state; `None` is plain available.
pub fn show_of(state: OnlineState) -> Option<&'static str> {
    match state {
        OnlineState::Online | OnlineState::Hidden | OnlineState::Offline => None,
        OnlineState::Away | OnlineState::Idle => Some("away"),
        OnlineState::BeRightBack | OnlineState::OutToLunch => Some("xa"),
        OnlineState::Busy | OnlineState::OnThePhone => Some("dnd"),
    }
}

/// The MSN state for an XMPP availability.
pub fn state_of(show: &Option<Show>) -> OnlineState {
    match show {
        None | Some(Show::Chat) => OnlineState::Online,
        Some(Show::Away) => OnlineState::Away,
        Some(Show::Xa) => OnlineState::BeRightBack,
        Some(Show::Dnd) => OnlineState::Busy,
    }
}

/// A contact's presence as its watcher's resource receives it.
pub fn presence(from: &str, to: &str, state: OnlineState, status: Option<&str>, nick: Option<&str>) -> Element {
    let mut p = Element::builder("presence", NS_CLIENT).attr(name("from"), from).attr(name("to"), to);
    if let Some(show) = show_of(state) {
        p = p.append(Element::builder("show", NS_CLIENT).append(show).build());
    }
    if let Some(status) = status.filter(|s| !s.is_empty()) {
        p = p.append(Element::builder("status", NS_CLIENT).append(status).build());
    }
    if let Some(nick) = nick {
        p = p.append(Element::builder("nick", NS_NICK).append(nick).build());
    }
    p.build()
}

/// A presence without availability: `unavailable`, `subscribe`, ...
pub fn presence_of_type(from: &str, to: &str, kind: &str) -> Element {
    Element::builder("presence", NS_CLIENT)
        .attr(name("from"), from)
        .attr(name("to"), to)
        .attr(name("type"), kind)
        .build()
}

/// One roster item: a forward-list entry, with its groups, or a removal.
pub fn roster_item(entry: &ListEntry, groups: &[Group]) -> Element {
    let subscription = match (entry.lists.contains(ListKind::Forward), entry.lists.contains(ListKind::Reverse)) {
        (true, true) => "both",
        (true, false) => "to",
        (false, true) => "from",
        (false, false) => "none",
    };
    let shown = entry.nickname.as_deref().unwrap_or(&entry.friendly);
    let mut item = Element::builder("item", NS_ROSTER)
        .attr(name("jid"), entry.handle.to_ascii_lowercase())
        .attr(name("subscription"), subscription);
    if !shown.is_empty() {
        item = item.attr(name("name"), shown);
    }
    for id in &entry.groups {
        if let Some(g) = groups.iter().find(|g| g.id == *id) {
            item = item.append(Element::builder("group", NS_ROSTER).append(g.name.as_str()).build());
        }
    }
    item.build()
}

pub fn removed_item(handle: &str) -> Element {
    Element::builder("item", NS_ROSTER)
        .attr(name("jid"), handle.to_ascii_lowercase())
        .attr(name("subscription"), "remove")
        .build()
}

pub fn roster(items: Vec<Element>) -> Element {
    Element::builder("query", NS_ROSTER).append_all(items).build()
}

/// A roster push (RFC 6121 section 2.1.6) to `to`.
pub fn roster_push(to: &str, item: Element) -> Element {
    Element::builder("iq", NS_CLIENT)
        .attr(name("type"), "set")
        .attr(name("id"), format!("push-{}", backend::secrets::random_token(8)))
        .attr(name("to"), to)
        .append(roster(vec![item]))
        .build()
}

/// What an incoming chat message says: text (with typing notices the
/// client adds stripped), else a chat state or an attention request.
pub fn said_in(message: &xmpp_parsers::message::Message) -> Option<Said> {
    if let Some((_, body)) = message.get_best_body(vec![]) {
        let text = body.trim_end_matches('\0');
        if !text.is_empty() && text.len() <= msnp::circle::MAX_TEXT {
            return Some(Said::Text { text: text.to_string(), format: None });
        }
        return None;
    }
    let has = |n: &str, ns: &str| message.payloads.iter().any(|p| p.is(n, ns));
    if has("attention", NS_ATTENTION) {
        return Some(Said::Nudge);
    }
    if has("composing", NS_CHATSTATES) {
        return Some(Said::Typing);
    }
    None
}

/// A message of `kind` (`chat`, `groupchat`) carrying `said`, from `from` to `to`.
pub fn message(from: &str, to: &str, said: &Said, kind: &'static str) -> Element {
    let m = Element::builder("message", NS_CLIENT)
        .attr(name("from"), from)
        .attr(name("to"), to)
        .attr(name("type"), kind)
        .attr(name("id"), backend::secrets::random_token(12));
    let state = |s: &str| Element::builder(s, NS_CHATSTATES).build();
    match said {
        Said::Text { text, .. } => {
            m.append(Element::builder("body", NS_CLIENT).append(text.as_str()).build()).append(state("active")).build()
        }
        Said::Typing => m.append(state("composing")).build(),
        Said::Nudge => m
            .append(Element::builder("attention", NS_ATTENTION).build())
            .append(Element::builder("body", NS_CLIENT).append("(nudge)").build())
            .build(),
    }
}

/// A copy of what one of the account's resources sent, for another that
/// asked for carbons (XEP-0280).
pub fn sent_carbon(own_bare: &str, to: &str, sent: Element) -> Element {
    let forwarded = Element::builder("forwarded", NS_FORWARD).append(sent).build();
    Element::builder("message", NS_CLIENT)
        .attr(name("from"), own_bare)
        .attr(name("to"), to)
        .attr(name("type"), "chat")
        .append(Element::builder("sent", NS_CARBONS).append(forwarded).build())
        .build()
}

/// When a message kept offline was sent (XEP-0203).
pub fn delay(server: &str, sent_at_ms: i64) -> Element {
    let stamp = time::OffsetDateTime::from_unix_timestamp(sent_at_ms / 1000)
        .ok()
        .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
        .unwrap_or_default();
    Element::builder("delay", "urn:xmpp:delay").attr(name("from"), server).attr(name("stamp"), stamp).build()
}

/// A vCard (XEP-0054) with the name a contact goes by.
pub fn vcard(friendly: &str) -> Element {
    Element::builder("vCard", NS_VCARD)
        .append(Element::builder("FN", NS_VCARD).append(friendly).build())
        .append(Element::builder("NICKNAME", NS_VCARD).append(friendly).build())
        .build()
}

/// The server's disco#info (XEP-0030): an IM server and its features.
pub fn disco_info(node: Option<&str>) -> Element {
    let mut q = Element::builder("query", NS_DISCO_INFO);
    if let Some(node) = node {
        q = q.attr(name("node"), node);
    }
    q.append(
        Element::builder("identity", NS_DISCO_INFO)
            .attr(name("category"), "server")
            .attr(name("type"), "im")
            .attr(name("name"), "Mariposa")
            .build(),
    )
    .append_all(FEATURES.iter().map(|f| Element::builder("feature", NS_DISCO_INFO).attr(name("var"), *f).build()))
    .build()
}

/// The entity capabilities (XEP-0115) the server's features hash to.
pub fn caps_ver() -> String {
    use base64::Engine;
    use sha1::Digest;
    let mut features: Vec<&str> = FEATURES.to_vec();
    features.sort();
    let mut s = String::from("server/im//Mariposa<");
    for f in features {
        s.push_str(f);
        s.push('<');
    }
    base64::engine::general_purpose::STANDARD.encode(sha1::Sha1::digest(s.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_state_maps_back_to_one_of_its_own_kind() {
        for state in [OnlineState::Online, OnlineState::Away, OnlineState::BeRightBack, OnlineState::Busy] {
            let show = show_of(state).map(|s| match s {
                "away" => Show::Away,
                "xa" => Show::Xa,
                _ => Show::Dnd,
            });
            assert_eq!(state_of(&show), state);
        }
        assert_eq!(show_of(OnlineState::Idle), Some("away"));
        assert_eq!(show_of(OnlineState::OnThePhone), Some("dnd"));
        assert_eq!(show_of(OnlineState::OutToLunch), Some("xa"));
    }
}
