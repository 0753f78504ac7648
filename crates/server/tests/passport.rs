//! The Passport 1.4 login service over real HTTP and HTTPS, and TWN logins
//! with its tickets.

mod common;

use common::*;

#[tokio::test]
async fn nexus_names_the_login_service_in_exact_header_case() {
    let server = TestServer::start();
    let nexus = http_get(server.http.unwrap(), "/rdr/pprdr.asp", &[]).await;
    assert_eq!(nexus.status, 200);
    let urls = nexus.header("PassportURLs").expect("exact case");
    assert!(
        urls.starts_with(&format!("DALogin=http://localhost:{}/login2.srf,", server.http.unwrap().port())),
        "{urls}"
    );
    assert_eq!(nexus.header("Connection"), Some("close"));
    // Gaim 1.x: no HTTP version, no headers at all.
    let stream = tokio::net::TcpStream::connect(server.http.unwrap()).await.unwrap();
    let bare = http_exchange(stream, b"GET /rdr/pprdr.asp\r\n\r\n").await;
    assert_eq!(bare.status, 200);
    assert!(bare.header("PassportURLs").is_some());
}

#[tokio::test]
async fn login_service_issues_tickets_and_refuses_alike() {
    let server = TestServer::start();
    users(&server, &["alice"]);
    server.add_user("comma@example.com", "p@ss,w%rd");
    let http = server.http.unwrap();
    let ok = http_get(
        http,
        "/login2.srf",
        &[("Authorization", &passport_authorization("alice@example.com", "pw-alice", "lc=1033,id=507"))],
    )
    .await;
    assert_eq!(ok.status, 200);
    let info = ok.header("Authentication-Info").unwrap();
    assert!(info.starts_with("Passport1.4 da-status=success,"), "{info}");
    assert!(info.ends_with('\''), "from-PP comes last: {info}");
    assert!(info.contains("from-PP='t="));

    let wrong = http_get(
        http,
        "/login2.srf",
        &[("Authorization", &passport_authorization("alice@example.com", "nope", "lc=1033"))],
    )
    .await;
    let unknown = http_get(
        http,
        "/login2.srf",
        &[("Authorization", &passport_authorization("nobody@example.com", "nope", "lc=1033"))],
    )
    .await;
    for answer in [&wrong, &unknown] {
        assert_eq!(answer.status, 401);
        assert!(answer.header("WWW-Authenticate").unwrap().starts_with("Passport1.4 da-status=failed"));
    }
    assert_eq!(wrong.headers, unknown.headers, "unknown account and wrong password look the same");
    let none = http_get(http, "/login2.srf", &[]).await;
    assert_eq!(none.status, 401);

    // Encoded (official clients) and raw (some libraries) passwords both work.
    assert!(passport_ticket(&server, "comma@example.com", "p@ss,w%rd", "lc=1033").await.is_ok());
    let raw = "Passport1.4 OrgVerb=GET,OrgURL=x,sign-in=comma@example.com,pwd=p@ss,w%rd,lc=1033,id=507";
    assert_eq!(http_get(http, "/login2.srf", &[("Authorization", raw)]).await.status, 200);
}

#[tokio::test]
async fn tickets_are_single_use_and_bound_to_their_account() {
    let server = TestServer::start();
    users(&server, &["alice", "bob"]);
    let ticket = passport_ticket(&server, "alice@example.com", "pw-alice", "lc=1033").await.unwrap();
    let twn = |handle: &'static str, ticket: String| async move { present_ticket(server.ns, handle, &ticket).await };
    // Someone else's ticket fails, and is spent by the attempt.
    assert_eq!(twn("bob@example.com", ticket.clone()).await, "911 3");
    assert_eq!(twn("alice@example.com", ticket).await, "911 3");
    let ticket = passport_ticket(&server, "alice@example.com", "pw-alice", "lc=1033").await.unwrap();
    assert_eq!(twn("alice@example.com", ticket.clone()).await, "USR 3 OK alice@example.com Alice 1 0");
    assert_eq!(twn("alice@example.com", ticket).await, "911 3", "replayed");
    assert_eq!(twn("alice@example.com", "t=forged&p=x".into()).await, "911 3");
}

#[tokio::test]
async fn expired_tickets_are_refused() {
    let server = TestServer::start_with(&["--ticket-lifetime-secs", "1"]);
    users(&server, &["alice"]);
    let ticket = passport_ticket(&server, "alice@example.com", "pw-alice", "lc=1033").await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let mut c = Client::connect(server.ns).await;
    c.send("VER 1 MSNP9 CVR0").await;
    c.expect("VER 1 MSNP9").await;
    c.send("USR 2 TWN I alice@example.com").await;
    c.expect_prefix("USR 2 TWN S ").await;
    c.send(&format!("USR 3 TWN S {ticket}")).await;
    c.expect("911 3").await;
}

