//! What a server sends, encoded in the shape of the connection's dialect.
//!
//! Every difference between dialects in what the server says lives here, in
//! [`Reply::encode`]; the server logic builds dialect-neutral values. Names
//! are held decoded and URL-encoded on the way out.

use std::fmt::Write as _;

use bytes::{BufMut, Bytes, BytesMut};

use crate::dialect::Dialect;
use crate::error::ErrorCode;
use crate::types::{ListKind, OnlineState, PrivacyMode, PromptMode, TrId};
use crate::urlencode::encode;

/// Why the server ends a session with `OUT`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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
pub struct PresenceLine {
    pub state: OnlineState,
    pub handle: String,
    pub friendly: String,
    pub client_id: u32,
    pub msn_object: Option<String>,
}

/// One server-to-client command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// `VER trid dialect`, or `VER trid 0` when no dialect is shared.
    Ver {
        trid: TrId,
        dialect: Option<Dialect>,
    },
    Inf {
        trid: TrId,
        packages: &'static [&'static str],
    },
    Cvr {
        trid: TrId,
        recommended: String,
        minimum: String,
        download_url: String,
        info_url: String,
    },
    /// `USR trid MD5 S challenge` (or `TWN S`).
    UsrChallenge {
        trid: TrId,
        package: &'static str,
        challenge: String,
    },
    /// Notification server login success.
    UsrOk {
        trid: TrId,
        handle: String,
        friendly: String,
    },
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
    Syn {
        trid: TrId,
        serial: u32,
    },
    Gtc {
        trid: TrId,
        serial: u32,
        mode: PromptMode,
    },
    Blp {
        trid: TrId,
        serial: u32,
        mode: PrivacyMode,
    },
    /// One list item; `item` is `None` for the `0 0` line of an empty list.
    Lst {
        trid: TrId,
        list: ListKind,
        serial: u32,
        index: usize,
        total: usize,
        item: Option<(String, String)>,
    },
    Add {
        trid: TrId,
        list: ListKind,
        serial: u32,
        handle: String,
        friendly: String,
    },
    Rem {
        trid: TrId,
        list: ListKind,
        serial: u32,
        handle: String,
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
        session_id: u32,
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
        session_id: u32,
    },
    Iro {
        trid: TrId,
        index: usize,
        total: usize,
        handle: String,
        friendly: String,
        client_id: u32,
    },
    AnsOk {
        trid: TrId,
    },
    Joi {
        handle: String,
        friendly: String,
        client_id: u32,
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

    /// Encodes the command (line, CRLF, payload) into `out`.
    pub fn encode(&self, dialect: Dialect, out: &mut BytesMut) {
        let mut line = String::with_capacity(64);
        // Writing into a String cannot fail.
        let _ = self.write_line(dialect, &mut line);
        out.reserve(line.len() + 2);
        out.put_slice(line.as_bytes());
        out.put_slice(b"\r\n");
        if let Reply::Msg { payload, .. } = self {
            out.put_slice(payload);
        }
    }

    /// Encodes into a fresh buffer.
    pub fn to_bytes(&self, dialect: Dialect) -> Bytes {
        let mut out = BytesMut::new();
        self.encode(dialect, &mut out);
        out.freeze()
    }

    fn write_line(&self, dialect: Dialect, line: &mut String) -> std::fmt::Result {
        let serial = |s: u32| {
            if dialect.replies_carry_serial() { format!(" {s}") } else { String::new() }
        };
        match self {
            Reply::Ver { trid, dialect: Some(d) } => write!(line, "VER {trid} {d}"),
            Reply::Ver { trid, dialect: None } => write!(line, "VER {trid} 0"),
            Reply::Inf { trid, packages } => write!(line, "INF {trid} {}", packages.join(",")),
            Reply::Cvr { trid, recommended, minimum, download_url, info_url } => {
                write!(line, "CVR {trid} {recommended} {recommended} {minimum} {download_url} {info_url}")
            }
            Reply::UsrChallenge { trid, package, challenge } => write!(line, "USR {trid} {package} S {challenge}"),
            Reply::UsrOk { trid, handle, friendly } => {
                write!(line, "USR {trid} OK {handle}")?;
                if dialect < Dialect::Msnp10 {
                    write!(line, " {}", encode(friendly))?;
                }
                if dialect >= Dialect::Msnp8 {
                    write!(line, " 1 0")
                } else if dialect.usr_ok_has_verified_flag() {
                    write!(line, " 1")
                } else {
                    Ok(())
                }
            }
            Reply::SbUsrOk { trid, handle, friendly } => write!(line, "USR {trid} OK {handle} {}", encode(friendly)),
            Reply::XfrNs { trid, address, current } => {
                write!(line, "XFR {trid} NS {address}")?;
                match dialect.xfr_ns_fields() {
                    (true, true) => write!(line, " 0 {current}"),
                    (true, false) => write!(line, " 0"),
                    _ => Ok(()),
                }
            }
            Reply::XfrSb { trid, address, cookie } => write!(line, "XFR {trid} SB {address} CKI {cookie}"),
            Reply::Syn { trid, serial } => write!(line, "SYN {trid} {serial}"),
            Reply::Gtc { trid, serial: s, mode } => write!(line, "GTC {trid}{} {}", serial(*s), mode.code()),
            Reply::Blp { trid, serial: s, mode } => write!(line, "BLP {trid}{} {}", serial(*s), mode.code()),
            Reply::Lst { trid, list, serial, index, total, item } => match item {
                Some((handle, friendly)) => {
                    write!(line, "LST {trid} {list} {serial} {index} {total} {handle} {}", encode(friendly))
                }
                None => write!(line, "LST {trid} {list} {serial} 0 0"),
            },
            Reply::Add { trid, list, serial: s, handle, friendly } => {
                write!(line, "ADD {trid} {list}{} {handle} {}", serial(*s), encode(friendly))
            }
            Reply::Rem { trid, list, serial: s, handle } => write!(line, "REM {trid} {list}{} {handle}", serial(*s)),
            Reply::Rea { trid, serial: s, handle, friendly } => {
                write!(line, "REA {trid}{} {handle} {}", serial(*s), encode(friendly))
            }
            Reply::Chg { trid, state, client_id, msn_object } => {
                write!(line, "CHG {trid} {state}")?;
                if dialect.presence_has_client_id() {
                    write!(line, " {}", client_id.unwrap_or(0))?;
                    if let (true, Some(obj)) = (dialect.presence_has_msn_object(), msn_object) {
                        write!(line, " {obj}")?;
                    }
                }
                Ok(())
            }
            Reply::Iln { trid, presence } => {
                write!(line, "ILN {trid} ")?;
                presence_fields(line, dialect, presence)
            }
            Reply::Nln { presence } => {
                line.push_str("NLN ");
                presence_fields(line, dialect, presence)
            }
            Reply::Fln { handle } => write!(line, "FLN {handle}"),
            Reply::Rng { session_id, address, cookie, caller, caller_friendly } => {
                write!(line, "RNG {session_id} {address} CKI {cookie} {caller} {}", encode(caller_friendly))
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
            Reply::Error { code, trid: Some(t) } => write!(line, "{} {t}", code.code()),
            Reply::Error { code, trid: None } => write!(line, "{}", code.code()),
            Reply::CalRinging { trid, session_id } => {
                write!(line, "CAL {trid} RINGING {session_id}")
            }
            Reply::Iro { trid, index, total, handle, friendly, client_id } => {
                write!(line, "IRO {trid} {index} {total} {handle} {}", encode(friendly))?;
                if dialect >= Dialect::Msnp12 {
                    write!(line, " {client_id}")?;
                }
                Ok(())
            }
            Reply::AnsOk { trid } => write!(line, "ANS {trid} OK"),
            Reply::Joi { handle, friendly, client_id } => {
                write!(line, "JOI {handle} {}", encode(friendly))?;
                if dialect >= Dialect::Msnp12 {
                    write!(line, " {client_id}")?;
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

fn presence_fields(line: &mut String, dialect: Dialect, p: &PresenceLine) -> std::fmt::Result {
    write!(line, "{} {} {}", p.state, p.handle, encode(&p.friendly))?;
    if dialect.presence_has_client_id() {
        write!(line, " {}", p.client_id)?;
        if let (true, Some(obj)) = (dialect.presence_has_msn_object(), &p.msn_object) {
            write!(line, " {obj}")?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(r: Reply, d: Dialect) -> String {
        String::from_utf8(r.to_bytes(d).to_vec()).unwrap()
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
        assert_eq!(text(Reply::Gtc { trid: 8, serial: 3, mode: PromptMode::Ask }, d), "GTC 8 3 A\r\n");
        let p = PresenceLine {
            state: OnlineState::Away,
            handle: "bob@hotmail.com".into(),
            friendly: "Bob".into(),
            client_id: 32,
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
            text(Reply::Blp { trid: 2, serial: 9, mode: PrivacyMode::BlockUnlisted }, Dialect::Msnp10),
            "BLP 2 BL\r\n"
        );
        assert_eq!(text(Reply::Qng { interval: 50 }, Dialect::Msnp2), "QNG\r\n");
        assert_eq!(text(Reply::Qng { interval: 50 }, Dialect::Msnp9), "QNG 50\r\n");
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
