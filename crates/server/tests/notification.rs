//! The dispatch and notification servers over real TCP: every command of the
//! draft and its error paths.

mod common;

use common::*;

#[tokio::test]
async fn dispatch_negotiates_and_refers_with_xfr_ns() {
    let server = TestServer::start();
    let mut c = Client::connect(server.dispatch).await;
    // Unknown dialects are passed over.
    c.send("VER 1 MSNP99 MSNP2 CVR0").await;
    c.expect("VER 1 MSNP2").await;
    c.send("INF 2").await;
    c.expect("INF 2 MD5").await;
    c.send("USR 3 MD5 I alice@example.com").await;
    let xfr = c.expect_prefix("XFR 3 NS ").await;
    assert_eq!(xfr.args().len(), 4, "MSNP2 XFR NS has only the address: {}", xfr.text);
    assert_eq!(xfr.args()[3], server.ns.to_string());
    // The client hangs up; the server says nothing more before it does.
    c.expect_silence().await;
}

#[tokio::test]
async fn after_xfr_ns_the_dispatch_server_waits_for_the_client_to_hang_up_then_hangs_up_itself() {
    // aMSN pipelines VER, CVR and USR and would lose an XFR followed at once
    // by the close; a client that never hangs up is let go after a while.
    let server = TestServer::start();
    users(&server, &["alice"]);
    let mut c = Client::connect(server.dispatch).await;
    c.send_raw(b"VER 1 MSNP15 CVR0\r\nCVR 2 0x0409 winnt 5.1 i386 MSNMSGR 8.0.0812 msmsgs alice@example.com\r\nUSR 3 SSO I alice@example.com\r\n").await;
    c.expect("VER 1 MSNP15").await;
    c.expect_prefix("CVR 2 ").await;
    c.expect_prefix("XFR 3 NS ").await;
    // Still open, and silent, while the client reads; commands sent now
    // are not answered.
    c.expect_silence().await;
    c.send("PNG").await;
    c.expect_silence().await;
    // Then the server hangs up by itself (within the harness's wait).
    assert!(c.expect_closed().await.is_empty(), "nothing more after XFR NS");
}

#[tokio::test]
async fn ver_without_a_common_dialect_answers_zero_and_closes() {
    let server = TestServer::start();
    let mut c = Client::connect(server.dispatch).await;
    c.send("VER 9 MSNP99 CVR0").await;
    c.expect("VER 9 0").await;
    assert!(c.expect_closed().await.is_empty());
}

#[tokio::test]
async fn commands_before_ver_and_before_login_are_refused() {
    let server = TestServer::start();
    users(&server, &["alice"]);
    let mut c = Client::connect(server.ns).await;
    c.send("INF 1").await;
    c.expect("715 1").await;
    c.send("VER 2 MSNP2").await;
    c.expect("VER 2 MSNP2").await;
    c.send("VER 3 MSNP2").await;
    c.expect("715 3").await;
    for (i, cmd) in
        ["SYN 4 0", "LST 5 FL", "ADD 6 FL bob@example.com Bob", "CHG 7 NLN", "XFR 8 SB", "BLP 9 BL"].iter().enumerate()
    {
        c.send(cmd).await;
        c.expect(&format!("302 {}", i + 4)).await;
    }
    c.send("USR 10 MD5 S 0123456789abcdef0123456789abcdef").await;
    c.expect("201 10").await;
    c.send("USR 11 MD5 I nodomain").await;
    c.expect("206 11").await;
    c.sync_point().await;
}

#[tokio::test]
async fn wrong_password_and_unknown_account_look_the_same() {
    let server = TestServer::start();
    users(&server, &["alice"]);
    let mut c = Client::connect(server.ns).await;
    c.send("VER 1 MSNP2").await;
    c.expect("VER 1 MSNP2").await;
    for (trid, handle) in [(2, "alice@example.com"), (4, "nobody@example.com")] {
        c.send(&format!("USR {trid} MD5 I {handle}")).await;
        let challenge = c.expect_prefix(&format!("USR {trid} MD5 S ")).await.args()[4].to_string();
        c.send(&format!("USR {} MD5 S {}", trid + 1, md5_hex(&challenge, "wrong"))).await;
        c.expect(&format!("911 {}", trid + 1)).await;
    }
    // The third failure on one connection closes it.
    c.send("USR 6 MD5 I alice@example.com").await;
    c.expect_prefix("USR 6 MD5 S ").await;
    c.send("USR 7 MD5 S 00000000000000000000000000000000").await;
    let rest = c.expect_closed().await;
    assert_eq!(rest.iter().map(|l| l.text.as_str()).collect::<Vec<_>>(), ["911 7"]);
}

