//! Protocol dialects and the differences between them, as data.
//!
//! The server and client ask a [`Dialect`] what shape to use rather than
//! comparing version numbers all over their logic.

use std::fmt;

/// One MSNP protocol version, as negotiated by `VER`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum Dialect {
    // Numbered as named: the number is the version (MSNP19 and 20 were
    // never served by anyone and are not named).
    Msnp2 = 2,
    Msnp3,
    Msnp4,
    Msnp5,
    Msnp6,
    Msnp7,
    Msnp8,
    Msnp9,
    Msnp10,
    Msnp11,
    Msnp12,
    Msnp13,
    Msnp14,
    Msnp15,
    Msnp16,
    Msnp17,
    Msnp18,
    /// Windows Live Messenger 2011 and 2012: no switchboard, presence and
    /// chat as routed documents (`PUT`, `NFY`, `SDG`).
    Msnp21 = 21,
}

/// How a client authenticates to the notification server in a dialect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthScheme {
    /// `USR MD5`: challenge-response over the password (MSNP2-7).
    Md5,
    /// `USR TWN`: a Passport ticket fetched over HTTPS (MSNP8-14).
    Twn,
    /// `USR SSO`: single sign-on, a ticket from the RST service and a
    /// proof of its session key over the server's nonce (MSNP15+).
    Sso,
}

impl AuthScheme {
    /// The security package as `USR` names it.
    pub const fn package(self) -> &'static str {
        match self {
            AuthScheme::Md5 => "MD5",
            AuthScheme::Twn => "TWN",
            AuthScheme::Sso => "SSO",
        }
    }

    /// The scheme `USR` or `INF` names.
    pub fn from_package(name: &str) -> Option<AuthScheme> {
        [AuthScheme::Md5, AuthScheme::Twn, AuthScheme::Sso].into_iter().find(|s| s.package() == name)
    }
}

impl Dialect {
    /// Every dialect this crate can name, oldest first.
    pub const ALL: [Dialect; 18] = [
        Dialect::Msnp2,
        Dialect::Msnp3,
        Dialect::Msnp4,
        Dialect::Msnp5,
        Dialect::Msnp6,
        Dialect::Msnp7,
        Dialect::Msnp8,
        Dialect::Msnp9,
        Dialect::Msnp10,
        Dialect::Msnp11,
        Dialect::Msnp12,
        Dialect::Msnp13,
        Dialect::Msnp14,
        Dialect::Msnp15,
        Dialect::Msnp16,
        Dialect::Msnp17,
        Dialect::Msnp18,
        Dialect::Msnp21,
    ];

    /// The version number: 2 for MSNP2.
    pub fn number(self) -> u8 {
        self as u8
    }

    /// Parses a dialect name as offered in `VER`; names are case-insensitive
    /// (draft 7.1). Pseudo-dialects such as `CVR0` yield `None`.
    pub fn from_name(name: &str) -> Option<Dialect> {
        let digits = name.get(..4).filter(|p| p.eq_ignore_ascii_case("MSNP")).map(|_| &name[4..])?;
        if digits.is_empty() || digits.len() > 2 || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let n: u8 = digits.parse().ok()?;
        Dialect::ALL.into_iter().find(|d| d.number() == n)
    }

    /// The login scheme of this dialect.
    pub fn auth_scheme(self) -> AuthScheme {
        if self >= Dialect::Msnp15 {
            AuthScheme::Sso
        } else if self >= Dialect::Msnp8 {
            AuthScheme::Twn
        } else {
            AuthScheme::Md5
        }
    }

    /// Whether `INF` (security package query) exists.
    pub fn has_inf(self) -> bool {
        self <= Dialect::Msnp7
    }

    /// Whether list replies (`ADD`, `REM`, `GTC`, `BLP`, `REA`, ...) carry the
    /// list serial number. MSNP10 dropped it.
    pub fn replies_carry_serial(self) -> bool {
        self <= Dialect::Msnp9
    }

    /// Whether a `BLP` or `GTC` that repeats the current mode is answered
    /// like a change (MSNP8+) rather than with 218 (MSNP2-7, draft 7.6).
    /// libpurple's MSN plugins send back the mode they were given at every
    /// sign-in and ran against the official MSNP9-12 service for years.
    pub fn echoes_repeated_mode(self) -> bool {
        self >= Dialect::Msnp8
    }

    /// Whether putting someone on the allow or block list while they are on
    /// the other is accepted (MSNP10+) rather than refused with 219:
    /// clients of these dialects block with `ADC BL` first and `REM AL`
    /// after. The block takes effect at once either way.
    pub fn accepts_add_to_opposite_list(self) -> bool {
        self >= Dialect::Msnp10
    }

