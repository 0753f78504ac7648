//! What a client sends, parsed into typed requests.
//!
//! Parsing is purely syntactic: argument counts, TrIDs, enumerated keywords
//! and the URL decoding of names. Whether a handle exists or a change is
//! allowed is the backend's business. Arguments beyond those a dialect
//! defines are ignored, because real clients are noisy (a second `CVR`, group
//! ids on `ADD`, stray tabs) and refusing them would break them.
//!
//! Over 700 lines on purpose: every request's parse and its inverse `to_frame`
//! sit together so a shape is changed in both at once; about a quarter is unit
//! tests.

use bytes::Bytes;

use crate::dialect::Dialect;
use crate::endpoint::{Address, Capabilities, MachineGuid};
use crate::error::ErrorCode;
use crate::frame::Frame;
use crate::types::{AckMode, ListKind, OnlineState, PrivacyMode, PromptMode, SessionId, TrId, parse_trid};
use crate::urlencode;

/// Longest user handle (draft 5.4).
pub const MAX_HANDLE_LEN: usize = 129;
/// Longest URL-encoded friendly name (draft 5.5).
pub const MAX_FRIENDLY_NAME_LEN: usize = 387;

/// A request that could not be parsed, with what to answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code} for TrID {trid:?}")]
pub struct ParseError {
    /// The TrID to echo, when the line carried a readable one.
    pub trid: Option<TrId>,
    pub code: ErrorCode,
}

fn err(trid: Option<TrId>, code: ErrorCode) -> ParseError {
    ParseError { trid, code }
}

/// A split command line with helpers that turn missing or malformed
/// arguments into the right protocol error.
struct Args<'a> {
    verb: &'a str,
    args: Vec<&'a str>,
    trid: Option<TrId>,
}

impl<'a> Args<'a> {
    fn new(frame: &'a Frame) -> Args<'a> {
        let mut parts = frame.line.split([' ', '\t']).filter(|s| !s.is_empty());
        let verb = parts.next().unwrap_or("");
        let args: Vec<&str> = parts.collect();
        let trid = args.first().and_then(|a| parse_trid(a));
        Args { verb, args, trid }
    }

    /// The TrID, which every request but `OUT` and `PNG` starts with.
    fn trid(&self) -> Result<TrId, ParseError> {
        self.trid.ok_or(err(None, ErrorCode::SyntaxError))
    }

    /// The argument at `i` (0 is the TrID), or a syntax error.
    fn get(&self, i: usize) -> Result<&'a str, ParseError> {
        self.args.get(i).copied().ok_or(err(self.trid, ErrorCode::SyntaxError))
    }

    fn opt(&self, i: usize) -> Option<&'a str> {
        self.args.get(i).copied()
    }

    fn invalid(&self) -> ParseError {
        err(self.trid, ErrorCode::InvalidParameter)
    }

    fn list(&self, i: usize) -> Result<ListKind, ParseError> {
        ListKind::from_code(self.get(i)?).ok_or(self.invalid())
    }

    fn friendly(&self, i: usize) -> Result<String, ParseError> {
        decode_friendly(self.get(i)?).map_err(|code| err(self.trid, code))
    }

    fn group_name(&self, i: usize) -> Result<String, ParseError> {
        decode_group_name(self.get(i)?).map_err(|code| err(self.trid, code))
    }

    fn number(&self, i: usize) -> Result<u32, ParseError> {
        parse_trid(self.get(i)?).ok_or(self.invalid())
    }

    /// `handle` or `handle;{guid}` identifying oneself to a switchboard: a
    /// malformed one fails like a wrong cookie (911).
    fn address(&self, i: usize) -> Result<Address, ParseError> {
        Address::parse(self.get(i)?).ok_or(err(self.trid, ErrorCode::AuthenticationFailed))
    }

    fn owned_from(&self, i: usize) -> Vec<String> {
        self.args.iter().skip(i).map(|s| s.to_string()).collect()
    }
}

/// A name must have something in it and no control characters. The
/// replacement character is refused too: it stands for bytes that were not
/// UTF-8 (the decoder substitutes it for them), and a name quietly turned
/// into `\u{FFFD}\u{FFFD}` is worse than an error the client can show.
fn is_acceptable_name(name: &str) -> bool {
    !name.is_empty() && !name.chars().any(|c| c.is_control() || c == char::REPLACEMENT_CHARACTER)
}

/// Decodes a URL-encoded friendly name, enforcing the draft's length limit.
pub fn decode_friendly(arg: &str) -> Result<String, ErrorCode> {
    if arg.len() > MAX_FRIENDLY_NAME_LEN {
        return Err(ErrorCode::InvalidFriendlyName);
    }
    let name = urlencode::decode(arg).map_err(|_| ErrorCode::InvalidFriendlyName)?;
    if !is_acceptable_name(&name) {
        return Err(ErrorCode::InvalidFriendlyName);
    }
    Ok(name)
}

