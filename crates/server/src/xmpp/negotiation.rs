//! From a new socket to an authenticated stream: the plain stream's
//! STARTTLS (required), the TLS stream's SASL (SCRAM-SHA-1 or PLAIN, both
//! only inside TLS), and the restart after it (RFC 6120 sections 5 and 6).

use std::net::SocketAddr;

use backend::store::Account;
use tokio::net::TcpStream;
use xmpp::sasl::{Plain, SCRAM_ITERATIONS, SaslError, ScramFirst, ScramServer};
use xmpp::stream::{Incoming, StreamHeader};
use xmpp::write::{self, Features};
use xmpp::{Element, NS_SASL, NS_TLS, StreamErrorCondition};

use super::{End, Tls, Wire};
use crate::shared::Shared;

/// SASL attempts one stream may make.
const MAX_ATTEMPTS: usize = 3;
const MECHANISMS: &[&str] = &["SCRAM-SHA-1", "PLAIN"];

/// A stream whose client proved who it is, restarted and waiting to bind.
pub(super) struct SignedIn {
    pub(super) wire: Wire<Tls>,
    pub(super) account: Account,
}

/// Runs the negotiation; `None` when the client failed it or left (the
/// stream is closed then, with its error).
pub(super) async fn negotiate(
    tcp: TcpStream,
    peer: SocketAddr,
    acceptor: &tokio_rustls::TlsAcceptor,
    shared: &Shared,
) -> Option<SignedIn> {
    let mut plain = Wire::new(tcp, peer);
    let domain = open_stream(&mut plain, Features::StartTls).await?;
    // TLS is required here (RFC 6120 section 5.3.1): SASL is answered
    // `encryption-required` (as Prosody does), a stanza `not-authorized`.
    let mut refused = 0;
    loop {
        match plain.next().await {
            Ok(Incoming::Element(e)) if e.is("starttls", NS_TLS) => {
                if !plain.send(&write::proceed()).await {
                    return None;
                }
                break;
            }
            Ok(Incoming::Element(e)) if e.is("auth", NS_SASL) && refused < MAX_ATTEMPTS => {
                refused += 1;
                if !plain.send(&write::sasl_failure(SaslError::EncryptionRequired)).await {
                    return None;
                }
            }
            Ok(Incoming::Element(e)) => {
                let condition = match xmpp::stream::is_stanza(&e) {
                    true => StreamErrorCondition::NotAuthorized,
                    false => StreamErrorCondition::UnsupportedStanzaType,
                };
                plain.fail(condition).await;
                return None;
            }
            other => return close(&mut plain, other).await,
        }
    }
    let tls = acceptor.accept(plain.io).await.ok()?;
    let mut wire = Wire::new(tls, peer);
    let again = open_stream(&mut wire, Features::Sasl { mechanisms: MECHANISMS }).await?;
    if again != domain {
        wire.fail(StreamErrorCondition::HostUnknown).await;
        return None;
    }
    let account = authenticate(&mut wire, &domain, peer, shared).await?;
    wire.restart();
    let ver = super::translate::caps_ver();
    let caps = Some((super::translate::CAPS_NODE, ver.as_str()));
    let restarted = open_stream(&mut wire, Features::Bind { caps }).await?;
    if restarted != domain {
        wire.fail(StreamErrorCondition::HostUnknown).await;
        return None;
    }
    Some(SignedIn { wire, account })
}

/// Reads the client's stream header and answers with ours and `features`;
/// the domain the stream is for.
async fn open_stream<S>(wire: &mut Wire<S>, features: Features<'_>) -> Option<String>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let header = match wire.next().await {
        Ok(Incoming::Header(h)) => h,
        Ok(_) => {
            wire.fail(StreamErrorCondition::NotWellFormed).await;
            return None;
        }
        Err(End::Fault(c)) => {
            wire.fail(c).await;
            return None;
        }
        Err(End::Closed) => return None,
    };
    let id = backend::secrets::random_token(16);
    let domain = domain_of(&header);
    let answer = write::server_header(domain.as_deref().unwrap_or("localhost"), &id, header.from.as_deref());
    if !wire.send(&answer).await {
        return None;
    }
    let Some(domain) = domain else {
        // No `to` at all is improper addressing (as Prosody answers); one
        // that is no host name, an unknown host.
        let condition = match header.to {
            None => StreamErrorCondition::ImproperAddressing,
            Some(_) => StreamErrorCondition::HostUnknown,
        };
        wire.fail(condition).await;
        return None;
    };
    if header.version.as_deref().and_then(|v| v.split('.').next()).and_then(|m| m.parse::<u32>().ok()) != Some(1) {
        wire.fail(StreamErrorCondition::UnsupportedVersion).await;
        return None;
    }
    wire.send(&write::features(features)).await.then_some(domain)
}

