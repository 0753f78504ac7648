//! Group conversations as multi-user rooms (XEP-0045): the domain's group
//! chats (MSNP21's `10:` groups, and switchboard conversations of three or
//! more that a bridge shows as one) are rooms at `conference.<domain>`.
//!
//! A room made on the MSN side is named by its group's GUID; one a Jabber
//! user makes by joining a new name keeps that name for this session (the
//! others see the GUID). Every occupant's nickname is its handle, so that
//! names never clash and each occupant is its account; a client asking for
//! another nickname is told of the change (status 210).

use msnp::circle::Said;
use msnp::multiparty::GroupId;
use xmpp::write::{self, StanzaCondition, name};
use xmpp::{Element, NS_CLIENT};
use xmpp_parsers::message::{Message, MessageType};
use xmpp_parsers::presence::{Presence, Type as PresenceType};

use super::session::{Flow, Session};
use super::translate;
use super::{Tls, Wire};

pub(super) const NS_MUC: &str = "http://jabber.org/protocol/muc";
pub(super) const NS_MUC_USER: &str = "http://jabber.org/protocol/muc#user";
impl Session {
    fn room_jid(&self, room: &str) -> String {
        format!("{room}@{}", self.muc_host)
    }

    /// Presence to a room: joining (or making) it, or leaving.
    pub(super) async fn room_presence(&mut self, p: Presence, wire: &mut Wire<Tls>) -> Flow {
        let Some(to) = p.to.clone() else { return Flow::Continue };
        let Some(room) = to.node().map(|n| n.as_str().to_ascii_lowercase()) else { return Flow::Continue };
        let nick = to.resource().map(|r| r.as_str().to_string());
        let backend = self.shared.backend.clone();
        match p.type_ {
            PresenceType::None => {
                let group = match self.rooms.group_of(&room) {
                    Some(group) => group,
                    None => match backend.create_group_chat(&self.user) {
                        Ok(group) => group,
                        Err(_) => return self.room_error(&room, StanzaCondition::ResourceConstraint, wire).await,
                    },
                };
                let Some(r) = self.rooms.room(&group) else {
                    return self.room_error(&room, StanzaCondition::ResourceConstraint, wire).await;
                };
                r.name = room.clone();
                r.joined = true;
                r.shown.clear();
                r.asked_nick = nick.filter(|n| !n.eq_ignore_ascii_case(&self.user.handle));
                // The roster that follows shows every occupant.
                if let Err(e) = backend.join_group_chat(&self.user, &group).await {
                    self.rooms.0.remove(&group);
                    let condition = match e {
                        msnp::ErrorCode::InvalidCircleMembership => StanzaCondition::RegistrationRequired,
                        _ => StanzaCondition::ServiceUnavailable,
                    };
                    return self.room_error(&room, condition, wire).await;
                }
                Flow::Continue
            }
            PresenceType::Unavailable => {
                let Some(group) = self.rooms.group_of(&room) else { return Flow::Continue };
                let _ = backend.leave_group_chat(&self.user, &group).await;
                self.rooms.0.remove(&group);
                let me = self.user.handle.to_ascii_lowercase();
                let gone = occupant(&self.room_jid(&room), &me, &self.full, true, &[110]);
                self.send(wire, gone).await
            }
            _ => Flow::Continue,
        }
    }

    async fn room_error(&self, room: &str, condition: StanzaCondition, wire: &mut Wire<Tls>) -> Flow {
        let from = self.room_jid(room);
        self.send(wire, write::stanza_error("presence", None, Some(&from), &self.full, condition)).await
    }

    /// A message to a room: said in the group, or invitations.
    pub(super) async fn room_message(&mut self, m: Message, wire: &mut Wire<Tls>) -> Flow {
        let Some(room) = m.to.as_ref().and_then(|t| t.node()).map(|n| n.as_str().to_ascii_lowercase()) else {
            return Flow::Continue;
        };
        let Some(group) = self.rooms.group_of(&room) else {
            let from = self.room_jid(&room);
            let error = write::stanza_error("message", None, Some(&from), &self.full, StanzaCondition::ItemNotFound);
            return self.send(wire, error).await;
        };
        let backend = self.shared.backend.clone();
        let invited: Vec<String> = m
            .payloads
            .iter()
            .filter(|p| p.is("x", NS_MUC_USER))
            .flat_map(|x| x.children().filter(|c| c.is("invite", NS_MUC_USER)))
            .filter_map(|i| i.attr("to").map(|t| t.split('/').next().unwrap_or(t).to_string()))
            .take(8)
            .collect();
        for handle in invited {
            if let Err(e) = backend.invite_to_group_chat(&self.user, &group, &handle).await {
                let from = self.room_jid(&room);
                let error =
                    write::stanza_error("message", None, Some(&from), &self.full, super::session::condition_of(e));
                if let Flow::End(end) = self.send(wire, error).await {
                    return Flow::End(end);
                }
            }
        }
        if m.type_ != MessageType::Groupchat {
            return Flow::Continue;
        }
        let Some(said) = translate::said_in(&m) else { return Flow::Continue };
        match backend.say_in_group_chat(&self.user, &group, said).await {
            Ok(()) => Flow::Continue,
            Err(e) => {
                let from = self.room_jid(&room);
                let id = m.id.as_ref().map(|i| i.0.clone());
                let condition = super::session::condition_of(e);
                self.send(wire, write::stanza_error("message", id.as_deref(), Some(&from), &self.full, condition)).await
            }
        }
    }

