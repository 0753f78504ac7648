//! The address book and membership services as MSNP13+ clients change
//! them: contacts, groups, names and memberships, over real HTTP to a real
//! msnd, seen by users of older dialects on the same lists; delta requests;
//! and the faults for what is refused.

mod common;

use common::*;
use msnp::Dialect;
use msnp::addressbook::{
    self, AddressBook, Answer, ContactRef, ContactUpdate, Fault, MemberRef, Operation, Role,
    parse_ab_find_all_response, parse_find_membership_response,
};

/// One request to the service the operation belongs to.
async fn call(server: &TestServer, ticket: &str, op: &Operation) -> (u16, String) {
    let body = addressbook::request(ticket, &op.to_xml());
    let answer = soap_post(server, op.path(), &op.action(), &body).await;
    (answer.status, String::from_utf8_lossy(&answer.body).into_owned())
}

/// A change that must succeed: its answer.
async fn change(server: &TestServer, ticket: &str, op: Operation) -> Answer {
    let (status, xml) = call(server, ticket, &op).await;
    assert_eq!(status, 200, "{} answered {xml}", op.name());
    Answer::parse(&xml).unwrap_or_else(|| panic!("{xml}"))
}

/// A change that must be refused: its fault.
async fn refused(server: &TestServer, ticket: &str, op: Operation) -> Fault {
    let (status, xml) = call(server, ticket, &op).await;
    assert_eq!(status, 500, "{} answered {xml}", op.name());
    Fault::parse(&xml).unwrap_or_else(|| panic!("{xml}"))
}

fn guid_of(answer: Answer) -> String {
    match answer {
        Answer::Guid { guid, .. } => guid,
        other => panic!("no GUID in {other:?}"),
    }
}

async fn book(server: &TestServer, ticket: &str, deltas_since: Option<String>) -> AddressBook {
    let (status, xml) = call(server, ticket, &Operation::FindAll { deltas_since }).await;
    assert_eq!(status, 200, "{xml}");
    parse_ab_find_all_response(&xml).unwrap()
}

async fn members(server: &TestServer, ticket: &str, role: Role, deltas_since: Option<String>) -> Vec<(String, bool)> {
    let (status, xml) = call(server, ticket, &Operation::FindMembership { deltas_since }).await;
    assert_eq!(status, 200, "{xml}");
    let roles = parse_find_membership_response(&xml).unwrap();
    let (_, members) = roles.into_iter().find(|(r, _)| *r == role).unwrap();
    members.into_iter().map(|m| (m.handle, m.deleted)).collect()
}

/// An MSNP15 user signed in, online, with the address book's ticket.
async fn wlm(server: &TestServer, name: &str) -> (Client, String) {
    let (mut c, ticket) = with_address_book(server, 15, name).await;
    c.send("CHG 6 NLN 0").await;
    c.expect("CHG 6 NLN 0").await;
    (c, ticket)
}