/// The domain a stream is for: a host name, lower-cased.
fn domain_of(header: &StreamHeader) -> Option<String> {
    let to = header.to.as_deref()?.trim_end_matches('.').to_ascii_lowercase();
    let valid = !to.is_empty()
        && to.len() <= 253
        && to.split('.').all(|l| !l.is_empty() && l.len() <= 63)
        && to.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.');
    valid.then_some(to)
}

/// SASL until success, a client that gives up, or [`MAX_ATTEMPTS`].
async fn authenticate(wire: &mut Wire<Tls>, domain: &str, peer: SocketAddr, shared: &Shared) -> Option<Account> {
    for _ in 0..MAX_ATTEMPTS {
        let auth = match wire.next().await {
            Ok(Incoming::Element(e)) if e.is("auth", NS_SASL) => e,
            Ok(Incoming::Element(_)) => {
                wire.fail(StreamErrorCondition::NotAuthorized).await;
                return None;
            }
            other => return close(wire, other).await,
        };
        let outcome = match auth.attr("mechanism") {
            Some("PLAIN") => plain(&auth, domain, peer, shared).await,
            Some("SCRAM-SHA-1") => scram(wire, &auth, domain, peer, shared).await,
            _ => Err(SaslError::InvalidMechanism),
        };
        match outcome {
            Ok((account, last)) => {
                return wire.send(&write::sasl_success(&last)).await.then_some(account);
            }
            Err(error) => {
                if !wire.send(&write::sasl_failure(error)).await {
                    return None;
                }
            }
        }
    }
    wire.fail(StreamErrorCondition::PolicyViolation).await;
    None
}

async fn plain(
    auth: &Element,
    domain: &str,
    peer: SocketAddr,
    shared: &Shared,
) -> Result<(Account, Vec<u8>), SaslError> {
    let plain = Plain::parse(&data_of(auth)?)?;
    let handle = handle_of(&plain.authcid, domain);
    check_authzid(plain.authzid.as_deref(), &handle)?;
    let account = shared.backend.web_login(&handle, &plain.password, peer.ip()).await.map_err(refusal)?;
    Ok((account, Vec::new()))
}

async fn scram(
    wire: &mut Wire<Tls>,
    auth: &Element,
    domain: &str,
    peer: SocketAddr,
    shared: &Shared,
) -> Result<(Account, Vec<u8>), SaslError> {
    let first = ScramFirst::parse(&data_of(auth)?)?;
    let handle = handle_of(&first.username, domain);
    check_authzid(first.authzid.as_deref(), &handle)?;
    let salt = shared.backend.proof_salt(&handle);
    let (server, challenge) = ScramServer::new(first, &backend::secrets::random_token(24), &salt, SCRAM_ITERATIONS);
    if !wire.send(&write::sasl_challenge(&challenge)).await {
        return Err(SaslError::Aborted);
    }
    let response = match wire.next().await {
        Ok(Incoming::Element(e)) if e.is("response", NS_SASL) => e,
        _ => return Err(SaslError::Aborted),
    };
    let last = server.read_final(&data_of(&response)?)?;
    shared.backend.proof_login(&handle, peer.ip(), move |password| last.verify(password)).await.map_err(refusal)
}

/// The base64 payload of a SASL element (`=` is empty).
fn data_of(e: &Element) -> Result<Vec<u8>, SaslError> {
    use base64::Engine;
    let text: String = e.text().chars().filter(|c| !c.is_ascii_whitespace()).collect();
    if text == "=" {
        return Ok(Vec::new());
    }
    base64::engine::general_purpose::STANDARD.decode(text).map_err(|_| SaslError::IncorrectEncoding)
}

/// The account handle an authentication identity names: the local part
/// at the stream's domain, or a whole handle as some clients send it.
fn handle_of(authcid: &str, domain: &str) -> String {
    if authcid.contains('@') { authcid.to_string() } else { format!("{authcid}@{domain}") }
}

/// Acting as someone else is not offered.
fn check_authzid(authzid: Option<&str>, handle: &str) -> Result<(), SaslError> {
    match authzid {
        Some(a) if !a.eq_ignore_ascii_case(handle) => Err(SaslError::InvalidAuthzid),
        _ => Ok(()),
    }
}

fn refusal(code: msnp::ErrorCode) -> SaslError {
    match code {
        msnp::ErrorCode::AuthenticationFailed => SaslError::NotAuthorized,
        _ => SaslError::TemporaryAuthFailure,
    }
}

/// The client left or broke the stream before the step was done.
async fn close<S, T>(wire: &mut Wire<S>, how: Result<Incoming, End>) -> Option<T>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    match how {
        Err(End::Fault(c)) => wire.fail(c).await,
        Ok(Incoming::Close) => {
            let _ = wire.send(write::stream_close()).await;
        }
        _ => {}
    }
    None
}
