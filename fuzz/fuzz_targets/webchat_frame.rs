#![no_main]
// The check lives in crates/fuzzing, where the corpus replay test runs it too.
libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzzing::webchat::webchat_frame(data));
