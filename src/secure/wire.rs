//! Datagram forms and headers (`docs/secure-wire.md`, section 1): the 6-byte
//! long header of the handshake messages, the 13-byte short header of
//! sealed datagrams, packet-number reconstruction, and the 19-byte address
//! encoding the cookies and tokens use.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use super::SecureError;

/// The version this module speaks.
pub const VERSION: u8 = 1;
/// Bytes 1..5 of a long header.
pub const MAGIC: [u8; 4] = *b"kcpx";
/// Bytes of a long header.
pub const LONG_HEADER_LEN: usize = 6;
/// Bytes of a short header.
pub const SHORT_HEADER_LEN: usize = 13;
/// Bytes of an AEAD tag.
pub const TAG_LEN: usize = 16;
/// Header and tag of a sealed datagram.
pub const SHORT_OVERHEAD: usize = SHORT_HEADER_LEN + TAG_LEN;
/// The smallest sealed datagram: one frame byte.
pub const MIN_SHORT_LEN: usize = SHORT_OVERHEAD + 1;
/// Bytes of a connection ID.
pub const CID_LEN: usize = 8;
/// Bytes of an encoded socket address.
pub const ADDR_LEN: usize = 19;

/// First-byte bits of a long header.
const LONG_FORM: u8 = 0xC0;
/// First-byte bits of a short header.
const SHORT_FORM: u8 = 0x40;
/// The key-phase bit of a short header.
const KEY_PHASE: u8 = 0x01;

/// A connection ID.
pub type ConnectionId = [u8; CID_LEN];

/// The four handshake messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MessageType {
    /// Client → server, 1,200 bytes.
    ClientHello = 0,
    /// Server → client, the stateless cookie.
    Challenge = 1,
    /// Client → server, the hello again with the cookie.
    ClientEcho = 2,
    /// Server → client, the session.
    ServerHello = 3,
}

impl MessageType {
    /// The datagram size of this message.
    pub const fn size(self) -> usize {
        match self {
            MessageType::ClientHello | MessageType::ClientEcho => 1200,
            MessageType::Challenge => 70,
            MessageType::ServerHello => 111,
        }
    }
}

/// What a datagram's first bytes say it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Form {
    /// A version-1 handshake message of the right size.
    Long(MessageType),
    /// A short header: a sealed datagram for this connection ID.
    Short(ConnectionId),
    /// Not a secure datagram (on a dual listener: kcp-go's).
    Other,
}

/// Classifies a datagram by its header alone (section 1, "Telling secure
/// datagrams from kcp-go's"): cheap, allocation-free, authenticates nothing.
pub fn classify(datagram: &[u8]) -> Form {
    if let Ok(t) = parse_long(datagram) {
        return Form::Long(t);
    }
    match parse_short(datagram) {
        Ok(h) => Form::Short(h.cid),
        Err(_) => Form::Other,
    }
}

/// Writes a long header of type `t` into `out[..6]`.
pub fn write_long(out: &mut [u8], t: MessageType) {
    out[0] = LONG_FORM | t as u8;
    out[1..5].copy_from_slice(&MAGIC);
    out[5] = VERSION;
}

/// The message type of a long-header datagram, checking the magic, the
/// version and the message's exact size.
pub fn parse_long(datagram: &[u8]) -> Result<MessageType, SecureError> {
    let first = *datagram.first().ok_or(SecureError::Truncated)?;
    if first & 0xC0 != LONG_FORM {
        return Err(SecureError::Malformed);
    }
    if datagram.len() < LONG_HEADER_LEN {
        return Err(SecureError::Truncated);
    }
    if datagram[1..5] != MAGIC || datagram[5] != VERSION {
        return Err(SecureError::Version);
    }
    let t = match first & 0x3F {
        0 => MessageType::ClientHello,
        1 => MessageType::Challenge,
        2 => MessageType::ClientEcho,
        3 => MessageType::ServerHello,
        _ => return Err(SecureError::Malformed),
    };
    if datagram.len() != t.size() {
        return Err(SecureError::Truncated);
    }
    Ok(t)
}