    /// Whether `USR ... OK` ends with the "verified" flag (MSNP6+).
    pub fn usr_ok_has_verified_flag(self) -> bool {
        self >= Dialect::Msnp6
    }

    /// Whether `XFR ... NS` carries the trailing `0` (MSNP3+) and the current
    /// server address (MSNP7+).
    pub fn xfr_ns_fields(self) -> (bool, bool) {
        (self >= Dialect::Msnp3, self >= Dialect::Msnp7)
    }

    /// Whether presence lines carry the client capability id (MSNP8+).
    pub fn presence_has_client_id(self) -> bool {
        self >= Dialect::Msnp8
    }

    /// Whether the dispatch server's `XFR ... NS` ends with `U D` and the
    /// client's redirect blob with its count raised (MSNP21).
    pub fn xfr_ns_carries_redirect_blob(self) -> bool {
        self >= Dialect::Msnp21
    }

    /// Whether presence travels as user documents (MSNP21): the client
    /// publishes with `PUT` to `/user`, and is told of contacts by
    /// `NFY PUT` and `NFY DEL` instead of `ILN`, `NLN`, `FLN` and `UBX`.
    pub fn presence_in_documents(self) -> bool {
        self >= Dialect::Msnp21
    }

    /// Whether the account's endpoints are shown in `UBX` documents, its
    /// own empty one first after sign-in (MSNP16-18; MSNP21 shows them in
    /// its user documents).
    pub fn shows_endpoints_in_ubx(self) -> bool {
        self.has_points_of_presence() && !self.presence_in_documents()
    }

    /// Whether the dialect has switchboards (all but MSNP21, which chats
    /// with `SDG` through the notification server).
    pub fn has_switchboard(self) -> bool {
        self < Dialect::Msnp21
    }

    /// Whether presence lines may carry an MSN object (MSNP9+).
    pub fn presence_has_msn_object(self) -> bool {
        self >= Dialect::Msnp9
    }

    /// Whether `QNG` carries the seconds until the next ping (MSNP9+).
    pub fn qng_has_interval(self) -> bool {
        self >= Dialect::Msnp9
    }

    /// Whether contacts belong to groups (MSNP7+).
    pub fn has_groups(self) -> bool {
        self >= Dialect::Msnp7
    }

    /// Whether groups and contacts are named by GUIDs (`ABCHMigrated`, MSNP10+)
    /// rather than numbers.
    pub fn uses_guids(self) -> bool {
        self >= Dialect::Msnp10
    }

    /// Whether phone numbers (`PRP`, `BPR`) exist (MSNP5+).
    pub fn has_phones(self) -> bool {
        self >= Dialect::Msnp5
    }

    /// Whether `SYN` answers in the MSNP8 shape: counts, and list lines
    /// without TrIDs, serials or iterators.
    pub fn has_compact_sync(self) -> bool {
        self >= Dialect::Msnp8
    }

    /// Whether the personal message (`UUX`/`UBX`) exists (MSNP11+).
    pub fn has_personal_message(self) -> bool {
        self >= Dialect::Msnp11
    }

    /// Whether the client can present its sign-in's `MSPAuth` token to the
    /// web services (offline messages over SOAP): the Passport dialects.
    pub fn has_web_services(self) -> bool {
        self >= Dialect::Msnp8
    }

    /// Whether the lists live in the SOAP address book and membership
    /// services (MSNP13+): no `SYN`, `LST`, `LSG`, `GTC` or `SBP`; the
    /// client fetches them over HTTP and sends `ADL` with what it shows.
    pub fn lists_over_soap(self) -> bool {
        self >= Dialect::Msnp13
    }

    /// Whether the server sends its policy document (`GCF 0`) on its own
    /// before the login challenge (MSNP13+).
    pub fn sends_policies_at_login(self) -> bool {
        self >= Dialect::Msnp13
    }

    /// Whether `XFR ... SB` and `RNG` end with the authentication kind and
    /// the service's host name (`U messenger.msn.com`, MSNP13+).
    pub fn switchboard_referral_names_host(self) -> bool {
        self >= Dialect::Msnp13
    }

    /// Whether `XFR ... SB` and `RNG` end with the direct-connection flag
    /// (`1`, MSNP14+).
    pub fn switchboard_referral_has_direct_flag(self) -> bool {
        self >= Dialect::Msnp14
    }

