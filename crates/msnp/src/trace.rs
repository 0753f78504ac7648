//! Protocol lines as an operator may read them: the same text, with the
//! secrets in it masked (MD5 responses, Passport tickets, switchboard
//! cookies, the `MSPAuth` of the login profile).

/// The line with its secrets replaced by `***`. `line` is one command line
/// without its CRLF.
pub fn mask_line(line: &str) -> String {
    let parts: Vec<&str> = line.split(' ').collect();
    // (verb, index of the secret argument, counting the verb as 0, and a
    // condition on the arguments).
    let secret = match parts.as_slice() {
        // USR trid MD5|TWN S secret (the client's answer)
        ["USR", _, "MD5" | "TWN", "S", _, ..] => Some(4),
        // switchboard USR trid handle cookie / ANS trid handle cookie sid
        ["USR", _, handle, _, ..] if handle.contains('@') => Some(3),
        ["ANS", _, handle, _, ..] if handle.contains('@') => Some(3),
        // XFR trid SB address CKI cookie
        ["XFR", _, "SB", _, "CKI", _, ..] => Some(5),
        // RNG sid address CKI cookie caller name
        ["RNG", _, _, "CKI", _, ..] => Some(4),
        _ => None,
    };
    match secret {
        Some(i) => {
            let mut parts = parts;
            parts[i] = "***";
            parts.join(" ")
        }
        None => line.to_string(),
    }
}

/// A payload as an operator may read it: text with `MSPAuth` masked, or a
/// note of its size when it is not text.
pub fn mask_payload(payload: &[u8]) -> String {
    match std::str::from_utf8(payload) {
        Ok(text) => text
            .split("\r\n")
            .map(|l| if l.starts_with("MSPAuth:") { "MSPAuth: ***" } else { l })
            .collect::<Vec<_>>()
            .join("\r\n"),
        Err(_) => format!("<{} bytes, not text>", payload.len()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_masked_and_everything_else_kept() {
        assert_eq!(mask_line("USR 7 MD5 S 7f919fab309532df353c901430df36fa"), "USR 7 MD5 S ***");
        assert_eq!(mask_line("USR 9 TWN S t=abc&p=def"), "USR 9 TWN S ***");
        assert_eq!(mask_line("USR 6 MD5 I alice@example.com"), "USR 6 MD5 I alice@example.com");
        assert_eq!(mask_line("USR 1 alice@example.com 123.456.789"), "USR 1 alice@example.com ***");
        assert_eq!(mask_line("ANS 1 bob@example.com 123.456 11752013"), "ANS 1 bob@example.com *** 11752013");
        assert_eq!(mask_line("XFR 10 SB 10.0.0.1:1863 CKI 1.2.3"), "XFR 10 SB 10.0.0.1:1863 CKI ***");
        assert_eq!(
            mask_line("RNG 11752013 10.0.0.1:1863 CKI 1.2.3 alice@example.com Alice"),
            "RNG 11752013 10.0.0.1:1863 CKI *** alice@example.com Alice"
        );
        assert_eq!(mask_line("USR 7 OK alice@example.com Alice 1"), "USR 7 OK alice@example.com Alice 1");
        assert_eq!(mask_line("CHG 9 NLN"), "CHG 9 NLN");
        assert_eq!(
            mask_payload(b"MIME-Version: 1.0\r\nMSPAuth: secret$$\r\n\r\n"),
            "MIME-Version: 1.0\r\nMSPAuth: ***\r\n\r\n"
        );
        assert_eq!(mask_payload(&[0xff, 0x00]), "<2 bytes, not text>");
    }
}