#[tokio::test]
async fn challenges_are_fresh_and_usr_after_login_is_207() {
    let server = TestServer::start();
    users(&server, &["alice"]);
    let mut c = login(&server, "alice@example.com", "pw-alice").await;
    c.send("USR 20 MD5 I alice@example.com").await;
    c.expect("207 20").await;
    let mut salts = std::collections::HashSet::new();
    for _ in 0..5 {
        let mut c = Client::connect(server.ns).await;
        c.send("VER 1 MSNP2").await;
        c.expect("VER 1 MSNP2").await;
        c.send("USR 2 MD5 I alice@example.com").await;
        salts.insert(c.expect_prefix("USR 2 MD5 S ").await.args()[4].to_string());
    }
    assert_eq!(salts.len(), 5);
}

#[tokio::test]
async fn login_returns_the_friendly_name_and_a_profile() {
    let server = TestServer::start();
    server.add_user_named("em@example.com", "secret", Some("Auntie Em"));
    let (mut c, answer) = direct_login(server.ns, "em@example.com", "secret").await;
    assert_eq!(answer, "USR 3 OK em@example.com Auntie%20Em");
    let profile = c.expect_prefix("MSG Hotmail Hotmail ").await;
    let payload = String::from_utf8(profile.payload.unwrap()).unwrap();
    assert!(
        payload.starts_with("MIME-Version: 1.0\r\nContent-Type: text/x-msmsgsprofile; charset=UTF-8\r\nLoginTime: ")
    );
    assert!(payload.ends_with("\r\n\r\n"));
    assert_eq!(profile.text, format!("MSG Hotmail Hotmail {}", payload.len()));
}

#[tokio::test]
async fn syn_sends_everything_in_the_draft_order_and_nothing_when_current() {
    let server = TestServer::start();
    users(&server, &["alice", "bob", "carol"]);
    let mut a = login(&server, "alice@example.com", "pw-alice").await;
    // A fresh account's first sync is the whole (empty) batch: clients wait
    // for its settings and lists.
    a.send("SYN 1 0").await;
    a.expect_all(&[
        "SYN 1 0",
        "GTC 1 0 A",
        "BLP 1 0 AL",
        "LST 1 FL 0 0 0",
        "LST 1 AL 0 0 0",
        "LST 1 BL 0 0 0",
        "LST 1 RL 0 0 0",
    ])
    .await;
    a.sync_point().await;

    a.send("ADD 2 FL bob@example.com Bob").await;
    a.expect("ADD 2 FL 1 bob@example.com Bob").await;
    a.send("ADD 3 AL bob@example.com bob@example.com").await;
    a.expect("ADD 3 AL 2 bob@example.com bob@example.com").await;
    a.send("ADD 4 BL carol@example.com carol@example.com").await;
    a.expect("ADD 4 BL 3 carol@example.com carol@example.com").await;
    // Bob adds Alice: her reverse list changes while she is signed in.
    let (mut b, _) = online_as(&server, "bob").await;
    b.send("ADD 5 FL alice@example.com Alice").await;
    b.expect_prefix("ADD 5 FL ").await;
    a.expect("ADD 0 RL 4 bob@example.com Bob").await;

    a.send("SYN 6 0").await;
    a.expect("SYN 6 4").await;
    a.expect("GTC 6 4 A").await;
    a.expect("BLP 6 4 AL").await;
    a.expect("LST 6 FL 4 1 1 bob@example.com Bob").await;
    a.expect("LST 6 AL 4 1 1 bob@example.com Bob").await;
    a.expect("LST 6 BL 4 1 1 carol@example.com Carol").await;
    a.expect("LST 6 RL 4 1 1 bob@example.com Bob").await;
    a.sync_point().await;

    a.send("SYN 7 4").await;
    a.expect("SYN 7 4").await;
    a.sync_point().await;
}

