//! [`Reply::encode`]'s line shapes: every difference between dialects in
//! what a server says is decided here.

use std::fmt::Write as _;

use super::{PresenceLine, Reply};
use crate::dialect::Dialect;
use crate::error::ErrorCode;
use crate::types::{ListKind, TrId};
use crate::urlencode::encode;

impl Reply {
    pub(super) fn write_line(&self, dialect: Dialect, line: &mut String) -> std::fmt::Result {
        let serial = |s: u32| {
            if dialect.replies_carry_serial() { format!(" {s}") } else { String::new() }
        };
        match self {
            Reply::Ver { trid, dialect: Some(d) } => write!(line, "VER {trid} {d}"),
            Reply::Ver { trid, dialect: None } => write!(line, "VER {trid} 0"),
            Reply::Inf { trid, packages } => {
                let names: Vec<&str> = packages.iter().map(|p| p.package()).collect();
                write!(line, "INF {trid} {}", names.join(","))
            }
            Reply::Cvr { trid, recommended, minimum, download_url, info_url } => {
                write!(line, "CVR {trid} {recommended} {recommended} {minimum} {download_url} {info_url}")
            }
            Reply::UsrChallenge { trid, package, challenge } => {
                write!(line, "USR {trid} {} S {challenge}", package.package())
            }
            Reply::UsrSsoChallenge { trid, policy, nonce } => write!(line, "USR {trid} SSO S {policy} {nonce}"),
            Reply::UsrOk { trid, handle, friendly } => {
                write!(line, "USR {trid} OK {handle}")?;
                if dialect.usr_ok_has_friendly() {
                    write!(line, " {}", encode(friendly))?;
                }
                if dialect.usr_ok_has_passport_flags() {
                    write!(line, " 1 0")?;
                } else if dialect.usr_ok_has_verified_flag() {
                    write!(line, " 1")?;
                }
                Ok(())
            }
            Reply::Sbs => write!(line, "SBS 0 null"),
            Reply::SbUsrOk { trid, handle, friendly } => write!(line, "USR {trid} OK {handle} {}", encode(friendly)),
            Reply::XfrNs { trid, address, current } => {
                write!(line, "XFR {trid} NS {address}")?;
                if dialect.xfr_ns_carries_redirect_blob() {
                    return write!(line, " U D {}", crate::signin::redirect_blob(1));
                }
                match dialect.xfr_ns_fields() {
                    (true, true) => write!(line, " 0 {current}"),
                    (true, false) => write!(line, " 0"),
                    _ => Ok(()),
                }
            }
            Reply::XfrSb { trid, address, cookie } => {
                write!(line, "XFR {trid} SB {address} CKI {cookie}")?;
                referral_tail(line, dialect, "messenger.msn.com")
            }
            Reply::Syn { trid, serial, timestamp, counts } => {
                if dialect.uses_guids() {
                    write!(line, "SYN {trid} {timestamp} {timestamp}")?;
                } else {
                    write!(line, "SYN {trid} {serial}")?;
                }
                match counts {
                    Some((c, g)) if dialect.has_compact_sync() => write!(line, " {c} {g}"),
                    _ => Ok(()),
                }
            }
            Reply::Gtc { trid, serial: s, mode, in_sync } => {
                line.push_str("GTC");
                head(line, dialect, *trid, *s, *in_sync)?;
                write!(line, " {}", mode.code())
            }
            Reply::Blp { trid, serial: s, mode, in_sync } => {
                line.push_str("BLP");
                head(line, dialect, *trid, *s, *in_sync)?;
                write!(line, " {}", mode.code())
            }
            Reply::Prp { trid, serial: s, kind, value, in_sync } => {
                line.push_str("PRP");
                head(line, dialect, *trid, *s, *in_sync)?;
                write!(line, " {kind}")?;
                optional_value(line, value)
            }
            Reply::Bpr { serial: s, handle, kind, value, in_sync } => {
                line.push_str("BPR");
                if !(*in_sync && dialect.has_compact_sync()) {
                    if dialect.replies_carry_serial() {
                        write!(line, " {s}")?;
                    }
                    write!(line, " {handle}")?;
                }
                write!(line, " {kind}")?;
                optional_value(line, value)
            }
            Reply::Lst { trid, list, serial, index, total, item } => match item {
                Some(item) => {
                    write!(
                        line,
                        "LST {trid} {list} {serial} {index} {total} {} {}",
                        item.handle,
                        encode(&item.friendly)
                    )?;
                    if dialect.has_groups() && *list == ListKind::Forward {
                        write!(line, " {}", group_ids(&item.groups))?;
                    }
                    Ok(())
                }
                None => write!(line, "LST {trid} {list} {serial} 0 0"),
            },
            Reply::SyncContact(c) => {
                let on_forward = c.bits & ListKind::Forward.bit() != 0;
                if dialect.uses_guids() {
                    write!(line, "LST N={} F={}", c.handle, encode(&c.friendly))?;
                    if on_forward {
                        write!(line, " C={}", c.guid)?;
                    }
                    write!(line, " {}", c.bits)?;
                    if dialect.lst_has_network_id() {
                        line.push_str(" 1");
                    }
                    if on_forward && !c.group_guids.is_empty() {
                        write!(line, " {}", c.group_guids.join(","))?;
                    }
                    Ok(())
                } else {
                    write!(line, "LST {} {} {}", c.handle, encode(&c.friendly), c.bits)?;
                    if on_forward {
                        write!(line, " {}", group_ids(&c.group_ids))?;
                    }
                    Ok(())
                }
            }
            Reply::Lsg { trid, serial, index, total, group, in_sync } => {
                if dialect.uses_guids() {
                    write!(line, "LSG {} {}", encode(&group.name), group.guid)
                } else if *in_sync && dialect.has_compact_sync() {
                    write!(line, "LSG {} {} 0", group.id, encode(&group.name))
                } else {
                    write!(line, "LSG {trid} {serial} {index} {total} {} {} 0", group.id, encode(&group.name))
                }
            }
            Reply::Add { trid, list, serial: s, handle, friendly, group, guid } => {
                if dialect.uses_guids() {
                    write!(line, "ADC {trid} {list} N={handle}")?;
                    if matches!(list, ListKind::Forward | ListKind::Reverse) {
                        write!(line, " F={}", encode(friendly))?;
                    }
                    match (list, guid) {
                        (ListKind::Forward, Some(g)) => write!(line, " C={g}"),
                        _ => Ok(()),
                    }
                } else {
                    write!(line, "ADD {trid} {list}{} {handle} {}", serial(*s), encode(friendly))?;
                    match group {
                        Some(g) if dialect.has_groups() && *list == ListKind::Forward => write!(line, " {g}"),
                        _ => Ok(()),
                    }
                }
            }
            Reply::AddToGroup { trid, serial: s, handle, friendly, guid, group } => {
                if dialect.uses_guids() {
                    write!(line, "ADC {trid} FL C={guid} {}", group.guid)
                } else {
                    // MSNP7-9 say it as a forward-list add naming the group.
                    let add = Reply::Add {
                        trid: *trid,
                        list: ListKind::Forward,
                        serial: *s,
                        handle: handle.clone(),
                        friendly: friendly.clone(),
                        group: Some(group.id),
                        guid: None,
                    };
                    add.write_line(dialect, line)
                }
            }
            Reply::Rem { trid, list, serial: s, handle, guid, group } => {
                if dialect.uses_guids() {
                    match (list, guid) {
                        (ListKind::Forward, Some(g)) => write!(line, "REM {trid} FL {g}")?,
                        _ => write!(line, "REM {trid} {list} {handle}")?,
                    }
                    match group {
                        Some(g) => write!(line, " {}", g.guid),
                        None => Ok(()),
                    }
                } else {
                    write!(line, "REM {trid} {list}{} {handle}", serial(*s))?;
                    match group {
                        Some(g) if dialect.has_groups() => write!(line, " {}", g.id),
                        _ => Ok(()),
                    }
                }
            }
            Reply::Adg { trid, serial: s, group } => {
                if dialect.uses_guids() {
                    write!(line, "ADG {trid} {} {} 0", encode(&group.name), group.guid)
                } else {
                    write!(line, "ADG {trid}{} {} {} 0", serial(*s), encode(&group.name), group.id)
                }
            }
            Reply::Rmg { trid, serial: s, group } => {
                if dialect.uses_guids() {
                    write!(line, "RMG {trid} 1 {}", group.guid)
                } else {
                    write!(line, "RMG {trid}{} {}", serial(*s), group.id)
                }
            }
            Reply::Reg { trid, serial: s, group } => {
                if dialect.uses_guids() {
                    write!(line, "REG {trid} 1 {} {} 0", encode(&group.name), group.guid)
                } else {
                    write!(line, "REG {trid}{} {} {} 0", serial(*s), group.id, encode(&group.name))
                }
            }
            Reply::Sbp { trid, contact_guid, kind, value } => write!(line, "SBP {trid} {contact_guid} {kind} {value}"),
            Reply::Chl { challenge } => write!(line, "CHL 0 {challenge}"),
            Reply::QryOk { trid } => write!(line, "QRY {trid}"),
            Reply::Uux { trid } => write!(line, "UUX {trid} 0"),
            Reply::Ubx { handle, payload } => {
                write!(line, "UBX {} {}", presence_handle(dialect, handle), payload.len())
            }
            Reply::Gcf { trid, file, payload } => write!(line, "GCF {trid} {file} {}", payload.len()),
            Reply::Policies { payload } => write!(line, "GCF 0 {}", payload.len()),
            Reply::AdlOk { trid } => write!(line, "ADL {trid} OK"),
            Reply::RmlOk { trid } => write!(line, "RML {trid} OK"),
            Reply::ReverseListChange { added, payload } => {
                write!(line, "{} 0 {}", if *added { "ADL" } else { "RML" }, payload.len())
            }
            Reply::Fqy { trid, payload } => write!(line, "FQY {trid} {}", payload.len()),
            Reply::UunOk { trid } => write!(line, "UUN {trid} OK"),
            Reply::Ubn { from, kind, payload } => {
                match &from.endpoint {
                    Some(_) if dialect.has_points_of_presence() => write!(line, "UBN {from}")?,
                    _ => write!(line, "UBN {}", from.handle)?,
                }
                write!(line, " {kind} {}", payload.len())
            }
            Reply::Not { payload } => write!(line, "NOT {}", payload.len()),
            Reply::Nfy { removal, payload } => {
                write!(line, "NFY {} {}", if *removal { "DEL" } else { "PUT" }, payload.len())
            }
            Reply::Sdg { payload } => write!(line, "SDG 0 {}", payload.len()),
            Reply::PutOk { trid, payload } => write!(line, "PUT {trid} OK {}", payload.len()),
            Reply::DelOk { trid } => write!(line, "DEL {trid} OK 0"),
            Reply::Url { trid, rru, url, id } => write!(line, "URL {trid} {rru} {url} {id}"),
            Reply::Sdc { trid } => write!(line, "SDC {trid} OK"),
            Reply::Snd { trid, email } => write!(line, "SND {trid} {email}"),
            Reply::Ims { trid, on } => write!(line, "IMS {trid} 0 {}", if *on { "ON" } else { "OFF" }),
            Reply::Rea { trid, serial: s, handle, friendly } => {
                write!(line, "REA {trid}{} {handle} {}", serial(*s), encode(friendly))
            }
            Reply::Chg { trid, state, client_id, extended_caps, msn_object } => {
                write!(line, "CHG {trid} {state}")?;
                if dialect.presence_has_client_id() {
                    write!(line, " {}", capabilities(dialect, client_id.unwrap_or(0), *extended_caps))?;
                    if let (true, Some(obj)) = (dialect.presence_has_msn_object(), msn_object) {
                        write!(line, " {obj}")?;
                    }
                }
                Ok(())
            }
            Reply::Iln { trid, presence } => {
                if dialect.initial_presence_as_iln() {
                    write!(line, "ILN {trid} ")?;
                } else {
                    line.push_str("NLN ");
                }
                presence_fields(line, dialect, presence)
            }
            Reply::Nln { presence } => {
                line.push_str("NLN ");
                presence_fields(line, dialect, presence)
            }
            Reply::Fln { handle } => {
                write!(line, "FLN {}", presence_handle(dialect, handle))?;
                // The capabilities the contact had (none now).
                if dialect.presence_has_network_id() {
                    write!(line, " {}", capabilities(dialect, 0, 0))?;
                }
                Ok(())
            }
            Reply::Rng { session_id, address, cookie, caller, caller_friendly } => {
                write!(line, "RNG {session_id} {address} CKI {cookie} {caller} {}", encode(caller_friendly))?;
                referral_tail(line, dialect, "messenger.hotmail.com")
            }
            Reply::Out { reason: Some(r) } => write!(line, "OUT {}", r.code()),
            Reply::Out { reason: None } => write!(line, "OUT"),
            Reply::Qng { interval } => {
                if dialect.qng_has_interval() {
                    write!(line, "QNG {interval}")
                } else {
                    write!(line, "QNG")
                }
            }
            Reply::Error { code, trid } => {
                // MSNP10 answers an unknown account with 208 where older
                // dialects said 205.
                let code = match code {
                    ErrorCode::InvalidUser if dialect.uses_guids() => ErrorCode::InvalidUsername,
                    c => *c,
                };
                match trid {
                    Some(t) => write!(line, "{} {t}", code.code()),
                    None => write!(line, "{}", code.code()),
                }
            }
            Reply::CalRinging { trid, session_id } => {
                write!(line, "CAL {trid} RINGING {session_id}")
            }
            Reply::Iro { trid, index, total, handle, friendly, client_id, extended_caps } => {
                write!(line, "IRO {trid} {index} {total} {handle} {}", encode(friendly))?;
                if dialect.roster_has_client_id() {
                    write!(line, " {}", capabilities(dialect, *client_id, *extended_caps))?;
                }
                Ok(())
            }
            Reply::AnsOk { trid } => write!(line, "ANS {trid} OK"),
            Reply::Joi { handle, friendly, client_id, extended_caps } => {
                write!(line, "JOI {handle} {}", encode(friendly))?;
                if dialect.roster_has_client_id() {
                    write!(line, " {}", capabilities(dialect, *client_id, *extended_caps))?;
                }
                Ok(())
            }
            Reply::Bye { handle, idle } => {
                write!(line, "BYE {handle}{}", if *idle { " 1" } else { "" })
            }
            Reply::Ack { trid } => write!(line, "ACK {trid}"),
            Reply::Nak { trid } => write!(line, "NAK {trid}"),
            Reply::Msg { handle, friendly, payload } => {
                write!(line, "MSG {handle} {} {}", encode(friendly), payload.len())
            }
        }
    }
}

