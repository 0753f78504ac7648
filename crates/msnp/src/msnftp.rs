//! MSNFTP, the direct file-transfer protocol of MSN Messenger 1-5 (invited
//! through a switchboard, then spoken between the two clients over TCP):
//! its commands in both directions and the header of its data blocks.

/// The largest data block's payload.
pub const MAX_BLOCK: usize = 2045;

/// `BYE` with the code a receiver sends when the whole file arrived.
pub const RECEIVED_OK: u32 = 16777989;

/// One command line of an MSNFTP connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// `VER MSNFTP`: both sides open with it.
    Ver,
    /// `USR handle cookie`: the receiver authenticates with the invitation's cookie.
    Usr { handle: String, cookie: String },
    /// `FIL size`: the sender announces the size.
    Fil { size: u64 },
    /// `TFR`: the receiver asks for the data.
    Tfr,
    /// `BYE code`: the receiver ends (with [`RECEIVED_OK`] when all arrived).
    Bye { code: u32 },
    /// `CCL`: the receiver cancels.
    Ccl,
}

impl Command {
    /// The line with its CRLF.
    pub fn to_line(&self) -> String {
        match self {
            Command::Ver => "VER MSNFTP\r\n".to_string(),
            Command::Usr { handle, cookie } => format!("USR {handle} {cookie}\r\n"),
            Command::Fil { size } => format!("FIL {size}\r\n"),
            Command::Tfr => "TFR\r\n".to_string(),
            Command::Bye { code } => format!("BYE {code}\r\n"),
            Command::Ccl => "CCL\r\n".to_string(),
        }
    }

    /// Reads one line (with or without its line ending).
    pub fn parse(line: &str) -> Option<Command> {
        let mut words = line.trim_end_matches(['\r', '\n']).split(' ');
        let command = match (words.next()?, words.next(), words.next()) {
            ("VER", Some("MSNFTP"), None) => Command::Ver,
            ("USR", Some(handle), Some(cookie)) => Command::Usr { handle: handle.into(), cookie: cookie.into() },
            ("FIL", Some(size), None) => Command::Fil { size: size.parse().ok()? },
            ("TFR", None, None) => Command::Tfr,
            ("BYE", Some(code), None) => Command::Bye { code: code.parse().ok()? },
            ("CCL", None, None) => Command::Ccl,
            _ => return None,
        };
        words.next().is_none().then_some(command)
    }
}

/// The three bytes before each data block: 0 (data) or 1 (the sender
/// cancels), then the payload length, little-endian.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlockHeader {
    Data(usize),
    Cancel,
}

impl BlockHeader {
    pub fn to_bytes(self) -> [u8; 3] {
        match self {
            BlockHeader::Data(n) => [0, (n & 0xff) as u8, (n >> 8) as u8],
            BlockHeader::Cancel => [1, 0, 0],
        }
    }

    /// Reads a header; a length past [`MAX_BLOCK`] is malformed.
    pub fn parse(bytes: [u8; 3]) -> Option<BlockHeader> {
        match bytes[0] {
            0 => Some(usize::from(bytes[1]) | usize::from(bytes[2]) << 8)
                .filter(|n| *n <= MAX_BLOCK)
                .map(BlockHeader::Data),
            1 => Some(BlockHeader::Cancel),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_command_reads_back() {
        let all = [
            Command::Ver,
            Command::Usr { handle: "bob@example.com".into(), cookie: "12345".into() },
            Command::Fil { size: 1 << 40 },
            Command::Tfr,
            Command::Bye { code: RECEIVED_OK },
            Command::Ccl,
        ];
        for c in all {
            assert_eq!(Command::parse(&c.to_line()), Some(c));
        }
        assert_eq!(Command::parse("VER MSNP2"), None);
        assert_eq!(Command::parse("FIL -1"), None);
        assert_eq!(Command::parse("TFR now"), None);
    }

    #[test]
    fn block_headers() {
        assert_eq!(BlockHeader::parse(BlockHeader::Data(2045).to_bytes()), Some(BlockHeader::Data(2045)));
        assert_eq!(BlockHeader::parse(BlockHeader::Cancel.to_bytes()), Some(BlockHeader::Cancel));
        assert_eq!(BlockHeader::parse([0, 0xff, 0xff]), None);
        assert_eq!(BlockHeader::parse([2, 0, 0]), None);
    }
}
