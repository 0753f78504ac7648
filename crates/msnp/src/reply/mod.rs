//! What a server sends, in both directions: [`Reply::encode`] writes a
//! dialect-neutral value in the shape of the connection's dialect (the
//! server's side), [`Reply::parse`] reads it back (the client's side).
//!
//! Every difference between dialects in what the server says lives in
//! `encode.rs` and its inverse in `parse.rs`. Names are held decoded and
//! URL-encoded on the wire.

mod encode;
mod parse;

use bytes::{BufMut, Bytes, BytesMut};

pub use parse::MalformedReply;

use crate::dialect::{AuthScheme, Dialect};
use crate::error::ErrorCode;
use crate::types::{ListKind, OnlineState, PrivacyMode, PromptMode, SessionId, TrId};

/// Why the server ends a session with `OUT`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum OutReason {
    /// The same account signed in elsewhere.
    OtherLogin,
    /// The server is shutting down.
    ServerShutdown,
}

impl OutReason {
    pub fn code(self) -> &'static str {
        match self {
            OutReason::OtherLogin => "OTH",
            OutReason::ServerShutdown => "SSD",
        }
    }
}

/// A contact's presence as carried by `ILN` and `NLN`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct PresenceLine {
    pub state: OnlineState,
    pub handle: String,
    pub friendly: String,
    pub client_id: u32,
    /// The extended capabilities, printed after a colon from MSNP16.
    #[cfg_attr(feature = "serde", serde(default))]
    pub extended_caps: u32,
    pub msn_object: Option<String>,
}

/// A list item of MSNP2-7 `LST`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LstItem {
    pub handle: String,
    pub friendly: String,
    /// Group ids of a forward-list entry (printed from MSNP7; `0` if none).
    pub groups: Vec<u32>,
}

/// A group as both naming schemes see it: the number of MSNP7-9 and the
/// GUID of MSNP10+.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupRef {
    pub id: u32,
    pub guid: String,
    pub name: String,
}

/// One contact of a MSNP8+ `SYN` batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncContact {
    pub handle: String,
    pub friendly: String,
    /// The contact GUID (`C=`), sent for forward-list contacts in MSNP10+.
    pub guid: String,
    /// List bits: FL=1, AL=2, BL=4, RL=8.
    pub bits: u8,
    pub group_ids: Vec<u32>,
    pub group_guids: Vec<String>,
}