/// Longest URL-encoded group name.
pub const MAX_GROUP_NAME_LEN: usize = 61;

/// Decodes a URL-encoded group name (61 encoded bytes at most, error 229).
pub fn decode_group_name(arg: &str) -> Result<String, ErrorCode> {
    if arg.len() > MAX_GROUP_NAME_LEN {
        return Err(ErrorCode::GroupNameTooLong);
    }
    let name = urlencode::decode(arg).map_err(|_| ErrorCode::InvalidParameter)?;
    if !is_acceptable_name(&name) {
        return Err(ErrorCode::InvalidParameter);
    }
    Ok(name)
}

/// The stages of `USR` on a dispatch or notification server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UsrStep {
    /// `USR trid MD5 I handle`
    Md5Initiate { handle: String },
    /// `USR trid MD5 S response`
    Md5Response { response: String },
    /// `USR trid TWN I handle`
    TwnInitiate { handle: String },
    /// `USR trid TWN S ticket`
    TwnResponse { ticket: String },
    /// `USR trid SSO I handle` (MSNP15+)
    SsoInitiate { handle: String },
    /// `USR trid SSO S ticket blob [{machine-guid}]`: the
    /// `messengerclear.live.com` ticket and the login blob proving its
    /// session key over the server's nonce; from MSNP16 the machine that
    /// signs in (its endpoint).
    SsoResponse { ticket: String, blob: String, machine: Option<MachineGuid> },
    /// `USR trid SHA A ticket` (MSNP18, signed in already): the circle
    /// ticket of the address book, base64, admitting the endpoint to its
    /// circles.
    CircleTicket { ticket: String },
}

impl UsrStep {
    /// The login scheme the step belongs to.
    pub fn scheme(&self) -> crate::dialect::AuthScheme {
        use crate::dialect::AuthScheme;
        match self {
            UsrStep::Md5Initiate { .. } | UsrStep::Md5Response { .. } => AuthScheme::Md5,
            UsrStep::TwnInitiate { .. } | UsrStep::TwnResponse { .. } => AuthScheme::Twn,
            UsrStep::SsoInitiate { .. } | UsrStep::SsoResponse { .. } | UsrStep::CircleTicket { .. } => AuthScheme::Sso,
        }
    }
}

/// How the client names the list version it has cached in `SYN`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SyncVersion {
    /// MSNP2-9: one serial number.
    Serial(u32),
    /// MSNP10+: the list and settings time stamps (or `0`).
    Timestamps(String, String),
}

/// What an `ADC` (MSNP10+) names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AdcTarget {
    /// `N=handle [F=friendly]`: put someone on a list.
    Handle { handle: String, friendly: Option<String> },
    /// `C=contact-guid group-guid`: put a forward-list contact into a group.
    Group { contact_guid: String, group_guid: String },
}

