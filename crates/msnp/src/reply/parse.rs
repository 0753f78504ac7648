//! [`Reply::parse`]: a server's line read back into the value `encode.rs`
//! wrote, in the shape of the connection's dialect. Clients, the load tool
//! and the tests read the server through it.
//!
//! What a dialect does not carry comes back empty (no friendly name in a
//! MSNP10 `USR OK`, serial 0 where replies have none, `in_sync` false where
//! a sync line looks like a reply). Where two values share one shape the
//! plainer is read: in MSNP7-9 a contact put into a group is an `ADD` with a
//! group, which is what it looks like.

use bytes::Bytes;

use super::{GroupRef, LstItem, OutReason, PresenceLine, Reply, SyncContact};
use crate::dialect::{AuthScheme, Dialect};
use crate::endpoint::Capabilities;
use crate::error::ErrorCode;
use crate::frame::Frame;
use crate::types::{ListKind, OnlineState, PrivacyMode, PromptMode, TrId, parse_trid};
use crate::urlencode;

/// A line that is no reply of the dialect.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a {dialect} reply: `{line}`")]
pub struct MalformedReply {
    pub line: String,
    pub dialect: Dialect,
}

/// The words of a reply line after the verb, with readers that turn a
/// missing or unreadable word into [`MalformedReply`].
struct Words<'a> {
    frame: &'a Frame,
    dialect: Dialect,
    verb: &'a str,
    words: Vec<&'a str>,
}

impl<'a> Words<'a> {
    fn new(frame: &'a Frame, dialect: Dialect) -> Words<'a> {
        let mut parts = frame.line.split(' ').filter(|w| !w.is_empty());
        let verb = parts.next().unwrap_or("");
        Words { frame, dialect, verb, words: parts.collect() }
    }

    fn bad(&self) -> MalformedReply {
        MalformedReply { line: self.frame.line.clone(), dialect: self.dialect }
    }

    fn len(&self) -> usize {
        self.words.len()
    }

    fn opt(&self, i: usize) -> Option<&'a str> {
        self.words.get(i).copied()
    }

