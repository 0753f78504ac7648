//! Golden transcripts: one scripted session per dialect, everything both
//! sides say recorded and compared byte for byte (after masking what changes
//! from run to run: addresses, challenges, cookies, GUIDs, times) with
//! `tests/golden/<dialect>.txt`. They pin the wire output while the code
//! behind it is rearranged. After an intended change of the wire, write them
//! again with `MARIPOSA_BLESS=1 cargo test --test golden` and review the diff.

mod common;

use std::collections::HashMap;
use std::path::PathBuf;

use common::*;
use msnp::Dialect;
use msnp::challenge::{md5_response, msnp11_response};

/// What one scene said, in order, masked.
#[derive(Default)]
struct Transcript {
    lines: Vec<String>,
    /// Stable names for values that change per run, in order of appearance.
    names: HashMap<String, String>,
}

impl Transcript {
    /// Random values are numbered in order of appearance, so the transcript
    /// shows which are the same; clock values and header values are named by
    /// kind alone, because whether two of them coincide depends on timing.
    fn name(&mut self, kind: &str, value: &str) -> String {
        if !NUMBERED.contains(&kind) {
            return format!("<{kind}>");
        }
        let next = self.names.len() + 1;
        self.names.entry(value.to_string()).or_insert_with(|| format!("<{kind}{next}>")).clone()
    }

    /// Replaces every run-dependent value in `text` by a stable name.
    fn mask(&mut self, text: &str) -> String {
        let mut out = text.to_string();
        for value in run_dependent_values(text) {
            let name = self.name(value.0, &value.1);
            out = out.replace(&value.1, &name);
        }
        out
    }

    fn record(&mut self, who: &str, arrow: &str, line: &str, payload: Option<&[u8]>) {
        let masked = self.mask(line);
        self.lines.push(format!("{who}{arrow} {masked}"));
        if let Some(p) = payload {
            let text = String::from_utf8_lossy(p).into_owned();
            let masked = self.mask(&text);
            for l in masked.split("\r\n") {
                self.lines.push(format!("    | {l}"));
            }
        }
    }

    /// The transcript under its heading, one line each.
    fn render(self, heading: &str) -> String {
        let mut out = format!("{heading}\n");
        for line in self.lines {
            out.push_str(&line);
            out.push('\n');
        }
        out
    }

    /// Sends a command and records it.
    async fn send(&mut self, who: &str, c: &mut Client, line: &str) {
        self.record(who, ">", line, None);
        c.send(line).await;
    }

    async fn send_payload(&mut self, who: &str, c: &mut Client, line: &str, payload: &[u8]) {
        self.record(who, ">", &format!("{line} {}", payload.len()), Some(payload));
        c.send_payload(line, payload).await;
    }

    /// Records one command from the server and returns it unmasked.
    async fn recv(&mut self, who: &str, c: &mut Client) -> Line {
        let l = c.recv().await;
        self.record(who, "<", &l.text, l.payload.as_deref());
        l
    }

    /// Records everything a notification connection has been sent, up to a
    /// PNG round trip (events are answered before requests, so whatever
    /// another user's action caused has arrived by then).
    async fn settle(&mut self, who: &str, c: &mut Client) -> Vec<Line> {
        c.send("PNG").await;
        let mut seen = Vec::new();
        loop {
            let l = c.recv().await;
            if l.text.starts_with("QNG") {
                // The interval is the dialect's shape, so it is recorded.
                self.record(who, "<", &l.text, None);
                return seen;
            }
            self.record(who, "<", &l.text, l.payload.as_deref());
            seen.push(l);
        }
    }

    /// A request on a notification connection and everything it caused,
    /// there and on the other connections given.
    async fn step(&mut self, who: &str, c: &mut Client, line: &str, others: &mut [(&str, &mut Client)]) -> Vec<Line> {
        self.send(who, c, line).await;
        let seen = self.settle(who, c).await;
        for (name, other) in others.iter_mut() {
            self.settle(name, other).await;
        }
        seen
    }
}