/// A request to a dispatch or notification server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NsRequest {
    Ver {
        trid: TrId,
        dialects: Vec<String>,
    },
    Inf {
        trid: TrId,
    },
    Cvr {
        trid: TrId,
        args: Vec<String>,
    },
    Usr {
        trid: TrId,
        step: UsrStep,
    },
    Syn {
        trid: TrId,
        version: SyncVersion,
    },
    Lst {
        trid: TrId,
        list: ListKind,
    },
    Lsg {
        trid: TrId,
    },
    Gtc {
        trid: TrId,
        mode: PromptMode,
    },
    Blp {
        trid: TrId,
        mode: PrivacyMode,
    },
    /// `ADD` (MSNP2-9); `group` is the numeric group of MSNP7+ forward-list adds.
    Add {
        trid: TrId,
        list: ListKind,
        handle: String,
        friendly: String,
        group: Option<u32>,
    },
    /// `ADC` (MSNP10+).
    Adc {
        trid: TrId,
        list: ListKind,
        target: AdcTarget,
    },
    /// `REM`: `target` is a handle, or in MSNP10+ forward lists a contact
    /// GUID; `group` a group id (MSNP7-9) or GUID (MSNP10+).
    Rem {
        trid: TrId,
        list: ListKind,
        target: String,
        group: Option<String>,
    },
    Adg {
        trid: TrId,
        name: String,
    },
    Rmg {
        trid: TrId,
        group: String,
    },
    Reg {
        trid: TrId,
        group: String,
        name: String,
    },
    /// `PRP type [value]`; the value is URL-decoded.
    Prp {
        trid: TrId,
        kind: String,
        value: Option<String>,
    },
    /// `SBP contact-guid type value` (MSNP10+).
    Sbp {
        trid: TrId,
        contact_guid: String,
        kind: String,
        value: String,
    },
    Chg {
        trid: TrId,
        state: OnlineState,
        client_id: Option<u32>,
        /// The extended capabilities (`caps:capsEx`, MSNP16+; 0 without).
        extended_caps: u32,
        msn_object: Option<String>,
    },
    Rea {
        trid: TrId,
        handle: String,
        friendly: String,
    },
    /// `XFR trid SB`; other targets are refused by the parser.
    XfrSb {
        trid: TrId,
    },
    Qry {
        trid: TrId,
        product_id: String,
        payload: Bytes,
    },
    Uux {
        trid: TrId,
        payload: Bytes,
    },
    Gcf {
        trid: TrId,
        file: String,
    },
    Url {
        trid: TrId,
        service: String,
    },
    Sdc {
        trid: TrId,
    },
    Snd {
        trid: TrId,
        email: String,
    },
    Ims {
        trid: TrId,
        on: bool,
    },
    Fnd {
        trid: TrId,
    },
    /// `ADL trid length` with the XML list payload (MSNP13+): contacts put
    /// on lists, or the whole list the client shows after sign-in.
    Adl {
        trid: TrId,
        payload: Bytes,
    },
    /// `RML trid length`: contacts taken off lists (MSNP13+).
    Rml {
        trid: TrId,
        payload: Bytes,
    },
    /// `FQY trid length`: which network the named contacts are on (MSNP14+).
    Fqy {
        trid: TrId,
        payload: Bytes,
    },
    /// `UUN trid handle type length`: a notification to another user's
    /// client (MSNP13+).
    Uun {
        trid: TrId,
        to: Address,
        kind: u32,
        payload: Bytes,
    },
    /// `UUM trid handle network type length`: a message to a user of
    /// another network or offline (MSNP14+).
    Uum {
        trid: TrId,
        to: String,
        network: u32,
        kind: u32,
        payload: Bytes,
    },
    /// `PUT trid length` (MSNP18): a routed publication, to a circle
    /// (the member's roster entry, the circle's presence).
    Put {
        trid: TrId,
        payload: Bytes,
    },
    /// `SDG trid length` (MSNP18): a routed message, said in a circle.
    Sdg {
        trid: TrId,
        payload: Bytes,
    },
    /// `DEL trid length` (MSNP18+): a routed withdrawal, of oneself from a
    /// group conversation's roster.
    Del {
        trid: TrId,
        payload: Bytes,
    },
    Png,
    Out,
    /// A client may never send `MSG` to a notification server: the request is
    /// parsed only so that the server can close the connection.
    Msg {
        trid: Option<TrId>,
    },
}

