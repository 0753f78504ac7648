//! P2P version 2 (MSNP16+, Windows Live Messenger 2009): the binary packets
//! endpoints exchange through the switchboard in place of version 1's
//! 48-byte header. A transport header (its length, an operation code, the
//! size of what follows, a sequence number, TLVs), then, when data follows,
//! a data header (its length, the type-and-flags combination, a package
//! number, the session, TLVs) and the payload. Integers are big-endian;
//! both headers are padded with zero bytes to their stated lengths. A
//! switchboard message ends with a four-byte application id after it.

/// Operation code bits of the transport header.
pub const OP_SYN: u8 = 0x01;
/// The sender asks for an acknowledgement.
pub const OP_RAK: u8 = 0x02;

/// Transport TLV types.
pub const TLV_PEER_INFO: u8 = 0x01;
pub const TLV_ACK: u8 = 0x02;
pub const TLV_NAK: u8 = 0x03;
/// Data TLV type: how many bytes of the message are still to come.
pub const TLV_DATA_REMAINING: u8 = 0x01;

/// Type-and-flags bits of the data header.
pub const TF_FIRST: u8 = 0x01;
pub const TF_MSNSLP: u8 = 0x00;
pub const TF_PICTURE: u8 = 0x04;
pub const TF_FILE: u8 = 0x06;

/// The fixed part of either header.
const FIXED: usize = 8;

/// One type-length-value field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tlv {
    pub kind: u8,
    pub value: Vec<u8>,
}

/// The data header and what it carries.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Data {
    pub tf: u8,
    pub package: u16,
    pub session_id: u32,
    pub tlvs: Vec<Tlv>,
    pub payload: Vec<u8>,
}

/// One P2Pv2 packet.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Packet {
    pub operation: u8,
    pub sequence: u32,
    pub tlvs: Vec<Tlv>,
    pub data: Option<Data>,
}

/// Why a packet could not be read or written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum P2pV2Error {
    #[error("packet shorter than its headers say")]
    Short,
    #[error("a header length out of range")]
    BadHeaderLength,
    #[error("a TLV runs past its header")]
    BadTlv,
    #[error("too large for one packet")]
    TooLarge,
}

impl Packet {
    /// Reads a packet (without the switchboard's footer).
    pub fn parse(b: &[u8]) -> Result<Packet, P2pV2Error> {
        let header_len = usize::from(*b.first().ok_or(P2pV2Error::Short)?);
        // Both headers are padded to whole words; refusing any other
        // length also means a packet read is never longer written.
        if header_len < FIXED || !header_len.is_multiple_of(4) {
            return Err(P2pV2Error::BadHeaderLength);
        }
        let header = b.get(..header_len).ok_or(P2pV2Error::Short)?;
        let size = usize::from(u16::from_be_bytes([header[2], header[3]]));
        let mut packet = Packet {
            operation: header[1],
            sequence: u32::from_be_bytes([header[4], header[5], header[6], header[7]]),
            tlvs: read_tlvs(&header[FIXED..])?,
            data: None,
        };
        if size == 0 {
            return Ok(packet);
        }
        let rest = b.get(header_len..header_len + size).ok_or(P2pV2Error::Short)?;
        let data_len = usize::from(rest[0]);
        if data_len < FIXED || !data_len.is_multiple_of(4) || data_len > rest.len() {
            return Err(P2pV2Error::BadHeaderLength);
        }
        let d = &rest[..data_len];
        packet.data = Some(Data {
            tf: d[1],
            package: u16::from_be_bytes([d[2], d[3]]),
            session_id: u32::from_be_bytes([d[4], d[5], d[6], d[7]]),
            tlvs: read_tlvs(&d[FIXED..])?,
            payload: rest[data_len..].to_vec(),
        });
        Ok(packet)
    }

    /// Writes the packet: the inverse of [`Packet::parse`].
    pub fn to_bytes(&self) -> Result<Vec<u8>, P2pV2Error> {
        let header = header_bytes(self.operation, self.sequence, &self.tlvs, |h, size| {
            h[2..4].copy_from_slice(&size.to_be_bytes());
        });
        let mut out = header?;
        let data = match &self.data {
            Some(d) => {
                let mut dh = header_bytes(d.tf, 0, &d.tlvs, |h, _| {
                    h[2..4].copy_from_slice(&d.package.to_be_bytes());
                    h[4..8].copy_from_slice(&d.session_id.to_be_bytes());
                })?;
                dh.extend_from_slice(&d.payload);
                dh
            }
            None => Vec::new(),
        };
        let size = u16::try_from(data.len()).map_err(|_| P2pV2Error::TooLarge)?;
        out[2..4].copy_from_slice(&size.to_be_bytes());
        out.extend_from_slice(&data);
        Ok(out)
    }