/// One server-to-client command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// `VER trid dialect`, or `VER trid 0` when no dialect is shared.
    Ver {
        trid: TrId,
        dialect: Option<Dialect>,
    },
    /// The security packages the server offers (MSNP2-7).
    Inf {
        trid: TrId,
        packages: Vec<AuthScheme>,
    },
    Cvr {
        trid: TrId,
        recommended: String,
        minimum: String,
        download_url: String,
        info_url: String,
    },
    /// `USR trid MD5 S challenge` (or `TWN S`); single sign-on has
    /// [`Reply::UsrSsoChallenge`].
    UsrChallenge {
        trid: TrId,
        package: AuthScheme,
        challenge: String,
    },
    /// `USR trid SSO S policy nonce` (MSNP15+): get a ticket for the
    /// messenger service under `policy`, and prove its key over `nonce`.
    UsrSsoChallenge {
        trid: TrId,
        policy: String,
        nonce: String,
    },
    /// Notification server login success.
    UsrOk {
        trid: TrId,
        handle: String,
        friendly: String,
    },
    /// `SBS 0 null`, which MSNP11+ sends right after a successful login.
    Sbs,
    /// Switchboard login success: `USR trid OK handle friendly` in every dialect.
    SbUsrOk {
        trid: TrId,
        handle: String,
        friendly: String,
    },
    XfrNs {
        trid: TrId,
        address: String,
        current: String,
    },
    XfrSb {
        trid: TrId,
        address: String,
        cookie: String,
    },
    /// The `SYN` reply: the serial (MSNP2-9) or time stamps (MSNP10+), and
    /// from MSNP8 the contact and group counts (absent when nothing follows).
    Syn {
        trid: TrId,
        serial: u32,
        timestamp: String,
        counts: Option<(usize, usize)>,
    },
    /// `in_sync`: a line of a `SYN` batch rather than the reply to `GTC`.
    Gtc {
        trid: TrId,
        serial: u32,
        mode: PromptMode,
        in_sync: bool,
    },
    Blp {
        trid: TrId,
        serial: u32,
        mode: PrivacyMode,
        in_sync: bool,
    },
    /// A phone number or other property of mine; `value` is decoded text.
    Prp {
        trid: TrId,
        serial: u32,
        kind: String,
        value: Option<String>,
        in_sync: bool,
    },
    /// A contact's property; in a `SYN` batch of MSNP8+ it follows its `LST`.
    Bpr {
        serial: u32,
        handle: String,
        kind: String,
        value: Option<String>,
        in_sync: bool,
    },
    /// One list item of MSNP2-7; `item` is `None` for the `0 0` line of an
    /// empty list.
    Lst {
        trid: TrId,
        list: ListKind,
        serial: u32,
        index: usize,
        total: usize,
        item: Option<LstItem>,
    },
    /// One contact of a MSNP8+ `SYN` batch, with its list bits.
    SyncContact(SyncContact),
    /// A group: in a `SYN` batch, or in reply to MSNP7's `LSG`.
    Lsg {
        trid: TrId,
        serial: u32,
        index: usize,
        total: usize,
        group: GroupRef,
        in_sync: bool,
    },
    /// `ADD` (MSNP2-9) or `ADC` (MSNP10+) putting someone on a list.
    Add {
        trid: TrId,
        list: ListKind,
        serial: u32,
        handle: String,
        friendly: String,
        group: Option<u32>,
        guid: Option<String>,
    },
    /// A forward-list contact put into a group.
    AddToGroup {
        trid: TrId,
        serial: u32,
        handle: String,
        friendly: String,
        guid: String,
        group: GroupRef,
    },
    /// `REM`: `group` when only a group membership is removed.
    Rem {
        trid: TrId,
        list: ListKind,
        serial: u32,
        handle: String,
        guid: Option<String>,
        group: Option<GroupRef>,
    },
    Adg {
        trid: TrId,
        serial: u32,
        group: GroupRef,
    },
    Rmg {
        trid: TrId,
        serial: u32,
        group: GroupRef,
    },
    Reg {
        trid: TrId,
        serial: u32,
        group: GroupRef,
    },
    /// `SBP` echo (arguments as the client sent them).
    Sbp {
        trid: TrId,
        contact_guid: String,
        kind: String,
        value: String,
    },
    /// `CHL 0 challenge`
    Chl {
        challenge: String,
    },
    /// `QRY trid`: the challenge answer was accepted.
    QryOk {
        trid: TrId,
    },
    /// `UUX trid 0`
    Uux {
        trid: TrId,
    },
    /// A contact's personal message.
    Ubx {
        handle: String,
        payload: Bytes,
    },
    Gcf {
        trid: TrId,
        file: String,
        payload: Bytes,
    },
    /// `GCF 0 length`: the policy document MSNP13+ servers send at login.
    Policies {
        payload: Bytes,
    },
    /// `ADL trid OK`: the lists in an `ADL` were taken.
    AdlOk {
        trid: TrId,
    },
    /// `RML trid OK`.
    RmlOk {
        trid: TrId,
    },
    /// `ADL 0 length` / `RML 0 length`: someone put me on, or took me off,
    /// their list (MSNP13+); the payload names them with `l="8"`.
    ReverseListChange {
        added: bool,
        payload: Bytes,
    },
    /// `FQY trid length`: the networks of the contacts asked about.
    Fqy {
        trid: TrId,
        payload: Bytes,
    },
    /// `UUN trid OK`.
    UunOk {
        trid: TrId,
    },
    /// `UBN handle[;{guid}] type length`: a notification from another
    /// user's client; from one of its endpoints where the dialect names
    /// them (MSNP16+).
    Ubn {
        from: crate::endpoint::Address,
        kind: u32,
        payload: Bytes,
    },
    /// `NOT length`: a notification document (the address book changed).
    Not {
        payload: Bytes,
    },
    /// `NFY PUT length` / `NFY DEL length` (MSNP18): a routed
    /// notification, of a circle's roster and presence or of someone
    /// leaving it.
    Nfy {
        removal: bool,
        payload: Bytes,
    },
    /// `SDG 0 length` (MSNP18): a routed message, said in a circle.
    Sdg {
        payload: Bytes,
    },
    /// `PUT trid OK length`: the publication was taken; the payload (a
    /// routed message) names what it made, when it made something (a group
    /// conversation, MSNP21), and is empty otherwise.
    PutOk {
        trid: TrId,
        payload: Bytes,
    },
    /// `DEL trid OK 0`: the withdrawal was taken.
    DelOk {
        trid: TrId,
    },
    Url {
        trid: TrId,
        rru: String,
        url: String,
        id: u32,
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
    Rea {
        trid: TrId,
        serial: u32,
        handle: String,
        friendly: String,
    },
    Chg {
        trid: TrId,
        state: OnlineState,
        client_id: Option<u32>,
        extended_caps: u32,
        msn_object: Option<String>,
    },
    Iln {
        trid: TrId,
        presence: PresenceLine,
    },
    Nln {
        presence: PresenceLine,
    },
    Fln {
        handle: String,
    },
    Rng {
        session_id: SessionId,
        address: String,
        cookie: String,
        caller: String,
        caller_friendly: String,
    },
    Out {
        reason: Option<OutReason>,
    },
    Qng {
        interval: u32,
    },
    Error {
        code: ErrorCode,
        trid: Option<TrId>,
    },
    /// `CAL trid RINGING session-id`
    CalRinging {
        trid: TrId,
        session_id: SessionId,
    },
    Iro {
        trid: TrId,
        index: usize,
        total: usize,
        handle: String,
        friendly: String,
        client_id: u32,
        extended_caps: u32,
    },
    AnsOk {
        trid: TrId,
    },
    Joi {
        handle: String,
        friendly: String,
        client_id: u32,
        extended_caps: u32,
    },
    Bye {
        handle: String,
        idle: bool,
    },
    Ack {
        trid: TrId,
    },
    Nak {
        trid: TrId,
    },
    /// `MSG handle friendly length` followed by the payload.
    Msg {
        handle: String,
        friendly: String,
        payload: Bytes,
    },
}

