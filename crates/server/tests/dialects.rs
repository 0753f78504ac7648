//! Transcript tests for each dialect family, asserted line by line against
//! the shapes of the protocol reference, and interop between dialects.

mod common;

use common::*;
use msnp::challenge::{md5_response, msnp11_response};

/// Each family's sign-in, line by line as its clients send it: the shape of
/// the referral and of the login answer, and what the profile carries.
#[tokio::test]
async fn every_family_logs_in_through_the_dispatch_referral() {
    let server = TestServer::start();
    users(&server, &["alice"]);
    let (email, password) = ("alice@example.com", "pw-alice");
    for dialect in 2..=12u8 {
        let ver = format!("MSNP{dialect}");
        let cvr = format!("CVR 2 0x0409 winnt 5.1 i386 MSNMSGR 7.0.0813 msmsgs {email}");
        let package = if dialect >= 8 { "TWN" } else { "MD5" };
        let mut ds = Client::connect(server.dispatch).await;
        ds.send(&format!("VER 1 {ver} CVR0")).await;
        ds.expect(&format!("VER 1 {ver}")).await;
        if dialect >= 8 {
            ds.send(&cvr).await;
            ds.expect_prefix("CVR 2 7.0.0813 7.0.0813 7.0.0813 ").await;
        } else {
            ds.send("INF 2").await;
            ds.expect("INF 2 MD5").await;
        }
        ds.send(&format!("USR 3 {package} I {email}")).await;
        let xfr = ds.expect_prefix("XFR 3 NS ").await;
        let expected_len = match dialect {
            2 => 4,
            3..=6 => 5,
            _ => 6,
        };
        assert_eq!(xfr.args().len(), expected_len, "XFR NS shape of {ver}: {}", xfr.text);
        if dialect >= 7 {
            assert_eq!(xfr.args()[5], server.dispatch.to_string());
        }
        // The client hangs up on the dispatch server (see notification.rs).
        drop(ds);

        let mut ns = Client::connect_str(xfr.args()[3]).await;
        ns.send(&format!("VER 4 {ver} CVR0")).await;
        ns.expect(&format!("VER 4 {ver}")).await;
        if dialect >= 8 {
            ns.send(&cvr.replace("CVR 2", "CVR 5")).await;
            ns.expect_prefix("CVR 5 ").await;
        }
        ns.send(&format!("USR 6 {package} I {email}")).await;
        let challenge = ns.expect_prefix(&format!("USR 6 {package} S ")).await.args()[4].to_string();
        let response = if dialect >= 8 {
            passport_ticket(&server, email, password, &challenge).await.expect("a ticket")
        } else {
            md5_hex(&challenge, password)
        };
        ns.send(&format!("USR 7 {package} S {response}")).await;
        let ok = ns.expect_prefix(&format!("USR 7 OK {email}")).await;
        let expected_ok_len = match dialect {
            2..=5 => 5,
            6 | 7 => 6,
            8 | 9 => 7,
            _ => 6,
        };
        assert_eq!(ok.args().len(), expected_ok_len, "USR OK shape of {ver}: {}", ok.text);
        if dialect >= 11 {
            ns.expect("SBS 0 null").await;
        }
        let profile = ns.expect_prefix("MSG Hotmail Hotmail ").await;
        let text = String::from_utf8(profile.payload.unwrap()).unwrap();
        assert!(text.contains("text/x-msmsgsprofile"));
        assert_eq!(text.contains("ABCHMigrated: 1"), dialect >= 10);
        assert_eq!(text.contains("ClientIP: "), dialect >= 8);
        assert_eq!(text.contains("MSPAuth: "), dialect >= 3);
        ns.send("OUT").await;
        ns.expect_closed().await;

        // The shared sign-in reaches the same place.
        let mut c = as_dialect(&server, dialect, "alice").await;
        c.send("OUT").await;
        c.expect_closed().await;
    }
}

