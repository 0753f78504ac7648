//! Who the simulated users are: numbered accounts with one password (those
//! `msnd user import` makes for a run), or any server's accounts listed in a
//! file, one `handle password` per line.

use std::sync::Arc;

use anyhow::Context;

#[derive(Debug, Clone)]
pub enum Accounts {
    /// `PREFIX0@DOMAIN`, `PREFIX1@DOMAIN`, ..., all with `password`.
    Numbered { prefix: String, domain: String, password: String },
    /// Handles and passwords, in order.
    Listed(Arc<Vec<(String, String)>>),
}

impl Accounts {
    pub fn numbered(prefix: &str, password: &str) -> Accounts {
        Accounts::Numbered { prefix: prefix.into(), domain: "example.com".into(), password: password.into() }
    }

    /// Reads `handle password` lines (tab or spaces between; blank lines and
    /// `#` comments skipped).
    pub fn parse(text: &str) -> anyhow::Result<Accounts> {
        let mut listed = Vec::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (handle, password) = line
                .split_once(|c: char| c.is_whitespace())
                .map(|(h, p)| (h.trim(), p.trim()))
                .filter(|(h, p)| h.contains('@') && !p.is_empty())
                .with_context(|| format!("line {}: expected `handle password`", n + 1))?;
            listed.push((handle.to_string(), password.to_string()));
        }
        anyhow::ensure!(!listed.is_empty(), "no accounts listed");
        Ok(Accounts::Listed(Arc::new(listed)))
    }

    pub fn read(path: &std::path::Path) -> anyhow::Result<Accounts> {
        let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        Accounts::parse(&text).with_context(|| path.display().to_string())
    }

    /// How many there are, when listed.
    pub fn listed(&self) -> Option<usize> {
        match self {
            Accounts::Numbered { .. } => None,
            Accounts::Listed(list) => Some(list.len()),
        }
    }

    /// The `i`th user's handle.
    pub fn handle(&self, i: usize) -> String {
        match self {
            Accounts::Numbered { prefix, domain, .. } => format!("{prefix}{i}@{domain}"),
            Accounts::Listed(list) => list[i % list.len()].0.clone(),
        }
    }

    /// The handles of the first `n` users.
    pub fn handles(&self, n: usize) -> Vec<String> {
        (0..n).map(|i| self.handle(i)).collect()
    }

    pub fn password(&self, i: usize) -> String {
        match self {
            Accounts::Numbered { password, .. } => password.clone(),
            Accounts::Listed(list) => list[i % list.len()].1.clone(),
        }
    }

    /// The same accounts with their handles in another domain (numbered
    /// only: listed handles are used as written).
    pub fn in_domain(self, new: &str) -> Accounts {
        match self {
            Accounts::Numbered { prefix, password, .. } => {
                Accounts::Numbered { prefix, domain: new.to_string(), password }
            }
            listed => listed,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_lists_handles_and_passwords() {
        let a = Accounts::parse("# mine\nalice@example.com\tpw one\n\nbob@example.org  secret\n").unwrap();
        assert_eq!(a.listed(), Some(2));
        assert_eq!((a.handle(1), a.password(1)), ("bob@example.org".into(), "secret".into()));
        assert_eq!(a.password(0), "pw one", "the password is the rest of the line");
        assert!(Accounts::parse("alice@example.com\n").is_err());
        assert!(Accounts::parse("no-at-sign pw\n").is_err());
        assert!(Accounts::parse("# nothing\n").is_err());
    }

    #[test]
    fn numbered_accounts_are_the_imported_ones() {
        let a = Accounts::numbered("load", "pw");
        assert_eq!((a.handle(7), a.password(7), a.listed()), ("load7@example.com".into(), "pw".into(), None));
    }
}