    /// Invited into a group: a mediated invitation from its room.
    pub(super) async fn invited(&mut self, group: GroupId, wire: &mut Wire<Tls>) -> Flow {
        let muc_host = self.muc_host.clone();
        let Some(room) = self.rooms.room(&group) else { return Flow::Continue };
        let jid = format!("{}@{muc_host}", room.name);
        let invitation = Element::builder("message", NS_CLIENT)
            .attr(name("from"), jid.as_str())
            .attr(name("to"), self.full.as_str())
            .append(Element::builder("x", NS_MUC_USER).append(Element::builder("invite", NS_MUC_USER).build()).build())
            .append(Element::builder("body", NS_CLIENT).append(format!("You are invited to {jid}")).build())
            .build();
        self.send(wire, invitation).await
    }

    /// Who is in a group now: the occupants not shown yet, this one last
    /// (with 110) when it has just joined.
    pub(super) async fn roster(&mut self, group: GroupId, members: Vec<String>, wire: &mut Wire<Tls>) -> Flow {
        let me = self.user.handle.to_ascii_lowercase();
        let muc_host = self.muc_host.clone();
        let Some(room) = self.rooms.room(&group) else { return Flow::Continue };
        if !room.joined {
            return Flow::Continue;
        }
        let jid = format!("{}@{muc_host}", room.name);
        let mut new: Vec<String> = Vec::new();
        for key in members.iter().map(|m| m.to_ascii_lowercase()) {
            if room.shown.insert(key.clone()) {
                new.push(key);
            }
        }
        let asked = room.asked_nick.is_some();
        let mut shown: Vec<Element> =
            new.iter().filter(|k| **k != me).map(|k| occupant(&jid, k, &self.full, false, &[])).collect();
        if new.contains(&me) {
            let codes: &[u16] = if asked { &[110, 210] } else { &[110] };
            shown.push(occupant(&jid, &me, &self.full, false, codes));
        }
        for presence in shown {
            if let Flow::End(e) = self.send(wire, presence).await {
                return Flow::End(e);
            }
        }
        Flow::Continue
    }

    /// Someone left a group.
    pub(super) async fn left(&mut self, group: GroupId, who: String, wire: &mut Wire<Tls>) -> Flow {
        let muc_host = self.muc_host.clone();
        let Some(room) = self.rooms.0.get_mut(&group) else { return Flow::Continue };
        let key = who.to_ascii_lowercase();
        if !room.joined || !room.shown.remove(&key) {
            return Flow::Continue;
        }
        let jid = format!("{}@{muc_host}", room.name);
        self.send(wire, occupant(&jid, &key, &self.full, true, &[])).await
    }

    /// Something said in a group, from its occupant (one's own words come
    /// back too, as a room reflects them).
    pub(super) async fn said_in_room(
        &mut self,
        group: GroupId,
        from: String,
        said: Said,
        wire: &mut Wire<Tls>,
    ) -> Flow {
        let muc_host = self.muc_host.clone();
        let Some(room) = self.rooms.0.get(&group).filter(|r| r.joined) else { return Flow::Continue };
        let from = format!("{}@{muc_host}/{}", room.name, from.to_ascii_lowercase());
        self.send(wire, translate::message(&from, &self.full, &said, "groupchat")).await
    }

    /// disco#info of the MUC service.
    pub(super) fn muc_info(&self) -> Element {
        let feature = |f: &str| Element::builder("feature", translate::NS_DISCO_INFO).attr(name("var"), f).build();
        Element::builder("query", translate::NS_DISCO_INFO)
            .append(
                Element::builder("identity", translate::NS_DISCO_INFO)
                    .attr(name("category"), "conference")
                    .attr(name("type"), "text")
                    .attr(name("name"), "Group conversations")
                    .build(),
            )
            .append(feature(translate::NS_DISCO_INFO))
            .append(feature(NS_MUC))
            .build()
    }

    /// disco#items of the server: the MUC service.
    pub(super) fn server_items(&self) -> Element {
        Element::builder("query", translate::NS_DISCO_ITEMS)
            .append(
                Element::builder("item", translate::NS_DISCO_ITEMS)
                    .attr(name("jid"), self.muc_host.as_str())
                    .attr(name("name"), "Group conversations")
                    .build(),
            )
            .build()
    }
}

/// An occupant's presence in a room, with the status codes given.
fn occupant(room: &str, key: &str, to: &str, gone: bool, codes: &[u16]) -> Element {
    let mut x = Element::builder("x", NS_MUC_USER).append(
        Element::builder("item", NS_MUC_USER)
            .attr(name("affiliation"), "member")
            .attr(name("role"), if gone { "none" } else { "participant" })
            .attr(name("jid"), key)
            .build(),
    );
    for code in codes {
        x = x.append(Element::builder("status", NS_MUC_USER).attr(name("code"), code.to_string()).build());
    }
    let mut p =
        Element::builder("presence", NS_CLIENT).attr(name("from"), format!("{room}/{key}")).attr(name("to"), to);
    if gone {
        p = p.attr(name("type"), "unavailable");
    }
    p.append(x.build()).build()
}