#[tokio::test]
async fn msnp3_and_msnp4_are_msnp2_with_a_longer_referral() {
    let server = TestServer::start();
    users(&server, &["alice", "bob"]);
    for dialect in [3u8, 4] {
        let mut a = as_dialect(&server, dialect, "alice").await;
        a.send("SYN 8 0").await;
        a.expect_prefix("SYN 8 ").await;
        a.sync_point_skipping().await;
        a.send("IMS 9 OFF").await;
        a.expect("IMS 9 0 OFF").await;
        a.send("SND 10 friend@example.com").await;
        a.expect("502 10").await;
    }
    // IMS OFF refuses invitations: Bob's CAL finds Alice unavailable until
    // she turns them on again.
    let mut a = as_dialect(&server, 3, "alice").await;
    a.send("CHG 1 NLN").await;
    a.expect("CHG 1 NLN").await;
    a.send("IMS 2 OFF").await;
    a.expect("IMS 2 0 OFF").await;
    let (mut b, _) = online_as(&server, "bob").await;
    let mut sb = open_session(&server, &mut b, "bob@example.com", "Bob").await;
    sb.send("CAL 2 alice@example.com").await;
    sb.expect("217 2").await;
    a.send("IMS 3 ON").await;
    a.expect("IMS 3 0 ON").await;
    sb.send("CAL 3 alice@example.com").await;
    sb.expect_prefix("CAL 3 RINGING ").await;
    a.expect_prefix("RNG ").await;
}

#[tokio::test]
async fn msnp5_to_7_phones_challenges_and_groups() {
    let server = TestServer::start();
    users(&server, &["alice", "bob", "carol", "dave"]);
    // MSNP5: phones, with BPR after each forward-list entry.
    let mut a = as_dialect(&server, 5, "alice").await;
    a.send("PRP 1 PHH 555%20123").await;
    a.expect("PRP 1 1 PHH 555%20123").await;
    a.send("PRP 2 MOB X").await;
    a.expect("201 2").await;
    a.send("ADD 3 FL bob@example.com Bob").await;
    a.expect("ADD 3 FL 2 bob@example.com Bob").await;
    let mut b = as_dialect(&server, 5, "bob").await;
    b.send("ADD 1 AL alice@example.com alice@example.com").await;
    b.expect("ADD 1 AL 2 alice@example.com alice@example.com").await;
    b.send("PRP 2 PHM 777").await;
    b.expect("PRP 2 3 PHM 777").await;
    a.expect("BPR 3 bob@example.com PHM 777").await;
    a.send("SYN 4 0").await;
    a.expect_all(&[
        "SYN 4 2",
        "GTC 4 2 A",
        "BLP 4 2 AL",
        "PRP 4 2 PHH 555%20123",
        "PRP 4 2 PHW",
        "PRP 4 2 PHM",
        "PRP 4 2 MOB",
        "PRP 4 2 MBE",
        "LST 4 FL 2 1 1 bob@example.com Bob",
        "BPR 2 bob@example.com PHH",
        "BPR 2 bob@example.com PHW",
        "BPR 2 bob@example.com PHM 777",
        "BPR 2 bob@example.com MOB",
        "LST 4 AL 2 0 0",
        "LST 4 BL 2 0 0",
        "LST 4 RL 2 0 0",
    ])
    .await;

    // MSNP6: a challenge after the first CHG, answered with the MD5 variant.
    let mut c = as_dialect(&server, 6, "carol").await;
    c.send("CHG 1 NLN").await;
    c.expect("CHG 1 NLN").await;
    let chl = c.expect_prefix("CHL 0 ").await.args()[2].to_string();
    assert_eq!(chl.len(), 20);
    c.send_payload("QRY 2 msmsgs@msnmsgr.com", md5_response(&chl, "Q1P7W2E4J9R8U3S5").as_bytes()).await;
    c.expect("QRY 2").await;
    c.send_payload("QRY 3 msmsgs@msnmsgr.com", b"00000000000000000000000000000000").await;
    c.expect("715 3").await;

    // MSNP7: groups.
    let mut d = as_dialect(&server, 7, "dave").await;
    d.send("ADG 1 Friends 0").await;
    d.expect("ADG 1 1 Friends 1 0").await;
    d.send("ADG 2 Work 0").await;
    d.expect("ADG 2 2 Work 2 0").await;
    d.send("ADG 3 Friends 0").await;
    d.expect("228 3").await;
    d.send(&format!("ADG 4 {} 0", "x".repeat(62))).await;
    d.expect("229 4").await;
    d.send("ADD 5 FL alice@example.com Alice 1").await;
    d.expect("ADD 5 FL 4 alice@example.com Alice 1").await;
    d.send("ADD 6 FL alice@example.com Alice 2").await;
    d.expect("ADD 6 FL 5 alice@example.com Alice 2").await;
    d.send("ADD 7 FL alice@example.com Alice 2").await;
    d.expect("215 7").await;
    d.send("ADD 8 FL bob@example.com Bob").await;
    d.expect("ADD 8 FL 6 bob@example.com Bob 0").await;
    d.send("ADD 9 FL carol@example.com Carol 9").await;
    d.expect("224 9").await;
    d.send("LSG 10").await;
    d.expect_all(&["LSG 10 6 1 3 0 Other%20Contacts 0", "LSG 10 6 2 3 1 Friends 0", "LSG 10 6 3 3 2 Work 0"]).await;
    d.send("REM 11 FL alice@example.com 1").await;
    d.expect("REM 11 FL 7 alice@example.com 1").await;
    d.send("REM 12 FL alice@example.com 1").await;
    d.expect("225 12").await;
    d.send("REG 13 2 Jobs 0").await;
    d.expect("REG 13 8 2 Jobs 0").await;
    d.send("RMG 14 0").await;
    d.expect("230 14").await;
    d.send("RMG 15 2").await;
    d.expect("RMG 15 9 2").await;
    d.send("RMG 16 7").await;
    d.expect("224 16").await;
    // Gaim moves a contact out of "Other Contacts" by removing group 0.
    d.send("REM 17 FL bob@example.com 0").await;
    d.expect("REM 17 FL 9 bob@example.com 0").await;
    d.send("LST 18 FL").await;
    d.expect_all(&[
        "LST 18 FL 9 1 2 alice@example.com Alice 0",
        "BPR 9 alice@example.com PHH",
        "BPR 9 alice@example.com PHW",
        "BPR 9 alice@example.com PHM",
        "BPR 9 alice@example.com MOB",
        "LST 18 FL 9 2 2 bob@example.com Bob 0",
    ])
    .await;
}