#[tokio::test]
async fn lst_returns_each_list_with_its_serial() {
    let server = TestServer::start();
    users(&server, &["alice", "bob", "carol"]);
    let mut a = login(&server, "alice@example.com", "pw-alice").await;
    a.send("LST 1 FL").await;
    a.expect("LST 1 FL 0 0 0").await;
    a.send("ADD 2 FL bob@example.com Bob").await;
    a.expect("ADD 2 FL 1 bob@example.com Bob").await;
    a.send("ADD 3 FL carol@example.com Carol").await;
    a.expect("ADD 3 FL 2 carol@example.com Carol").await;
    a.send("LST 4 FL").await;
    a.expect("LST 4 FL 2 1 2 bob@example.com Bob").await;
    a.expect("LST 4 FL 2 2 2 carol@example.com Carol").await;
    for (trid, list) in [(5, "AL"), (6, "BL"), (7, "RL")] {
        a.send(&format!("LST {trid} {list}")).await;
        a.expect(&format!("LST {trid} {list} 2 0 0")).await;
    }
    a.send("LST 8 XL").await;
    a.expect("201 8").await;
}

#[tokio::test]
async fn gtc_and_blp_echo_with_a_new_serial_and_refuse_the_current_value_before_msnp8() {
    let server = TestServer::start();
    users(&server, &["alice"]);
    let mut a = login(&server, "alice@example.com", "pw-alice").await;
    a.send("GTC 1 A").await;
    a.expect("218 1").await;
    a.send("GTC 2 N").await;
    a.expect("GTC 2 1 N").await;
    a.send("BLP 3 AL").await;
    a.expect("218 3").await;
    a.send("BLP 4 BL").await;
    a.expect("BLP 4 2 BL").await;
    a.send("BLP 5 XX").await;
    a.expect("201 5").await;
    a.send("GTC 6 Y").await;
    a.expect("201 6").await;
    a.send("SYN 7 0").await;
    a.expect("SYN 7 2").await;
    a.expect("GTC 7 2 N").await;
    a.expect("BLP 7 2 BL").await;
}

#[tokio::test]
async fn add_and_rem_errors_follow_the_draft() {
    let server = TestServer::start_with(&["--max-list-size", "2"]);
    users(&server, &["alice", "bob", "carol", "dave"]);
    let mut a = login(&server, "alice@example.com", "pw-alice").await;
    let cases = [
        ("ADD 1 FL bob@example.com Bob", "ADD 1 FL 1 bob@example.com Bob"),
        ("ADD 2 FL bob@example.com Bob", "215 2"),
        ("ADD 3 FL nobody@example.com Nobody", "205 3"),
        ("ADD 4 FL not-an-address Nobody", "201 4"),
        (&*format!("ADD 5 FL {}@example.com x", "a".repeat(120)), "208 5"),
        (&*format!("ADD 6 FL carol@example.com {}", "n".repeat(388)), "209 6"),
        ("ADD 7 AL carol@example.com carol@example.com", "ADD 7 AL 2 carol@example.com carol@example.com"),
        ("ADD 8 BL carol@example.com carol@example.com", "219 8"),
        ("ADD 9 RL carol@example.com carol@example.com", "201 9"),
        ("ADD 10 FL carol@example.com Carol", "ADD 10 FL 3 carol@example.com Carol"),
        ("ADD 11 FL dave@example.com Dave", "210 11"),
        ("REM 12 BL carol@example.com", "216 12"),
        ("REM 13 RL carol@example.com", "201 13"),
        ("REM 14 FL bob@example.com", "REM 14 FL 4 bob@example.com"),
        ("REM 15 FL bob@example.com", "216 15"),
        ("ADD 16 FL alice@example.com Me", "201 16"),
        ("ADD 17 FL", "200 17"),
    ];
    for (send, expect) in cases {
        a.send(send).await;
        a.expect(expect).await;
    }
}

#[tokio::test]
async fn reverse_list_changes_reach_the_other_user_with_trid_zero() {
    let server = TestServer::start();
    users(&server, &["alice", "bob"]);
    let (mut a, _) = online_as(&server, "alice").await;
    let (mut b, _) = online_as(&server, "bob").await;
    a.send("ADD 1 FL bob@example.com Bob").await;
    a.expect("ADD 1 FL 1 bob@example.com Bob").await;
    a.expect("ILN 1 NLN bob@example.com Bob").await;
    b.expect("ADD 0 RL 1 alice@example.com Alice").await;
    a.send("REM 2 FL bob@example.com").await;
    a.expect("REM 2 FL 2 bob@example.com").await;
    b.expect("REM 0 RL 2 alice@example.com").await;
}