    /// Whether the sender asks for an acknowledgement.
    pub fn wants_ack(&self) -> bool {
        self.operation & OP_RAK != 0
    }
}

/// A header: its length, `second` (the operation code or the type-and-flags
/// byte), `fill` for bytes 2..8, then TLVs padded to a multiple of four.
fn header_bytes(
    second: u8,
    sequence: u32,
    tlvs: &[Tlv],
    fill: impl FnOnce(&mut [u8], u16),
) -> Result<Vec<u8>, P2pV2Error> {
    let mut h = vec![0u8; FIXED];
    h[1] = second;
    h[4..8].copy_from_slice(&sequence.to_be_bytes());
    fill(&mut h, 0);
    for t in tlvs {
        if t.kind == 0 {
            return Err(P2pV2Error::BadTlv);
        }
        h.push(t.kind);
        h.push(u8::try_from(t.value.len()).map_err(|_| P2pV2Error::BadTlv)?);
        h.extend_from_slice(&t.value);
    }
    while !h.len().is_multiple_of(4) {
        h.push(0);
    }
    h[0] = u8::try_from(h.len()).map_err(|_| P2pV2Error::BadHeaderLength)?;
    Ok(h)
}

/// TLVs up to the first zero type (padding).
fn read_tlvs(mut b: &[u8]) -> Result<Vec<Tlv>, P2pV2Error> {
    let mut tlvs = Vec::new();
    while let Some(&kind) = b.first() {
        if kind == 0 {
            break;
        }
        let len = usize::from(*b.get(1).ok_or(P2pV2Error::BadTlv)?);
        let value = b.get(2..2 + len).ok_or(P2pV2Error::BadTlv)?;
        tlvs.push(Tlv { kind, value: value.to_vec() });
        b = &b[2 + len..];
    }
    Ok(tlvs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_data_packet_round_trips_with_padding() {
        let p = Packet {
            operation: OP_RAK,
            sequence: 0x0102_0304,
            tlvs: vec![Tlv { kind: TLV_ACK, value: vec![0, 0, 0, 9] }],
            data: Some(Data {
                tf: TF_FIRST | TF_FILE,
                package: 7,
                session_id: 99,
                tlvs: vec![Tlv { kind: TLV_DATA_REMAINING, value: 1200u64.to_be_bytes().to_vec() }],
                payload: b"chunk".to_vec(),
            }),
        };
        let bytes = p.to_bytes().unwrap();
        // 8 + (2 + 4) padded to 16; data 8 + (2 + 8) padded to 20; payload 5.
        assert_eq!((bytes[0], bytes[16]), (16, 20));
        assert_eq!(u16::from_be_bytes([bytes[2], bytes[3]]), 25);
        assert_eq!(Packet::parse(&bytes), Ok(p.clone()));
        assert!(p.wants_ack());
    }

    #[test]
    fn an_acknowledgement_has_no_data() {
        let ack = Packet {
            operation: 0,
            sequence: 5,
            tlvs: vec![Tlv { kind: TLV_ACK, value: vec![0, 0, 0, 30] }],
            data: None,
        };
        let bytes = ack.to_bytes().unwrap();
        assert_eq!(bytes.len(), 16);
        assert_eq!(Packet::parse(&bytes), Ok(ack));
    }

    #[test]
    fn malformed_packets_are_refused() {
        assert_eq!(Packet::parse(&[]), Err(P2pV2Error::Short));
        assert_eq!(Packet::parse(&[4, 0, 0, 0]), Err(P2pV2Error::BadHeaderLength));
        assert_eq!(Packet::parse(&[8, 0, 0, 9, 0, 0, 0, 1]), Err(P2pV2Error::Short));
        assert_eq!(Packet::parse(&[12, 0, 0, 0, 0, 0, 0, 1, 2, 9, 0, 0]), Err(P2pV2Error::BadTlv));
        assert_eq!(Packet::parse(&[8, 0, 0, 2, 0, 0, 0, 1, 3, 0]), Err(P2pV2Error::BadHeaderLength));
        assert_eq!(Packet::parse(&[9, 0, 0, 0, 0, 0, 0, 1, 0]), Err(P2pV2Error::BadHeaderLength));
    }
}
