//! What each fuzz target checks, kept out of `fuzz/` so that the same checks
//! run in two ways: coverage-guided under `cargo fuzz` (see `fuzz/` and
//! docs/SECURITY.md), and over the committed corpora under `cargo test`, so a
//! crash the fuzzer once found stays fixed on every test run.
//!
//! Every function takes arbitrary bytes and panics only when it finds a bug:
//! a panic in the code under test, or a broken invariant (a frame that does
//! not round-trip, a buffer past its limit, a server line that does not
//! frame, a server that stops answering).

pub mod session;
pub mod webchat;
pub mod wire;
pub mod xmpp;
