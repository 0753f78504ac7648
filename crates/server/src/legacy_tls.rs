//! The opt-in legacy TLS listener for the login service.
//!
//! MSN Messenger on Windows XP can only do TLS 1.0 with RSA key exchange and
//! 3DES (`TLS_RSA_WITH_3DES_EDE_CBC_SHA`), which rustls will never offer. This
//! listener uses a vendored OpenSSL built with those ciphers, at security
//! level 0. It is off unless `--legacy-https-listen` is given: these
//! algorithms are broken (SWEET32, no forward secrecy), so only Passport
//! traffic of old clients should go through it. docs/SECURITY.md has more.
//!
//! XP's certificate code knows no elliptic curves either, so this listener has
//! its own all-RSA chain, generated into `DATA_DIR/tls/legacy-*.pem`.

use std::fs;
use std::path::Path;

use anyhow::Context;
use openssl::asn1::Asn1Time;
use openssl::bn::{BigNum, MsbOption};
use openssl::hash::MessageDigest;
use openssl::pkey::{PKey, Private};
use openssl::rsa::Rsa;
use openssl::ssl::{SslAcceptor, SslContext, SslMethod, SslOptions, SslVersion};
use openssl::x509::extension::{BasicConstraints, KeyUsage, SubjectAlternativeName};
use openssl::x509::{X509, X509NameBuilder};

/// The ciphers offered: the one XP needs, then the RSA AES suites of the
/// same era.
const CIPHERS: &str = "DES-CBC3-SHA:AES128-SHA:AES256-SHA:@SECLEVEL=0";

/// Builds the legacy TLS context from `cert`/`key` or the generated RSA chain.
pub fn context(
    data_dir: &Path,
    cert: Option<&Path>,
    key: Option<&Path>,
    public_host: Option<&str>,
) -> anyhow::Result<SslContext> {
    let dir = crate::tls::tls_dir(data_dir);
    let (cert_path, key_path) = match (cert, key) {
        (Some(c), Some(k)) => (c.to_path_buf(), k.to_path_buf()),
        _ => {
            let (c, k) = (dir.join("legacy-cert.pem"), dir.join("legacy-key.pem"));
            let names = crate::tls::generated_names(public_host);
            if !crate::tls::covers(&dir, "legacy-cert", &c, &k, &names) {
                generate(&dir, &names)?;
                crate::tls::record_names(&dir, "legacy-cert", &names)?;
            }
            (c, k)
        }
    };
    let mut builder = SslAcceptor::mozilla_intermediate(SslMethod::tls_server())?;
    builder.set_security_level(0);
    builder.set_min_proto_version(Some(SslVersion::TLS1))?;
    builder.set_max_proto_version(Some(SslVersion::TLS1_2))?;
    builder.set_cipher_list(CIPHERS)?;
    // A client may not renegotiate (each one costs an RSA decryption and
    // has been a way to inject data before), nor compress (CRIME).
    builder.set_options(SslOptions::NO_RENEGOTIATION | SslOptions::NO_COMPRESSION);
    builder.set_certificate_chain_file(&cert_path).with_context(|| format!("loading {}", cert_path.display()))?;
    builder
        .set_private_key_file(&key_path, openssl::ssl::SslFiletype::PEM)
        .with_context(|| format!("loading {}", key_path.display()))?;
    builder.check_private_key()?;
    Ok(builder.build().into_context())
}

fn name(common_name: &str) -> anyhow::Result<openssl::x509::X509Name> {
    let mut n = X509NameBuilder::new()?;
    n.append_entry_by_text("CN", common_name)?;
    Ok(n.build())
}

fn certificate(
    subject: &str,
    key: &PKey<Private>,
    issuer: Option<(&X509, &PKey<Private>)>,
    hosts: &[&str],
) -> anyhow::Result<X509> {
    let mut b = X509::builder()?;
    b.set_version(2)?;
    let mut serial = BigNum::new()?;
    serial.rand(127, MsbOption::MAYBE_ZERO, false)?;
    let serial = serial.to_asn1_integer()?;
    b.set_serial_number(&serial)?;
    let subject_name = name(subject)?;
    b.set_subject_name(&subject_name)?;
    b.set_pubkey(key)?;
    let (not_before, not_after) = (Asn1Time::days_from_now(0)?, Asn1Time::days_from_now(3650)?);
    b.set_not_before(&not_before)?;
    b.set_not_after(&not_after)?;
    match issuer {
        Some((ca, ca_key)) => {
            b.set_issuer_name(ca.subject_name())?;
            let mut san = SubjectAlternativeName::new();
            for h in hosts {
                if h.parse::<std::net::IpAddr>().is_ok() {
                    san.ip(h);
                } else {
                    san.dns(h);
                }
            }
            let san = san.build(&b.x509v3_context(Some(ca), None))?;
            b.append_extension(san)?;
            b.append_extension(KeyUsage::new().digital_signature().key_encipherment().build()?)?;
            // XP verifies SHA-1 and SHA-256 signatures (SP3); SHA-256 it is.
            b.sign(ca_key, MessageDigest::sha256())?;
        }
        None => {
            b.set_issuer_name(&subject_name)?;
            b.append_extension(BasicConstraints::new().critical().ca().pathlen(0).build()?)?;
            b.append_extension(KeyUsage::new().key_cert_sign().crl_sign().build()?)?;
            b.sign(key, MessageDigest::sha256())?;
        }
    }
    Ok(b.build())
}

/// Generates an RSA CA and an RSA server certificate it signs.
fn generate(dir: &Path, names: &[String]) -> anyhow::Result<()> {
    fs::create_dir_all(dir)?;
    let ca_key = PKey::from_rsa(Rsa::generate(2048)?)?;
    let ca = certificate("Mariposa legacy local CA (do not trust elsewhere)", &ca_key, None, &[])?;
    let key = PKey::from_rsa(Rsa::generate(2048)?)?;
    let hosts: Vec<&str> = names.iter().map(String::as_str).collect();
    let cert = certificate("Mariposa login service (legacy TLS)", &key, Some((&ca, &ca_key)), &hosts)?;
    fs::write(dir.join("legacy-ca.pem"), ca.to_pem()?)?;
    fs::write(dir.join("legacy-cert.pem"), [cert.to_pem()?, ca.to_pem()?].concat())?;
    let key_path = dir.join("legacy-key.pem");
    fs::write(&key_path, key.private_key_to_pem_pkcs8()?)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(&key_path, fs::Permissions::from_mode(0o600))?;
    }
    Ok(())
}