#[tokio::test]
async fn msnp8_and_9_compact_sync_client_ids_and_objects() {
    let server = TestServer::start();
    users(&server, &["alice", "bob"]);
    let mut a = as_dialect(&server, 8, "alice").await;
    a.send("SYN 1 0").await;
    a.expect_all(&["SYN 1 0 0 1", "GTC A", "BLP AL", "LSG 0 Other%20Contacts 0"]).await;
    a.send("ADD 2 FL bob@example.com Bob").await;
    a.expect("ADD 2 FL 1 bob@example.com Bob 0").await;
    a.send("ADD 3 AL bob@example.com bob@example.com").await;
    a.expect("ADD 3 AL 2 bob@example.com bob@example.com").await;
    a.send("CHG 4 NLN 268435492").await;
    a.expect("CHG 4 NLN 268435492").await;
    let chl = a.expect_prefix("CHL 0 ").await.args()[2].to_string();
    a.send_payload("QRY 5 PROD0038W!61ZTF9", md5_response(&chl, "VT6PX?UQTM4WM%YR").as_bytes()).await;
    a.expect("QRY 5").await;
    a.send("PNG").await;
    a.expect("QNG").await;
    for (trid, cmd) in [(6, "LST 6 FL"), (7, "INF 7"), (8, "ADC 8 FL N=bob@example.com")] {
        a.send(cmd).await;
        a.expect(&format!("502 {trid}")).await;
    }

    let mut b = as_dialect(&server, 9, "bob").await;
    b.send("SYN 1 0").await;
    b.expect_all(&["SYN 1 1 1 1", "GTC A", "BLP AL", "LSG 0 Other%20Contacts 0", "LST alice@example.com Alice 8"])
        .await;
    b.send("CHG 2 NLN 268435492 %3Cmsnobj%2F%3E").await;
    b.expect("CHG 2 NLN 268435492 %3Cmsnobj%2F%3E").await;
    b.expect_prefix("CHL 0 ").await;
    a.expect("NLN NLN bob@example.com Bob 268435492").await;
    b.send("PNG").await;
    b.expect("QNG 50").await;
    b.send("ADD 3 FL alice@example.com Alice").await;
    b.expect_all(&["ADD 3 FL 2 alice@example.com Alice 0", "ILN 3 NLN alice@example.com Alice 268435492"]).await;
    a.expect("ADD 0 RL 3 bob@example.com Bob").await;
    b.send("REA 4 bob@example.com Bobby").await;
    b.expect("REA 4 3 bob@example.com Bobby").await;
    a.expect("NLN NLN bob@example.com Bobby 268435492").await;
    a.send("SYN 8 2").await;
    a.expect_all(&["SYN 8 3 1 1", "GTC A", "BLP AL", "LSG 0 Other%20Contacts 0", "LST bob@example.com Bobby 11 0"])
        .await;
    a.send("SYN 9 3").await;
    a.expect("SYN 9 3").await;
    a.sync_point().await;
}