#[tokio::test]
async fn https_serves_the_nexus_without_a_scheme_and_logs_in() {
    let server = TestServer::start_with(&["--https-listen", "127.0.0.1:0"]);
    users(&server, &["alice"]);
    let https = server.https.unwrap();
    let nexus = https_get(&server, "/rdr/pprdr.asp", &[]).await;
    let urls = nexus.header("PassportURLs").unwrap();
    assert!(urls.starts_with(&format!("DALogin=localhost:{}/login2.srf,", https.port())), "{urls}");
    let auth = passport_authorization("alice@example.com", "pw-alice", "lc=1033");
    let ok = https_get(&server, "/login2.srf", &[("Authorization", &auth)]).await;
    assert_eq!(ok.status, 200);
    let ticket = ok.header("Authentication-Info").unwrap().split("from-PP='").nth(1).unwrap().trim_end_matches('\'');
    let mut c = Client::connect(server.ns).await;
    c.send("VER 1 MSNP11 CVR0").await;
    c.expect("VER 1 MSNP11").await;
    c.send("USR 2 TWN I alice@example.com").await;
    c.expect_prefix("USR 2 TWN S ").await;
    c.send(&format!("USR 3 TWN S {ticket}")).await;
    c.expect("USR 3 OK alice@example.com 1 0").await;
    // A client that does not trust the certificate cannot talk to it.
    let stream = tokio::net::TcpStream::connect(https).await.unwrap();
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let untrusting = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(rustls::RootCertStore::empty())
        .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(std::sync::Arc::new(untrusting));
    assert!(connector.connect("localhost".try_into().unwrap(), stream).await.is_err());
}

#[tokio::test]
async fn status_and_health_are_still_served() {
    let server = TestServer::start();
    let health = http_get(server.http.unwrap(), "/health", &[]).await;
    assert_eq!((health.status, health.body.as_slice()), (200, &b"ok\n"[..]));
    let missing = http_get(server.http.unwrap(), "/nothing-here", &[]).await;
    assert_eq!(missing.status, 404);
}

/// What a Windows XP client can do: TLS 1.0, RSA key exchange, 3DES.
#[cfg(feature = "legacy-tls")]
#[tokio::test]
async fn the_legacy_listener_speaks_tls1_with_3des_and_only_when_asked() {
    use openssl::ssl::{SslConnector, SslMethod, SslVersion};
    let server = TestServer::start_with(&["--legacy-https-listen", "127.0.0.1:0"]);
    users(&server, &["alice"]);
    let mut builder = SslConnector::builder(SslMethod::tls_client()).unwrap();
    builder.set_security_level(0);
    builder.set_min_proto_version(Some(SslVersion::TLS1)).unwrap();
    builder.set_max_proto_version(Some(SslVersion::TLS1)).unwrap();
    builder.set_cipher_list("DES-CBC3-SHA").unwrap();
    builder.set_ca_file(server.data_dir().join("tls/legacy-ca.pem")).unwrap();
    let connector = builder.build();
    let auth = passport_authorization("alice@example.com", "pw-alice", "lc=1033");
    for (path, header) in [("/rdr/pprdr.asp", None), ("/login2.srf", Some(auth.as_str()))] {
        let ssl = connector.configure().unwrap().into_ssl("localhost").unwrap();
        let tcp = tokio::net::TcpStream::connect(server.legacy_https.unwrap()).await.unwrap();
        let mut tls = tokio_openssl::SslStream::new(ssl, tcp).unwrap();
        std::pin::Pin::new(&mut tls).connect().await.expect("a TLS 1.0 handshake");
        assert_eq!(tls.ssl().version_str(), "TLSv1");
        assert_eq!(tls.ssl().current_cipher().unwrap().name(), "DES-CBC3-SHA");
        let mut req = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n");
        if let Some(h) = header {
            req.push_str(&format!("Authorization: {h}\r\n"));
        }
        req.push_str("\r\n");
        let answer = http_exchange(tls, req.as_bytes()).await;
        assert_eq!(answer.status, 200, "{path}");
    }
    // Without the option there is no such listener.
    assert!(TestServer::start().legacy_https.is_none());
}