    fn get(&self, i: usize) -> Result<&'a str, MalformedReply> {
        self.opt(i).ok_or_else(|| self.bad())
    }

    fn string(&self, i: usize) -> Result<String, MalformedReply> {
        self.get(i).map(str::to_string)
    }

    fn number<T: std::str::FromStr>(&self, i: usize) -> Result<T, MalformedReply> {
        self.get(i)?.parse().map_err(|_| self.bad())
    }

    fn trid(&self, i: usize) -> Result<TrId, MalformedReply> {
        parse_trid(self.get(i)?).ok_or_else(|| self.bad())
    }

    /// A URL-encoded name.
    fn text(&self, i: usize) -> Result<String, MalformedReply> {
        urlencode::decode(self.get(i)?).map_err(|_| self.bad())
    }

    fn expect(&self, i: usize, word: &str) -> Result<(), MalformedReply> {
        if self.get(i)? == word { Ok(()) } else { Err(self.bad()) }
    }

    fn list(&self, i: usize) -> Result<ListKind, MalformedReply> {
        ListKind::from_code(self.get(i)?).ok_or_else(|| self.bad())
    }

    fn state(&self, i: usize) -> Result<OnlineState, MalformedReply> {
        OnlineState::from_code(self.get(i)?).ok_or_else(|| self.bad())
    }

    fn payload(&self) -> Bytes {
        self.frame.payload.clone().unwrap_or_default()
    }

    /// The serial at `i` in dialects whose replies carry one; returns it and
    /// the index of the next word.
    fn serial(&self, i: usize) -> Result<(u32, usize), MalformedReply> {
        if self.dialect.replies_carry_serial() { Ok((self.number(i)?, i + 1)) } else { Ok((0, i)) }
    }

    /// The head of GTC, BLP and PRP: `(trid, serial, in_sync, next index)`.
    /// A MSNP8+ sync line has neither TrID nor serial.
    fn head(&self) -> Result<(TrId, u32, bool, usize), MalformedReply> {
        if self.dialect.has_compact_sync() && self.opt(0).and_then(parse_trid).is_none() {
            return Ok((0, 0, true, 0));
        }
        let trid = self.trid(0)?;
        let (serial, next) = self.serial(1)?;
        Ok((trid, serial, false, next))
    }

    /// A comma-separated list of numeric group ids, `0` meaning none.
    fn group_ids(&self, i: usize) -> Result<Vec<u32>, MalformedReply> {
        // Group 0 ("Other Contacts") is the implicit one: in a list it means
        // no group, however it is spelled (`0`, `00`).
        let Some(ids) = self.opt(i) else { return Ok(Vec::new()) };
        let mut groups = Vec::new();
        for id in ids.split(',') {
            let id: u32 = id.parse().map_err(|_| self.bad())?;
            if id != 0 {
                groups.push(id);
            }
        }
        Ok(groups)
    }

    /// `state handle friendly [client-id [msn-object]]` from `i`.
    fn presence(&self, i: usize) -> Result<PresenceLine, MalformedReply> {
        let d = self.dialect;
        let has_id = d.presence_has_client_id();
        // MSNP14-17 name the network after the handle.
        let n = i + usize::from(d.presence_has_network_id() && !d.prefixes_network_to_handles());
        let caps = if has_id { self.capabilities(n + 3)? } else { Capabilities::default() };
        Ok(PresenceLine {
            state: self.state(i)?,
            handle: self.handle(i + 1)?,
            friendly: self.text(n + 2)?,
            client_id: caps.basic,
            extended_caps: caps.extended,
            msn_object: if has_id && d.presence_has_msn_object() {
                self.opt(n + 4).filter(|o| !(d.presence_always_names_msn_object() && *o == "0")).map(str::to_string)
            } else {
                None
            },
        })
    }

    /// A handle, without MSNP18's network prefix.
    fn handle(&self, i: usize) -> Result<String, MalformedReply> {
        Ok(crate::endpoint::strip_network(self.get(i)?).to_string())
    }

    /// `caps` or `caps:capsEx`.
    fn capabilities(&self, i: usize) -> Result<Capabilities, MalformedReply> {
        Capabilities::parse_in(self.get(i)?, self.dialect).ok_or_else(|| self.bad())
    }

    /// The words of a MSNP10+ line that carry a `prefix=`.
    fn tagged(&self, prefix: &str) -> Option<&'a str> {
        self.words.iter().find_map(|w| w.strip_prefix(prefix))
    }
}

fn group_guid(guid: &str) -> GroupRef {
    GroupRef { id: 0, guid: guid.to_string(), name: String::new() }
}