#[tokio::test]
async fn msnp10_guids_adc_and_time_stamp_versions() {
    let server = TestServer::start();
    users(&server, &["carol", "dan"]);
    let mut c = as_dialect(&server, 10, "carol").await;
    c.send("SYN 1 0 0").await;
    let syn = c.expect_prefix("SYN 1 ").await;
    let args = syn.args();
    assert_eq!(args.len(), 6, "{}", syn.text);
    assert_eq!(args[2], args[3]);
    assert_eq!(&args[4..], ["0", "0"]);
    c.expect_all(&["GTC A", "BLP AL", "PRP MFN Carol"]).await;
    c.send("ADG 2 Pals").await;
    let group = c.expect_prefix("ADG 2 Pals ").await.args()[3].to_string();
    assert_eq!(group.len(), 36);
    c.send("ADC 3 FL N=dan@example.com F=Dan").await;
    let adc = c.expect_prefix("ADC 3 FL N=dan@example.com F=Dan C=").await;
    let contact = adc.args()[5].trim_start_matches("C=").to_string();
    c.send(&format!("ADC 4 FL C={contact} {group}")).await;
    c.expect(&format!("ADC 4 FL C={contact} {group}")).await;
    c.send("ADC 5 FL N=nobody@example.com F=x").await;
    c.expect("208 5").await;
    c.send("ADC 6 AL N=dan@example.com").await;
    c.expect("ADC 6 AL N=dan@example.com").await;
    c.send(&format!("SBP 7 {contact} MFN Danny")).await;
    c.expect(&format!("SBP 7 {contact} MFN Danny")).await;
    c.send("PRP 8 MFN Caroline").await;
    c.expect("PRP 8 MFN Caroline").await;
    c.send(&format!("REG 9 {group} Buddies")).await;
    c.expect(&format!("REG 9 1 Buddies {group} 0")).await;
    c.send("SYN 10 0 0").await;
    let syn = c.expect_prefix("SYN 10 ").await;
    let ts = syn.args()[2].to_string();
    assert_eq!(&syn.args()[4..], ["1", "1"]);
    c.expect_all(&[
        "GTC A",
        "BLP AL",
        "PRP MFN Caroline",
        &format!("LSG Buddies {group}"),
        &format!("LST N=dan@example.com F=Dan C={contact} 3 {group}"),
    ])
    .await;
    c.send(&format!("SYN 11 {ts} {ts}")).await;
    c.expect(&format!("SYN 11 {ts} {ts}")).await;
    c.send(&format!("REM 12 FL {contact} {group}")).await;
    c.expect(&format!("REM 12 FL {contact} {group}")).await;
    c.send(&format!("REM 13 FL {contact}")).await;
    c.expect(&format!("REM 13 FL {contact}")).await;
    c.send("REM 14 AL dan@example.com").await;
    c.expect("REM 14 AL dan@example.com").await;
    c.send(&format!("RMG 15 {group}")).await;
    c.expect(&format!("RMG 15 1 {group}")).await;
    for (trid, cmd) in [(16, "REA 16 carol@example.com X"), (17, "ADD 17 FL dan@example.com Dan"), (18, "UUX 18 0")] {
        c.send(cmd).await;
        c.expect(&format!("502 {trid}")).await;
    }
    // The version moved on with the changes.
    c.send(&format!("SYN 19 {ts} {ts}")).await;
    let syn = c.expect_prefix("SYN 19 ").await;
    assert_ne!(syn.args()[2], ts);
}

