//! The lists between sessions, keyed by the list version, so that signing in
//! again sends nothing when nothing changed (draft 7.5).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::state::{Contact, Group, State};

/// What is kept on disk for one account.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ListCache {
    pub version: String,
    pub prompt: String,
    pub privacy: String,
    pub friendly: String,
    pub groups: Vec<Group>,
    pub contacts: Vec<Contact>,
}

fn path(dir: &Path, handle: &str) -> PathBuf {
    let safe: String =
        handle.chars().map(|c| if c.is_ascii_alphanumeric() || c == '.' || c == '@' { c } else { '_' }).collect();
    dir.join(format!("{safe}.lists.json"))
}

/// Loads the cache of an account, if there is a readable one.
pub fn load(dir: &Path, handle: &str) -> Option<ListCache> {
    serde_json::from_slice(&std::fs::read(path(dir, handle)).ok()?).ok()
}

/// Saves the lists of a state (written to a temporary file, then renamed).
pub fn save(dir: &Path, state: &State) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let cache = ListCache {
        version: state.list_version.clone(),
        prompt: state.prompt.code().into(),
        privacy: state.privacy.code().into(),
        friendly: state.friendly.clone(),
        groups: state.groups.clone(),
        contacts: state.contacts.values().cloned().collect(),
    };
    let target = path(dir, &state.handle);
    let tmp = target.with_extension("tmp");
    std::fs::write(&tmp, serde_json::to_vec_pretty(&cache)?)?;
    std::fs::rename(tmp, target)
}

/// Fills a state from a cache.
pub fn apply(cache: ListCache, state: &mut State) {
    state.list_version = cache.version;
    state.prompt = msnp::PromptMode::from_code(&cache.prompt).unwrap_or_default();
    state.privacy = msnp::PrivacyMode::from_code(&cache.privacy).unwrap_or_default();
    if !cache.friendly.is_empty() {
        state.friendly = cache.friendly;
    }
    state.groups = cache.groups;
    state.contacts = cache.contacts.into_iter().map(|c| (c.handle.to_ascii_lowercase(), c)).collect();
}
