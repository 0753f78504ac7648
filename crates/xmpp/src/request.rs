//! What a signed-in client sends, typed: one enum for the queries Mariposa
//! answers, so that the front's dispatch is one exhaustive `match`.

use minidom::Element;
use xmpp_parsers::blocking::{Block, BlocklistRequest, Unblock};
use xmpp_parsers::disco::{DiscoInfoQuery, DiscoItemsQuery};
use xmpp_parsers::iq::Iq;
use xmpp_parsers::jid::Jid;
use xmpp_parsers::message::Message;
use xmpp_parsers::presence::Presence;
use xmpp_parsers::roster::Roster;

use crate::{NS_BIND, NS_CLIENT, NS_SESSION};

/// One stanza from a client.
#[derive(Debug, Clone)]
pub enum ClientStanza {
    /// A request (`get` or `set`) to answer, by `id`.
    Query {
        id: String,
        to: Option<Jid>,
        query: Query,
    },
    /// An answer (`result` or `error`) to a request of ours (our pings).
    Answer {
        id: String,
    },
    Message(Message),
    Presence(Presence),
}

/// The requests Mariposa knows; anything else is `Unsupported` and is
/// answered `service-unavailable`.
#[derive(Debug, Clone)]
pub enum Query {
    /// Resource binding (RFC 6120 section 7), with the resource asked for.
    Bind {
        resource: Option<String>,
    },
    /// The old session establishment, answered for the clients that still
    /// send it (RFC 3921 section 3, optional since RFC 6121).
    Session,
    RosterGet {
        ver: Option<String>,
    },
    /// One item changed or removed (`subscription='remove'`).
    RosterSet(Box<xmpp_parsers::roster::Item>),
    DiscoInfo {
        node: Option<String>,
    },
    DiscoItems {
        node: Option<String>,
    },
    /// XEP-0199.
    Ping,
    /// XEP-0054, of `to` (or oneself).
    VCardGet,
    /// XEP-0191.
    BlocklistGet,
    Block(Vec<Jid>),
    Unblock(Vec<Jid>),
    /// XEP-0280.
    Carbons {
        enable: bool,
    },
    Unsupported,
    /// A request that is not what its namespace defines: `bad-request`.
    Malformed,
}

/// Why a stanza could not be read at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unreadable {
    /// Not a stanza of the client namespace.
    NotAStanza,
    /// A stanza whose required parts are wrong (an `iq` without an id).
    BadFormat,
}

const NS_PING: &str = "urn:xmpp:ping";
const NS_VCARD: &str = "vcard-temp";
const NS_CARBONS: &str = "urn:xmpp:carbons:2";

impl ClientStanza {
    pub fn read(element: Element) -> Result<ClientStanza, Unreadable> {
        if element.ns() != NS_CLIENT {
            return Err(Unreadable::NotAStanza);
        }
        match element.name() {
            "message" => Message::try_from(element).map(ClientStanza::Message).map_err(|_| Unreadable::BadFormat),
            "presence" => Presence::try_from(element).map(ClientStanza::Presence).map_err(|_| Unreadable::BadFormat),
            "iq" => read_iq(element),
            _ => Err(Unreadable::NotAStanza),
        }
    }
}

fn read_iq(element: Element) -> Result<ClientStanza, Unreadable> {
    // A payload xmpp-parsers cannot take (two children, say) still has an
    // id to answer `bad-request` to.
    let id = element.attr("id").map(str::to_string);
    let iq = match Iq::try_from(element) {
        Ok(iq) => iq,
        Err(_) => {
            let id = id.ok_or(Unreadable::BadFormat)?;
            return Ok(ClientStanza::Query { id, to: None, query: Query::Malformed });
        }
    };
    let (id, to, payload, set) = match iq {
        Iq::Get { id, to, payload, .. } => (id, to, payload, false),
        Iq::Set { id, to, payload, .. } => (id, to, payload, true),
        Iq::Result { id, .. } | Iq::Error { id, .. } => return Ok(ClientStanza::Answer { id }),
    };
    let query = query_of(payload, set);
    Ok(ClientStanza::Query { id, to, query })
}