    /// Whether presence lines (`NLN`, `ILN`, `FLN`, `UBX`) carry the
    /// contact's network id (`1` for Messenger, MSNP14+), as a field after
    /// the handle (MSNP14-17) or in front of it (MSNP18).
    pub fn presence_has_network_id(self) -> bool {
        self >= Dialect::Msnp14
    }

    /// Whether handles in presence lines carry the network in front
    /// (`1:alice@example.com`, MSNP18) rather than as a field after.
    pub fn prefixes_network_to_handles(self) -> bool {
        self >= Dialect::Msnp18
    }

    /// Whether a contact's presence sent in answer to a request (a sign-in's
    /// first `CHG`, an `ADL`) is `ILN trid` (MSNP8-17) rather than a plain
    /// `NLN` (MSNP18).
    pub fn initial_presence_as_iln(self) -> bool {
        self < Dialect::Msnp18
    }

    /// Whether `NLN` always ends with an MSN object field, `0` when the
    /// contact has none (MSNP18): bitlbee 3.2.2, written against the
    /// service, drops the connection on a shorter `NLN`.
    pub fn presence_always_names_msn_object(self) -> bool {
        self >= Dialect::Msnp18
    }

    /// Whether the dialect has circles (MSNP18): `USR SHA A` with the
    /// address book's circle ticket, circles in `ADL` as network 9, and
    /// `PUT`/`NFY`/`SDG` to speak in them.
    pub fn has_circles(self) -> bool {
        self >= Dialect::Msnp18
    }

    /// Whether one account may be signed in from several machines at once
    /// (MSNP16+): `USR SSO S` names the machine GUID, switchboard users are
    /// `handle;{guid}`, `UBX` lists the endpoints, and `UUN`/`UBN` may
    /// address one endpoint.
    pub fn has_points_of_presence(self) -> bool {
        self >= Dialect::Msnp16
    }

    /// Whether capabilities are written `caps:capsEx` (MSNP16+).
    pub fn capabilities_with_extended(self) -> bool {
        self >= Dialect::Msnp16
    }

    /// Whether someone adding or removing me is told as `ADL 0`/`RML 0`
    /// with an XML payload (MSNP13+) rather than `ADD 0 RL`/`ADC 0 RL`.
    pub fn reverse_list_changes_as_adl(self) -> bool {
        self >= Dialect::Msnp13
    }

    /// Whether offline messages reach the client only through the OIM web
    /// service (MSNP13+: the mail-data notice, then `rsi.asmx`), not also as
    /// a switchboard conversation from a stand-in for the sender: Windows
    /// Live Messenger reads them there, and would show both.
    pub fn reads_offline_messages_over_soap(self) -> bool {
        self >= Dialect::Msnp13
    }

    /// Whether the login profile carries the account fields after
    /// `LoginTime` (MSNP3+; MSNP2's profile is the time alone).
    pub fn profile_has_account_fields(self) -> bool {
        self >= Dialect::Msnp3
    }

    /// Whether the login profile carries `kv` (MSNP8 and 9 only).
    pub fn profile_has_kv(self) -> bool {
        (Dialect::Msnp8..=Dialect::Msnp9).contains(&self)
    }

    /// Whether the login profile carries the client's address as the
    /// server saw it (`ClientIP`, `ClientPort`; MSNP8+).
    pub fn profile_has_client_address(self) -> bool {
        self >= Dialect::Msnp8
    }

    /// Whether the server sends `CHL` challenges (MSNP6+).
    pub fn has_challenges(self) -> bool {
        self >= Dialect::Msnp6
    }

    /// Whether `QRY` answers with the MSNP11 algorithm (MSNP11+) rather than
    /// MD5 of challenge and product key.
    pub fn uses_msnp11_challenge(self) -> bool {
        self >= Dialect::Msnp11
    }

    /// Whether `USR ... OK` carries the friendly name (before MSNP10, which
    /// sends it in the profile's place, with `PRP MFN`).
    pub fn usr_ok_has_friendly(self) -> bool {
        self < Dialect::Msnp10
    }

    /// Whether `USR ... OK` ends with the Passport flags `1 0` (MSNP8+).
    pub fn usr_ok_has_passport_flags(self) -> bool {
        self >= Dialect::Msnp8
    }

    /// Whether a successful login is followed by `SBS 0 null` (MSNP11-18;
    /// bitlbee 3.4, an MSNP21 client, shows it as an unknown command).
    pub fn sends_sbs_after_login(self) -> bool {
        self >= Dialect::Msnp11 && self < Dialect::Msnp21
    }