fn rst_envelope(user: &str, password: &str) -> String {
    format!(
        concat!(
            r#"<?xml version="1.0" encoding="UTF-8"?><Envelope xmlns="http://schemas.xmlsoap.org/soap/envelope/" xmlns:wsse="http://schemas.xmlsoap.org/ws/2003/06/secext" xmlns:saml="urn:oasis:names:tc:SAML:1.0:assertion" xmlns:wsp="http://schemas.xmlsoap.org/ws/2002/12/policy" xmlns:wsu="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd" xmlns:wsa="http://schemas.xmlsoap.org/ws/2004/03/addressing" xmlns:wssc="http://schemas.xmlsoap.org/ws/2004/04/sc" xmlns:wst="http://schemas.xmlsoap.org/ws/2004/04/trust">"#,
            r#"<Header><ps:AuthInfo xmlns:ps="http://schemas.microsoft.com/Passport/SoapServices/PPCRL" Id="PPAuthInfo"><ps:HostingApp>{{7108E71A-9926-4FCB-BCC9-9A9D3F32E423}}</ps:HostingApp></ps:AuthInfo>"#,
            r#"<wsse:Security><wsse:UsernameToken Id="user"><wsse:Username>{}</wsse:Username><wsse:Password>{}</wsse:Password></wsse:UsernameToken></wsse:Security></Header>"#,
            r#"<Body><ps:RequestMultipleSecurityTokens xmlns:ps="http://schemas.microsoft.com/Passport/SoapServices/PPCRL" Id="RSTS">"#,
            r#"<wst:RequestSecurityToken Id="RST0"><wst:RequestType>http://schemas.xmlsoap.org/ws/2004/04/security/trust/Issue</wst:RequestType><wsp:AppliesTo><wsa:EndpointReference><wsa:Address>http://Passport.NET/tb</wsa:Address></wsa:EndpointReference></wsp:AppliesTo></wst:RequestSecurityToken>"#,
            r#"<wst:RequestSecurityToken Id="RST1"><wst:RequestType>http://schemas.xmlsoap.org/ws/2004/04/security/trust/Issue</wst:RequestType><wsp:AppliesTo><wsa:EndpointReference><wsa:Address>messenger.msn.com</wsa:Address></wsa:EndpointReference></wsp:AppliesTo><wsse:PolicyReference URI="?id=507"></wsse:PolicyReference></wst:RequestSecurityToken>"#,
            r#"<wst:RequestSecurityToken Id="RST2"><wst:RequestType>http://schemas.xmlsoap.org/ws/2004/04/security/trust/Issue</wst:RequestType><wsp:AppliesTo><wsa:EndpointReference><wsa:Address>contacts.msn.com</wsa:Address></wsa:EndpointReference></wsp:AppliesTo><wsse:PolicyReference URI="MBI"></wsse:PolicyReference></wst:RequestSecurityToken>"#,
            r#"</ps:RequestMultipleSecurityTokens></Body></Envelope>"#
        ),
        user, password
    )
}

async fn http_post(addr: std::net::SocketAddr, path: &str, body: &str) -> HttpAnswer {
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let req = format!(
        "POST {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: text/xml; charset=utf-8\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    http_exchange(stream, req.as_bytes()).await
}

/// MSN 7.5 gets its ticket with RST SOAP instead of Passport 1.4.
#[tokio::test]
async fn rst_soap_issues_a_token_per_service_that_logs_in() {
    let server = TestServer::start();
    users(&server, &["alice"]);
    let answer = http_post(server.http.unwrap(), "/RST.srf", &rst_envelope("alice@example.com", "pw-alice")).await;
    assert_eq!(answer.status, 200);
    let xml = String::from_utf8(answer.body).unwrap();
    assert_eq!(xml.matches("<wst:RequestSecurityTokenResponse>").count(), 2, "none for Passport.NET/tb: {xml}");
    let messenger = xml.split("<wsa:Address>messenger.msn.com</wsa:Address>").nth(1).unwrap();
    let token =
        messenger.split("<wsse:BinarySecurityToken Id=\"Compact1\">").nth(1).unwrap().split('<').next().unwrap();
    let ticket = msnp::soap::unescape_xml(token).unwrap();
    assert!(ticket.starts_with("t=") && ticket.contains("&p="), "{ticket}");
    let mut c = Client::connect(server.ns).await;
    c.send("VER 1 MSNP12 CVR0").await;
    c.expect("VER 1 MSNP12").await;
    c.send("USR 2 TWN I alice@example.com").await;
    c.expect_prefix("USR 2 TWN S ").await;
    c.send(&format!("USR 3 TWN S {ticket}")).await;
    c.expect("USR 3 OK alice@example.com 1 0").await;

    let wrong = http_post(server.http.unwrap(), "/RST.srf", &rst_envelope("alice@example.com", "nope")).await;
    assert_eq!(wrong.status, 500);
    assert!(String::from_utf8(wrong.body).unwrap().contains("wsse:FailedAuthentication"));
    let garbage = http_post(server.http.unwrap(), "/RST.srf", "<not-soap/>").await;
    assert_eq!(garbage.status, 500);
}
