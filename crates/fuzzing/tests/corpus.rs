//! Replays the committed fuzz corpora (`fuzz/corpus/<target>/`) through the
//! fuzz targets' checks, so every seed, and every crash a fuzzer run found
//! and added, is checked by the ordinary test command.

use std::path::PathBuf;

fn corpus(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus").join(target);
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.expect("a corpus entry").path())
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no seeds in {}", dir.display());
    files.into_iter().map(|p| (p.clone(), std::fs::read(&p).expect("a corpus file"))).collect()
}

fn replay(target: &str, check: fn(&[u8])) {
    for (path, data) in corpus(target) {
        // Name the input that failed, for reproducing it under cargo fuzz.
        let result = std::panic::catch_unwind(|| check(&data));
        assert!(result.is_ok(), "{} fails", path.display());
    }
}

#[test]
fn command_parser() {
    replay("command_parser", fuzzing::wire::command_parser);
}

#[test]
fn framing() {
    replay("framing", fuzzing::wire::framing);
}

#[test]
fn mime() {
    replay("mime", fuzzing::wire::mime);
}

#[test]
fn passport() {
    replay("passport", fuzzing::wire::passport);
}

#[test]
fn soap_and_lists() {
    replay("soap_and_lists", fuzzing::wire::soap_and_lists);
}

#[test]
fn web_and_bus() {
    replay("web_and_bus", fuzzing::wire::web_and_bus);
}

#[test]
fn p2p() {
    replay("p2p", fuzzing::wire::p2p);
}

#[test]
fn session() {
    replay("session", |data| {
        fuzzing::session::session(data);
    });
    // The harness must get past the login into both sessions for every
    // dialect, or the fuzzer would only ever exercise sign-in.
    for (i, dialect) in msnp::Dialect::ALL.iter().enumerate() {
        let reached = fuzzing::session::session(&[i as u8, b'P', b'N', b'G', b'\r', b'\n']);
        assert_eq!(reached, fuzzing::session::Reached { signed_in: true, switchboard: true }, "{dialect}");
    }
}

#[test]
fn xmpp_stream() {
    replay("xmpp_stream", fuzzing::xmpp::xmpp_stream);
}

#[test]
fn webchat_frame() {
    replay("webchat_frame", fuzzing::webchat::webchat_frame);
}
