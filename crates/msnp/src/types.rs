//! Small wire vocabularies shared by requests and replies.

use std::fmt;

/// A transaction identifier: 0..=2^32-1, chosen by the client (draft 5.6).
pub type TrId = u32;

/// Parses a TrID argument: decimal digits only, within `u32`.
pub fn parse_trid(arg: &str) -> Option<TrId> {
    if arg.is_empty() || arg.len() > 10 || !arg.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    arg.parse().ok()
}

/// The user lists of draft 5.7 (and the pending list of MSNP10+).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum ListKind {
    /// FL: the people whose presence I watch (my contact list).
    Forward,
    /// RL: the people who watch me; maintained by the server only.
    Reverse,
    /// AL: the people I explicitly allow.
    Allow,
    /// BL: the people I explicitly block.
    Block,
    /// PL: people who added me and whom I have not yet answered (MSNP10+).
    Pending,
}

impl ListKind {
    /// The two-letter code on the wire.
    pub fn code(self) -> &'static str {
        match self {
            ListKind::Forward => "FL",
            ListKind::Reverse => "RL",
            ListKind::Allow => "AL",
            ListKind::Block => "BL",
            ListKind::Pending => "PL",
        }
    }

    /// Parses a list code (case-sensitive, like every protocol keyword).
    pub fn from_code(code: &str) -> Option<ListKind> {
        Some(match code {
            "FL" => ListKind::Forward,
            "RL" => ListKind::Reverse,
            "AL" => ListKind::Allow,
            "BL" => ListKind::Block,
            "PL" => ListKind::Pending,
            _ => return None,
        })
    }

    /// The bit of this list in the list bit masks of MSNP8+.
    pub fn bit(self) -> u8 {
        match self {
            ListKind::Forward => 1,
            ListKind::Allow => 2,
            ListKind::Block => 4,
            ListKind::Reverse => 8,
            ListKind::Pending => 16,
        }
    }

    /// The list that may not hold the same person at once (AL vs BL, error 219).
    pub fn opposite(self) -> Option<ListKind> {
        match self {
            ListKind::Allow => Some(ListKind::Block),
            ListKind::Block => Some(ListKind::Allow),
            _ => None,
        }
    }
}

impl fmt::Display for ListKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// The privacy mode set by `BLP` (draft 7.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum PrivacyMode {
    /// `AL`: everyone not on my block list may see me and message me.
    #[default]
    AllowUnlisted,
    /// `BL`: only people on my allow list may.
    BlockUnlisted,
}

impl PrivacyMode {
    pub fn code(self) -> &'static str {
        match self {
            PrivacyMode::AllowUnlisted => "AL",
            PrivacyMode::BlockUnlisted => "BL",
        }
    }

    pub fn from_code(code: &str) -> Option<PrivacyMode> {
        match code {
            "AL" => Some(PrivacyMode::AllowUnlisted),
            "BL" => Some(PrivacyMode::BlockUnlisted),
            _ => None,
        }
    }
}

/// The reverse-list prompt setting of `GTC` (draft 7.6). The server only
/// stores it; the client acts on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum PromptMode {
    /// `A`: ask the user about a new reverse-list entry.
    #[default]
    Ask,
    /// `N`: allow new reverse-list entries without asking.
    DontAsk,
}

impl PromptMode {
    pub fn code(self) -> &'static str {
        match self {
            PromptMode::Ask => "A",
            PromptMode::DontAsk => "N",
        }
    }

    pub fn from_code(code: &str) -> Option<PromptMode> {
        match code {
            "A" => Some(PromptMode::Ask),
            "N" => Some(PromptMode::DontAsk),
            _ => None,
        }
    }
}

/// A user's state (draft 7.7).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum OnlineState {
    Online,
    Busy,
    Idle,
    BeRightBack,
    Away,
    OnThePhone,
    OutToLunch,
    /// Appears offline to everyone but still receives notifications.
    Hidden,
    #[default]
    Offline,
}

impl OnlineState {
    /// Every state, in the order of the reference's table.
    pub const ALL: [OnlineState; 9] = [
        OnlineState::Online,
        OnlineState::Busy,
        OnlineState::Idle,
        OnlineState::BeRightBack,
        OnlineState::Away,
        OnlineState::OnThePhone,
        OnlineState::OutToLunch,
        OnlineState::Hidden,
        OnlineState::Offline,
    ];