/// A parsed short header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ShortHeader {
    /// The key phase bit.
    pub key_phase: bool,
    /// The connection ID.
    pub cid: ConnectionId,
    /// The low 32 bits of the packet number.
    pub pn_low: u32,
}

/// Writes a short header into `out[..13]`.
pub fn write_short(out: &mut [u8], key_phase: bool, cid: &ConnectionId, pn: u64) {
    out[0] = SHORT_FORM | if key_phase { KEY_PHASE } else { 0 };
    out[1..9].copy_from_slice(cid);
    // The low 32 bits on purpose: the receiver reconstructs the rest.
    out[9..13].copy_from_slice(&(pn as u32).to_be_bytes());
}

/// Parses a short header, checking the form, the reserved bits and that the
/// datagram can hold a header, one frame byte and a tag.
pub fn parse_short(datagram: &[u8]) -> Result<ShortHeader, SecureError> {
    let first = *datagram.first().ok_or(SecureError::Truncated)?;
    if first & 0xC0 != SHORT_FORM || first & 0x3E != 0 {
        return Err(SecureError::Malformed);
    }
    if datagram.len() < MIN_SHORT_LEN {
        return Err(SecureError::Truncated);
    }
    let mut cid = [0u8; CID_LEN];
    cid.copy_from_slice(&datagram[1..9]);
    let mut low = [0u8; 4];
    low.copy_from_slice(&datagram[9..13]);
    Ok(ShortHeader {
        key_phase: first & KEY_PHASE != 0,
        cid,
        pn_low: u32::from_be_bytes(low),
    })
}

/// The full packet number whose low 32 bits are `low`, nearest to
/// `expected` (the largest authenticated packet number + 1; RFC 9000 A.3).
pub fn reconstruct_pn(expected: u64, low: u32) -> u64 {
    const WIN: u64 = 1 << 32;
    const HALF: u64 = WIN / 2;
    let candidate = (expected & !(WIN - 1)) | u64::from(low);
    if candidate.saturating_add(HALF) <= expected && candidate < u64::MAX - WIN {
        candidate + WIN
    } else if candidate > expected.saturating_add(HALF) && candidate >= WIN {
        candidate - WIN
    } else {
        candidate
    }
}

/// An IPv4-mapped IPv6 address as the IPv4 address it maps (dual-stack
/// sockets report IPv4 peers that way).
pub fn canonical(addr: SocketAddr) -> SocketAddr {
    match addr {
        SocketAddr::V6(v6) => match v6.ip().to_ipv4_mapped() {
            Some(v4) => SocketAddr::new(IpAddr::V4(v4), v6.port()),
            None => addr,
        },
        SocketAddr::V4(_) => addr,
    }
}

/// The 19-byte encoding of a socket address: family (4 or 6), 16 address
/// bytes (IPv4 in the first 4, zeros after), the port.
pub fn encode_addr(addr: SocketAddr) -> [u8; ADDR_LEN] {
    let mut out = [0u8; ADDR_LEN];
    match canonical(addr) {
        SocketAddr::V4(a) => {
            out[0] = 4;
            out[1..5].copy_from_slice(&a.ip().octets());
        }
        SocketAddr::V6(a) => {
            out[0] = 6;
            out[1..17].copy_from_slice(&a.ip().octets());
        }
    }
    out[17..19].copy_from_slice(&addr.port().to_be_bytes());
    out
}