#[tokio::test]
async fn msnp11_and_12_personal_messages_gcf_challenges_and_network_ids() {
    let server = TestServer::start();
    users(&server, &["dan", "erin"]);
    let mut d = as_dialect(&server, 11, "dan").await;
    d.send("SYN 1 0 0").await;
    d.expect_prefix("SYN 1 ").await;
    d.expect_all(&["GTC A", "BLP AL", "PRP MFN Dan"]).await;
    d.send("GCF 2 Shields.xml").await;
    let gcf = d.expect("GCF 2 Shields.xml 145").await;
    assert!(String::from_utf8(gcf.payload.unwrap()).unwrap().starts_with("<?xml"));
    d.send("CHG 3 NLN 1073791020").await;
    d.expect("CHG 3 NLN 1073791020").await;
    let chl = d.expect_prefix("CHL 0 ").await.args()[2].to_string();
    let answer = msnp11_response(&chl, "PROD0090YUAUV{2B", "YMM8C_H7KCQ2S_KL");
    d.send_payload("QRY 4 PROD0090YUAUV{2B", answer.as_bytes()).await;
    d.expect("QRY 4").await;
    let psm = b"<Data><PSM>Hello &amp; welcome</PSM><CurrentMedia></CurrentMedia></Data>";
    d.send_payload("UUX 5", psm).await;
    d.expect("UUX 5 0").await;

    let mut e = as_dialect(&server, 12, "erin").await;
    e.send("ADC 1 FL N=dan@example.com F=Dan").await;
    e.expect_prefix("ADC 1 FL N=dan@example.com F=Dan C=").await;
    d.expect("ADC 0 RL N=erin@example.com F=Erin").await;
    e.send("SYN 2 0 0").await;
    e.expect_prefix("SYN 2 ").await;
    e.expect_all(&["GTC A", "BLP AL", "PRP MFN Erin"]).await;
    let lst = e.expect_prefix("LST N=dan@example.com F=Dan C=").await;
    assert_eq!(&lst.args()[4..], ["1", "1"], "MSNP12 carries the network id: {}", lst.text);
    e.send("CHG 3 NLN 1342177280").await;
    e.expect("CHG 3 NLN 1342177280").await;
    e.expect("ILN 3 NLN dan@example.com Dan 1073791020").await;
    assert_eq!(e.expect(&format!("UBX dan@example.com {}", psm.len())).await.payload.unwrap(), psm);
    e.expect_prefix("CHL 0 ").await;
    let psm2 = b"<Data><PSM>Gone fishing</PSM><CurrentMedia></CurrentMedia></Data>";
    d.send_payload("UUX 6", psm2).await;
    d.expect("UUX 6 0").await;
    assert_eq!(e.expect(&format!("UBX dan@example.com {}", psm2.len())).await.payload.unwrap(), psm2);

    // Switchboard rosters carry client ids in MSNP12.
    d.send("ADC 7 FL N=erin@example.com F=Erin").await;
    d.expect_prefix("ADC 7 FL ").await;
    d.expect("ILN 7 NLN erin@example.com Erin 1342177280").await;
    e.expect("ADC 0 RL N=dan@example.com F=Dan").await;
    let mut sb = open_session(&server, &mut d, "dan@example.com", "Dan").await;
    let (mut esb, iro) = invite(&mut sb, 2, &mut e, "erin@example.com").await;
    assert_eq!(iro, ["IRO 7 1 1 dan@example.com Dan 1073791020"]);
    sb.expect("JOI erin@example.com Erin").await;
    esb.sync_point_sb_peer(&mut sb).await;
    // P2P data (ack mode D) is acknowledged when delivered, 282 when not.
    let p2p =
        b"MIME-Version: 1.0\r\nContent-Type: application/x-msnmsgrp2p\r\nP2P-Dest: erin@example.com\r\n\r\n0123456789";
    sb.send_payload("MSG 10 D", p2p).await;
    sb.expect("ACK 10").await;
    assert_eq!(esb.expect(&format!("MSG dan@example.com Dan {}", p2p.len())).await.payload.unwrap(), p2p);
    esb.send("OUT").await;
    sb.expect("BYE erin@example.com").await;
    sb.send_payload("MSG 11 D", p2p).await;
    sb.expect("282 11").await;
}