/// The TrID and serial at the head of GTC, BLP and PRP: both in MSNP2-7
/// (reply and sync alike), none inside a MSNP8+ sync, and in replies the
/// serial only until MSNP9.
fn head(line: &mut String, dialect: Dialect, trid: TrId, serial: u32, in_sync: bool) -> std::fmt::Result {
    if in_sync && dialect.has_compact_sync() {
        return Ok(());
    }
    write!(line, " {trid}")?;
    if dialect.replies_carry_serial() {
        write!(line, " {serial}")?;
    }
    Ok(())
}

fn optional_value(line: &mut String, value: &Option<String>) -> std::fmt::Result {
    match value {
        Some(v) if !v.is_empty() => write!(line, " {}", encode(v)),
        _ => Ok(()),
    }
}

/// Comma-separated group ids; `0` (the implicit "Other Contacts") when none.
fn group_ids(groups: &[u32]) -> String {
    if groups.is_empty() { "0".into() } else { groups.iter().map(u32::to_string).collect::<Vec<_>>().join(",") }
}

/// A handle in a presence line: with the Messenger network after it
/// (` 1`, MSNP14-17) or in front of it (`1:`, MSNP18).
fn presence_handle(dialect: Dialect, handle: &str) -> String {
    let network = crate::endpoint::MESSENGER_NETWORK;
    if dialect.prefixes_network_to_handles() {
        format!("{network}:{handle}")
    } else if dialect.presence_has_network_id() {
        format!("{handle} {network}")
    } else {
        handle.to_string()
    }
}

