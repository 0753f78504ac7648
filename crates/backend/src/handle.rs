//! User handles (draft 5.4): e-mail-like account names, unique, compared
//! without regard to case.

use msnp::ErrorCode;
use msnp::request::MAX_HANDLE_LEN;

/// A validated user handle. `as_str` keeps the spelling the account was
/// created with; `key` is the case-folded form used for look-ups.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Handle {
    text: String,
    key: String,
}

impl Handle {
    /// Validates a handle: at most 129 bytes (else 208), one `@` between a
    /// non-empty local part and a domain, RFC-822 atom characters only (else 201).
    pub fn parse(text: &str) -> Result<Handle, ErrorCode> {
        if text.len() > MAX_HANDLE_LEN {
            return Err(ErrorCode::InvalidUsername);
        }
        let (local, domain) = text.split_once('@').ok_or(ErrorCode::InvalidParameter)?;
        let local_ok = !local.is_empty()
            && local.bytes().all(|b| b.is_ascii_alphanumeric() || b"!#$&'*+-/=?^_`{|}~.".contains(&b));
        let domain_ok = !domain.is_empty()
            && !domain.starts_with(['.', '-'])
            && !domain.ends_with(['.', '-'])
            && !domain.contains("..")
            && domain.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-');
        if !local_ok || !domain_ok {
            return Err(ErrorCode::InvalidParameter);
        }
        Ok(Handle { text: text.to_string(), key: text.to_ascii_lowercase() })
    }

    /// The handle as spelled when the account was created.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The case-folded form used as the identity in look-ups.
    pub fn key(&self) -> &str {
        &self.key
    }
}

impl std::fmt::Display for Handle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validates() {
        assert_eq!(Handle::parse("Alice@Hotmail.com").unwrap().key(), "alice@hotmail.com");
        assert_eq!(Handle::parse("alice").unwrap_err(), ErrorCode::InvalidParameter);
        assert_eq!(Handle::parse("@x.com").unwrap_err(), ErrorCode::InvalidParameter);
        assert_eq!(Handle::parse("a@").unwrap_err(), ErrorCode::InvalidParameter);
        assert_eq!(Handle::parse("a b@x.com").unwrap_err(), ErrorCode::InvalidParameter);
        assert_eq!(Handle::parse("a@b@x.com").unwrap_err(), ErrorCode::InvalidParameter);
        assert_eq!(Handle::parse("a@x..com").unwrap_err(), ErrorCode::InvalidParameter);
        assert_eq!(Handle::parse("ü@x.com").unwrap_err(), ErrorCode::InvalidParameter);
        let long = format!("{}@x.com", "a".repeat(124));
        assert_eq!(long.len(), 130);
        assert_eq!(Handle::parse(&long).unwrap_err(), ErrorCode::InvalidUsername);
        assert!(Handle::parse(&long[1..]).is_ok());
    }
}