impl Reply {
    /// Reads one line (and payload) a dispatch or notification server sent.
    pub fn parse(frame: &Frame, dialect: Dialect) -> Result<Reply, MalformedReply> {
        let w = Words::new(frame, dialect);
        let d = dialect;
        Ok(match w.verb {
            "VER" => Reply::Ver {
                trid: w.trid(0)?,
                dialect: match w.get(1)? {
                    "0" => None,
                    name => Some(Dialect::from_name(name).ok_or_else(|| w.bad())?),
                },
            },
            "INF" => Reply::Inf {
                trid: w.trid(0)?,
                packages: w
                    .get(1)?
                    .split(',')
                    .map(AuthScheme::from_package)
                    .collect::<Option<_>>()
                    .ok_or_else(|| w.bad())?,
            },
            "CVR" => Reply::Cvr {
                trid: w.trid(0)?,
                recommended: w.string(1)?,
                minimum: w.string(3)?,
                download_url: w.string(4)?,
                info_url: w.string(5)?,
            },
            "USR" if w.get(1)? == "OK" => Reply::UsrOk {
                trid: w.trid(0)?,
                handle: w.string(2)?,
                friendly: if d.usr_ok_has_friendly() { w.text(3)? } else { String::new() },
            },
            "USR" if w.get(1)? == "SSO" => {
                w.expect(2, "S")?;
                Reply::UsrSsoChallenge { trid: w.trid(0)?, policy: w.string(3)?, nonce: w.string(4)? }
            }
            "USR" => {
                w.expect(2, "S")?;
                Reply::UsrChallenge {
                    trid: w.trid(0)?,
                    package: AuthScheme::from_package(w.get(1)?).ok_or_else(|| w.bad())?,
                    challenge: w.string(3)?,
                }
            }
            "SBS" => Reply::Sbs,
            "XFR" if w.get(1)? == "NS" => Reply::XfrNs {
                trid: w.trid(0)?,
                address: w.string(2)?,
                current: if d.xfr_ns_fields().1 && !d.xfr_ns_carries_redirect_blob() {
                    w.string(4)?
                } else {
                    String::new()
                },
            },
            "XFR" => {
                w.expect(1, "SB")?;
                w.expect(3, "CKI")?;
                Reply::XfrSb { trid: w.trid(0)?, address: w.string(2)?, cookie: w.string(4)? }
            }
            "SYN" => {
                let (serial, timestamp, counts_at) =
                    if d.uses_guids() { (0, w.string(1)?, 3) } else { (w.number(1)?, String::new(), 2) };
                let counts = match (d.has_compact_sync(), w.opt(counts_at)) {
                    (true, Some(_)) => Some((w.number(counts_at)?, w.number(counts_at + 1)?)),
                    _ => None,
                };
                Reply::Syn { trid: w.trid(0)?, serial, timestamp, counts }
            }
            "GTC" => {
                let (trid, serial, in_sync, at) = w.head()?;
                let mode = PromptMode::from_code(w.get(at)?).ok_or_else(|| w.bad())?;
                Reply::Gtc { trid, serial, mode, in_sync }
            }
            "BLP" => {
                let (trid, serial, in_sync, at) = w.head()?;
                let mode = PrivacyMode::from_code(w.get(at)?).ok_or_else(|| w.bad())?;
                Reply::Blp { trid, serial, mode, in_sync }
            }
            "PRP" => {
                let (trid, serial, in_sync, at) = w.head()?;
                let value = if w.opt(at + 1).is_some() { Some(w.text(at + 1)?) } else { None };
                Reply::Prp { trid, serial, kind: w.string(at)?, value, in_sync }
            }
            "BPR" => {
                // A property outside a sync names its contact (and serial);
                // property kinds are never numbers or addresses.
                let first = w.get(0)?;
                let names_contact = !d.has_compact_sync() || first.contains('@') || parse_trid(first).is_some();
                let (serial, handle, at) = if names_contact {
                    let (serial, at) = w.serial(0)?;
                    (serial, w.string(at)?, at + 1)
                } else {
                    (0, String::new(), 0)
                };
                let value = if w.opt(at + 1).is_some() { Some(w.text(at + 1)?) } else { None };
                Reply::Bpr { serial, handle, kind: w.string(at)?, value, in_sync: !names_contact }
            }
            "LST" if d.uses_guids() => {
                let handle = w.tagged("N=").ok_or_else(|| w.bad())?.to_string();
                let friendly = match w.tagged("F=") {
                    Some(f) => urlencode::decode(f).map_err(|_| w.bad())?,
                    None => String::new(),
                };
                let mut rest = w.words.iter().filter(|x| !x.contains('='));
                let bits: u8 = rest.next().and_then(|b| b.parse().ok()).ok_or_else(|| w.bad())?;
                if d.lst_has_network_id() {
                    rest.next();
                }
                // The contact GUID and groups belong to forward-list entries.
                let on_forward = bits & ListKind::Forward.bit() != 0;
                let guid = if on_forward { w.tagged("C=").unwrap_or("").to_string() } else { String::new() };
                let group_guids = match rest.next() {
                    Some(g) if on_forward => g.split(',').map(str::to_string).collect(),
                    _ => Vec::new(),
                };
                Reply::SyncContact(SyncContact { handle, friendly, guid, bits, group_ids: Vec::new(), group_guids })
            }
            "LST" if d.has_compact_sync() => {
                let bits: u8 = w.number(2)?;
                let on_forward = bits & ListKind::Forward.bit() != 0;
                Reply::SyncContact(SyncContact {
                    handle: w.string(0)?,
                    friendly: w.text(1)?,
                    guid: String::new(),
                    bits,
                    group_ids: if on_forward { w.group_ids(3)? } else { Vec::new() },
                    group_guids: Vec::new(),
                })
            }
            "LST" => {
                let list = w.list(1)?;
                let item = match w.opt(5) {
                    None => None,
                    Some(_) => Some(LstItem {
                        handle: w.string(5)?,
                        friendly: w.text(6)?,
                        groups: if d.has_groups() && list == ListKind::Forward { w.group_ids(7)? } else { Vec::new() },
                    }),
                };
                // An empty list's line is `0 0` whatever it counts.
                let (index, total) = match item {
                    Some(_) => (w.number(3)?, w.number(4)?),
                    None => (0, 0),
                };
                Reply::Lst { trid: w.trid(0)?, list, serial: w.number(2)?, index, total, item }
            }
            "LSG" if d.uses_guids() => Reply::Lsg {
                trid: 0,
                serial: 0,
                index: 0,
                total: 0,
                group: GroupRef { id: 0, guid: w.string(1)?, name: w.text(0)? },
                in_sync: true,
            },
            "LSG" if d.has_compact_sync() && w.len() == 3 => Reply::Lsg {
                trid: 0,
                serial: 0,
                index: 0,
                total: 0,
                group: GroupRef { id: w.number(0)?, guid: String::new(), name: w.text(1)? },
                in_sync: true,
            },
            "LSG" => Reply::Lsg {
                trid: w.trid(0)?,
                serial: w.number(1)?,
                index: w.number(2)?,
                total: w.number(3)?,
                group: GroupRef { id: w.number(4)?, guid: String::new(), name: w.text(5)? },
                in_sync: false,
            },
            "ADD" if !d.uses_guids() => {
                let list = w.list(1)?;
                let (serial, at) = w.serial(2)?;
                let group = match w.opt(at + 2) {
                    Some(_) if d.has_groups() && list == ListKind::Forward => Some(w.number(at + 2)?),
                    _ => None,
                };
                Reply::Add {
                    trid: w.trid(0)?,
                    list,
                    serial,
                    handle: w.string(at)?,
                    friendly: w.text(at + 1)?,
                    group,
                    guid: None,
                }
            }
            "ADC" if d.uses_guids() && w.get(2)?.starts_with("C=") => Reply::AddToGroup {
                trid: w.trid(0)?,
                serial: 0,
                handle: String::new(),
                friendly: String::new(),
                guid: w.tagged("C=").unwrap_or("").to_string(),
                group: group_guid(w.get(3)?),
            },
            "ADC" if d.uses_guids() => {
                // Names come with the forward and reverse lists, the GUID
                // with the forward list.
                let list = w.list(1)?;
                let friendly = match w.tagged("F=") {
                    Some(f) if matches!(list, ListKind::Forward | ListKind::Reverse) => {
                        urlencode::decode(f).map_err(|_| w.bad())?
                    }
                    _ => String::new(),
                };
                Reply::Add {
                    trid: w.trid(0)?,
                    list,
                    serial: 0,
                    handle: w.tagged("N=").ok_or_else(|| w.bad())?.to_string(),
                    friendly,
                    group: None,
                    guid: w.tagged("C=").filter(|_| list == ListKind::Forward).map(str::to_string),
                }
            }
            "REM" if d.uses_guids() => {
                // Forward-list entries are named by GUID, the rest by handle.
                let (list, target) = (w.list(1)?, w.string(2)?);
                let (handle, guid) = if list == ListKind::Forward && !target.contains('@') {
                    (String::new(), Some(target))
                } else {
                    (target, None)
                };
                Reply::Rem { trid: w.trid(0)?, list, serial: 0, handle, guid, group: w.opt(3).map(group_guid) }
            }
            "REM" => {
                let (serial, at) = w.serial(2)?;
                let group = match w.opt(at + 1) {
                    Some(_) if d.has_groups() => {
                        Some(GroupRef { id: w.number(at + 1)?, guid: String::new(), name: String::new() })
                    }
                    _ => None,
                };
                Reply::Rem { trid: w.trid(0)?, list: w.list(1)?, serial, handle: w.string(at)?, guid: None, group }
            }
            "ADG" if d.uses_guids() => Reply::Adg {
                trid: w.trid(0)?,
                serial: 0,
                group: GroupRef { id: 0, guid: w.string(2)?, name: w.text(1)? },
            },
            "ADG" => {
                let (serial, at) = w.serial(1)?;
                let group = GroupRef { id: w.number(at + 1)?, guid: String::new(), name: w.text(at)? };
                Reply::Adg { trid: w.trid(0)?, serial, group }
            }
            "RMG" if d.uses_guids() => Reply::Rmg { trid: w.trid(0)?, serial: 0, group: group_guid(w.get(2)?) },
            "RMG" => {
                let (serial, at) = w.serial(1)?;
                let group = GroupRef { id: w.number(at)?, guid: String::new(), name: String::new() };
                Reply::Rmg { trid: w.trid(0)?, serial, group }
            }
            "REG" if d.uses_guids() => Reply::Reg {
                trid: w.trid(0)?,
                serial: 0,
                group: GroupRef { id: 0, guid: w.string(3)?, name: w.text(2)? },
            },
            "REG" => {
                let (serial, at) = w.serial(1)?;
                let group = GroupRef { id: w.number(at)?, guid: String::new(), name: w.text(at + 1)? };
                Reply::Reg { trid: w.trid(0)?, serial, group }
            }
            "SBP" => {
                Reply::Sbp { trid: w.trid(0)?, contact_guid: w.string(1)?, kind: w.string(2)?, value: w.string(3)? }
            }
            "CHL" => Reply::Chl { challenge: w.string(1)? },
            "QRY" => Reply::QryOk { trid: w.trid(0)? },
            "UUX" => Reply::Uux { trid: w.trid(0)? },
            "UBX" => Reply::Ubx { handle: w.handle(0)?, payload: w.payload() },
            "GCF" if w.len() == 2 => Reply::Policies { payload: w.payload() },
            "ADL" | "RML" if w.opt(1) == Some("OK") => {
                let trid = w.trid(0)?;
                if w.verb == "ADL" { Reply::AdlOk { trid } } else { Reply::RmlOk { trid } }
            }
            "ADL" | "RML" => {
                w.expect(0, "0")?;
                Reply::ReverseListChange { added: w.verb == "ADL", payload: w.payload() }
            }
            "FQY" => Reply::Fqy { trid: w.trid(0)?, payload: w.payload() },
            "UUN" => {
                w.expect(1, "OK")?;
                Reply::UunOk { trid: w.trid(0)? }
            }
            "UBN" => Reply::Ubn {
                // Only dialects with points of presence name an endpoint.
                from: match d.has_points_of_presence() {
                    true => crate::endpoint::Address::parse(w.get(0)?).ok_or_else(|| w.bad())?,
                    false => crate::endpoint::Address::user(w.get(0)?),
                },
                kind: w.number(1)?,
                payload: w.payload(),
            },
            "NOT" => Reply::Not { payload: w.payload() },
            "NFY" => Reply::Nfy {
                removal: match w.get(0)? {
                    "PUT" => false,
                    "DEL" => true,
                    _ => return Err(w.bad()),
                },
                payload: w.payload(),
            },
            "SDG" => {
                w.expect(0, "0")?;
                Reply::Sdg { payload: w.payload() }
            }
            "PUT" => {
                w.expect(1, "OK")?;
                Reply::PutOk { trid: w.trid(0)?, payload: w.payload() }
            }
            "DEL" => {
                w.expect(1, "OK")?;
                w.expect(2, "0")?;
                Reply::DelOk { trid: w.trid(0)? }
            }
            "GCF" => Reply::Gcf { trid: w.trid(0)?, file: w.string(1)?, payload: w.payload() },
            "URL" => Reply::Url { trid: w.trid(0)?, rru: w.string(1)?, url: w.string(2)?, id: w.number(3)? },
            "SDC" => Reply::Sdc { trid: w.trid(0)? },
            "SND" => Reply::Snd { trid: w.trid(0)?, email: w.string(1)? },
            "IMS" => Reply::Ims {
                trid: w.trid(0)?,
                on: match w.get(2)? {
                    "ON" => true,
                    "OFF" => false,
                    _ => return Err(w.bad()),
                },
            },
            "REA" => {
                let (serial, at) = w.serial(1)?;
                Reply::Rea { trid: w.trid(0)?, serial, handle: w.string(at)?, friendly: w.text(at + 1)? }
            }
            "CHG" => {
                let has_id = d.presence_has_client_id();
                let caps = if has_id { Some(w.capabilities(2)?) } else { None };
                Reply::Chg {
                    trid: w.trid(0)?,
                    state: w.state(1)?,
                    client_id: caps.map(|c| c.basic),
                    extended_caps: caps.map_or(0, |c| c.extended),
                    msn_object: if has_id && d.presence_has_msn_object() { w.opt(3).map(str::to_string) } else { None },
                }
            }
            "ILN" if d.initial_presence_as_iln() => Reply::Iln { trid: w.trid(0)?, presence: w.presence(1)? },
            "NLN" => Reply::Nln { presence: w.presence(0)? },
            "FLN" => Reply::Fln { handle: w.handle(0)? },
            "RNG" => {
                w.expect(2, "CKI")?;
                Reply::Rng {
                    session_id: w.number(0)?,
                    address: w.string(1)?,
                    cookie: w.string(3)?,
                    caller: w.string(4)?,
                    caller_friendly: w.text(5)?,
                }
            }
            "OUT" => Reply::Out {
                reason: match w.opt(0) {
                    None => None,
                    Some("OTH") => Some(OutReason::OtherLogin),
                    Some("SSD") => Some(OutReason::ServerShutdown),
                    Some(_) => return Err(w.bad()),
                },
            },
            "QNG" => Reply::Qng { interval: if d.qng_has_interval() { w.number(0)? } else { 0 } },
            "CAL" => {
                w.expect(1, "RINGING")?;
                Reply::CalRinging { trid: w.trid(0)?, session_id: w.number(2)? }
            }
            "IRO" => {
                let caps = if d.roster_has_client_id() { w.capabilities(5)? } else { Capabilities::default() };
                Reply::Iro {
                    trid: w.trid(0)?,
                    index: w.number(1)?,
                    total: w.number(2)?,
                    handle: w.string(3)?,
                    friendly: w.text(4)?,
                    client_id: caps.basic,
                    extended_caps: caps.extended,
                }
            }
            "ANS" => {
                w.expect(1, "OK")?;
                Reply::AnsOk { trid: w.trid(0)? }
            }
            "JOI" => {
                let caps = if d.roster_has_client_id() { w.capabilities(2)? } else { Capabilities::default() };
                Reply::Joi {
                    handle: w.string(0)?,
                    friendly: w.text(1)?,
                    client_id: caps.basic,
                    extended_caps: caps.extended,
                }
            }
            "BYE" => Reply::Bye { handle: w.string(0)?, idle: w.opt(1) == Some("1") },
            "ACK" => Reply::Ack { trid: w.trid(0)? },
            "NAK" => Reply::Nak { trid: w.trid(0)? },
            "MSG" => Reply::Msg { handle: w.string(0)?, friendly: w.text(1)?, payload: w.payload() },
            code => {
                let code = code.parse().ok().and_then(ErrorCode::from_code).ok_or_else(|| w.bad())?;
                // MSNP10+ call an unknown account 208, where 205 was.
                let code = match code {
                    ErrorCode::InvalidUser if d.uses_guids() => ErrorCode::InvalidUsername,
                    c => c,
                };
                let trid = match w.opt(0) {
                    Some(_) => Some(w.trid(0)?),
                    None => None,
                };
                Reply::Error { code, trid }
            }
        })
    }

    /// Reads one line a switchboard sent: the notification shapes, but a
    /// `USR` there is always the switchboard's own.
    pub fn parse_from_switchboard(frame: &Frame, dialect: Dialect) -> Result<Reply, MalformedReply> {
        let w = Words::new(frame, dialect);
        if w.verb == "USR" {
            w.expect(1, "OK")?;
            return Ok(Reply::SbUsrOk { trid: w.trid(0)?, handle: w.string(2)?, friendly: w.text(3)? });
        }
        Reply::parse(frame, dialect)
    }
}
