//! Numeric protocol error codes (draft 7.11 and later dialects).
//!
//! Errors travel as `NNN trid`; the text the draft allows after the number is
//! never sent because no client reads it.

/// A protocol error code. The discriminant is the number on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u16)]
pub enum ErrorCode {
    SyntaxError = 200,
    InvalidParameter = 201,
    InvalidUser = 205,
    FqdnMissing = 206,
    AlreadyLoggedIn = 207,
    InvalidUsername = 208,
    InvalidFriendlyName = 209,
    ListFull = 210,
    AlreadyThere = 215,
    NotOnList = 216,
    /// The invitee is offline or does not accept invitations (later dialects).
    NotOnline = 217,
    AlreadyInMode = 218,
    AlreadyInOppositeList = 219,
    TooManyGroups = 223,
    InvalidGroup = 224,
    NotInGroup = 225,
    GroupExists = 228,
    GroupNameTooLong = 229,
    CannotRemoveGroupZero = 230,
    /// An `ADL`/`RML`/`FQY` payload that is not the list document (MSNP13+).
    BadListXml = 240,
    /// A list document naming a list or domain it may not (MSNP13+).
    InvalidListXml = 241,
    SwitchboardFailed = 280,
    NotifyXfrFailed = 281,
    P2pNotDelivered = 282,
    /// `UUN` of an application type the server does not relay (MSNP13+).
    UnknownApplication = 283,
    RequiredFieldsMissing = 300,
    NotLoggedIn = 302,
    InternalServer = 500,
    DbServer = 501,
    CommandDisabled = 502,
    ChallengeFailed = 540,
    ServerBusy = 600,
    ServerUnavailable = 601,
    PeerNsDown = 602,
    DbConnect = 603,
    ServerGoingDown = 604,
    CreateConnection = 707,
    BadCvr = 710,
    BlockingWrite = 711,
    SessionOverload = 712,
    UserTooActive = 713,
    TooManySessions = 714,
    NotExpected = 715,
    BadFriendFile = 717,
    /// Too many endpoints (points of presence) of one account (MSNP16+).
    TooManyEndpoints = 734,
    ChangingTooRapidly = 800,
    AuthenticationFailed = 911,
    NotAllowedWhenOffline = 913,
    NotAcceptingNewUsers = 920,
    /// A circle the sender is not a member of, or has not been admitted to
    /// with `USR SHA A` (MSNP18).
    InvalidCircleMembership = 933,
}

impl ErrorCode {
    /// The number sent on the wire.
    pub fn code(self) -> u16 {
        self as u16
    }

    /// The code for a number, if it is one this crate names.
    pub fn from_code(code: u16) -> Option<ErrorCode> {
        use ErrorCode::*;
        const ALL: [ErrorCode; 50] = [
            SyntaxError,
            InvalidParameter,
            InvalidUser,
            FqdnMissing,
            AlreadyLoggedIn,
            InvalidUsername,
            InvalidFriendlyName,
            ListFull,
            AlreadyThere,
            NotOnList,
            NotOnline,
            AlreadyInMode,
            AlreadyInOppositeList,
            TooManyGroups,
            InvalidGroup,
            NotInGroup,
            GroupExists,
            GroupNameTooLong,
            CannotRemoveGroupZero,
            BadListXml,
            InvalidListXml,
            SwitchboardFailed,
            NotifyXfrFailed,
            P2pNotDelivered,
            UnknownApplication,
            RequiredFieldsMissing,
            NotLoggedIn,
            InternalServer,
            DbServer,
            CommandDisabled,
            ChallengeFailed,
            ServerBusy,
            ServerUnavailable,
            PeerNsDown,
            DbConnect,
            ServerGoingDown,
            CreateConnection,
            BadCvr,
            BlockingWrite,
            SessionOverload,
            UserTooActive,
            TooManySessions,
            NotExpected,
            BadFriendFile,
            TooManyEndpoints,
            ChangingTooRapidly,
            AuthenticationFailed,
            NotAllowedWhenOffline,
            NotAcceptingNewUsers,
            InvalidCircleMembership,
        ];
        ALL.into_iter().find(|e| e.code() == code)
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({:?})", self.code(), self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip() {
        for n in 0..1000u16 {
            if let Some(e) = ErrorCode::from_code(n) {
                assert_eq!(e.code(), n);
            }
        }
        assert_eq!(ErrorCode::from_code(911), Some(ErrorCode::AuthenticationFailed));
        assert_eq!(ErrorCode::AlreadyInOppositeList.code(), 219);
    }
}