trait SbPeer {
    async fn sync_point_sb_peer(&mut self, peer: &mut Client);
}

impl SbPeer for Client {
    async fn sync_point_sb_peer(&mut self, peer: &mut Client) {
        let body = text_message("ping");
        self.send_payload("MSG 9 A", &body).await;
        self.expect("ACK 9").await;
        peer.expect_prefix("MSG ").await;
    }
}

#[tokio::test]
async fn msnp2_and_msnp12_users_see_each_other_and_chat() {
    let server = TestServer::start();
    users(&server, &["alice", "bob"]);
    let (mut a, _) = online_as(&server, "alice").await; // MSNP2
    a.send("ADD 1 FL bob@example.com Bob").await;
    a.expect_prefix("ADD 1 FL ").await;
    let mut b = as_dialect(&server, 12, "bob").await;
    b.send("ADC 2 FL N=alice@example.com F=Alice").await;
    b.expect_prefix("ADC 2 FL ").await;
    // Each learns of the other's add in its own dialect's shape.
    a.expect("ADD 0 RL 2 bob@example.com Bob").await;
    b.send("CHG 3 AWY 1342177280").await;
    b.expect("CHG 3 AWY 1342177280").await;
    b.expect("ILN 3 NLN alice@example.com Alice 0").await;
    a.expect("NLN AWY bob@example.com Bob").await;
    b.expect_prefix("CHL 0 ").await;
    a.send("CHG 4 BSY").await;
    a.expect("CHG 4 BSY").await;
    b.expect("NLN BSY alice@example.com Alice 0").await;

    // Alice (MSNP2) calls Bob (MSNP12): each sees the other in its own shape.
    let mut asb = open_session(&server, &mut a, "alice@example.com", "Alice").await;
    let (mut bsb, iro) = invite(&mut asb, 2, &mut b, "bob@example.com").await;
    assert_eq!(iro, ["IRO 7 1 1 alice@example.com Alice 0"]);
    asb.expect("JOI bob@example.com Bob").await;
    let body = text_message("hello from 1999");
    asb.send_payload("MSG 3 A", &body).await;
    asb.expect("ACK 3").await;
    assert_eq!(bsb.expect(&format!("MSG alice@example.com Alice {}", body.len())).await.payload.unwrap(), body);
    let reply = text_message("hello from 2005");
    bsb.send_payload("MSG 4 A", &reply).await;
    bsb.expect("ACK 4").await;
    assert_eq!(asb.expect(&format!("MSG bob@example.com Bob {}", reply.len())).await.payload.unwrap(), reply);
}