/// Capabilities: `caps` until MSNP15, `caps:capsEx` from MSNP16.
fn capabilities(dialect: Dialect, basic: u32, extended: u32) -> String {
    let caps = crate::endpoint::Capabilities { basic, extended };
    if dialect.capabilities_with_extended() { caps.with_extended() } else { caps.basic.to_string() }
}

/// The end of `XFR ... SB` and `RNG` in MSNP13+: `U host`, then from
/// MSNP14 the `1` that allows direct connections.
fn referral_tail(line: &mut String, dialect: Dialect, host: &str) -> std::fmt::Result {
    if dialect.switchboard_referral_names_host() {
        write!(line, " U {host}")?;
    }
    if dialect.switchboard_referral_has_direct_flag() {
        line.push_str(" 1");
    }
    Ok(())
}

fn presence_fields(line: &mut String, dialect: Dialect, p: &PresenceLine) -> std::fmt::Result {
    write!(line, "{} {} {}", p.state, presence_handle(dialect, &p.handle), encode(&p.friendly))?;
    if dialect.presence_has_client_id() {
        write!(line, " {}", capabilities(dialect, p.client_id, p.extended_caps))?;
        match (dialect.presence_has_msn_object(), &p.msn_object) {
            (true, Some(obj)) => write!(line, " {obj}")?,
            (true, None) if dialect.presence_always_names_msn_object() => line.push_str(" 0"),
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;
    use crate::types::{OnlineState, PrivacyMode, PromptMode};

    fn text(r: Reply, d: Dialect) -> String {
        String::from_utf8(r.to_bytes(d).to_vec()).unwrap()
    }

    #[test]
    fn login_success_per_family() {
        let ok = || Reply::UsrOk { trid: 7, handle: "a@b.com".into(), friendly: "A".into() };
        assert_eq!(text(ok(), Dialect::Msnp8), "USR 7 OK a@b.com A 1 0\r\n");
        assert_eq!(text(ok(), Dialect::Msnp10), "USR 7 OK a@b.com 1 0\r\n");
        assert_eq!(text(ok(), Dialect::Msnp11), "USR 7 OK a@b.com 1 0\r\n");
        assert_eq!(text(Reply::Sbs, Dialect::Msnp11), "SBS 0 null\r\n");
    }

    #[test]
    fn msnp2_shapes_match_the_draft() {
        let d = Dialect::Msnp2;
        assert_eq!(text(Reply::Ver { trid: 1, dialect: Some(d) }, d), "VER 1 MSNP2\r\n");
        assert_eq!(text(Reply::Ver { trid: 1, dialect: None }, d), "VER 1 0\r\n");
        assert_eq!(
            text(Reply::XfrNs { trid: 3, address: "10.0.0.5:1863".into(), current: "x".into() }, d),
            "XFR 3 NS 10.0.0.5:1863\r\n"
        );
        assert_eq!(
            text(Reply::UsrOk { trid: 7, handle: "alice@hotmail.com".into(), friendly: "Alice W.".into() }, d),
            "USR 7 OK alice@hotmail.com Alice%20W.\r\n"
        );
        assert_eq!(
            text(Reply::Lst { trid: 8, list: ListKind::Block, serial: 3, index: 0, total: 0, item: None }, d),
            "LST 8 BL 3 0 0\r\n"
        );
        assert_eq!(text(Reply::Gtc { trid: 8, serial: 3, mode: PromptMode::Ask, in_sync: true }, d), "GTC 8 3 A\r\n");
        let p = PresenceLine {
            state: OnlineState::Away,
            handle: "bob@hotmail.com".into(),
            friendly: "Bob".into(),
            client_id: 32,
            extended_caps: 0,
            msn_object: None,
        };
        assert_eq!(text(Reply::Nln { presence: p.clone() }, d), "NLN AWY bob@hotmail.com Bob\r\n");
        assert_eq!(text(Reply::Nln { presence: p }, Dialect::Msnp8), "NLN AWY bob@hotmail.com Bob 32\r\n");
        assert_eq!(text(Reply::error(ErrorCode::AlreadyThere, 12), d), "215 12\r\n");
    }

    #[test]
    fn later_dialects_change_shapes_here() {
        assert_eq!(
            text(Reply::XfrNs { trid: 3, address: "a:1".into(), current: "b:2".into() }, Dialect::Msnp7),
            "XFR 3 NS a:1 0 b:2\r\n"
        );
        assert_eq!(
            text(Reply::Blp { trid: 2, serial: 9, mode: PrivacyMode::BlockUnlisted, in_sync: false }, Dialect::Msnp10),
            "BLP 2 BL\r\n"
        );
        assert_eq!(text(Reply::Qng { interval: 50 }, Dialect::Msnp2), "QNG\r\n");
        assert_eq!(text(Reply::Qng { interval: 50 }, Dialect::Msnp9), "QNG 50\r\n");
    }

    #[test]
    fn windows_live_2009_names_the_network_and_extended_capabilities() {
        let p = PresenceLine {
            state: OnlineState::Online,
            handle: "bob@x.com".into(),
            friendly: "Bob".into(),
            client_id: 2788999228,
            extended_caps: 48,
            msn_object: None,
        };
        assert_eq!(text(Reply::Nln { presence: p.clone() }, Dialect::Msnp15), "NLN NLN bob@x.com 1 Bob 2788999228\r\n");
        assert_eq!(
            text(Reply::Nln { presence: p.clone() }, Dialect::Msnp16),
            "NLN NLN bob@x.com 1 Bob 2788999228:48\r\n"
        );
        assert_eq!(
            text(Reply::Iln { trid: 4, presence: p.clone() }, Dialect::Msnp17),
            "ILN 4 NLN bob@x.com 1 Bob 2788999228:48\r\n"
        );
        assert_eq!(
            text(Reply::Iln { trid: 4, presence: p }, Dialect::Msnp18),
            "NLN NLN 1:bob@x.com Bob 2788999228:48 0\r\n"
        );
        let fln = || Reply::Fln { handle: "bob@x.com".into() };
        assert_eq!(text(fln(), Dialect::Msnp15), "FLN bob@x.com 1 0\r\n");
        assert_eq!(text(fln(), Dialect::Msnp16), "FLN bob@x.com 1 0:0\r\n");
        assert_eq!(text(fln(), Dialect::Msnp18), "FLN 1:bob@x.com 0:0\r\n");
        let ubx = || Reply::Ubx { handle: "bob@x.com".into(), payload: bytes::Bytes::new() };
        assert_eq!(text(ubx(), Dialect::Msnp16), "UBX bob@x.com 1 0\r\n");
        assert_eq!(text(ubx(), Dialect::Msnp18), "UBX 1:bob@x.com 0\r\n");
    }

    #[test]
    fn msg_length_counts_payload_bytes() {
        let payload = Bytes::from("MIME-Version: 1.0\r\n\r\nüber".as_bytes().to_vec());
        let out = Reply::Msg { handle: "a@b.c".into(), friendly: "A B".into(), payload: payload.clone() }
            .to_bytes(Dialect::Msnp2);
        let expected = [format!("MSG a@b.c A%20B {}\r\n", payload.len()).as_bytes(), &payload[..]].concat();
        assert_eq!(out.to_vec(), expected);
    }
}
