//! Signing in: the dispatch referral, MD5 (MSNP2-7), Passport (MSNP8-14) or
//! single sign-on (MSNP15+), the login profile, and the lists: `SYN` in
//! every dialect's shape against the cache, or the SOAP address book and
//! `ADL` (MSNP13+).

use std::time::Duration;

use msnp::addressbook::Operation;
use msnp::mime::MimeMessage;
use msnp::request::{NsRequest, SyncVersion};
use msnp::signin::{Action, SignIn, SignInError};
use msnp::{Dialect, ErrorCode, ListKind, Reply};

use crate::cache;
use crate::config::ClientConfig;
use crate::conn::{Conn, ServerKind};
use crate::error::{ClientError, Result};
use crate::http;
use crate::state::{Group, State};

/// A signed-in, synced notification connection.
pub struct LoggedIn {
    pub conn: Conn,
    pub state: State,
    /// The next TrID to use.
    pub next_trid: u32,
}

/// Percent-encodes everything but letters, digits and `-._~`, as Passport
/// clients do for `sign-in` and `pwd`.
fn encode_credential(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// Gets a Passport ticket: the nexus names the login service, which takes the
/// credentials and the server's challenge.
pub async fn passport_ticket(config: &ClientConfig, challenge: &str) -> Result<String> {
    let nexus = config
        .login_url
        .as_deref()
        .ok_or_else(|| ClientError::Protocol("Passport dialects need a login URL (MSN_LOGIN_URL)".into()))?;
    let trust = config.trust_ca.as_deref();
    let answer = http::get(nexus, &[], trust).await?;
    let urls =
        answer.header("PassportURLs").ok_or_else(|| ClientError::Protocol("no PassportURLs from the nexus".into()))?;
    let da_login = urls
        .split(',')
        .find_map(|f| f.trim().strip_prefix("DALogin="))
        .ok_or_else(|| ClientError::Protocol("no DALogin from the nexus".into()))?;
    let login_url = if da_login.starts_with("http") { da_login.to_string() } else { format!("https://{da_login}") };
    let authorization = format!(
        "Passport1.4 OrgVerb=GET,OrgURL=http%3A%2F%2Fmessenger%2Emsn%2Ecom,sign-in={},pwd={},{challenge}",
        encode_credential(&config.account),
        encode_credential(&config.password)
    );
    let answer = http::get(&login_url, &[("Authorization", &authorization)], trust).await?;
    if answer.status == 401 {
        return Err(ClientError::AuthenticationFailed);
    }
    let info = answer
        .header("Authentication-Info")
        .ok_or_else(|| ClientError::Protocol(format!("login service answered {}", answer.status)))?;
    let ticket = info.split("from-PP='").nth(1).ok_or_else(|| ClientError::Protocol("no ticket".into()))?;
    Ok(ticket.split('\'').next().unwrap_or("").to_string())
}

/// What the RST service gave a single sign-on (MSNP15+).
pub struct SsoTokens {
    /// The `messengerclear.live.com` ticket, for `USR ... SSO S`.
    pub messenger: String,
    /// Its session key, which the login blob proves.
    pub secret: Vec<u8>,
    /// The `contacts.msn.com` ticket, for the address book services.
    pub contacts: String,
}

/// The origin of the login service, named by the nexus URL the client
/// is configured with (the RST service and the web services live beside it).
pub(crate) fn login_origin(config: &ClientConfig) -> Result<String> {
    let nexus = config
        .login_url
        .as_deref()
        .ok_or_else(|| ClientError::Protocol("the web services need a login URL (MSN_LOGIN_URL)".into()))?;
    http::origin(nexus).map(str::to_string).ok_or_else(|| ClientError::Protocol(format!("bad login URL {nexus}")))
}

/// Asks the RST service for the messenger and contacts tokens.
pub async fn sso_tokens(config: &ClientConfig, policy: &str) -> Result<SsoTokens> {
    use msnp::passport::{RstFailure, parse_rst_response, rst_request};
    let services = [(msnp::sso::MESSENGER_SERVICE, policy), ("contacts.msn.com", "MBI")];
    let body = rst_request(&config.account, &config.password, &services);
    let url = format!("{}/RST.srf", login_origin(config)?);
    let answer = http::post_soap(&url, "", &body, config.trust_ca.as_deref()).await?;
    match parse_rst_response(&String::from_utf8_lossy(&answer.body)) {
        Ok(tokens) => messenger_and_contacts(&tokens),
        Err(RstFailure::FailedAuthentication) => Err(ClientError::AuthenticationFailed),
        Err(e) => Err(ClientError::Protocol(e.to_string())),
    }
}

/// Picks the messenger's and the address book's tokens out of an RST
/// answer by the service each applies to, as Windows Live Messenger does:
/// their numbers differ between servers (msnd numbers them as asked,
/// `Compact1` the messenger's; Escargot counts the `Passport.NET/tb`
/// request too, so its messenger token is `Compact2`).
fn messenger_and_contacts(tokens: &[msnp::passport::IssuedToken]) -> Result<SsoTokens> {
    let for_service = |service: &str| tokens.iter().find(|t| t.address.eq_ignore_ascii_case(service));
    let messenger =
        for_service(msnp::sso::MESSENGER_SERVICE).ok_or_else(|| ClientError::Protocol("no messenger token".into()))?;
    let secret = messenger.secret.clone().ok_or_else(|| ClientError::Protocol("no session key".into()))?;
    let contacts = for_service("contacts.msn.com").map(|t| t.ticket.clone()).unwrap_or_default();
    Ok(SsoTokens { messenger: messenger.ticket.clone(), secret, contacts })
}

/// One call to the address book or membership service: the answer's
/// envelope, or the fault's code as an error.
pub(crate) async fn address_book(config: &ClientConfig, ticket: &str, op: &Operation) -> Result<String> {
    let url = format!("{}{}", login_origin(config)?, op.path());
    let body = msnp::addressbook::request(ticket, &op.to_xml());
    let answer = http::post_soap(&url, &op.action(), &body, config.trust_ca.as_deref()).await?;
    let text = String::from_utf8_lossy(&answer.body).into_owned();
    if answer.status == 200 {
        return Ok(text);
    }
    let why = msnp::addressbook::Fault::parse(&text).map(|f| f.code().to_string()).unwrap_or(answer.status.to_string());
    Err(ClientError::Protocol(format!("{} refused: {why}", op.name())))
}

/// Fills the state from the membership and address book services
/// (MSNP13+), which hold the lists instead of `SYN`.
pub async fn fetch_lists(config: &ClientConfig, ticket: &str, state: &mut State) -> Result<()> {
    use msnp::addressbook::{parse_ab_find_all_response, parse_find_membership_response};
    let xml = address_book(config, ticket, &Operation::FindMembership { deltas_since: None }).await?;
    let roles = parse_find_membership_response(&xml)
        .ok_or_else(|| ClientError::Protocol("FindMembership answered something else".into()))?;
    for (role, members) in roles {
        let list = role.list();
        for m in members {
            let contact = state.contact_mut(&m.handle);
            contact.handle = m.handle.clone();
            contact.friendly = if m.display_name.is_empty() { m.handle.clone() } else { m.display_name };
            contact.set(list, true);
        }
    }
    let xml = address_book(config, ticket, &Operation::FindAll { deltas_since: None }).await?;
    let book = parse_ab_find_all_response(&xml)
        .ok_or_else(|| ClientError::Protocol("ABFindAll answered something else".into()))?;
    state.groups = book.groups.into_iter().map(|g| Group { id: g.guid, name: g.name }).collect();
    for c in book.contacts {
        if c.is_me {
            state.friendly = c.display_name;
            continue;
        }
        let contact = state.contact_mut(&c.handle);
        contact.handle = c.handle.clone();
        contact.friendly = if c.display_name.is_empty() { c.handle.clone() } else { c.display_name };
        contact.guid = Some(c.guid);
        contact.groups = c.group_guids;
        contact.set(ListKind::Forward, c.messenger_user);
    }
    Ok(())
}

/// The sign-in's web-service token: the login profile's `MSPAuth` (empty
/// when the profile names none, as for MD5 sign-ins).
pub fn profile_web_token(profile: &[u8]) -> String {
    MimeMessage::parse(profile)
        .map_or(String::new(), |p| p.header("MSPAuth").unwrap_or("").trim_end_matches("$$").to_string())
}

/// The ticket the address book is asked with: RST's contacts ticket
/// (MSNP15+), else the login profile's `MSPAuth` (MSNP13 and 14 sign in
/// without RST).
pub fn address_book_ticket(from_rst: String, profile: &[u8]) -> String {
    if from_rst.is_empty() { profile_web_token(profile) } else { from_rst }
}

/// The `ADL` a client sends after fetching its lists: the forward, allow
/// and block lists it shows.
pub fn initial_list_document(state: &State) -> msnp::adl::ListDocument {
    let shown = ListKind::Forward.bit() | ListKind::Allow.bit() | ListKind::Block.bit();
    msnp::adl::ListDocument {
        initial: true,
        contacts: state
            .contacts
            .values()
            .filter(|c| c.lists & shown != 0)
            .map(|c| msnp::adl::ListEntry {
                handle: c.handle.clone(),
                lists: c.lists & shown,
                network: msnp::adl::MESSENGER_NETWORK,
                friendly: None,
            })
            .collect(),
    }
}

/// The words `CVR` sends before the account.
fn client_version() -> [&'static str; 7] {
    ["0x0409", "winnt", "10.0", "i386", "MARIPOSA", env!("CARGO_PKG_VERSION"), "msmsgs"]
}

impl From<SignInError> for ClientError {
    fn from(e: SignInError) -> ClientError {
        match e {
            SignInError::NoCommonDialect => ClientError::NoCommonDialect,
            SignInError::Refused(ErrorCode::AuthenticationFailed) => ClientError::AuthenticationFailed,
            SignInError::Refused(code) => ClientError::Server(code.code()),
            other => ClientError::Protocol(other.to_string()),
        }
    }
}

/// Signs in: connects to the dispatch server, follows its referral, logs in
/// and syncs the lists.
pub async fn sign_in(config: &ClientConfig) -> Result<LoggedIn> {
    let dialect = config.dialect;
    let mut conn = Conn::connect(&config.server, ServerKind::Notification, config).await?;
    let mut signing =
        SignIn::new(dialect, &config.account, &config.password, &client_version()).on_machine(config.machine.clone());
    let mut action = signing.start();
    let mut contacts_ticket = String::new();
    let signed = loop {
        action = match action {
            Action::Send(request) => {
                conn.send(&request, dialect).await?;
                signing.receive(&conn.expect_frame(config.timeout).await?)?
            }
            Action::Receive => signing.receive(&conn.expect_frame(config.timeout).await?)?,
            Action::Connect(address) => {
                conn.shutdown().await;
                conn = Conn::connect(&address, ServerKind::Notification, config).await?;
                signing.connected()
            }
            Action::FetchTicket(challenge) => signing.ticket(passport_ticket(config, &challenge).await?),
            Action::FetchSsoToken { policy } => {
                let tokens = sso_tokens(config, &policy).await?;
                contacts_ticket = tokens.contacts;
                signing.sso_token(tokens.messenger, &tokens.secret, rand::random())
            }
            Action::Done(signed) => break signed,
        };
    };
    let mut trid = signed.next_trid;
    let account_friendly = signed.friendly.unwrap_or_else(|| config.account.clone());
    let profile = signed.profile;

    let mut state = State {
        handle: config.account.clone(),
        friendly: account_friendly,
        dialect: Some(dialect),
        ..State::default()
    };
    state.web_token = profile_web_token(&profile);
    if dialect.lists_over_soap() {
        let contacts_ticket = address_book_ticket(contacts_ticket, &profile);
        fetch_lists(config, &contacts_ticket, &mut state).await?;
        let payload = bytes::Bytes::from(initial_list_document(&state).encode());
        conn.send(&NsRequest::Adl { trid, payload }, dialect).await?;
        trid += 1;
        let answer = loop {
            match Reply::parse(&conn.expect_frame(config.timeout).await?, dialect).map_err(SignInError::from)? {
                // MSNP16+ send the account's own (empty) UBX after the profile.
                Reply::Ubx { .. } => continue,
                other => break other,
            }
        };
        match answer {
            Reply::AdlOk { .. } => {}
            Reply::Error { code, .. } => return Err(ClientError::Server(code.code())),
            other => return Err(ClientError::Protocol(format!("{other:?} answering ADL"))),
        }
        state.web_token = contacts_ticket;
        return Ok(LoggedIn { conn, state, next_trid: trid });
    }
    let cached = config.cache_dir.as_deref().and_then(|d| cache::load(d, &config.account));
    let version = sync_version(dialect, cached.as_ref().map_or("0", |c| c.version.as_str()));
    conn.send(&NsRequest::Syn { trid, version }, dialect).await?;
    trid += 1;
    let syn = match Reply::parse(&conn.expect_frame(config.timeout).await?, dialect).map_err(SignInError::from)? {
        Reply::Error { code, .. } => return Err(ClientError::Server(code.code())),
        Reply::Syn { serial, timestamp, counts, .. } => {
            let version = if dialect.uses_guids() { format!("{timestamp} {timestamp}") } else { serial.to_string() };
            (version, counts)
        }
        other => return Err(ClientError::Protocol(format!("{other:?} answering SYN"))),
    };
    sync(&mut conn, config, dialect, syn, cached, &mut state).await?;
    if let Some(dir) = &config.cache_dir {
        let _ = cache::save(dir, &state);
    }
    Ok(LoggedIn { conn, state, next_trid: trid })
}

/// The list version the cache holds, as `SYN` names it.
/// A cache without a version (written by a session whose lists came from
/// the address book, MSNP13+) asks for everything.
fn sync_version(dialect: Dialect, cached: &str) -> SyncVersion {
    if dialect.uses_guids() {
        let cached = cached.trim();
        let (list, settings) = match cached.split_once(' ') {
            Some((list, settings)) => (list.trim(), settings.trim()),
            None => (cached, cached),
        };
        match (list, settings) {
            ("", _) | (_, "") => SyncVersion::Timestamps("0".into(), "0".into()),
            _ => SyncVersion::Timestamps(list.to_string(), settings.to_string()),
        }
    } else {
        SyncVersion::Serial(cached.parse().unwrap_or(0))
    }
}

/// Reads the `SYN` batch (or takes the cache when the server says it is
/// current): `version` and the counts are what the `SYN` reply said.
async fn sync(
    conn: &mut Conn,
    config: &ClientConfig,
    dialect: Dialect,
    (version, counts): (String, Option<(usize, usize)>),
    cached: Option<cache::ListCache>,
    state: &mut State,
) -> Result<()> {
    let current = match (&cached, dialect.has_compact_sync()) {
        (Some(c), true) => counts.is_none() && c.version == version,
        (Some(c), false) => c.version == version,
        (None, _) => false,
    };
    if current {
        cache::apply(cached.expect("checked"), state);
        state.from_cache = true;
        return Ok(());
    }
    let nothing_stored = version == "0";
    state.list_version = version;
    let mut next = async || -> Result<Reply> {
        let frame = conn.expect_frame(config.timeout).await?;
        Ok(Reply::parse(&frame, dialect).map_err(SignInError::from)?)
    };
    if !dialect.has_compact_sync() {
        if nothing_stored {
            // Nothing stored on the server and nothing cached: empty lists.
            return Ok(());
        }
        // The batch ends with the last line of the reverse list.
        loop {
            let line = next().await?;
            apply_sync_reply(&line, state);
            if let Reply::Lst { list: ListKind::Reverse, index, total, .. } = line
                && index == total
            {
                return Ok(());
            }
        }
    }
    let (contacts, groups) = counts.unwrap_or((0, 0));
    let (mut seen_contacts, mut seen_groups) = (0, 0);
    while seen_contacts < contacts || seen_groups < groups {
        let line = next().await?;
        match line {
            Reply::SyncContact(_) => seen_contacts += 1,
            Reply::Lsg { .. } => seen_groups += 1,
            _ => {}
        }
        apply_sync_reply(&line, state);
    }
    Ok(())
}

/// Applies one line of a `SYN` batch (or a stray one after it) to the state.
pub fn apply_sync_reply(reply: &Reply, state: &mut State) {
    let ids = |ids: &[u32]| ids.iter().map(u32::to_string).collect::<Vec<_>>();
    match reply {
        Reply::Gtc { mode, .. } => state.prompt = *mode,
        Reply::Blp { mode, .. } => state.privacy = *mode,
        Reply::Prp { kind, value: Some(name), .. } if kind == "MFN" => state.friendly = name.clone(),
        Reply::Lsg { group, .. } => {
            let id = if group.guid.is_empty() { group.id.to_string() } else { group.guid.clone() };
            if id != "0" {
                state.groups.retain(|g| g.id != id);
                state.groups.push(Group { id, name: group.name.clone() });
            }
        }
        Reply::SyncContact(c) => {
            let contact = state.contact_mut(&c.handle);
            contact.handle = c.handle.clone();
            contact.friendly = if c.friendly.is_empty() { c.handle.clone() } else { c.friendly.clone() };
            contact.lists = c.bits;
            contact.guid = (!c.guid.is_empty()).then(|| c.guid.clone());
            contact.groups = if c.group_guids.is_empty() { ids(&c.group_ids) } else { c.group_guids.clone() };
        }
        Reply::Lst { list, item: Some(item), .. } => {
            let contact = state.contact_mut(&item.handle);
            contact.handle = item.handle.clone();
            contact.friendly = item.friendly.clone();
            contact.set(*list, true);
            if *list == ListKind::Forward {
                contact.groups = ids(&item.groups);
            }
        }
        _ => {}
    }
}

/// The interval a `QNG` asks for, or the default ping interval.
pub fn ping_interval(interval: u32) -> Duration {
    Duration::from_secs(if interval > 5 { u64::from(interval) } else { 50 })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cache_without_a_version_asks_for_everything() {
        let fresh = SyncVersion::Timestamps("0".into(), "0".into());
        assert_eq!(sync_version(Dialect::Msnp11, ""), fresh);
        assert_eq!(sync_version(Dialect::Msnp11, " "), fresh);
        assert_eq!(sync_version(Dialect::Msnp11, "a b"), SyncVersion::Timestamps("a".into(), "b".into()));
        assert_eq!(sync_version(Dialect::Msnp7, ""), SyncVersion::Serial(0));
    }

    #[test]
    fn sso_tokens_are_found_by_their_service_whatever_their_numbers() {
        use msnp::passport::IssuedToken;
        let token = |address: &str, id: &str, ticket: &str, secret: Option<Vec<u8>>| IssuedToken {
            address: address.into(),
            id: id.into(),
            ticket: ticket.into(),
            secret,
        };
        // Escargot's numbering: the Passport.NET/tb request counted too.
        let escargot = [
            token("messengerclear.live.com", "Compact2", "t=messenger", Some(vec![1; 24])),
            token("contacts.msn.com", "Compact3", "t=contacts", None),
        ];
        let picked = messenger_and_contacts(&escargot).unwrap();
        assert_eq!((picked.messenger.as_str(), picked.contacts.as_str()), ("t=messenger", "t=contacts"));
        assert_eq!(picked.secret, vec![1; 24]);
        // The order does not matter either; an answer without the messenger's
        // token is an error, one without the address book's an empty ticket.
        let reversed = [escargot[1].clone(), escargot[0].clone()];
        assert_eq!(messenger_and_contacts(&reversed).unwrap().messenger, "t=messenger");
        assert!(messenger_and_contacts(&escargot[1..]).is_err());
        assert_eq!(messenger_and_contacts(&escargot[..1]).unwrap().contacts, "");
    }
}