impl NsRequest {
    /// Parses one frame received by a dispatch or notification server, in the
    /// shape of the connection's dialect.
    pub fn parse(frame: &Frame, dialect: Dialect) -> Result<NsRequest, ParseError> {
        let a = Args::new(frame);
        let payload = || frame.payload.clone().unwrap_or_default();
        Ok(match a.verb {
            "OUT" => NsRequest::Out,
            "PNG" => NsRequest::Png,
            "MSG" => NsRequest::Msg { trid: a.trid },
            "VER" => {
                let trid = a.trid()?;
                a.get(1)?;
                NsRequest::Ver { trid, dialects: a.owned_from(1) }
            }
            "INF" => NsRequest::Inf { trid: a.trid()? },
            "CVR" => NsRequest::Cvr { trid: a.trid()?, args: a.owned_from(1) },
            "USR" => {
                let trid = a.trid()?;
                let step = match (a.get(1)?, a.get(2)?) {
                    ("MD5", "I") => UsrStep::Md5Initiate { handle: a.get(3)?.to_string() },
                    ("MD5", "S") => UsrStep::Md5Response { response: a.get(3)?.to_string() },
                    ("TWN", "I") => UsrStep::TwnInitiate { handle: a.get(3)?.to_string() },
                    ("TWN", "S") => UsrStep::TwnResponse { ticket: a.get(3)?.to_string() },
                    ("SSO", "I") => UsrStep::SsoInitiate { handle: a.get(3)?.to_string() },
                    ("SSO", "S") => UsrStep::SsoResponse {
                        ticket: a.get(3)?.to_string(),
                        blob: a.get(4)?.to_string(),
                        machine: match a.opt(5) {
                            Some(g) => Some(MachineGuid::parse(g).ok_or(err(a.trid, ErrorCode::AuthenticationFailed))?),
                            None => None,
                        },
                    },
                    ("SHA", "A") if dialect.has_circles() => UsrStep::CircleTicket { ticket: a.get(3)?.to_string() },
                    _ => return Err(a.invalid()),
                };
                NsRequest::Usr { trid, step }
            }
            "SYN" => {
                let trid = a.trid()?;
                let version = if dialect.uses_guids() {
                    SyncVersion::Timestamps(a.get(1)?.to_string(), a.opt(2).unwrap_or("0").to_string())
                } else {
                    SyncVersion::Serial(a.number(1)?)
                };
                NsRequest::Syn { trid, version }
            }
            "LST" => NsRequest::Lst { trid: a.trid()?, list: a.list(1)? },
            "LSG" => NsRequest::Lsg { trid: a.trid()? },
            "GTC" => NsRequest::Gtc { trid: a.trid()?, mode: PromptMode::from_code(a.get(1)?).ok_or(a.invalid())? },
            "BLP" => NsRequest::Blp { trid: a.trid()?, mode: PrivacyMode::from_code(a.get(1)?).ok_or(a.invalid())? },
            "ADD" => {
                let trid = a.trid()?;
                let list = a.list(1)?;
                let group = match (dialect.has_groups() && list == ListKind::Forward, a.opt(4)) {
                    (true, Some(g)) => Some(parse_trid(g).ok_or(a.invalid())?),
                    _ => None,
                };
                NsRequest::Add { trid, list, handle: a.get(2)?.to_string(), friendly: a.friendly(3)?, group }
            }
            "ADC" => {
                let trid = a.trid()?;
                let list = a.list(1)?;
                let first = a.get(2)?;
                let target = if let Some(guid) = first.strip_prefix("C=") {
                    AdcTarget::Group { contact_guid: guid.to_string(), group_guid: a.get(3)?.to_string() }
                } else if let Some(handle) = first.strip_prefix("N=") {
                    let friendly = match a.opt(3).and_then(|f| f.strip_prefix("F=")) {
                        Some(f) => Some(decode_friendly(f).map_err(|code| err(a.trid, code))?),
                        None => None,
                    };
                    AdcTarget::Handle { handle: handle.to_string(), friendly }
                } else {
                    return Err(a.invalid());
                };
                NsRequest::Adc { trid, list, target }
            }
            "REM" => {
                let trid = a.trid()?;
                let list = a.list(1)?;
                let target = a.get(2)?;
                let target = target.strip_prefix("N=").unwrap_or(target).to_string();
                NsRequest::Rem { trid, list, target, group: a.opt(3).map(str::to_string) }
            }
            "ADG" => NsRequest::Adg { trid: a.trid()?, name: a.group_name(1)? },
            "RMG" => NsRequest::Rmg { trid: a.trid()?, group: a.get(1)?.to_string() },
            "REG" => NsRequest::Reg { trid: a.trid()?, group: a.get(1)?.to_string(), name: a.group_name(2)? },
            "PRP" => {
                let trid = a.trid()?;
                let kind = a.get(1)?.to_string();
                let value = match a.opt(2) {
                    Some(v) => Some(urlencode::decode(v).map_err(|_| a.invalid())?),
                    None => None,
                };
                NsRequest::Prp { trid, kind, value }
            }
            "SBP" => NsRequest::Sbp {
                trid: a.trid()?,
                contact_guid: a.get(1)?.to_string(),
                kind: a.get(2)?.to_string(),
                value: a.get(3)?.to_string(),
            },
            "CHG" => {
                let trid = a.trid()?;
                let state = OnlineState::from_code(a.get(1)?).ok_or(a.invalid())?;
                // `caps:capsEx` is MSNP16's form, but aMSN 0.99 sends it
                // with MSNP15 too: it is taken in every dialect.
                let caps = match a.opt(2) {
                    Some(c) => Some(Capabilities::parse_in(c, dialect).ok_or(a.invalid())?),
                    None => None,
                };
                NsRequest::Chg {
                    trid,
                    state,
                    client_id: caps.map(|c| c.basic),
                    extended_caps: caps.map_or(0, |c| c.extended),
                    msn_object: a.opt(3).map(str::to_string),
                }
            }
            "REA" => NsRequest::Rea { trid: a.trid()?, handle: a.get(1)?.to_string(), friendly: a.friendly(2)? },
            "XFR" => {
                let trid = a.trid()?;
                match a.get(1)? {
                    "SB" => NsRequest::XfrSb { trid },
                    _ => return Err(a.invalid()),
                }
            }
            "QRY" => NsRequest::Qry { trid: a.trid()?, product_id: a.get(1)?.to_string(), payload: payload() },
            "UUX" => NsRequest::Uux { trid: a.trid()?, payload: payload() },
            "GCF" => NsRequest::Gcf { trid: a.trid()?, file: a.get(1)?.to_string() },
            "URL" => NsRequest::Url { trid: a.trid()?, service: a.get(1)?.to_string() },
            "SDC" => NsRequest::Sdc { trid: a.trid()? },
            "SND" => NsRequest::Snd { trid: a.trid()?, email: a.get(1)?.to_string() },
            "IMS" => NsRequest::Ims {
                trid: a.trid()?,
                on: match a.get(1)? {
                    "ON" => true,
                    "OFF" => false,
                    _ => return Err(a.invalid()),
                },
            },
            "FND" => NsRequest::Fnd { trid: a.trid()? },
            "ADL" => NsRequest::Adl { trid: a.trid()?, payload: payload() },
            "RML" => NsRequest::Rml { trid: a.trid()?, payload: payload() },
            "FQY" => NsRequest::Fqy { trid: a.trid()?, payload: payload() },
            "UUN" => {
                let trid = a.trid()?;
                let to = Address::parse(a.get(1)?).ok_or(a.invalid())?;
                NsRequest::Uun { trid, to, kind: a.number(2)?, payload: payload() }
            }
            "PUT" if dialect.has_circles() => NsRequest::Put { trid: a.trid()?, payload: payload() },
            "SDG" if dialect.has_circles() => NsRequest::Sdg { trid: a.trid()?, payload: payload() },
            "DEL" if dialect.has_circles() => NsRequest::Del { trid: a.trid()?, payload: payload() },
            "UUM" => NsRequest::Uum {
                trid: a.trid()?,
                to: a.get(1)?.to_string(),
                network: a.number(2)?,
                kind: a.number(3)?,
                payload: payload(),
            },
            _ => return Err(err(a.trid, ErrorCode::SyntaxError)),
        })
    }