impl Reply {
    /// Shorthand for an error reply to a request.
    pub fn error(code: ErrorCode, trid: TrId) -> Reply {
        Reply::Error { code, trid: Some(trid) }
    }

    /// The TrID of the request this answers; `Some(0)` on the server's own
    /// notifications that carry one (`ADD 0 RL`), `None` where the shape
    /// has none.
    pub fn trid(&self) -> Option<TrId> {
        use Reply::*;
        match self {
            Ver { trid, .. }
            | Inf { trid, .. }
            | Cvr { trid, .. }
            | UsrChallenge { trid, .. }
            | UsrSsoChallenge { trid, .. }
            | AdlOk { trid }
            | RmlOk { trid }
            | Fqy { trid, .. }
            | UunOk { trid }
            | PutOk { trid, .. }
            | DelOk { trid }
            | UsrOk { trid, .. }
            | SbUsrOk { trid, .. }
            | XfrNs { trid, .. }
            | XfrSb { trid, .. }
            | Syn { trid, .. }
            | Lst { trid, .. }
            | Add { trid, .. }
            | AddToGroup { trid, .. }
            | Rem { trid, .. }
            | Adg { trid, .. }
            | Rmg { trid, .. }
            | Reg { trid, .. }
            | Sbp { trid, .. }
            | QryOk { trid }
            | Uux { trid }
            | Gcf { trid, .. }
            | Url { trid, .. }
            | Sdc { trid }
            | Snd { trid, .. }
            | Ims { trid, .. }
            | Rea { trid, .. }
            | Chg { trid, .. }
            | Iln { trid, .. }
            | CalRinging { trid, .. }
            | Iro { trid, .. }
            | AnsOk { trid }
            | Ack { trid }
            | Nak { trid } => Some(*trid),
            Gtc { trid, in_sync, .. }
            | Blp { trid, in_sync, .. }
            | Prp { trid, in_sync, .. }
            | Lsg { trid, in_sync, .. } => (!*in_sync).then_some(*trid),
            Error { trid, .. } => *trid,
            Sbs
            | Bpr { .. }
            | SyncContact(_)
            | Chl { .. }
            | Policies { .. }
            | ReverseListChange { .. }
            | Ubn { .. }
            | Not { .. }
            | Nfy { .. }
            | Sdg { .. }
            | Ubx { .. }
            | Nln { .. }
            | Fln { .. }
            | Rng { .. }
            | Out { .. }
            | Qng { .. }
            | Joi { .. }
            | Bye { .. }
            | Msg { .. } => None,
        }
    }

    /// Encodes the command (line, CRLF, payload) into `out`.
    pub fn encode(&self, dialect: Dialect, out: &mut BytesMut) {
        let mut line = String::with_capacity(64);
        // Writing into a String cannot fail.
        let _ = self.write_line(dialect, &mut line);
        out.reserve(line.len() + 2);
        out.put_slice(line.as_bytes());
        out.put_slice(b"\r\n");
        if let Reply::Msg { payload, .. }
        | Reply::Ubx { payload, .. }
        | Reply::Gcf { payload, .. }
        | Reply::Policies { payload }
        | Reply::ReverseListChange { payload, .. }
        | Reply::Fqy { payload, .. }
        | Reply::Ubn { payload, .. }
        | Reply::Nfy { payload, .. }
        | Reply::PutOk { payload, .. }
        | Reply::Sdg { payload }
        | Reply::Not { payload } = self
        {
            out.put_slice(payload);
        }
    }

    /// Encodes into a fresh buffer.
    pub fn to_bytes(&self, dialect: Dialect) -> Bytes {
        let mut out = BytesMut::new();
        self.encode(dialect, &mut out);
        out.freeze()
    }
}