#[tokio::test]
async fn first_chg_sends_iln_for_each_visible_online_contact() {
    let server = TestServer::start();
    users(&server, &["alice", "bob", "carol", "dave", "erin"]);
    // Alice watches bob, carol, dave and erin.
    let mut a = login(&server, "alice@example.com", "pw-alice").await;
    for (i, n) in ["bob", "carol", "dave", "erin"].iter().enumerate() {
        a.send(&format!("ADD {} FL {n}@example.com {}", i + 1, capitalise(n))).await;
        a.expect_prefix(&format!("ADD {} FL ", i + 1)).await;
    }
    a.send("OUT").await;
    // Answered by closing: a bare `OUT` back breaks strict MSNP8 parsers.
    assert!(a.expect_closed().await.is_empty(), "nothing comes back before the close");
    let (mut b, _) = online_as(&server, "bob").await;
    b.send("CHG 5 BSY").await;
    b.expect("CHG 5 BSY").await;
    let (mut c, _) = online_as(&server, "carol").await;
    c.send("CHG 5 HDN").await;
    c.expect("CHG 5 HDN").await;
    let (mut d, _) = online_as(&server, "dave").await;
    d.send("ADD 5 BL alice@example.com alice@example.com").await;
    d.expect_prefix("ADD 5 BL ").await;
    // Erin is signed in but has not set a state: she is not online yet.
    let mut e = login(&server, "erin@example.com", "pw-erin").await;
    e.sync_point().await;

    let (_a, ilns) = online_as(&server, "alice").await;
    assert_eq!(ilns, ["ILN 101 BSY bob@example.com Bob"]);
}

#[tokio::test]
async fn state_changes_reach_watchers_as_nln_and_fln() {
    // Faster than a person changes state: lift the flood limit.
    let server = TestServer::start_with(&["--rate-state-changes", "100/10"]);
    let (mut a, mut b) = alice_watching_bob(&server).await;
    for state in ["BSY", "IDL", "BRB", "AWY", "PHN", "LUN", "NLN"] {
        b.send(&format!("CHG 2 {state}")).await;
        b.expect(&format!("CHG 2 {state}")).await;
        a.expect(&format!("NLN {state} bob@example.com Bob")).await;
    }
    b.send("CHG 3 HDN").await;
    b.expect("CHG 3 HDN").await;
    a.expect("FLN bob@example.com").await;
    b.send("CHG 4 HDN").await;
    b.expect("CHG 4 HDN").await;
    b.send("CHG 5 FLN").await;
    b.expect("201 5").await;
    b.send("CHG 6 XYZ").await;
    b.expect("201 6").await;
    b.send("CHG 7 AWY").await;
    b.expect("CHG 7 AWY").await;
    a.expect("NLN AWY bob@example.com Bob").await;
    b.send("OUT").await;
    b.expect_closed().await;
    assert!(b.expect_closed().await.is_empty());
    a.expect("FLN bob@example.com").await;
    // A dropped connection is an OUT too.
    let (b2, _) = online_as(&server, "bob").await;
    a.expect("NLN NLN bob@example.com Bob").await;
    drop(b2);
    a.expect("FLN bob@example.com").await;
}

#[tokio::test]
async fn rea_renames_persistently_and_watchers_see_the_new_name() {
    let server = TestServer::start();
    let (mut a, mut b) = alice_watching_bob(&server).await;
    b.send("REA 2 bob@example.com Bobby%20%C3%BC").await;
    b.expect("REA 2 2 bob@example.com Bobby%20%C3%BC").await;
    a.expect("NLN NLN bob@example.com Bobby%20%C3%BC").await;
    b.send(&format!("REA 3 bob@example.com {}", "x".repeat(388))).await;
    b.expect("209 3").await;
    b.send("REA 4 bob@example.com bad%0Aname").await;
    b.expect("209 4").await;
    b.send("REA 5 alice@example.com Hacked").await;
    b.expect("201 5").await;
    a.send("LST 6 FL").await;
    a.expect("LST 6 FL 1 1 1 bob@example.com Bobby%20%C3%BC").await;
    drop(b);
    a.expect("FLN bob@example.com").await;

    let (_, answer) = direct_login(server.ns, "bob@example.com", "pw-bob").await;
    assert_eq!(answer, "USR 3 OK bob@example.com Bobby%20%C3%BC");
}

#[tokio::test]
async fn xfr_sb_needs_a_visible_state() {
    let server = TestServer::start();
    users(&server, &["alice"]);
    let mut a = login(&server, "alice@example.com", "pw-alice").await;
    a.send("XFR 1 SB").await;
    a.expect("913 1").await;
    a.send("CHG 2 HDN").await;
    a.expect("CHG 2 HDN").await;
    a.send("XFR 3 SB").await;
    a.expect("913 3").await;
    a.send("CHG 4 NLN").await;
    a.expect("CHG 4 NLN").await;
    a.send("XFR 5 SB").await;
    let xfr = a.expect_prefix("XFR 5 SB ").await;
    let args = xfr.args();
    assert_eq!(args.len(), 6, "{}", xfr.text);
    assert_eq!(args[3], server.dispatch.to_string());
    assert_eq!(args[4], "CKI");
    a.send("XFR 6 NS").await;
    a.expect("201 6").await;
}