/// The kinds of value that are unique per run.
const NUMBERED: [&str; 6] = ["addr", "guid", "secret", "challenge", "cookie", "session"];

/// Values that differ between runs, with the kind to name them by.
fn run_dependent_values(text: &str) -> Vec<(&str, String)> {
    let mut found = Vec::new();
    for token in text.split([' ', '\r', '\n', ',', '\'', '"', '<', '>', '=', ';', '&']) {
        if token.parse::<std::net::SocketAddr>().is_ok() {
            found.push(("addr", token.to_string()));
        } else if is_guid(token) {
            found.push(("guid", token.to_string()));
        } else if is_timestamp(token) {
            found.push(("time", token.to_string()));
        }
    }
    // Secrets and per-run numbers sit in known places.
    let words: Vec<&str> = text.split(' ').collect();
    let after = |marker: &str, offset: usize| {
        words.iter().position(|w| *w == marker).and_then(|i| words.get(i + offset)).map(|s| s.to_string())
    };
    match words.first().copied() {
        // Single sign-on: the nonce, or the ticket and the blob.
        Some("USR") if words.get(2) == Some(&"SSO") && words.get(3) == Some(&"S") => {
            found.extend(words.get(5).map(|s| ("secret", s.to_string())))
        }
        Some("USR") if words.get(3) == Some(&"S") => found.extend(words.get(4).map(|s| ("secret", s.to_string()))),
        Some("CHL") => found.extend(words.get(2).map(|s| ("challenge", s.to_string()))),
        Some("XFR") | Some("RNG") => found.extend(after("CKI", 1).map(|s| ("cookie", s))),
        _ => {}
    }
    match words.first().copied() {
        Some("RNG") => found.extend(words.get(1).map(|s| ("session", s.to_string()))),
        Some("CAL") if words.get(2) == Some(&"RINGING") => {
            found.extend(words.get(3).map(|s| ("session", s.to_string())))
        }
        Some("ANS") if words.len() == 5 => {
            found.extend(words.get(3).map(|s| ("cookie", s.to_string())));
            found.extend(words.get(4).map(|s| ("session", s.to_string())));
        }
        Some("USR") if words.len() == 4 && words[2].contains('@') => {
            found.extend(words.get(3).map(|s| ("cookie", s.to_string())))
        }
        _ => {}
    }
    // Profile headers and Passport tickets.
    for line in text.split("\r\n") {
        if let Some((name, value)) = line.split_once(": ")
            && ["LoginTime", "MSPAuth", "ClientIP", "ClientPort", "sid", "kv", "MSPHash"].contains(&name)
        {
            found.push((name, value.to_string()));
        }
    }
    for token in text.split(' ') {
        if token.starts_with("t=") && token.contains("&p=") {
            found.push(("secret", token.to_string()));
        }
    }
    // Longest first, so a value is never half-replaced by a shorter one.
    found.sort_by_key(|(_, v)| std::cmp::Reverse(v.len()));
    found.retain(|(_, v)| !v.is_empty());
    found
}

/// `2005-04-23T18:57:44.8130000+00:00`, the MSNP10+ list version.
fn is_timestamp(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() >= 20 && b[..4].iter().all(u8::is_ascii_digit) && b[4] == b'-' && b[7] == b'-' && b[10] == b'T'
}

fn is_guid(s: &str) -> bool {
    s.len() == 36
        && s.char_indices().all(|(i, c)| if [8, 13, 18, 23].contains(&i) { c == '-' } else { c.is_ascii_hexdigit() })
}

