//! The storage service (MSNP13+ roaming profile) over real HTTP to a real
//! msnd: the display name and personal message are the ones every dialect
//! sees, the display picture is kept and served, and another user's
//! profile is out of reach.

mod common;

use common::*;
use msnp::storage::{NS_W10, Operation, Request, parse_fault, parse_get_profile_response};

async fn call(server: &TestServer, ticket: &str, operation: Operation) -> (u16, String) {
    let request = Request { ticket: Some(ticket.into()), namespace: NS_W10.into(), operation };
    let answer = soap_post(server, "/storageservice/SchematizedStore.asmx", &request.action(), &request.to_xml()).await;
    (answer.status, String::from_utf8_lossy(&answer.body).into_owned())
}

async fn refused(server: &TestServer, ticket: &str, operation: Operation) -> String {
    let (status, xml) = call(server, ticket, operation).await;
    assert_eq!(status, 500, "{xml}");
    parse_fault(&xml).unwrap_or_else(|| panic!("{xml}"))
}

/// Alice on MSNP15 with her service ticket and CID; Bob on MSNP11 watching her.
async fn alice_watched_by_bob(server: &TestServer) -> (Client, String, String, Client) {
    let mut alice = as_dialect(server, 15, "alice").await;
    alice.send_payload("ADL 5", br#"<ml l="1"></ml>"#).await;
    alice.expect("ADL 5 OK").await;
    alice.send("CHG 6 NLN 0").await;
    alice.expect("CHG 6 NLN 0").await;
    let ticket = alice.contacts_ticket.clone().expect("a service ticket");
    let book = msnp::addressbook::parse_ab_find_all_response(&String::from_utf8_lossy(
        &soap_post(server, "/abservice/abservice.asmx", "", &msnp::addressbook::ab_find_all_request(&ticket))
            .await
            .body,
    ))
    .unwrap();
    let mut bob = as_dialect(server, 11, "bob").await;
    bob.send("CHG 6 NLN 0").await;
    bob.expect("CHG 6 NLN 0").await;
    bob.send("ADC 7 FL N=alice@example.com F=Alice").await;
    bob.expect_prefix("ADC 7 FL").await;
    bob.expect_prefix("ILN 7 NLN alice@example.com").await;
    (alice, ticket, book.owner_cid.to_string(), bob)
}

#[tokio::test]
async fn the_roaming_profile_is_the_name_and_message_every_dialect_sees() {
    let server = TestServer::start_with(&["--challenges", "off"]);
    users(&server, &["alice", "bob"]);
    let (_alice, ticket, cid, mut bob) = alice_watched_by_bob(&server).await;
    let (status, xml) = call(&server, &ticket, Operation::GetProfile { cid: cid.clone() }).await;
    assert_eq!(status, 200, "{xml}");
    let profile = parse_get_profile_response(&xml).unwrap();
    assert_eq!((profile.display_name.as_str(), profile.personal_status.as_str()), ("Alice", ""));
    assert!(profile.photo.is_none());

    // aMSN and bitlbee name the expression profile's id.
    let update = |name: Option<&str>, status: Option<&str>| Operation::UpdateProfile {
        resource_id: profile.expression_id.clone(),
        display_name: name.map(str::to_string),
        personal_status: status.map(str::to_string),
    };
    let (status, xml) =
        call(&server, &ticket, update(Some("Alice in <Wonderland>"), Some("down the rabbit hole"))).await;
    assert_eq!(status, 200, "{xml}");
    // MSN's URL encoding leaves angle brackets as they are.
    bob.expect("NLN NLN alice@example.com Alice%20in%20<Wonderland> 0").await;
    let ubx = bob.expect_prefix("UBX alice@example.com").await;
    let psm = String::from_utf8(ubx.payload.unwrap()).unwrap();
    assert_eq!(msnp::personal::status_of(&psm), "down the rabbit hole");
    let again = parse_get_profile_response(&call(&server, &ticket, Operation::GetProfile { cid: cid.clone() }).await.1);
    let again = again.unwrap();
    assert_eq!(again.display_name, "Alice in <Wonderland>");
    assert_eq!(again.personal_status, "down the rabbit hole");
    // Saying the same again changes nothing, and watchers see nothing.
    assert_eq!(
        call(&server, &ticket, update(Some("Alice in <Wonderland>"), Some("down the rabbit hole"))).await.0,
        200
    );
    let after = bob.sync_point_skipping().await;
    assert!(after.is_empty(), "{:?}", after.iter().map(|l| &l.text).collect::<Vec<_>>());
}

#[tokio::test]
async fn a_display_picture_is_kept_served_and_deleted() {
    let server = TestServer::start_with(&["--challenges", "off"]);
    users(&server, &["alice", "bob"]);
    let (_alice, ticket, cid, _bob) = alice_watched_by_bob(&server).await;
    let png = b"\x89PNG\r\n\x1a\n a small tile".to_vec();
    let create = |mime: &str, data: Vec<u8>| Operation::CreateDocument {
        cid: cid.clone(),
        name: "tile".into(),
        mime: mime.into(),
        data,
    };
    let (status, xml) = call(&server, &ticket, create("image/png", png.clone())).await;
    assert_eq!(status, 200, "{xml}");
    let profile =
        parse_get_profile_response(&call(&server, &ticket, Operation::GetProfile { cid: cid.clone() }).await.1)
            .unwrap();
    let photo = profile.photo.expect("the picture in the profile");
    assert_eq!((photo.mime.as_str(), photo.size), ("image/png", png.len()));
    assert!(xml.contains(&photo.resource_id), "CreateDocument named it: {xml}");
    let path =
        photo.url.split_once("://").and_then(|(_, rest)| rest.split_once('/')).map(|(_, p)| format!("/{p}")).unwrap();
    let tile = http_get(server.http.unwrap(), &path, &[]).await;
    assert_eq!((tile.status, tile.body.clone()), (200, png));
    assert_eq!(tile.header("Content-Type"), Some("image/png"));
    assert_eq!(tile.header("X-Content-Type-Options"), Some("nosniff"));
    let (_, found) = call(&server, &ticket, Operation::FindDocuments { cid: cid.clone() }).await;
    assert!(found.contains(&photo.resource_id), "{found}");

    // A page is not a picture; nor is anything too big to be a tile.
    assert_eq!(
        refused(&server, &ticket, create("text/html", b"<script>alert(1)</script>".to_vec())).await,
        "BadArgument"
    );
    // Past the picture limit the body is past the HTTP limit too.
    assert_eq!(call(&server, &ticket, create("image/png", vec![0; msnp::storage::MAX_PHOTO + 1])).await.0, 413);
    // Only the current picture's address serves it.
    assert_eq!(http_get(server.http.unwrap(), &format!("{path}0"), &[]).await.status, 404);

    let delete = Operation::DeleteRelationships { resource_ids: vec![photo.resource_id.clone()] };
    assert_eq!(call(&server, &ticket, delete.clone()).await.0, 200);
    assert_eq!(http_get(server.http.unwrap(), &path, &[]).await.status, 404);
    assert_eq!(refused(&server, &ticket, delete).await, "ItemDoesNotExist");
    let profile = parse_get_profile_response(&call(&server, &ticket, Operation::GetProfile { cid }).await.1).unwrap();
    assert!(profile.photo.is_none());
}

#[tokio::test]
async fn another_users_profile_and_forged_tickets_are_refused() {
    let server = TestServer::start_with(&["--challenges", "off"]);
    users(&server, &["alice", "bob"]);
    let (_alice, ticket, cid, _bob) = alice_watched_by_bob(&server).await;
    let other = (cid.parse::<u64>().unwrap() + 1).to_string();
    assert_eq!(refused(&server, &ticket, Operation::GetProfile { cid: other.clone() }).await, "AccessDenied");
    let picture = Operation::CreateDocument { cid: other, name: "x".into(), mime: "image/png".into(), data: vec![1] };
    assert_eq!(refused(&server, &ticket, picture).await, "AccessDenied");
    let rename = Operation::UpdateProfile {
        resource_id: "FFFF!106".into(),
        display_name: Some("Mallory".into()),
        personal_status: None,
    };
    assert_eq!(refused(&server, &ticket, rename).await, "AccessDenied");
    assert_eq!(refused(&server, "t=forged&p=x", Operation::GetProfile { cid: cid.clone() }).await, "BadContextToken");
    let odd =
        Request { ticket: Some(ticket.clone()), namespace: NS_W10.into(), operation: Operation::GetProfile { cid } }
            .to_xml()
            .replace("GetProfile", "ShareItem");
    let answer = soap_post(&server, "/storageservice/SchematizedStore.asmx", "", &odd).await;
    assert_eq!(parse_fault(&String::from_utf8_lossy(&answer.body)).as_deref(), Some("NotImplemented"));
    let bomb = r#"<?xml version="1.0"?><!DOCTYPE s [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;&a;">]><s>&b;</s>"#;
    let answer = soap_post(&server, "/storageservice/SchematizedStore.asmx", "", bomb).await;
    assert_eq!(parse_fault(&String::from_utf8_lossy(&answer.body)).as_deref(), Some("BadArgument"));
}