    /// The request's TrID, for error replies.
    pub fn trid(&self) -> Option<TrId> {
        use NsRequest::*;
        match self {
            Ver { trid, .. }
            | Inf { trid }
            | Cvr { trid, .. }
            | Usr { trid, .. }
            | Syn { trid, .. }
            | Lst { trid, .. }
            | Lsg { trid }
            | Gtc { trid, .. }
            | Blp { trid, .. }
            | Add { trid, .. }
            | Adc { trid, .. }
            | Rem { trid, .. }
            | Adg { trid, .. }
            | Rmg { trid, .. }
            | Reg { trid, .. }
            | Prp { trid, .. }
            | Sbp { trid, .. }
            | Chg { trid, .. }
            | Rea { trid, .. }
            | XfrSb { trid }
            | Qry { trid, .. }
            | Uux { trid, .. }
            | Gcf { trid, .. }
            | Url { trid, .. }
            | Sdc { trid }
            | Snd { trid, .. }
            | Ims { trid, .. }
            | Fnd { trid }
            | Adl { trid, .. }
            | Rml { trid, .. }
            | Fqy { trid, .. }
            | Uun { trid, .. }
            | Uum { trid, .. }
            | Put { trid, .. }
            | Sdg { trid, .. }
            | Del { trid, .. } => Some(*trid),
            Msg { trid } => *trid,
            Png | Out => None,
        }
    }
}

/// Builds a frame: `line`, plus the payload length for payload commands.
fn frame(line: String, payload: Option<&Bytes>) -> Frame {
    match payload {
        Some(p) => Frame { line: format!("{line} {}", p.len()), payload: Some(p.clone()) },
        None => Frame { line, payload: None },
    }
}

