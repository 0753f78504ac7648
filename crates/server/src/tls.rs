//! TLS for the login service: the operator's certificate, or one generated
//! into the data dir on first start.
//!
//! The generated set is a small local CA plus a server certificate it signs
//! (for `localhost`, 127.0.0.1 and the public host). Clients that check
//! certificates need the CA installed (`DATA_DIR/tls/ca.pem`); a CA rather
//! than a lone self-signed certificate because certificate verifiers accept
//! only CA certificates as trust anchors.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, bail};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};
use rustls::ServerConfig as TlsConfig;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// Where the generated files live.
pub fn tls_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("tls")
}

/// The TLS configuration for the login service: from `cert`/`key` if given,
/// else from the data dir, generating the files on first start.
pub fn server_config(
    data_dir: &Path,
    cert: Option<&Path>,
    key: Option<&Path>,
    public_host: Option<&str>,
) -> anyhow::Result<Arc<TlsConfig>> {
    let (cert_path, key_path) = match (cert, key) {
        (Some(c), Some(k)) => (c.to_path_buf(), k.to_path_buf()),
        (None, None) => {
            let dir = tls_dir(data_dir);
            let (c, k) = (dir.join("cert.pem"), dir.join("key.pem"));
            let names = generated_names(public_host);
            if !covers(&dir, "cert", &c, &k, &names) {
                generate(&dir, &names)?;
                record_names(&dir, "cert", &names)?;
            }
            (c, k)
        }
        _ => bail!("--tls-cert and --tls-key go together"),
    };
    let certs: Vec<CertificateDer<'static>> = rustls_pemfile::certs(
        &mut fs::read(&cert_path).with_context(|| format!("reading {}", cert_path.display()))?.as_slice(),
    )
    .collect::<Result<_, _>>()
    .with_context(|| format!("parsing {}", cert_path.display()))?;
    let key: PrivateKeyDer<'static> = rustls_pemfile::private_key(
        &mut fs::read(&key_path).with_context(|| format!("reading {}", key_path.display()))?.as_slice(),
    )
    .with_context(|| format!("parsing {}", key_path.display()))?
    .with_context(|| format!("no private key in {}", key_path.display()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = TlsConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(certs, key)?;
    // Passport clients speak HTTP/1.x only.
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// The names a generated certificate covers: those a local user types
/// (`localhost` and the loopback addresses) and the configured public host.
pub fn generated_names(public_host: Option<&str>) -> Vec<String> {
    let mut names: Vec<String> = ["localhost", "127.0.0.1", "::1"].map(String::from).into();
    if let Some(h) = public_host.map(|h| h.trim_start_matches('[').trim_end_matches(']').to_ascii_lowercase())
        && !names.contains(&h)
    {
        names.push(h);
    }
    names
}

/// Whether the generated files `stem` exist and were made for `names`
/// (recorded beside them): a certificate generated before the public host
/// was configured does not name it and is made again.
pub fn covers(dir: &Path, stem: &str, cert: &Path, key: &Path, names: &[String]) -> bool {
    let recorded = fs::read_to_string(dir.join(format!("{stem}.names"))).unwrap_or_default();
    let recorded: Vec<&str> = recorded.lines().collect();
    cert.exists() && key.exists() && names.iter().all(|n| recorded.contains(&n.as_str()))
}

/// Notes which names the generated files `stem` cover.
pub fn record_names(dir: &Path, stem: &str, names: &[String]) -> anyhow::Result<()> {
    tracing::info!("generated a TLS certificate for {} in {}", names.join(", "), dir.display());
    fs::write(dir.join(format!("{stem}.names")), names.join("\n"))?;
    Ok(())
}

/// Generates `ca.pem`, `cert.pem` (server certificate then CA) and `key.pem`.
fn generate(dir: &Path, names: &[String]) -> anyhow::Result<()> {
    fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let ca_key = KeyPair::generate()?;
    let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
    ca_params.distinguished_name.push(DnType::CommonName, "Mariposa local CA (do not trust elsewhere)");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca = ca_params.self_signed(&ca_key)?;

    let key = KeyPair::generate()?;
    let mut params = CertificateParams::new(names.to_vec())?;
    params.distinguished_name.push(DnType::CommonName, "Mariposa login service");
    let issuer = Issuer::new(ca_params, ca_key);
    let cert = params.signed_by(&key, &issuer)?;

    fs::write(dir.join("ca.pem"), ca.pem())?;
    fs::write(dir.join("cert.pem"), format!("{}{}", cert.pem(), ca.pem()))?;
    let key_path = dir.join("key.pem");
    fs::write(&key_path, key.serialize_pem())?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(&key_path, fs::Permissions::from_mode(0o600))?;
    }
    Ok(())
}