#[tokio::test]
async fn address_book_changes_are_list_changes_every_dialect_sees() {
    let server = TestServer::start_with(&["--challenges", "off"]);
    users(&server, &["alice", "bob"]);
    let (mut alice, ticket) = wlm(&server, "alice").await;
    let mut bob = as_dialect(&server, 11, "bob").await;
    bob.send("CHG 6 NLN 0").await;
    bob.expect("CHG 6 NLN 0").await;
    bob.send("ADC 7 FL N=alice@example.com F=Alice").await;
    bob.expect_prefix("ADC 7 FL N=alice@example.com").await;
    bob.expect_prefix("ILN 7 NLN alice@example.com").await;
    alice.expect_prefix("ADL 0 ").await;
    let notice = alice.expect_prefix("NOT ").await;
    let cid = addressbook::parse_changed_notice(&String::from_utf8_lossy(notice.payload.as_deref().unwrap()));
    assert_eq!(cid, Some(book(&server, &ticket, None).await.owner_cid), "the notice names Alice's own CID");
    // Bob is pending for Alice: on her reverse list, neither allowed nor blocked.
    assert_eq!(members(&server, &ticket, Role::Pending, None).await, [("bob@example.com".to_string(), false)]);
    // Accepting him as WLM does: out of Pending, into Reverse (which he is
    // on already, so that only acknowledges).
    let bob_member = || vec![MemberRef::Handle("bob@example.com".into())];
    change(&server, &ticket, Operation::DeleteMember { role: Role::Pending, members: bob_member() }).await;
    change(&server, &ticket, Operation::AddMember { role: Role::Reverse, members: bob_member() }).await;

    // WLM's add: ABContactAdd, then ADL for the new contact, which shows
    // Bob at once.
    let op = Operation::ContactAdd { handle: "bob@example.com".into(), messenger_user: true, allow: true };
    let bob_guid = guid_of(change(&server, &ticket, op).await);
    bob.expect("ADC 0 RL N=alice@example.com F=Alice").await;
    alice.send_payload("ADL 8", br#"<ml><d n="example.com"><c n="bob" l="3" t="1"/></d></ml>"#).await;
    alice.expect("ADL 8 OK").await;
    alice.expect_prefix("ILN 8 NLN bob@example.com").await;
    assert_eq!(members(&server, &ticket, Role::Allow, None).await, [("bob@example.com".to_string(), false)]);
    assert!(members(&server, &ticket, Role::Pending, None).await.is_empty(), "allowed: no longer pending");

    // Groups and the name Alice gives Bob.
    let friends = guid_of(change(&server, &ticket, Operation::GroupAdd { name: "Friends & Co".into() }).await);
    let op = Operation::GroupContactAdd { group: friends.clone(), contacts: vec![ContactRef::Guid(bob_guid.clone())] };
    assert_eq!(guid_of(change(&server, &ticket, op).await), bob_guid);
    change(&server, &ticket, Operation::GroupUpdate { groups: vec![(friends.clone(), "Pals".into())] }).await;
    let nick = ContactUpdate { guid: Some(bob_guid.clone()), nickname: Some("Bobby <3".into()), ..Default::default() };
    change(&server, &ticket, Operation::ContactUpdate { contacts: vec![nick] }).await;
    let b = book(&server, &ticket, None).await;
    assert_eq!(
        b.groups.iter().map(|g| (g.guid.as_str(), g.name.as_str())).collect::<Vec<_>>(),
        [(&friends[..], "Pals")]
    );
    let entry = b.contacts.iter().find(|c| c.guid == bob_guid).expect("Bob in the book");
    assert_eq!((entry.group_guids.clone(), entry.nickname.as_deref()), (vec![friends.clone()], Some("Bobby <3")));

    // Alice renames herself through her own contact: Bob (MSNP11) sees it.
    let me = ContactUpdate { is_me: true, display_name: Some("Alice W.".into()), ..Default::default() };
    change(&server, &ticket, Operation::ContactUpdate { contacts: vec![me] }).await;
    bob.expect("NLN NLN alice@example.com Alice%20W. 0").await;
    assert_eq!(book(&server, &ticket, None).await.contacts[0].display_name, "Alice W.");

    // Blocking through the membership service: Bob sees Alice go offline,
    // and back when she unblocks him.
    change(&server, &ticket, Operation::DeleteMember { role: Role::Allow, members: bob_member() }).await;
    change(&server, &ticket, Operation::AddMember { role: Role::Block, members: bob_member() }).await;
    bob.expect("FLN alice@example.com").await;
    assert_eq!(members(&server, &ticket, Role::Block, None).await, [("bob@example.com".to_string(), false)]);
    change(&server, &ticket, Operation::DeleteMember { role: Role::Block, members: bob_member() }).await;
    change(&server, &ticket, Operation::AddMember { role: Role::Allow, members: bob_member() }).await;
    bob.expect("NLN NLN alice@example.com Alice%20W. 0").await;

    // Out of the group, the group gone, then Bob out of the book: Bob is
    // told he left her forward list.
    let op = Operation::GroupContactDelete { group: friends.clone(), guids: vec![bob_guid.clone()] };
    change(&server, &ticket, op).await;
    change(&server, &ticket, Operation::GroupDelete { guids: vec![friends] }).await;
    change(&server, &ticket, Operation::ContactDelete { guids: vec![bob_guid] }).await;
    bob.expect("REM 0 RL alice@example.com").await;
    let b = book(&server, &ticket, None).await;
    assert!(b.groups.is_empty());
    assert_eq!(b.contacts.len(), 1, "only Alice herself");
    // A group contact add by handle puts a new contact in the book first.
    let pals = guid_of(change(&server, &ticket, Operation::GroupAdd { name: "Pals".into() }).await);
    let op = Operation::GroupContactAdd {
        group: pals.clone(),
        contacts: vec![ContactRef::Handle("bob@example.com".into())],
    };
    let again = guid_of(change(&server, &ticket, op).await);
    bob.expect("ADC 0 RL N=alice@example.com F=Alice%20W.").await;
    let b = book(&server, &ticket, None).await;
    assert_eq!(b.contacts.iter().find(|c| c.guid == again).map(|c| c.group_guids.clone()), Some(vec![pals]));
}

#[tokio::test]
async fn delta_requests_answer_what_changed_since_the_last_answer() {
    let server = TestServer::start_with(&["--challenges", "off"]);
    users(&server, &["alice", "bob", "carol"]);
    let (_alice, ticket) = wlm(&server, "alice").await;
    let op = Operation::ContactAdd { handle: "bob@example.com".into(), messenger_user: true, allow: true };
    let bob = guid_of(change(&server, &ticket, op).await);
    let full = book(&server, &ticket, None).await;
    assert_eq!(full.contacts.len(), 2);

    // Nothing since: only Alice's own contact.
    let delta = book(&server, &ticket, Some(full.changed.clone())).await;
    assert_eq!(delta.contacts.len(), 1);
    assert!(delta.contacts[0].is_me && delta.groups.is_empty());

    // Carol and a group added, Bob removed: exactly that.
    let op = Operation::ContactAdd { handle: "carol@example.com".into(), messenger_user: true, allow: false };
    let carol = guid_of(change(&server, &ticket, op).await);
    let work = guid_of(change(&server, &ticket, Operation::GroupAdd { name: "Work".into() }).await);
    change(&server, &ticket, Operation::ContactDelete { guids: vec![bob.clone()] }).await;
    let delta = book(&server, &ticket, Some(full.changed.clone())).await;
    let contacts: Vec<(&str, bool)> = delta.contacts[1..].iter().map(|c| (c.guid.as_str(), c.deleted)).collect();
    assert!(contacts.contains(&(&carol[..], false)) && contacts.contains(&(&bob[..], true)), "{contacts:?}");
    assert_eq!(contacts.len(), 2, "{contacts:?}");
    assert_eq!(delta.groups.iter().map(|g| (g.guid.as_str(), g.deleted)).collect::<Vec<_>>(), [(&work[..], false)]);
    assert!(delta.changed > full.changed, "a later lastChange to hand back next time");

    // The group deleted since that answer: a deleted group, Carol untouched.
    change(&server, &ticket, Operation::GroupDelete { guids: vec![work.clone()] }).await;
    let later = book(&server, &ticket, Some(delta.changed.clone())).await;
    assert_eq!(later.groups.iter().map(|g| (g.guid.as_str(), g.deleted)).collect::<Vec<_>>(), [(&work[..], true)]);
    assert_eq!(later.contacts.len(), 1);

    // Memberships: Bob still allowed (he left the book, not the allow
    // list); blocking Carol shows as Carol in Block, deleted elsewhere.
    let seen = book(&server, &ticket, None).await.changed;
    let op = Operation::AddMember { role: Role::Block, members: vec![MemberRef::Handle("carol@example.com".into())] };
    change(&server, &ticket, op).await;
    assert_eq!(members(&server, &ticket, Role::Block, Some(seen.clone())).await, [("carol@example.com".into(), false)]);
    assert_eq!(members(&server, &ticket, Role::Allow, Some(seen)).await, [("carol@example.com".into(), true)]);
    assert_eq!(members(&server, &ticket, Role::Allow, None).await, [("bob@example.com".into(), false)]);

    // A moment before the server kept changes: sync in full.
    let op = Operation::FindAll { deltas_since: Some("0001-01-01T00:00:00.0000000-08:00".into()) };
    let (status, xml) = call(&server, &ticket, &op).await;
    assert_eq!((status, Fault::parse(&xml)), (500, Some(Fault::FullSyncRequired)));
    let op = Operation::FindAll { deltas_since: Some("last tuesday".into()) };
    assert_eq!(Fault::parse(&call(&server, &ticket, &op).await.1), Some(Fault::BadArgument));
}

#[tokio::test]
async fn refused_changes_are_faults_and_change_nothing() {
    let server = TestServer::start_with(&["--challenges", "off"]);
    users(&server, &["alice", "bob"]);
    let (_alice, ticket) = wlm(&server, "alice").await;
    let (_bob, bobs_ticket) = wlm(&server, "bob").await;
    let add = |h: &str| Operation::ContactAdd { handle: h.into(), messenger_user: true, allow: false };
    let bob = guid_of(change(&server, &ticket, add("bob@example.com")).await);
    let before = book(&server, &ticket, None).await;

    assert_eq!(refused(&server, &ticket, add("nobody@example.com")).await, Fault::InvalidPassportUser);
    assert_eq!(refused(&server, &ticket, add("not an address")).await, Fault::InvalidPassportUser);
    assert_eq!(refused(&server, &ticket, add("bob@example.com")).await, Fault::ContactAlreadyExists);
    assert_eq!(refused(&server, &ticket, add("alice@example.com")).await, Fault::InvalidPassportUser);
    let op = Operation::ContactAdd { handle: "x@example.com".into(), messenger_user: false, allow: false };
    assert_eq!(refused(&server, &ticket, op).await, Fault::BadArgument);
    let unknown = "11111111-2222-4333-8444-555555555555".to_string();
    let op = Operation::ContactDelete { guids: vec![unknown.clone()] };
    assert_eq!(refused(&server, &ticket, op).await, Fault::ContactDoesNotExist);
    let nick = ContactUpdate { guid: Some(unknown.clone()), nickname: Some("x".into()), ..Default::default() };
    assert_eq!(
        refused(&server, &ticket, Operation::ContactUpdate { contacts: vec![nick] }).await,
        Fault::ContactDoesNotExist
    );
    let long = ContactUpdate { is_me: true, display_name: Some("n".repeat(400)), ..Default::default() };
    assert_eq!(refused(&server, &ticket, Operation::ContactUpdate { contacts: vec![long] }).await, Fault::BadArgument);
    change(&server, &ticket, Operation::GroupAdd { name: "Work".into() }).await;
    assert_eq!(refused(&server, &ticket, Operation::GroupAdd { name: "Work".into() }).await, Fault::GroupAlreadyExists);
    assert_eq!(refused(&server, &ticket, Operation::GroupAdd { name: "w".repeat(80) }).await, Fault::BadArgument);
    let op = Operation::GroupDelete { guids: vec![unknown.clone()] };
    assert_eq!(refused(&server, &ticket, op).await, Fault::GroupDoesNotExist);
    let op = Operation::GroupContactAdd { group: unknown.clone(), contacts: vec![ContactRef::Guid(bob.clone())] };
    assert_eq!(refused(&server, &ticket, op).await, Fault::GroupDoesNotExist);
    // Only the server changes the reverse list.
    let op = Operation::AddMember { role: Role::Reverse, members: vec![MemberRef::Handle("bob@example.com".into())] };
    assert_eq!(refused(&server, &ticket, op).await, Fault::AccessDenied);
    let op = Operation::DeleteMember { role: Role::Block, members: vec![MemberRef::Handle("bob@example.com".into())] };
    assert_eq!(refused(&server, &ticket, op).await, Fault::MemberDoesNotExist);
    let op = Operation::DeleteMember { role: Role::Allow, members: vec![MemberRef::Id(424242)] };
    assert_eq!(refused(&server, &ticket, op).await, Fault::MemberDoesNotExist);

    // Another address book than one's own, an operation the service does
    // not have, a forged ticket.
    let other = addressbook::request(
        &ticket,
        &Operation::ContactDelete { guids: vec![bob.clone()] }.to_xml().replace(addressbook::DEFAULT_AB, &unknown),
    );
    let answer = soap_post(&server, "/abservice/abservice.asmx", "", &other).await;
    assert_eq!(Fault::parse(&String::from_utf8_lossy(&answer.body)), Some(Fault::AccessDenied));
    let odd = addressbook::request(&ticket, &format!(r#"<ABEatAll xmlns="{}"/>"#, addressbook::NS));
    let answer = soap_post(&server, "/abservice/abservice.asmx", "", &odd).await;
    assert_eq!(Fault::parse(&String::from_utf8_lossy(&answer.body)), Some(Fault::NotImplemented));
    let op = Operation::ContactDelete { guids: vec![bob.clone()] };
    assert_eq!(refused(&server, "t=forged&p=x", op.clone()).await, Fault::BadContextToken);
    // Bob's ticket names Bob: his own book has no such contact, and
    // Alice's is untouched.
    assert_eq!(refused(&server, &bobs_ticket, op).await, Fault::ContactDoesNotExist);

    let after = book(&server, &ticket, None).await;
    let names = |b: &AddressBook| b.contacts.iter().map(|c| (c.guid.clone(), c.nickname.clone())).collect::<Vec<_>>();
    assert_eq!(names(&after), names(&before));
    assert_eq!(after.groups.iter().map(|g| g.name.as_str()).collect::<Vec<_>>(), ["Work"]);
    assert_eq!(after.contacts[0].display_name, before.contacts[0].display_name);
}

#[tokio::test]
async fn msnp13_authenticates_with_the_mspauth_cookie() {
    let server = TestServer::start_with(&["--challenges", "off"]);
    users(&server, &["alice", "bob"]);
    // Windows Live Messenger 8.0 signs in with TWN and sends its profile's
    // MSPAuth as a cookie, with no ticket in the envelope.
    let alice = as_dialect(&server, 13, "alice").await;
    let post = |cookie: String, op: Operation| {
        let server = &server;
        async move {
            let body = addressbook::request_without_ticket(&op.to_xml());
            let raw = format!(
                "POST /abservice/abservice.asmx HTTP/1.1\r\nHost: localhost\r\nContent-Type: text/xml; charset=utf-8\r\nCookie: MSPProf=x; MSPAuth={cookie}\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            );
            let stream = tokio::net::TcpStream::connect(server.http.unwrap()).await.unwrap();
            let answer = http_exchange(stream, raw.as_bytes()).await;
            (answer.status, String::from_utf8_lossy(&answer.body).into_owned())
        }
    };
    let add = Operation::ContactAdd { handle: "bob@example.com".into(), messenger_user: true, allow: true };
    let (status, xml) = post(alice.mspauth(), add).await;
    assert_eq!(status, 200, "{xml}");
    let (status, xml) = post(alice.mspauth(), Operation::FindAll { deltas_since: None }).await;
    assert_eq!(status, 200, "{xml}");
    let book = parse_ab_find_all_response(&xml).unwrap();
    assert_eq!(
        book.contacts.iter().map(|c| c.handle.as_str()).collect::<Vec<_>>(),
        ["alice@example.com", "bob@example.com"]
    );
    // A cookie that is no sign-in's: refused.
    let (status, xml) = post("forged".into(), Operation::FindAll { deltas_since: None }).await;
    assert_eq!((status, Fault::parse(&xml)), (500, Some(Fault::BadContextToken)));
}

#[tokio::test]
async fn find_contacts_paged_answers_the_same_address_book_in_its_own_shape() {
    // Pidgin's MSNP18 plugin and WLM 2009 ask ABFindContactsPaged; it reads
    // `Groups`, `Contacts` and `Ab` under `ABFindContactsPagedResult`.
    let server = TestServer::start_with(&["--challenges", "off"]);
    users(&server, &["alice", "bob"]);
    let (_alice, ticket) = wlm(&server, "alice").await;
    change(
        &server,
        &ticket,
        Operation::ContactAdd { handle: "bob@example.com".into(), messenger_user: true, allow: true },
    )
    .await;
    let (status, xml) = call(&server, &ticket, &Operation::FindContactsPaged { deltas_since: None }).await;
    assert_eq!(status, 200, "{xml}");
    for tag in ["<ABFindContactsPagedResult>", "<Groups>", "<Contacts>", "<Ab><abId>"] {
        assert!(xml.contains(tag), "{tag} in {xml}");
    }
    let paged = parse_ab_find_all_response(&xml).unwrap();
    let all = book(&server, &ticket, None).await;
    let handles = |b: &AddressBook| b.contacts.iter().map(|c| c.handle.clone()).collect::<Vec<_>>();
    assert_eq!(handles(&paged), handles(&all));
    assert!(handles(&paged).contains(&"bob@example.com".to_string()));
    // Deltas since the answer's lastChange are answered in the same shape
    // (what they hold is ABFindAll's, tested above).
    let since = Some(paged.changed.clone());
    let (status, xml) = call(&server, &ticket, &Operation::FindContactsPaged { deltas_since: since }).await;
    assert_eq!(status, 200, "{xml}");
    assert!(parse_ab_find_all_response(&xml).is_some() && xml.contains("<ABFindContactsPagedResult>"), "{xml}");
}

/// MSNP13 and 14 sign in with Passport, not RST: the address book takes
/// the login profile's MSPAuth as the ticket (once our own client sent an
/// empty one and saw `BadContextToken`).
#[tokio::test]
async fn an_msnp13_client_reads_and_changes_its_lists_with_the_profiles_ticket() {
    let server = TestServer::start();
    users(&server, &["alice", "bob", "carol"]);
    let (alice, _) = library_sign_in(&server, "alice", Dialect::Msnp11).await;
    alice.add_contact("bob@example.com", "Bob").await.unwrap();
    alice.sign_out().await;
    for dialect in [Dialect::Msnp13, Dialect::Msnp14] {
        let (alice, _a) = library_sign_in(&server, "alice", dialect).await;
        let bob = alice.state().contact("bob@example.com").cloned().expect("Bob from the address book");
        assert!(bob.on(msnp::ListKind::Forward) && bob.guid.is_some(), "{dialect}");
        alice.sign_out().await;
    }
    let (alice, _a) = library_sign_in(&server, "alice", Dialect::Msnp13).await;
    alice.add_contact("carol@example.com", "Carol").await.unwrap();
    alice.sign_out().await;
    let (alice, _a) = library_sign_in(&server, "alice", Dialect::Msnp11).await;
    assert!(alice.state().contact("carol@example.com").is_some_and(|c| c.on(msnp::ListKind::Forward)));
}