#[tokio::test]
async fn msg_to_the_notification_server_disconnects() {
    let server = TestServer::start();
    users(&server, &["alice"]);
    let mut a = login(&server, "alice@example.com", "pw-alice").await;
    a.send_payload("MSG 1 N", &text_message("hi")).await;
    assert!(a.expect_closed().await.is_empty());
}

#[tokio::test]
async fn a_second_login_sends_out_oth_to_the_first() {
    let server = TestServer::start();
    users(&server, &["alice", "bob"]);
    let (mut watcher, _) = online_as(&server, "bob").await;
    watcher.send("ADD 1 FL alice@example.com Alice").await;
    watcher.expect_prefix("ADD 1 FL ").await;
    let (mut first, _) = online_as(&server, "alice").await;
    watcher.expect("NLN NLN alice@example.com Alice").await;
    let (mut second, _) = online_as(&server, "alice").await;
    let rest = first.expect_closed().await;
    assert_eq!(rest.last().map(|l| l.text.as_str()), Some("OUT OTH"));
    // The second session is the one that counts.
    second.send("CHG 5 AWY").await;
    second.expect("CHG 5 AWY").await;
    loop {
        let l = watcher.recv().await;
        if l.text == "NLN AWY alice@example.com Alice" {
            break;
        }
        assert!(l.text.starts_with("NLN ") || l.text.starts_with("FLN "), "{}", l.text);
    }
}

#[tokio::test]
async fn unknown_and_malformed_commands_get_200_and_the_connection_goes_on() {
    let server = TestServer::start();
    users(&server, &["alice"]);
    let mut a = login(&server, "alice@example.com", "pw-alice").await;
    a.send("FOO 42 bar").await;
    a.expect("200 42").await;
    a.send("SYN").await;
    a.expect("200").await;
    a.send("ADD 43 FL").await;
    a.expect("200 43").await;
    a.send("SYN 4294967296 0").await;
    a.expect("200").await;
    a.send("SYN 4294967295 0").await;
    a.expect("SYN 4294967295 0").await;
    a.sync_point_skipping().await;
    a.send_raw(b"\xff\xfe\x00 99\r\n").await;
    a.expect_prefix("200").await;
    a.send("syn 44 0").await;
    a.expect("200 44").await;
    a.sync_point().await;
}

#[tokio::test]
async fn without_referral_the_msnp_port_serves_notification_itself() {
    let server = TestServer::start_with(&["--no-referral"]);
    users(&server, &["alice"]);
    let mut c = Client::connect(server.dispatch).await;
    c.send("VER 1 MSNP2 CVR0").await;
    c.expect("VER 1 MSNP2").await;
    c.send("USR 2 MD5 I alice@example.com").await;
    let challenge = c.expect_prefix("USR 2 MD5 S ").await.args()[4].to_string();
    c.send(&format!("USR 3 MD5 S {}", md5_hex(&challenge, "pw-alice"))).await;
    c.expect("USR 3 OK alice@example.com Alice").await;
    c.expect_prefix("MSG Hotmail Hotmail ").await;
    // Switchboard connections still share the port.
    c.send("CHG 4 NLN").await;
    c.expect("CHG 4 NLN").await;
    c.send("XFR 5 SB").await;
    let xfr = c.expect_prefix("XFR 5 SB ").await;
    let mut sb = Client::connect_str(xfr.args()[3]).await;
    sb.send(&format!("USR 1 alice@example.com {}", xfr.args()[5])).await;
    sb.expect("USR 1 OK alice@example.com Alice").await;
}

#[tokio::test]
async fn cvr_echoes_the_client_version() {
    let server = TestServer::start();
    let mut c = Client::connect(server.dispatch).await;
    c.send("VER 1 MSNP2 CVR0").await;
    c.expect("VER 1 MSNP2").await;
    c.send("CVR 2 0x0409 win 4.10 i386 MSMSGS 1.0.0863 MSMSGS").await;
    c.expect_prefix("CVR 2 1.0.0863 1.0.0863 1.0.0863 ").await;
    c.send("CVR 3 0x0409").await;
    c.expect("710 3").await;
}