    /// Whether `LST` lines carry the network id after the list bits (MSNP12+).
    pub fn lst_has_network_id(self) -> bool {
        self >= Dialect::Msnp12
    }

    /// Whether `IRO` and `JOI` carry the participant's client id (MSNP12+).
    pub fn roster_has_client_id(self) -> bool {
        self >= Dialect::Msnp12
    }

    /// Whether `SYN` names two list versions (MSNP10+) rather than a serial.
    pub fn sync_has_two_versions(self) -> bool {
        self >= Dialect::Msnp10
    }

    /// Whether MSNSLP (P2P) runs through the switchboard: display pictures
    /// and P2P file transfer (MSNP9+; before, files go by MSNFTP).
    pub fn has_p2p(self) -> bool {
        self >= Dialect::Msnp9
    }

    /// Whether a client command exists in this dialect (the availability
    /// matrix of the protocol reference). The server answers 502 otherwise.
    pub fn has_command(self, verb: &str) -> bool {
        let n = self.number();
        match verb {
            "VER" | "CVR" | "USR" | "XFR" | "BLP" | "CHG" | "PNG" | "URL" | "OUT" | "MSG" => true,
            "SYN" | "GTC" => n <= 12,
            "INF" | "LST" | "FND" => n <= 7,
            "LSG" => n == 7,
            "REA" | "ADD" => n <= 9,
            // MSNP13+ change lists over SOAP and tell the server with ADL/RML.
            "REM" => n <= 12,
            "ADG" | "RMG" | "REG" => (7..=12).contains(&n),
            "ADC" | "SBP" => (10..=12).contains(&n),
            "ADL" | "RML" | "UUN" => n >= 13,
            "FQY" | "UUM" => n >= 14,
            "PRP" | "SDC" => n >= 5,
            "SND" => n <= 4,
            "IMS" => n >= 3,
            "QRY" => n >= 6,
            "UUX" | "GCF" => n >= 11,
            "PUT" | "SDG" | "DEL" => n >= 18,
            _ => false,
        }
    }
}

impl fmt::Display for Dialect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MSNP{}", self.number())
    }
}

/// Picks the dialect for a connection: the highest one the client offers that
/// the server supports. `None` means the server must answer `VER trid 0`.
pub fn negotiate<'a>(offered: impl IntoIterator<Item = &'a str>, supported: &[Dialect]) -> Option<Dialect> {
    offered.into_iter().filter_map(Dialect::from_name).filter(|d| supported.contains(d)).max()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_case_insensitively() {
        for d in Dialect::ALL {
            assert_eq!(Dialect::from_name(&d.to_string()), Some(d));
            assert_eq!(Dialect::from_name(&d.to_string().to_lowercase()), Some(d));
        }
        assert_eq!(Dialect::from_name("CVR0"), None);
        assert_eq!(Dialect::from_name("MSNP"), None);
        assert_eq!(Dialect::from_name("MSNP99"), None);
        assert_eq!(Dialect::from_name("MSNP+2"), None);
    }

    #[test]
    fn command_availability_follows_the_matrix() {
        assert!(Dialect::Msnp2.has_command("INF"));
        assert!(!Dialect::Msnp8.has_command("INF"));
        assert!(Dialect::Msnp9.has_command("ADD") && !Dialect::Msnp10.has_command("ADD"));
        assert!(Dialect::Msnp10.has_command("ADC") && !Dialect::Msnp9.has_command("ADC"));
        assert!(!Dialect::Msnp6.has_command("ADG") && Dialect::Msnp7.has_command("ADG"));
        assert!(!Dialect::Msnp10.has_command("UUX") && Dialect::Msnp11.has_command("UUX"));
        assert!(!Dialect::Msnp5.has_command("QRY") && Dialect::Msnp6.has_command("QRY"));
        assert!(!Dialect::Msnp2.has_command("XYZ"));
        assert!(Dialect::Msnp18.has_command("ADL") && !Dialect::Msnp18.has_command("SYN"));
    }

    #[test]
    fn negotiation_picks_highest_supported() {
        let supported = [Dialect::Msnp2, Dialect::Msnp3];
        assert_eq!(negotiate(["MSNP4", "MSNP3", "MSNP2", "CVR0"], &supported), Some(Dialect::Msnp3));
        assert_eq!(negotiate(["MSNP2", "MSNP3"], &supported), Some(Dialect::Msnp3));
        assert_eq!(negotiate(["MSNP8", "CVR0"], &supported), None);
        assert_eq!(negotiate([], &supported), None);
    }
}