#[tokio::test]
async fn data_an_old_dialect_cannot_carry_is_kept() {
    let server = TestServer::start();
    users(&server, &["bob", "carol", "dave"]);
    // Bob, on MSNP12, makes a group, files Carol in it and sets a personal message.
    let mut b = as_dialect(&server, 12, "bob").await;
    b.send("ADG 1 Pals").await;
    let group = b.expect_prefix("ADG 1 Pals ").await.args()[3].to_string();
    b.send("ADC 2 FL N=carol@example.com F=Carol").await;
    let contact = b.expect_prefix("ADC 2 FL ").await.args()[5].trim_start_matches("C=").to_string();
    b.send(&format!("ADC 3 FL C={contact} {group}")).await;
    b.expect_prefix("ADC 3 FL ").await;
    let psm = b"<Data><PSM>Still here</PSM><CurrentMedia></CurrentMedia></Data>";
    b.send_payload("UUX 4", psm).await;
    b.expect("UUX 4 0").await;
    b.send("OUT").await;
    b.expect_closed().await;

    // Then on MSNP2, which knows nothing of groups or personal messages,
    // adds Dave and removes nobody.
    let (mut b2, _) = online_as(&server, "bob").await;
    b2.send("ADD 1 FL dave@example.com Dave").await;
    b2.expect_prefix("ADD 1 FL ").await;
    b2.send("OUT").await;
    b2.expect_closed().await;

    // Back on MSNP12 everything is there.
    let mut b3 = as_dialect(&server, 12, "bob").await;
    b3.send("SYN 1 0 0").await;
    b3.expect_prefix("SYN 1 ").await;
    b3.expect_all(&[
        "GTC A",
        "BLP AL",
        "PRP MFN Bob",
        &format!("LSG Pals {group}"),
        &format!("LST N=carol@example.com F=Carol C={contact} 1 1 {group}"),
    ])
    .await;
    b3.expect_prefix("LST N=dave@example.com F=Dave C=").await;
    b3.send("CHG 2 NLN 1342177280").await;
    b3.expect("CHG 2 NLN 1342177280").await;
    let mut c = as_dialect(&server, 11, "carol").await;
    c.send("CHG 1 NLN 0").await;
    c.expect("CHG 1 NLN 0").await;
    c.expect_prefix("CHL 0 ").await;
    c.send("ADC 2 FL N=bob@example.com F=Bob").await;
    c.expect_prefix("ADC 2 FL ").await;
    c.expect("ILN 2 NLN bob@example.com Bob 1342177280").await;
    assert_eq!(c.expect(&format!("UBX bob@example.com {}", psm.len())).await.payload.unwrap(), psm);
}

#[tokio::test]
async fn challenge_policy_strict_disconnects_and_lenient_counts() {
    let strict = TestServer::start_with(&["--challenges", "strict"]);
    users(&strict, &["alice"]);
    let mut a = as_dialect(&strict, 11, "alice").await;
    a.send("CHG 1 NLN 0").await;
    a.expect("CHG 1 NLN 0").await;
    a.expect_prefix("CHL 0 ").await;
    a.send_payload("QRY 2 PROD0090YUAUV{2B", b"0123456789abcdef0123456789abcdef").await;
    assert_eq!(a.expect_closed().await.iter().map(|l| l.text.clone()).collect::<Vec<_>>(), ["540 2"]);

    let lenient = TestServer::start();
    users(&lenient, &["alice"]);
    let mut a = as_dialect(&lenient, 11, "alice").await;
    a.send("CHG 1 NLN 0").await;
    a.expect("CHG 1 NLN 0").await;
    a.expect_prefix("CHL 0 ").await;
    a.send_payload("QRY 2 PROD0090YUAUV{2B", b"0123456789abcdef0123456789abcdef").await;
    a.expect("QRY 2").await;
    a.sync_point().await;
    let status = http_get(lenient.http.unwrap(), "/status.json", &[]).await;
    let status: serde_json::Value = serde_json::from_slice(&status.body).unwrap();
    assert_eq!(status["challenges_failed"], 1);

    let off = TestServer::start_with(&["--challenges", "off"]);
    users(&off, &["alice"]);
    let mut a = as_dialect(&off, 11, "alice").await;
    a.send("CHG 1 NLN 0").await;
    a.expect("CHG 1 NLN 0").await;
    a.sync_point().await;
}

#[tokio::test]
async fn refuse_md5_serves_only_the_passport_dialects() {
    let server = TestServer::start_with(&["--refuse-md5"]);
    users(&server, &["alice"]);
    // A client that offers only MD5 dialects finds no common one, on the
    // dispatch port and on the notification port alike.
    for addr in [server.dispatch, server.ns] {
        let mut c = Client::connect(addr).await;
        c.send("VER 1 MSNP7 MSNP6 MSNP5 CVR0").await;
        c.expect("VER 1 0").await;
    }
    // One that also offers a Passport dialect gets it, and signs in.
    let mut c = Client::connect(server.dispatch).await;
    c.send("VER 1 MSNP8 MSNP7 CVR0").await;
    c.expect("VER 1 MSNP8").await;
    let mut c = as_dialect(&server, 11, "alice").await;
    c.send("PNG").await;
    c.expect_prefix("QNG").await;
}