/// Signs `name` in through the dispatch referral, recording every line, and
/// answers the challenge that follows going online.
async fn sign_in(t: &mut Transcript, server: &TestServer, d: Dialect, who: &str, name: &str) -> Client {
    let email = format!("{name}@example.com");
    let password = format!("pw-{name}");
    let package = d.auth_scheme().package();
    let cvr = |trid: u32| match d.xfr_ns_carries_redirect_blob() {
        // The redirect blob the dispatch referral gave (MSNP21).
        true => format!(
            "CVR {trid} 0x0409 winnt 6.1.1 i386 MSNMSGR 16.4.3528 MSNMSGR {email} {}",
            msnp::signin::redirect_blob(1)
        ),
        false => format!("CVR {trid} 0x0409 winnt 5.1 i386 MSNMSGR 7.0.0813 msmsgs {email}"),
    };
    let mut ds = Client::connect(server.dispatch).await;
    t.send(who, &mut ds, &format!("VER 1 {d} CVR0")).await;
    t.recv(who, &mut ds).await;
    if d.has_inf() {
        t.send(who, &mut ds, "INF 2").await;
    } else {
        t.send(who, &mut ds, &cvr(2)).await;
    }
    t.recv(who, &mut ds).await;
    t.send(who, &mut ds, &format!("USR 3 {package} I {email}")).await;
    let xfr = t.recv(who, &mut ds).await;
    // The client hangs up on the dispatch server, as real ones do.
    drop(ds);

    let mut ns = Client::connect_str(xfr.args()[3]).await;
    t.send(who, &mut ns, &format!("VER 4 {d} CVR0")).await;
    t.recv(who, &mut ns).await;
    if !d.has_inf() {
        t.send(who, &mut ns, &cvr(5)).await;
        t.recv(who, &mut ns).await;
    }
    t.send(who, &mut ns, &format!("USR 6 {package} I {email}")).await;
    if d.sends_policies_at_login() {
        t.recv(who, &mut ns).await;
    }
    let challenged = t.recv(who, &mut ns).await;
    let response = if d.has_inf() {
        md5_hex(challenged.args()[4], &password)
    } else if package == "SSO" {
        let (policy, nonce) = (challenged.args()[4], challenged.args()[5]);
        let tokens = sso_tokens(server, &email, &password, policy).await.expect("RST tokens");
        let messenger = tokens.iter().find(|t| t.id == "Compact1").expect("the messenger token");
        let blob = msnp::sso::login_blob(messenger.secret.as_deref().expect("a key"), nonce, [9; 8]);
        match d.has_points_of_presence() {
            true => format!("{} {blob} {}", messenger.ticket, machine(name)),
            false => format!("{} {blob}", messenger.ticket),
        }
    } else {
        passport_ticket(server, &email, &password, challenged.args()[4]).await.expect("a ticket")
    };
    t.send(who, &mut ns, &format!("USR 7 {package} S {response}")).await;
    t.settle(who, &mut ns).await;
    if d.lists_over_soap() {
        // The lists come from the address book; the client says what it shows.
        t.send_payload(who, &mut ns, "ADL 8", br#"<ml l="1"></ml>"#).await;
        t.settle(who, &mut ns).await;
    } else {
        let version = if d.uses_guids() { "0 0" } else { "0" };
        t.step(who, &mut ns, &format!("SYN 8 {version}"), &mut []).await;
    }
    let chg = if d.capabilities_with_extended() {
        "CHG 9 NLN 2788999228:48"
    } else if d.presence_has_client_id() {
        "CHG 9 NLN 268435492"
    } else {
        "CHG 9 NLN"
    };
    let seen = if d.presence_in_documents() {
        // MSNP21 goes online by publishing its user document.
        let put = user_put(
            name,
            &format!(
                "<user><s n=\"IM\"><Status>NLN</Status><CurrentMedia></CurrentMedia></s><sep n=\"IM\" epid=\"{}\"><Capabilities>2955186480:2609258384</Capabilities></sep></user>",
                machine(name)
            ),
        );
        t.send_payload(who, &mut ns, "PUT 9", &put).await;
        t.settle(who, &mut ns).await
    } else {
        t.step(who, &mut ns, chg, &mut []).await
    };
    if let Some(chl) = seen.iter().find(|l| l.text.starts_with("CHL ")) {
        let challenge = chl.args()[2].to_string();
        let (product, answer) = if d.has_points_of_presence() {
            // Windows Live Messenger 2009's product.
            let id = "PROD0120PW!CCV9@";
            (id, msnp11_response(&challenge, id, "C1BX{V4W}Q3*10SM"))
        } else if d.lists_over_soap() {
            // Windows Live Messenger 8's product.
            let id = "PROD01065C%ZFN6F";
            (id, msnp11_response(&challenge, id, "O4BG@C7BWLYQX?5G"))
        } else if d.uses_msnp11_challenge() {
            let id = "PROD0090YUAUV{2B";
            (id, msnp11_response(&challenge, id, "YMM8C_H7KCQ2S_KL"))
        } else {
            ("msmsgs@msnmsgr.com", md5_response(&challenge, "Q1P7W2E4J9R8U3S5"))
        };
        // The answer follows from the challenge, so it is named, not shown.
        let qry = format!("QRY 10 {product}");
        t.record(who, ">", &format!("{qry} {}", answer.len()), Some(b"<answer>"));
        ns.send_payload(&qry, answer.as_bytes()).await;
        t.settle(who, &mut ns).await;
    }
    ns
}

/// A switchboard chat Alice opens and Bob answers, up to Bob's `JOI` on
/// Alice's side: the two switchboard connections.
async fn open_chat(t: &mut Transcript, d: Dialect, a: &mut Client, b: &mut Client) -> (Client, Client) {
    let me = |name: &str| match d.has_points_of_presence() {
        true => format!("{name}@example.com;{}", machine(name)),
        false => format!("{name}@example.com"),
    };
    let xfr = t.step("A", a, "XFR 50 SB", &mut []).await;
    let (address, cookie) = (xfr[0].args()[3].to_string(), xfr[0].args()[5].to_string());
    let mut sa = Client::connect_str(&address).await;
    t.send("A·sb", &mut sa, &format!("USR 1 {} {cookie}", me("alice"))).await;
    t.recv("A·sb", &mut sa).await;
    t.send("A·sb", &mut sa, "CAL 2 bob@example.com").await;
    t.recv("A·sb", &mut sa).await;
    let ring = t.settle("B", b).await;
    let r = ring[0].args();
    let (address, cookie, session) = (r[2].to_string(), r[4].to_string(), r[1].to_string());
    let mut sb = Client::connect_str(&address).await;
    t.send("B·sb", &mut sb, &format!("ANS 1 {} {cookie} {session}", me("bob"))).await;
    loop {
        if t.recv("B·sb", &mut sb).await.text.starts_with("ANS") {
            break;
        }
    }
    // Bob's endpoint, then (MSNP16+) Bob himself.
    for _ in 0..if d.has_points_of_presence() { 2 } else { 1 } {
        t.recv("A·sb", &mut sa).await;
    }
    (sa, sb)
}

/// A `PUT` of `document` to `name`'s own `/user` (MSNP21).
fn user_put(name: &str, document: &str) -> Vec<u8> {
    let to = format!("{name}@example.com");
    format!(
        "Routing: 1.0\r\nTo: 1:{to}\r\nFrom: 1:{to};epid={}\r\n\r\nReliability: 1.0\r\n\r\nPublication: 1.0\r\nUri: /user\r\nContent-Type: application/user+xml\r\nContent-Length: {}\r\n\r\n{document}",
        machine(name),
        document.len()
    )
    .into_bytes()
}

/// An `SDG` from `from` to `to` (MSNP21) of one message type.
fn sdg(from: &str, to: &str, kind: &str, body: &str) -> Vec<u8> {
    format!(
        "Routing: 1.0\r\nTo: 1:{to}@example.com\r\nFrom: 1:{from}@example.com;epid={}\r\n\r\nReliability: 1.0\r\n\r\nMessaging: 2.0\r\nMessage-Type: {kind}\r\nContent-Length: {}\r\nContent-Type: text/plain; charset=UTF-8\r\n\r\n{body}",
        machine(from),
        body.len()
    )
    .into_bytes()
}

/// The scene for MSNP21, which has no switchboard: Alice and Bob list
/// each other (`ADL` with service children), publish their presence and
/// personal message (`PUT` to `/user`, seen as `NFY PUT`), chat with
/// `SDG`, and Bob sees Alice leave (`NFY DEL`).
async fn scene_without_switchboard(d: Dialect) -> String {
    let server = TestServer::start();
    users(&server, &["alice", "bob"]);
    let mut t = Transcript::default();
    let mut a = sign_in(&mut t, &server, d, "A", "alice").await;
    let mut b = sign_in(&mut t, &server, d, "B", "bob").await;
    let bob = br#"<ml><d n="example.com"><c n="bob" t="1"><s n="IM" l="3"/></c></d></ml>"#;
    t.send_payload("A", &mut a, "ADL 20", bob).await;
    t.settle("A", &mut a).await;
    t.settle("B", &mut b).await;
    let alice = br#"<ml><d n="example.com"><c n="alice" t="1"><s n="IM" l="3"/></c></d></ml>"#;
    t.send_payload("B", &mut b, "ADL 21", alice).await;
    t.settle("B", &mut b).await;
    t.settle("A", &mut a).await;
    let away = "<user><s n=\"IM\"><Status>AWY</Status></s><s n=\"PE\"><FriendlyName>Alice A.</FriendlyName><PSM>at lunch</PSM></s></user>";
    t.send_payload("A", &mut a, "PUT 22", &user_put("alice", away)).await;
    t.settle("A", &mut a).await;
    t.settle("B", &mut b).await;
    t.send_payload("A", &mut a, "SDG 23", &sdg("alice", "bob", "Text", "hello, Bob")).await;
    t.settle("A", &mut a).await;
    t.settle("B", &mut b).await;
    t.send_payload("B", &mut b, "SDG 24", &sdg("bob", "alice", "Control/Typing", "")).await;
    t.send_payload("B", &mut b, "SDG 25", &sdg("bob", "alice", "Text", "hi!")).await;
    t.settle("B", &mut b).await;
    t.settle("A", &mut a).await;
    signs_out(&mut t, a, &mut b).await;
    t.render(&format!("# {d}: Alice and Bob, both on {d}, without a switchboard"))
}

/// The machine GUID each person signs in from in the dialects with
/// points of presence: fixed, so that transcripts stay the same.
fn machine(name: &str) -> &'static str {
    match name {
        "alice" => "{a11ce000-0000-4000-8000-000000000001}",
        _ => "{b0b00000-0000-4000-8000-000000000002}",
    }
}

