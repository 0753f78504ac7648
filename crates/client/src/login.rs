//! Signing in: the dispatch referral, MD5 (MSNP2-7) or Passport (MSNP8+), the
//! login profile, and `SYN` in every dialect's shape, against the cache.

use std::time::Duration;

use msnp::dialect::AuthScheme;
use msnp::mime::MimeMessage;
use msnp::{Dialect, Frame, ListKind, PrivacyMode, PromptMode, urlencode};

use crate::cache;
use crate::config::ClientConfig;
use crate::conn::{Conn, error_code};
use crate::error::{ClientError, Result};
use crate::http;
use crate::state::{Contact, Group, State};

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

async fn reply(conn: &mut Conn, config: &ClientConfig, trid: u32) -> Result<Frame> {
    let frame = conn.expect_frame(config.timeout).await?;
    if let Some(code) = error_code(&frame) {
        return Err(if code == 911 { ClientError::AuthenticationFailed } else { ClientError::Server(code) });
    }
    let args = frame.args();
    if args.first().and_then(|t| t.parse::<u32>().ok()) != Some(trid) && frame.verb() != "MSG" {
        return Err(ClientError::Protocol(format!("expected a reply to {trid}, got `{}`", frame.line)));
    }
    Ok(frame)
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

/// Signs in: connects to the dispatch server, follows its referral, logs in
/// and syncs the lists.
pub async fn sign_in(config: &ClientConfig) -> Result<LoggedIn> {
    let dialect = config.dialect;
    let mut conn = Conn::connect(&config.server, config).await?;
    let mut trid = 1u32;
    let mut referrals = 0;
    let (account_friendly, profile) = loop {
        conn.send_line(&format!("VER {trid} {dialect} CVR0")).await?;
        let ver = reply(&mut conn, config, trid).await?;
        if ver.args().get(1).is_none_or(|d| Dialect::from_name(d) != Some(dialect)) {
            return Err(ClientError::NoCommonDialect);
        }
        trid += 1;
        let package = dialect.auth_scheme().package();
        if dialect.has_inf() {
            conn.send_line(&format!("INF {trid}")).await?;
            reply(&mut conn, config, trid).await?;
            trid += 1;
        } else {
            conn.send_line(&format!(
                "CVR {trid} 0x0409 winnt 10.0 i386 MARIPOSA {} msmsgs {}",
                env!("CARGO_PKG_VERSION"),
                config.account
            ))
            .await?;
            reply(&mut conn, config, trid).await?;
            trid += 1;
        }
        conn.send_line(&format!("USR {trid} {package} I {}", config.account)).await?;
        let answer = reply(&mut conn, config, trid).await?;
        trid += 1;
        let args = answer.args();
        match (answer.verb(), args.get(1).copied()) {
            ("XFR", Some("NS")) => {
                referrals += 1;
                if referrals > 3 {
                    return Err(ClientError::Protocol("too many referrals".into()));
                }
                let address = args.get(2).ok_or_else(|| ClientError::Protocol(answer.line.clone()))?.to_string();
                conn.shutdown().await;
                conn = Conn::connect(&address, config).await?;
                continue;
            }
            ("USR", Some(p)) if p == package && args.get(2) == Some(&"S") => {
                let challenge = args.get(3).ok_or_else(|| ClientError::Protocol(answer.line.clone()))?;
                let response = match dialect.auth_scheme() {
                    AuthScheme::Md5 => msnp::challenge::md5_response(challenge, &config.password),
                    AuthScheme::Twn => passport_ticket(config, challenge).await?,
                };
                conn.send_line(&format!("USR {trid} {package} S {response}")).await?;
                let ok = reply(&mut conn, config, trid).await?;
                trid += 1;
                let args = ok.args();
                if args.get(1) != Some(&"OK") {
                    return Err(ClientError::Protocol(ok.line.clone()));
                }
                let friendly = if dialect.usr_ok_has_friendly() {
                    args.get(3).and_then(|f| urlencode::decode(f).ok()).unwrap_or_else(|| config.account.clone())
                } else {
                    config.account.clone()
                };
                // SBS (MSNP11+) and the profile follow.
                let profile = loop {
                    let f = conn.expect_frame(config.timeout).await?;
                    if f.verb() == "MSG" {
                        break f.payload.map(|p| p.to_vec()).unwrap_or_default();
                    }
                };
                break (friendly, profile);
            }
            _ => return Err(ClientError::Protocol(format!("unexpected `{}`", answer.line))),
        }
    };

    let mut state = State {
        handle: config.account.clone(),
        friendly: account_friendly,
        dialect: Some(dialect),
        ..State::default()
    };
    if let Ok(p) = MimeMessage::parse(&profile) {
        state.web_token = p.header("MSPAuth").unwrap_or("").trim_end_matches("$$").to_string();
    }
    let cached = config.cache_dir.as_deref().and_then(|d| cache::load(d, &config.account));
    let version = cached
        .as_ref()
        .map(|c| c.version.clone())
        .unwrap_or_else(|| if dialect.uses_guids() { "0 0".into() } else { "0".into() });
    conn.send_line(&format!("SYN {trid} {version}")).await?;
    let syn = reply(&mut conn, config, trid).await?;
    trid += 1;
    sync(&mut conn, config, dialect, &syn, cached, &mut state).await?;
    if let Some(dir) = &config.cache_dir {
        let _ = cache::save(dir, &state);
    }
    Ok(LoggedIn { conn, state, next_trid: trid })
}

/// Reads the `SYN` batch (or takes the cache when the server says it is current).
async fn sync(
    conn: &mut Conn,
    config: &ClientConfig,
    dialect: Dialect,
    syn: &Frame,
    cached: Option<cache::ListCache>,
    state: &mut State,
) -> Result<()> {
    let args = syn.args();
    let (version, counts) = if dialect.uses_guids() {
        let v = format!("{} {}", args.get(1).unwrap_or(&"0"), args.get(2).unwrap_or(&"0"));
        (v, args.get(3).zip(args.get(4)).and_then(|(c, g)| Some((c.parse::<usize>().ok()?, g.parse::<usize>().ok()?))))
    } else {
        let v = args.get(1).unwrap_or(&"0").to_string();
        (v, args.get(2).zip(args.get(3)).and_then(|(c, g)| Some((c.parse::<usize>().ok()?, g.parse::<usize>().ok()?))))
    };
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
    if !dialect.has_compact_sync() {
        if nothing_stored {
            // Nothing stored on the server and nothing cached: empty lists.
            return Ok(());
        }
        loop {
            let f = conn.expect_frame(config.timeout).await?;
            apply_sync_line(dialect, &f, state);
            let a = f.args();
            if f.verb() == "LST" && a.get(1) == Some(&"RL") && a.get(3) == a.get(4) {
                return Ok(());
            }
        }
    }
    let (contacts, groups) = counts.unwrap_or((0, 0));
    let (mut seen_contacts, mut seen_groups) = (0, 0);
    while seen_contacts < contacts || seen_groups < groups {
        let f = conn.expect_frame(config.timeout).await?;
        match f.verb() {
            "LST" => seen_contacts += 1,
            "LSG" => seen_groups += 1,
            _ => {}
        }
        apply_sync_line(dialect, &f, state);
    }
    Ok(())
}

/// Applies one line of a `SYN` batch (or a stray one after it) to the state.
pub fn apply_sync_line(dialect: Dialect, f: &Frame, state: &mut State) {
    let a = f.args();
    let last = a.last().copied().unwrap_or("");
    match f.verb() {
        "GTC" => state.prompt = PromptMode::from_code(last).unwrap_or(state.prompt),
        "BLP" => state.privacy = PrivacyMode::from_code(last).unwrap_or(state.privacy),
        "PRP" => {
            if let Some(i) = a.iter().position(|x| *x == "MFN")
                && let Some(name) = a.get(i + 1).and_then(|v| urlencode::decode(v).ok())
            {
                state.friendly = name;
            }
        }
        "LSG" => {
            let group = if dialect.uses_guids() {
                a.first().zip(a.get(1)).map(|(name, guid)| (guid.to_string(), *name))
            } else if dialect.has_compact_sync() {
                a.first().zip(a.get(1)).map(|(id, name)| (id.to_string(), *name))
            } else {
                a.get(4).zip(a.get(5)).map(|(id, name)| (id.to_string(), *name))
            };
            if let Some((id, name)) = group.filter(|(id, _)| id != "0") {
                let name = urlencode::decode(name).unwrap_or_else(|_| name.to_string());
                state.groups.retain(|g| g.id != id);
                state.groups.push(Group { id, name });
            }
        }
        "LST" => apply_lst(dialect, &a, state),
        _ => {}
    }
}

fn apply_lst(dialect: Dialect, a: &[&str], state: &mut State) {
    if dialect.uses_guids() {
        let mut handle = None;
        let mut friendly = None;
        let mut guid = None;
        let mut rest = Vec::new();
        for t in a {
            if let Some(h) = t.strip_prefix("N=") {
                handle = Some(h);
            } else if let Some(f) = t.strip_prefix("F=") {
                friendly = urlencode::decode(f).ok();
            } else if let Some(g) = t.strip_prefix("C=") {
                guid = Some(g.to_string());
            } else {
                rest.push(*t);
            }
        }
        let Some(handle) = handle else { return };
        let bits: u8 = rest.first().and_then(|b| b.parse().ok()).unwrap_or(0);
        // MSNP12 puts the network id after the bits.
        let groups_at = if dialect.lst_has_network_id() { 2 } else { 1 };
        let c = state.contact_mut(handle);
        c.handle = handle.to_string();
        c.friendly = friendly.unwrap_or_else(|| handle.to_string());
        c.lists = bits;
        c.guid = guid;
        c.groups = rest.get(groups_at).map(|g| g.split(',').map(str::to_string).collect()).unwrap_or_default();
    } else if dialect.has_compact_sync() {
        let (Some(handle), Some(friendly), Some(bits)) = (a.first(), a.get(1), a.get(2)) else { return };
        let c = state.contact_mut(handle);
        c.handle = handle.to_string();
        c.friendly = urlencode::decode(friendly).unwrap_or_else(|_| friendly.to_string());
        c.lists = bits.parse().unwrap_or(0);
        c.groups =
            a.get(3).map(|g| g.split(',').filter(|g| *g != "0").map(str::to_string).collect()).unwrap_or_default();
    } else {
        // LST trid LIST serial index total handle friendly [groups]
        let (Some(list), Some(handle), Some(friendly)) =
            (a.get(1).and_then(|l| ListKind::from_code(l)), a.get(5), a.get(6))
        else {
            return;
        };
        let c: &mut Contact = state.contact_mut(handle);
        c.handle = handle.to_string();
        c.friendly = urlencode::decode(friendly).unwrap_or_else(|_| friendly.to_string());
        c.set(list, true);
        if list == ListKind::Forward {
            c.groups =
                a.get(7).map(|g| g.split(',').filter(|g| *g != "0").map(str::to_string).collect()).unwrap_or_default();
        }
    }
}

/// The interval a `QNG` asks for, or the default ping interval.
pub fn ping_interval(frame: &Frame) -> Duration {
    let secs = frame.args().first().and_then(|s| s.parse::<u64>().ok()).filter(|s| *s > 5).unwrap_or(50);
    Duration::from_secs(secs)
}