impl NsRequest {
    /// Encodes the request as a client sends it in `dialect`: the inverse of
    /// [`NsRequest::parse`] for every request that dialect can carry.
    pub fn to_frame(&self, dialect: Dialect) -> Frame {
        use NsRequest::*;
        let enc = urlencode::encode;
        let line = match self {
            Out => "OUT".to_string(),
            Png => "PNG".to_string(),
            // A TrID that is absent travels as an unreadable one.
            Msg { trid } => {
                let trid = trid.map_or("-".to_string(), |t| t.to_string());
                return frame(format!("MSG {trid}"), Some(&Bytes::new()));
            }
            Ver { trid, dialects } => format!("VER {trid} {}", dialects.join(" ")),
            Inf { trid } => format!("INF {trid}"),
            Cvr { trid, args } => format!("CVR {trid} {}", args.join(" ")),
            Usr { trid, step } => match step {
                UsrStep::Md5Initiate { handle } => format!("USR {trid} MD5 I {handle}"),
                UsrStep::Md5Response { response } => format!("USR {trid} MD5 S {response}"),
                UsrStep::TwnInitiate { handle } => format!("USR {trid} TWN I {handle}"),
                UsrStep::TwnResponse { ticket } => format!("USR {trid} TWN S {ticket}"),
                UsrStep::SsoInitiate { handle } => format!("USR {trid} SSO I {handle}"),
                UsrStep::SsoResponse { ticket, blob, machine: None } => format!("USR {trid} SSO S {ticket} {blob}"),
                UsrStep::SsoResponse { ticket, blob, machine: Some(g) } => {
                    format!("USR {trid} SSO S {ticket} {blob} {g}")
                }
                UsrStep::CircleTicket { ticket } => format!("USR {trid} SHA A {ticket}"),
            },
            Syn { trid, version } => match version {
                SyncVersion::Serial(serial) if !dialect.uses_guids() => format!("SYN {trid} {serial}"),
                SyncVersion::Serial(serial) => format!("SYN {trid} {serial} 0"),
                SyncVersion::Timestamps(list, settings) => format!("SYN {trid} {list} {settings}"),
            },
            Lst { trid, list } => format!("LST {trid} {}", list.code()),
            Lsg { trid } => format!("LSG {trid}"),
            Gtc { trid, mode } => format!("GTC {trid} {}", mode.code()),
            Blp { trid, mode } => format!("BLP {trid} {}", mode.code()),
            Add { trid, list, handle, friendly, group } => {
                let mut line = format!("ADD {trid} {} {handle} {}", list.code(), enc(friendly));
                if let Some(g) = group {
                    line.push_str(&format!(" {g}"));
                }
                line
            }
            Adc { trid, list, target } => match target {
                AdcTarget::Handle { handle, friendly: Some(f) } => {
                    format!("ADC {trid} {} N={handle} F={}", list.code(), enc(f))
                }
                AdcTarget::Handle { handle, friendly: None } => format!("ADC {trid} {} N={handle}", list.code()),
                AdcTarget::Group { contact_guid, group_guid } => {
                    format!("ADC {trid} {} C={contact_guid} {group_guid}", list.code())
                }
            },
            Rem { trid, list, target, group } => {
                let mut line = format!("REM {trid} {} {target}", list.code());
                if let Some(g) = group {
                    line.push_str(&format!(" {g}"));
                }
                line
            }
            Adg { trid, name } => format!("ADG {trid} {} 0", enc(name)),
            Rmg { trid, group } => format!("RMG {trid} {group}"),
            Reg { trid, group, name } => format!("REG {trid} {group} {} 0", enc(name)),
            Prp { trid, kind, value: Some(v) } => format!("PRP {trid} {kind} {}", enc(v)),
            Prp { trid, kind, value: None } => format!("PRP {trid} {kind}"),
            Sbp { trid, contact_guid, kind, value } => format!("SBP {trid} {contact_guid} {kind} {value}"),
            Chg { trid, state, client_id, extended_caps, msn_object } => {
                let mut line = format!("CHG {trid} {}", state.code());
                if let Some(id) = client_id {
                    let caps = Capabilities { basic: *id, extended: *extended_caps };
                    if dialect.capabilities_with_extended() {
                        line.push_str(&format!(" {}", caps.with_extended()));
                    } else {
                        line.push_str(&format!(" {id}"));
                    }
                    if let Some(o) = msn_object {
                        line.push_str(&format!(" {o}"));
                    }
                }
                line
            }
            Rea { trid, handle, friendly } => format!("REA {trid} {handle} {}", enc(friendly)),
            XfrSb { trid } => format!("XFR {trid} SB"),
            Qry { trid, product_id, payload } => return frame(format!("QRY {trid} {product_id}"), Some(payload)),
            Uux { trid, payload } => return frame(format!("UUX {trid}"), Some(payload)),
            Gcf { trid, file } => format!("GCF {trid} {file}"),
            Url { trid, service } => format!("URL {trid} {service}"),
            Sdc { trid } => return frame(format!("SDC {trid}"), Some(&Bytes::new())),
            Snd { trid, email } => format!("SND {trid} {email}"),
            Ims { trid, on } => format!("IMS {trid} {}", if *on { "ON" } else { "OFF" }),
            Fnd { trid } => format!("FND {trid}"),
            Adl { trid, payload } => return frame(format!("ADL {trid}"), Some(payload)),
            Rml { trid, payload } => return frame(format!("RML {trid}"), Some(payload)),
            Fqy { trid, payload } => return frame(format!("FQY {trid}"), Some(payload)),
            Uun { trid, to, kind, payload } => return frame(format!("UUN {trid} {to} {kind}"), Some(payload)),
            Uum { trid, to, network, kind, payload } => {
                return frame(format!("UUM {trid} {to} {network} {kind}"), Some(payload));
            }
            Put { trid, payload } => return frame(format!("PUT {trid}"), Some(payload)),
            Sdg { trid, payload } => return frame(format!("SDG {trid}"), Some(payload)),
            Del { trid, payload } => return frame(format!("DEL {trid}"), Some(payload)),
        };
        frame(line, None)
    }
}

/// A request to a switchboard server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SbRequest {
    /// `USR trid handle[;{guid}] cookie`: the caller opens a new session
    /// (MSNP16+ name their endpoint).
    Usr {
        trid: TrId,
        handle: Address,
        cookie: String,
    },
    /// `ANS trid handle[;{guid}] cookie session-id`: an invitee joins.
    Ans {
        trid: TrId,
        handle: Address,
        cookie: String,
        session_id: SessionId,
    },
    Cal {
        trid: TrId,
        handle: String,
    },
    Msg {
        trid: TrId,
        ack: AckMode,
        payload: Bytes,
    },
    /// `OUT`, and the `BYE` some clients send instead.
    Out,
}