/// The token after `prefix` in a line.
fn field<'a>(line: &'a Line, prefix: &str) -> Option<&'a str> {
    line.args().into_iter().find_map(|a| a.strip_prefix(prefix))
}

/// The scene: Alice and Bob, both on dialect `d`, sign in, list each other,
/// use groups, names, personal messages and privacy, chat in a switchboard
/// and sign out.
async fn scene(d: Dialect) -> String {
    let server = TestServer::start();
    users(&server, &["alice", "bob"]);
    let mut t = Transcript::default();
    let mut a = sign_in(&mut t, &server, d, "A", "alice").await;

    // Alice lists Bob, before he has signed in.
    let add = |trid: u32, list: &str, friendly: bool| {
        if d.uses_guids() {
            let f = if friendly { " F=Bob" } else { "" };
            format!("ADC {trid} {list} N=bob@example.com{f}")
        } else {
            format!("ADD {trid} {list} bob@example.com Bob")
        }
    };
    let added = t.step("A", &mut a, &add(20, "FL", true), &mut []).await;
    let bob_guid = added.first().and_then(|l| field(l, "C=")).map(str::to_string);
    t.step("A", &mut a, &add(21, "AL", false), &mut []).await;

    let mut b = sign_in(&mut t, &server, d, "B", "bob").await;
    t.settle("A", &mut a).await;
    let bob_adds_alice = if d.uses_guids() {
        "ADC 22 FL N=alice@example.com F=Alice".to_string()
    } else {
        "ADD 22 FL alice@example.com Alice".to_string()
    };
    t.step("B", &mut b, &bob_adds_alice, &mut [("A", &mut a)]).await;

    if d.has_groups() {
        let made = t.step("A", &mut a, "ADG 30 Friends 0", &mut []).await;
        let group = made.first().map(|l| l.args()[if d.uses_guids() { 3 } else { 4 }].to_string()).unwrap();
        if d.uses_guids() {
            t.step("A", &mut a, &format!("REG 31 {group} Buddies 0"), &mut []).await;
            let contact = bob_guid.clone().expect("a contact GUID");
            t.step("A", &mut a, &format!("ADC 32 FL C={contact} {group}"), &mut []).await;
            t.step("A", &mut a, &format!("REM 33 FL {contact} {group}"), &mut []).await;
        } else {
            t.step("A", &mut a, &format!("REG 31 {group} Buddies 0"), &mut []).await;
            t.step("A", &mut a, &format!("ADD 32 FL bob@example.com Bob {group}"), &mut []).await;
            t.step("A", &mut a, &format!("REM 33 FL bob@example.com {group}"), &mut []).await;
        }
        t.step("A", &mut a, &format!("RMG 34 {group}"), &mut []).await;
    }

    // Names, personal messages, states and privacy, as Bob sees them.
    let rename = if d.uses_guids() {
        "PRP 40 MFN Alice%20A.".to_string()
    } else {
        "REA 40 alice@example.com Alice%20A.".to_string()
    };
    t.step("A", &mut a, &rename, &mut [("B", &mut b)]).await;
    if d.has_personal_message() {
        let psm = b"<Data><PSM>at lunch</PSM><CurrentMedia></CurrentMedia></Data>";
        t.send_payload("A", &mut a, "UUX 41", psm).await;
        t.settle("A", &mut a).await;
        t.settle("B", &mut b).await;
    }
    let away = if d.presence_has_client_id() { "CHG 42 AWY 268435492" } else { "CHG 42 AWY" };
    t.step("A", &mut a, away, &mut [("B", &mut b)]).await;
    if d.has_phones() {
        t.step("A", &mut a, "PRP 43 PHH 555%20123", &mut [("B", &mut b)]).await;
    }
    t.step("A", &mut a, "BLP 44 BL", &mut []).await;
    if !d.uses_guids() {
        t.step("A", &mut a, "GTC 45 N", &mut []).await;
    }

    // A switchboard chat Alice opens and Bob answers.
    let (mut sa, mut sb) = open_chat(&mut t, d, &mut a, &mut b).await;
    let text = text_message("hello, Bob");
    t.send_payload("A·sb", &mut sa, "MSG 3 A", &text).await;
    t.recv("B·sb", &mut sb).await;
    t.recv("A·sb", &mut sa).await;
    let typing = b"MIME-Version: 1.0\r\nContent-Type: text/x-msmsgscontrol\r\nTypingUser: bob@example.com\r\n\r\n\r\n";
    t.send_payload("B·sb", &mut sb, "MSG 2 U", typing).await;
    t.recv("A·sb", &mut sa).await;
    t.send_payload("B·sb", &mut sb, "MSG 3 N", &text_message("hi!")).await;
    t.recv("A·sb", &mut sa).await;
    t.send("B·sb", &mut sb, "OUT").await;
    sb.expect_closed().await;
    t.recv("A·sb", &mut sa).await;
    t.send("A·sb", &mut sa, "OUT").await;
    sa.expect_closed().await;

    // Alice takes Bob off her allow list and signs out.
    t.step("A", &mut a, "REM 60 AL bob@example.com", &mut []).await;
    signs_out(&mut t, a, &mut b).await;
    t.render(&format!("# {d}: Alice and Bob, both on {d}"))
}

