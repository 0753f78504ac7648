//! Conversation history, kept locally as JSON lines per contact, searchable.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// One line of history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// Unix seconds.
    pub time: u64,
    /// The contact the conversation was with.
    pub with: String,
    pub from: String,
    pub text: String,
}

/// The history of one account.
#[derive(Debug, Clone)]
pub struct History {
    dir: PathBuf,
}

fn safe(name: &str) -> String {
    name.chars().map(|c| if c.is_ascii_alphanumeric() || c == '.' || c == '@' || c == '-' { c } else { '_' }).collect()
}

impl History {
    pub fn new(data_dir: &Path, account: &str) -> History {
        History { dir: data_dir.join("history").join(safe(account)) }
    }

    /// Appends a line.
    pub fn record(&self, with: &str, from: &str, text: &str) -> std::io::Result<()> {
        std::fs::create_dir_all(&self.dir)?;
        let entry = Entry {
            time: std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0),
            with: with.to_string(),
            from: from.to_string(),
            text: text.to_string(),
        };
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join(format!("{}.jsonl", safe(with))))?;
        writeln!(f, "{}", serde_json::to_string(&entry).map_err(std::io::Error::other)?)
    }

    /// Every line whose text or sender contains `query` (case-insensitive), oldest first.
    pub fn search(&self, query: &str) -> Vec<Entry> {
        let q = query.to_lowercase();
        let Ok(dir) = std::fs::read_dir(&self.dir) else { return Vec::new() };
        let mut found: Vec<Entry> = dir
            .flatten()
            .filter_map(|f| std::fs::read_to_string(f.path()).ok())
            .flat_map(|text| text.lines().filter_map(|l| serde_json::from_str::<Entry>(l).ok()).collect::<Vec<_>>())
            .filter(|e| e.text.to_lowercase().contains(&q) || e.from.to_lowercase().contains(&q))
            .collect();
        found.sort_by_key(|e| e.time);
        found
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_and_searches() {
        let dir = tempfile::tempdir().unwrap();
        let h = History::new(dir.path(), "a@x.com");
        h.record("bob@x.com", "a@x.com", "Lunch tomorrow?").unwrap();
        h.record("bob@x.com", "bob@x.com", "sure").unwrap();
        h.record("carol@x.com", "carol@x.com", "LUNCH is at noon").unwrap();
        let found = h.search("lunch");
        assert_eq!(found.len(), 2);
        assert!(h.search("nothing").is_empty());
        assert_eq!(h.search("bob@x.com").len(), 1);
    }
}