impl SbRequest {
    /// Parses one frame received by a switchboard server.
    pub fn parse(frame: &Frame) -> Result<SbRequest, ParseError> {
        let a = Args::new(frame);
        Ok(match a.verb {
            "OUT" | "BYE" => SbRequest::Out,
            "USR" => SbRequest::Usr { trid: a.trid()?, handle: a.address(1)?, cookie: a.get(2)?.to_string() },
            "ANS" => SbRequest::Ans {
                trid: a.trid()?,
                handle: a.address(1)?,
                cookie: a.get(2)?.to_string(),
                session_id: a.get(3)?.parse().map_err(|_| err(a.trid, ErrorCode::AuthenticationFailed))?,
            },
            "CAL" => SbRequest::Cal { trid: a.trid()?, handle: a.get(1)?.to_string() },
            "MSG" => SbRequest::Msg {
                trid: a.trid()?,
                ack: AckMode::from_code(a.get(1)?).ok_or(a.invalid())?,
                payload: frame.payload.clone().unwrap_or_default(),
            },
            _ => return Err(err(a.trid, ErrorCode::SyntaxError)),
        })
    }
}

impl SbRequest {
    /// Encodes the request as a client sends it: the inverse of
    /// [`SbRequest::parse`].
    pub fn to_frame(&self) -> Frame {
        match self {
            SbRequest::Out => frame("OUT".to_string(), None),
            SbRequest::Usr { trid, handle, cookie } => frame(format!("USR {trid} {handle} {cookie}"), None),
            SbRequest::Ans { trid, handle, cookie, session_id } => {
                frame(format!("ANS {trid} {handle} {cookie} {session_id}"), None)
            }
            SbRequest::Cal { trid, handle } => frame(format!("CAL {trid} {handle}"), None),
            SbRequest::Msg { trid, ack, payload } => frame(format!("MSG {trid} {}", ack.code()), Some(payload)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ns(line: &str) -> Result<NsRequest, ParseError> {
        NsRequest::parse(&Frame { line: line.into(), payload: None }, Dialect::Msnp2)
    }

    fn ns_in(line: &str, d: Dialect) -> Result<NsRequest, ParseError> {
        NsRequest::parse(&Frame { line: line.into(), payload: None }, d)
    }

    #[test]
    fn later_dialect_shapes() {
        assert_eq!(
            ns_in("ADD 3 FL bob@x.com Bob 2", Dialect::Msnp7).unwrap(),
            NsRequest::Add {
                trid: 3,
                list: ListKind::Forward,
                handle: "bob@x.com".into(),
                friendly: "Bob".into(),
                group: Some(2)
            }
        );
        assert!(matches!(ns("ADD 3 FL bob@x.com Bob 2").unwrap(), NsRequest::Add { group: None, .. }));
        assert_eq!(
            ns_in("SYN 5 0 0", Dialect::Msnp11).unwrap(),
            NsRequest::Syn { trid: 5, version: SyncVersion::Timestamps("0".into(), "0".into()) }
        );
        assert_eq!(
            ns_in("ADC 10 FL N=dave@x.com F=Dave%20D", Dialect::Msnp11).unwrap(),
            NsRequest::Adc {
                trid: 10,
                list: ListKind::Forward,
                target: AdcTarget::Handle { handle: "dave@x.com".into(), friendly: Some("Dave D".into()) }
            }
        );
        assert_eq!(
            ns_in("ADC 12 FL C=abc def", Dialect::Msnp11).unwrap(),
            NsRequest::Adc {
                trid: 12,
                list: ListKind::Forward,
                target: AdcTarget::Group { contact_guid: "abc".into(), group_guid: "def".into() }
            }
        );
        assert!(
            matches!(ns_in("REM 2 AL N=a@b.c", Dialect::Msnp12).unwrap(), NsRequest::Rem { ref target, .. } if target == "a@b.c")
        );
        assert_eq!(
            ns_in(&format!("ADG 3 {} 0", "g".repeat(62)), Dialect::Msnp7).unwrap_err().code,
            ErrorCode::GroupNameTooLong
        );
        assert_eq!(
            ns_in("PRP 4 PHH 555%20123", Dialect::Msnp5).unwrap(),
            NsRequest::Prp { trid: 4, kind: "PHH".into(), value: Some("555 123".into()) }
        );
    }

    #[test]
    fn parses_the_draft_commands() {
        assert_eq!(
            ns("VER 1 MSNP2 CVR0").unwrap(),
            NsRequest::Ver { trid: 1, dialects: vec!["MSNP2".into(), "CVR0".into()] }
        );
        assert_eq!(
            ns("USR 6 MD5 I alice@hotmail.com").unwrap(),
            NsRequest::Usr { trid: 6, step: UsrStep::Md5Initiate { handle: "alice@hotmail.com".into() } }
        );
        assert_eq!(
            ns("ADD 10 FL carol@hotmail.com Carol%20C").unwrap(),
            NsRequest::Add {
                trid: 10,
                list: ListKind::Forward,
                handle: "carol@hotmail.com".into(),
                friendly: "Carol C".into(),
                group: None
            }
        );
        assert_eq!(
            ns("CHG 9 NLN").unwrap(),
            NsRequest::Chg { trid: 9, state: OnlineState::Online, client_id: None, extended_caps: 0, msn_object: None }
        );
        // aMSN 0.99's MSNP15 sends MSNP16's `caps:capsEx`: taken, and the
        // extended part passed over until MSNP16, where it is kept.
        let chg = |extended_caps| NsRequest::Chg {
            trid: 11,
            state: OnlineState::Online,
            client_id: Some(2147778596),
            extended_caps,
            msn_object: None,
        };
        assert_eq!(ns("CHG 11 NLN 2147778596:48").unwrap(), chg(0));
        let frame = Frame { line: "CHG 11 NLN 2147778596:48".into(), payload: None };
        assert_eq!(NsRequest::parse(&frame, Dialect::Msnp18).unwrap(), chg(48));
        assert_eq!(ns("XFR 12 SB").unwrap(), NsRequest::XfrSb { trid: 12 });
        assert_eq!(ns("OUT").unwrap(), NsRequest::Out);
    }

    #[test]
    fn errors_carry_the_trid_and_code() {
        assert_eq!(ns("FOO 7").unwrap_err(), ParseError { trid: Some(7), code: ErrorCode::SyntaxError });
        assert_eq!(
            ns("ADD 8 XL a@b.c a").unwrap_err(),
            ParseError { trid: Some(8), code: ErrorCode::InvalidParameter }
        );
        assert_eq!(ns("ADD 8 FL").unwrap_err(), ParseError { trid: Some(8), code: ErrorCode::SyntaxError });
        assert_eq!(ns("CHG 9 XYZ").unwrap_err().code, ErrorCode::InvalidParameter);
        assert_eq!(ns("SYN x 0").unwrap_err(), ParseError { trid: None, code: ErrorCode::SyntaxError });
        assert_eq!(ns("SYN 4294967296 0").unwrap_err().trid, None);
        assert_eq!(ns("REA 3 a@b.c %ZZ").unwrap_err().code, ErrorCode::InvalidFriendlyName);
        let long = format!("REA 3 a@b.c {}", "a".repeat(388));
        assert_eq!(ns(&long).unwrap_err().code, ErrorCode::InvalidFriendlyName);
        assert_eq!(ns("REA 3 a@b.c a%0Ab").unwrap_err().code, ErrorCode::InvalidFriendlyName);
    }

    #[test]
    fn switchboard_requests() {
        let f = Frame { line: "MSG 3 N 2".into(), payload: Some(Bytes::from_static(b"hi")) };
        assert_eq!(
            SbRequest::parse(&f).unwrap(),
            SbRequest::Msg { trid: 3, ack: AckMode::NegativeOnly, payload: Bytes::from_static(b"hi") }
        );
        let f = Frame { line: "ANS 1 bob@x.com 123.456 11752013".into(), payload: None };
        assert!(
            matches!(SbRequest::parse(&f).unwrap(), SbRequest::Ans { session_id, .. } if session_id.number() == Some(11752013))
        );
        let f = Frame { line: "MSG 3 n 2".into(), payload: Some(Bytes::from_static(b"hi")) };
        assert_eq!(SbRequest::parse(&f).unwrap_err().code, ErrorCode::InvalidParameter);
    }

    #[test]
    fn another_servers_hex_session_id_is_echoed_as_it_came() {
        // Escargot's switchboard sessions are hex strings; a client answers
        // `RNG` with the id it was given.
        let id: SessionId = "36a43fa8ff336cd75fb6f41b0fce29d".parse().unwrap();
        let ans = SbRequest::Ans { trid: 1, handle: Address::user("bob@x.com"), cookie: "c".into(), session_id: id };
        let frame = ans.to_frame();
        assert_eq!(frame.line, "ANS 1 bob@x.com c 36a43fa8ff336cd75fb6f41b0fce29d");
        assert_eq!(SbRequest::parse(&frame).unwrap(), ans);
        assert!("".parse::<SessionId>().is_err() && "a b".parse::<SessionId>().is_err());
        assert!("x".repeat(65).parse::<SessionId>().is_err());
    }
}