/// The scene for MSNP13+, whose lists live in the address book: Alice and
/// Bob list each other with `ADL` (Bob is told with `ADL 0`), look up a
/// network with `FQY`, send a `UUN`, chat in a switchboard, and Alice takes
/// Bob off her lists with `RML`.
async fn scene_over_soap(d: Dialect) -> String {
    let server = TestServer::start();
    users(&server, &["alice", "bob"]);
    let mut t = Transcript::default();
    let mut a = sign_in(&mut t, &server, d, "A", "alice").await;
    let mut b = sign_in(&mut t, &server, d, "B", "bob").await;
    let bob = br#"<ml><d n="example.com"><c n="bob" l="3" t="1"/></d></ml>"#;
    t.send_payload("A", &mut a, "ADL 20", bob).await;
    t.settle("A", &mut a).await;
    t.settle("B", &mut b).await;
    let alice = br#"<ml><d n="example.com"><c n="alice" l="1" t="1"/></d></ml>"#;
    t.send_payload("B", &mut b, "ADL 21", alice).await;
    t.settle("B", &mut b).await;
    t.settle("A", &mut a).await;
    if d.has_command("FQY") {
        t.send_payload("A", &mut a, "FQY 22", br#"<ml><d n="example.com"><c n="carol"/></d></ml>"#).await;
        t.settle("A", &mut a).await;
    }
    t.send_payload("A", &mut a, "UUN 23 bob@example.com 1", b"<hello/>").await;
    t.settle("A", &mut a).await;
    t.settle("B", &mut b).await;
    t.send_payload("A", &mut a, "UUX 41", b"<Data><PSM>at lunch</PSM><CurrentMedia></CurrentMedia></Data>").await;
    t.settle("A", &mut a).await;
    t.settle("B", &mut b).await;
    t.step("A", &mut a, "CHG 42 AWY 268435492", &mut [("B", &mut b)]).await;
    t.step("A", &mut a, "BLP 44 BL", &mut []).await;

    let (mut sa, mut sb) = open_chat(&mut t, d, &mut a, &mut b).await;
    t.send_payload("A·sb", &mut sa, "MSG 3 A", &text_message("hello, Bob")).await;
    t.recv("B·sb", &mut sb).await;
    t.recv("A·sb", &mut sa).await;
    t.send("B·sb", &mut sb, "OUT").await;
    sb.expect_closed().await;
    // Bob's endpoint, then (MSNP16+) Bob himself.
    for _ in 0..if d.has_points_of_presence() { 2 } else { 1 } {
        t.recv("A·sb", &mut sa).await;
    }
    t.send("A·sb", &mut sa, "OUT").await;
    sa.expect_closed().await;

    t.send_payload("A", &mut a, "RML 60", bob).await;
    t.settle("A", &mut a).await;
    t.settle("B", &mut b).await;
    signs_out(&mut t, a, &mut b).await;
    t.render(&format!("# {d}: Alice and Bob, both on {d}, lists in the address book"))
}

/// Alice signs out, and what Bob is told of it.
async fn signs_out(t: &mut Transcript, mut a: Client, b: &mut Client) {
    t.send("A", &mut a, "OUT").await;
    for l in a.expect_closed().await {
        t.record("A", "<", &l.text, l.payload.as_deref());
    }
    t.settle("B", b).await;
}

fn golden_path(d: Dialect) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/golden").join(format!("{}.txt", d.to_string().to_lowercase()))
}

#[tokio::test]
async fn every_dialect_says_exactly_what_its_golden_transcript_says() {
    let bless = std::env::var_os("MARIPOSA_BLESS").is_some();
    let mut differing = Vec::new();
    for d in Dialect::ALL {
        let got = if !d.has_switchboard() {
            scene_without_switchboard(d).await
        } else if d.lists_over_soap() {
            scene_over_soap(d).await
        } else {
            scene(d).await
        };
        let path = golden_path(d);
        if bless {
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, &got).unwrap();
            continue;
        }
        let want = std::fs::read_to_string(&path)
            .unwrap_or_else(|_| panic!("{} is missing; write it with MARIPOSA_BLESS=1", path.display()));
        if got != want {
            let first = got.lines().zip(want.lines()).position(|(g, w)| g != w).unwrap_or(0);
            differing.push(format!(
                "{d}: line {}\n  golden: {}\n  now:    {}",
                first + 1,
                want.lines().nth(first).unwrap_or("(end)"),
                got.lines().nth(first).unwrap_or("(end)")
            ));
        }
    }
    assert!(differing.is_empty(), "wire output changed:\n{}", differing.join("\n"));
}
