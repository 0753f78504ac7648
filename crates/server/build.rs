//! No build steps of our own: this script exists so that the optional
//! `openssl-src` build-dependency (with `weak-crypto`, for the legacy TLS
//! listener) takes part in feature resolution. See Cargo.toml.
fn main() {
    println!("cargo:rerun-if-changed=build.rs");
}