fn query_of(payload: Element, set: bool) -> Query {
    let ok = |q: Option<Query>| q.unwrap_or(Query::Malformed);
    match (payload.ns().as_str(), payload.name(), set) {
        (NS_BIND, "bind", true) => {
            ok(xmpp_parsers::bind::BindQuery::try_from(payload).ok().map(|b| Query::Bind { resource: b.resource }))
        }
        (NS_SESSION, "session", true) => Query::Session,
        (xmpp_parsers::ns::ROSTER, "query", false) => {
            ok(Roster::try_from(payload).ok().map(|r| Query::RosterGet { ver: r.ver }))
        }
        (xmpp_parsers::ns::ROSTER, "query", true) => {
            // A set carries exactly one item (RFC 6121 section 2.3.1).
            ok(Roster::try_from(payload).ok().filter(|r| r.items.len() == 1).map(|mut r| {
                let item = r.items.remove(0);
                Query::RosterSet(Box::new(item))
            }))
        }
        (xmpp_parsers::ns::DISCO_INFO, "query", false) => {
            ok(DiscoInfoQuery::try_from(payload).ok().map(|q| Query::DiscoInfo { node: q.node }))
        }
        (xmpp_parsers::ns::DISCO_ITEMS, "query", false) => {
            ok(DiscoItemsQuery::try_from(payload).ok().map(|q| Query::DiscoItems { node: q.node }))
        }
        (NS_PING, "ping", false) => Query::Ping,
        (NS_VCARD, "vCard", false) => Query::VCardGet,
        (xmpp_parsers::ns::BLOCKING, "blocklist", false) => {
            ok(BlocklistRequest::try_from(payload).ok().map(|_| Query::BlocklistGet))
        }
        (xmpp_parsers::ns::BLOCKING, "block", true) => {
            ok(Block::try_from(payload).ok().filter(|b| !b.items.is_empty()).map(|b| Query::Block(b.items)))
        }
        (xmpp_parsers::ns::BLOCKING, "unblock", true) => {
            ok(Unblock::try_from(payload).ok().map(|b| Query::Unblock(b.items)))
        }
        (NS_CARBONS, "enable", true) => Query::Carbons { enable: true },
        (NS_CARBONS, "disable", true) => Query::Carbons { enable: false },
        _ => Query::Unsupported,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(xml: &str) -> Element {
        let name_end = 1 + xml[1..].find([' ', '/', '>']).unwrap();
        let wrapped = format!("{} xmlns='jabber:client'{}", &xml[..name_end], &xml[name_end..]);
        wrapped.parse().unwrap_or_else(|e| panic!("{wrapped}: {e}"))
    }

    #[test]
    fn queries_are_told_apart() {
        let cases = [
            (
                "<iq type='set' id='1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>home</resource></bind></iq>",
                "Bind",
            ),
            ("<iq type='get' id='2'><query xmlns='jabber:iq:roster'/></iq>", "RosterGet"),
            ("<iq type='get' id='3'><ping xmlns='urn:xmpp:ping'/></iq>", "Ping"),
            ("<iq type='get' id='4'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>", "DiscoInfo"),
            ("<iq type='get' id='5'><unknown xmlns='urn:example'/></iq>", "Unsupported"),
            ("<iq type='set' id='6'><query xmlns='jabber:iq:roster'/></iq>", "Malformed"),
            ("<iq type='set' id='7'><block xmlns='urn:xmpp:blocking'><item jid='x@y.z'/></block></iq>", "Block"),
        ];
        for (xml, want) in cases {
            let ClientStanza::Query { query, .. } = ClientStanza::read(parse(xml)).unwrap() else { panic!("{xml}") };
            assert!(format!("{query:?}").starts_with(want), "{xml}: {query:?}");
        }
        let ClientStanza::Query { query: Query::Bind { resource }, .. } =
            ClientStanza::read(parse(cases[0].0)).unwrap()
        else {
            panic!()
        };
        assert_eq!(resource.as_deref(), Some("home"));
        assert!(matches!(ClientStanza::read(parse("<iq type='result' id='9'/>")), Ok(ClientStanza::Answer { .. })));
        assert_eq!(ClientStanza::read(parse("<iq type='get'/>")).unwrap_err(), Unreadable::BadFormat);
        assert_eq!(ClientStanza::read(parse("<foo/>")).unwrap_err(), Unreadable::NotAStanza);
    }
}