/// The address of a 19-byte encoding; `Malformed` for an unknown family or
/// IPv4 with bytes after its 4.
pub fn decode_addr(b: &[u8; ADDR_LEN]) -> Result<SocketAddr, SecureError> {
    let port = u16::from_be_bytes([b[17], b[18]]);
    match b[0] {
        4 if b[5..17].iter().all(|&x| x == 0) => {
            Ok(SocketAddr::new(IpAddr::V4(Ipv4Addr::new(b[1], b[2], b[3], b[4])), port))
        }
        6 => {
            let mut o = [0u8; 16];
            o.copy_from_slice(&b[1..17]);
            Ok(SocketAddr::new(IpAddr::V6(Ipv6Addr::from(o)), port))
        }
        _ => Err(SecureError::Malformed),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packet_numbers_reconstruct_near_the_expected_one() {
        assert_eq!(reconstruct_pn(0, 0), 0);
        assert_eq!(reconstruct_pn(10, 9), 9);
        assert_eq!(reconstruct_pn(0xFFFF_FFF0, 5), 0x1_0000_0005);
        assert_eq!(reconstruct_pn(0x1_0000_0005, 0xFFFF_FFF0), 0xFFFF_FFF0);
        assert_eq!(reconstruct_pn(0x1_0000_0000, 0x7FFF_FFFF), 0x1_7FFF_FFFF);
        assert_eq!(reconstruct_pn(0x1_0000_0000, 0x8000_0001), 0x8000_0001);
        for expected in [0u64, 1, 1 << 31, 1 << 32, (1 << 40) + 17, 1 << 62] {
            for delta in [-1000i64, -1, 0, 1, 1000, (1 << 30)] {
                let Some(pn) = expected.checked_add_signed(delta) else {
                    continue;
                };
                assert_eq!(reconstruct_pn(expected, pn as u32), pn, "{expected} {delta}");
            }
        }
        // Never panics at the edges.
        let _ = reconstruct_pn(u64::MAX, 0);
        let _ = reconstruct_pn(u64::MAX, u32::MAX);
    }

    #[test]
    fn headers_round_trip_and_refuse_reserved_bits() {
        let mut d = [0u8; 40];
        write_short(&mut d, true, &[1, 2, 3, 4, 5, 6, 7, 8], 0x1_2345_6789);
        let h = parse_short(&d).unwrap();
        assert_eq!(
            (h.key_phase, h.cid, h.pn_low),
            (true, [1, 2, 3, 4, 5, 6, 7, 8], 0x2345_6789)
        );
        assert_eq!(classify(&d), Form::Short([1, 2, 3, 4, 5, 6, 7, 8]));
        d[0] |= 0x02;
        assert_eq!(parse_short(&d), Err(SecureError::Malformed));
        assert_eq!(parse_short(&d[..29]), Err(SecureError::Malformed));
        d[0] = 0x40;
        assert_eq!(parse_short(&d[..29]), Err(SecureError::Truncated));
        assert_eq!(parse_short(&[]), Err(SecureError::Truncated));

        let mut m = [0u8; 70];
        write_long(&mut m, MessageType::Challenge);
        assert_eq!(parse_long(&m), Ok(MessageType::Challenge));
        assert_eq!(classify(&m), Form::Long(MessageType::Challenge));
        assert_eq!(parse_long(&m[..69]), Err(SecureError::Truncated));
        m[5] = 2;
        assert_eq!(parse_long(&m), Err(SecureError::Version));
        assert_eq!(classify(&m), Form::Other);
        m[5] = 1;
        m[0] = 0xC7;
        assert_eq!(parse_long(&m), Err(SecureError::Malformed));
        assert_eq!(classify(&[0x80; 100]), Form::Other);
    }

    #[test]
    fn addresses_round_trip_and_mapped_v4_is_v4() {
        for s in ["1.2.3.4:5", "[::1]:65535", "[2001:db8::7]:80"] {
            let a: SocketAddr = s.parse().unwrap();
            assert_eq!(decode_addr(&encode_addr(a)), Ok(a));
        }
        let mapped: SocketAddr = "[::ffff:1.2.3.4]:9".parse().unwrap();
        assert_eq!(encode_addr(mapped), encode_addr("1.2.3.4:9".parse().unwrap()));
        let mut bad = encode_addr("1.2.3.4:5".parse().unwrap());
        bad[9] = 1;
        assert_eq!(decode_addr(&bad), Err(SecureError::Malformed));
        bad[0] = 5;
        assert_eq!(decode_addr(&bad), Err(SecureError::Malformed));
    }
}