    pub fn code(self) -> &'static str {
        match self {
            OnlineState::Online => "NLN",
            OnlineState::Busy => "BSY",
            OnlineState::Idle => "IDL",
            OnlineState::BeRightBack => "BRB",
            OnlineState::Away => "AWY",
            OnlineState::OnThePhone => "PHN",
            OnlineState::OutToLunch => "LUN",
            OnlineState::Hidden => "HDN",
            OnlineState::Offline => "FLN",
        }
    }

    pub fn from_code(code: &str) -> Option<OnlineState> {
        Some(match code {
            "NLN" => OnlineState::Online,
            "BSY" => OnlineState::Busy,
            "IDL" => OnlineState::Idle,
            "BRB" => OnlineState::BeRightBack,
            "AWY" => OnlineState::Away,
            "PHN" => OnlineState::OnThePhone,
            "LUN" => OnlineState::OutToLunch,
            "HDN" => OnlineState::Hidden,
            "FLN" => OnlineState::Offline,
            _ => return None,
        })
    }

    /// Whether others see this user as online (every sub-state of NLN).
    pub fn is_visible(self) -> bool {
        !matches!(self, OnlineState::Hidden | OnlineState::Offline)
    }
}

impl fmt::Display for OnlineState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// The acknowledgement mode of a switchboard `MSG` (draft 8.7).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AckMode {
    /// `U`: no reply at all.
    Unacknowledged,
    /// `N`: `NAK` only when delivery failed.
    NegativeOnly,
    /// `A`: `ACK` on delivery, `NAK` on failure.
    Always,
    /// `D`: P2P data (MSNP9+): `ACK`, or error 282 on failure.
    Data,
}

impl AckMode {
    pub fn code(self) -> &'static str {
        match self {
            AckMode::Unacknowledged => "U",
            AckMode::NegativeOnly => "N",
            AckMode::Always => "A",
            AckMode::Data => "D",
        }
    }

    /// Parses the ack letter; it is case-sensitive on the real service.
    pub fn from_code(code: &str) -> Option<AckMode> {
        Some(match code {
            "U" => AckMode::Unacknowledged,
            "N" => AckMode::NegativeOnly,
            "A" => AckMode::Always,
            "D" => AckMode::Data,
            _ => return None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trid_bounds() {
        assert_eq!(parse_trid("0"), Some(0));
        assert_eq!(parse_trid("4294967295"), Some(u32::MAX));
        assert_eq!(parse_trid("4294967296"), None);
        assert_eq!(parse_trid("-1"), None);
        assert_eq!(parse_trid("+1"), None);
        assert_eq!(parse_trid(""), None);
        assert_eq!(parse_trid("00000000001"), None);
    }

    #[test]
    fn codes_round_trip() {
        for l in [ListKind::Forward, ListKind::Reverse, ListKind::Allow, ListKind::Block, ListKind::Pending] {
            assert_eq!(ListKind::from_code(l.code()), Some(l));
        }
        for s in ["NLN", "BSY", "IDL", "BRB", "AWY", "PHN", "LUN", "HDN", "FLN"] {
            assert_eq!(OnlineState::from_code(s).unwrap().code(), s);
        }
        assert_eq!(ListKind::from_code("fl"), None);
        assert_eq!(AckMode::from_code("a"), None);
    }
}

/// A switchboard session's id as `RNG`, `CAL ... RINGING` and `ANS` carry
/// it. The draft's servers (and msnd) number their sessions; others send
/// hex strings (Escargot: `RNG 36a43fa8ff336cd75fb6f41b0fce29d ...`), and a
/// client only echoes the id back in `ANS`, so it is kept as the token it
/// was: printable, without spaces, at most [`SessionId::MAX_LEN`] bytes.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SessionId(String);

impl SessionId {
    pub const MAX_LEN: usize = 64;

    /// The number, for a server that numbers its sessions.
    pub fn number(&self) -> Option<u32> {
        self.0.parse().ok()
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl From<u32> for SessionId {
    fn from(n: u32) -> SessionId {
        SessionId(n.to_string())
    }
}

impl std::str::FromStr for SessionId {
    type Err = ();

    fn from_str(s: &str) -> Result<SessionId, ()> {
        let token = !s.is_empty() && s.len() <= SessionId::MAX_LEN && s.bytes().all(|b| b.is_ascii_graphic());
        token.then(|| SessionId(s.to_string())).ok_or(())
    }
}

impl std::fmt::Display for SessionId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}
