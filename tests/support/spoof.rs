//! A spoofing sender for the hostile-traffic tests: UDP datagrams with any
//! source address and port in 127.0.0.0/8, sent to a loopback destination
//! through a raw IPv4 socket (`IPPROTO_RAW`, which implies `IP_HDRINCL`: we
//! write the IPv4 and UDP headers; the kernel fills in the IP checksum, the
//! UDP checksum is 0, "none", which IPv4 allows). Needs root or
//! `CAP_NET_RAW`; [`Spoofer::open`] applies the suite's skip policy
//! (`tests/support/skip.rs`, variable `KCPX_SKIP_SPOOF`) when it is missing.
//!
//! On `lo` the kernel delivers such a datagram to the UDP socket bound to
//! its destination, reporting the forged source as the sender (reverse-path
//! filtering does not apply to loopback); `tests/hostile.rs` checks it first.
//!
//! Bounded: sources and destinations must be in 127.0.0.0/8 (anything else
//! panics), at most [`MAX_DATAGRAMS`] datagrams per spoofer.
//! Include with `#[path = "support/spoof.rs"] mod spoof;` next to
//! `#[path = "support/skip.rs"] mod skip;`.
#![allow(dead_code)]

use socket2::{Domain, Protocol, SockAddr, Socket, Type};
use std::io;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};

/// Datagrams one spoofer sends at most.
pub const MAX_DATAGRAMS: u64 = 2_000_000;
/// Largest UDP payload it builds (an IPv4 datagram within loopback's MTU).
pub const MAX_PAYLOAD: usize = 1500;

/// A raw IPv4 socket that sends forged UDP datagrams on loopback.
pub struct Spoofer {
    sock: Socket,
    sent: u64,
    packet: Vec<u8>,
}

impl Spoofer {
    /// The raw socket, or the reason it cannot be had (not root).
    pub fn new() -> io::Result<Spoofer> {
        let sock = Socket::new(Domain::IPV4, Type::RAW, Some(Protocol::from(libc::IPPROTO_RAW)))?;
        // Bursts of full-size datagrams: a large send buffer, so that a burst
        // reaches the destination socket rather than failing with ENOBUFS.
        let _ = sock.set_send_buffer_size(4 << 20);
        Ok(Spoofer {
            sock,
            sent: 0,
            packet: Vec::with_capacity(28 + MAX_PAYLOAD),
        })
    }

    /// [`Spoofer::new`] under the skip policy: None (after a loud message, or
    /// a panic in CI) when raw sockets are unavailable.
    pub fn open(test: &str) -> Option<Spoofer> {
        match Spoofer::new() {
            Ok(s) => Some(s),
            Err(e) => {
                super::skip::unavailable(
                    test,
                    &format!("no raw IPv4 socket ({e}): spoofing source addresses needs root or CAP_NET_RAW"),
                    "KCPX_SKIP_SPOOF",
                );
                None
            }
        }
    }

    /// Datagrams sent so far.
    pub fn sent(&self) -> u64 {
        self.sent
    }

    /// Sends `payload` as a UDP datagram from `from` to `to` (both in
    /// 127.0.0.0/8; IPv6 or other addresses panic).
    pub fn send(&mut self, from: SocketAddr, to: SocketAddr, payload: &[u8]) -> io::Result<()> {
        let (from, to) = (loopback_v4(from), loopback_v4(to));
        assert!(
            payload.len() <= MAX_PAYLOAD,
            "spoofed payload of {} bytes",
            payload.len()
        );
        assert!(
            self.sent < MAX_DATAGRAMS,
            "spoofer bound of {MAX_DATAGRAMS} datagrams reached"
        );
        build(&mut self.packet, from, to, payload, self.sent as u16);
        let dest = SockAddr::from(SocketAddr::V4(SocketAddrV4::new(*to.ip(), 0)));
        loop {
            match self.sock.send_to(&self.packet, &dest) {
                Ok(_) => break,
                // The raw socket's buffer is full for a moment: wait for it.
                Err(e) if e.raw_os_error() == Some(libc::ENOBUFS) => std::thread::yield_now(),
                Err(e) => return Err(e),
            }
        }
        self.sent += 1;
        Ok(())
    }
}

fn loopback_v4(a: SocketAddr) -> SocketAddrV4 {
    match a {
        SocketAddr::V4(v4) if v4.ip().is_loopback() => v4,
        other => panic!("the spoofer only sends within 127.0.0.0/8, not {other}"),
    }
}

/// Writes an IPv4 + UDP datagram into `out`.
fn build(out: &mut Vec<u8>, from: SocketAddrV4, to: SocketAddrV4, payload: &[u8], id: u16) {
    let udp_len = 8 + payload.len();
    let total = 20 + udp_len;
    out.clear();
    out.extend_from_slice(&[0x45, 0]); // version 4, 5-word header; TOS 0
    out.extend_from_slice(&(total as u16).to_be_bytes());
    out.extend_from_slice(&id.to_be_bytes());
    out.extend_from_slice(&[0x40, 0]); // don't fragment
    out.extend_from_slice(&[64, libc::IPPROTO_UDP as u8]);
    out.extend_from_slice(&[0, 0]); // header checksum: the kernel fills it in
    out.extend_from_slice(&from.ip().octets());
    out.extend_from_slice(&to.ip().octets());
    out.extend_from_slice(&from.port().to_be_bytes());
    out.extend_from_slice(&to.port().to_be_bytes());
    out.extend_from_slice(&(udp_len as u16).to_be_bytes());
    out.extend_from_slice(&[0, 0]); // UDP checksum 0: none (IPv4)
    out.extend_from_slice(payload);
}

/// The `i`-th of many distinct hostile source addresses: 127.a.b.c with a
/// port from 1024 up, never 127.0.0.1 (where the real sockets are).
pub fn hostile_addr(i: u32) -> SocketAddr {
    let host = i % 4_000_000 + 0x0001_0000; // 127.1.0.0 onwards
    let port = 1024 + (i / 4_000_000) as u16;
    let ip = Ipv4Addr::from(0x7f00_0000 | host);
    SocketAddr::V4(SocketAddrV4::new(ip, port))
}

/// A 24-byte KCP segment header followed by `data` (little-endian, as on the
/// wire): cmd 81 is PUSH, 82 ACK, 83 WASK, 84 WINS.
pub fn kcp_segment(conv: u32, cmd: u8, sn: u32, una: u32, data: &[u8]) -> Vec<u8> {
    let mut s = Vec::with_capacity(24 + data.len());
    s.extend_from_slice(&conv.to_le_bytes());
    s.extend_from_slice(&[cmd, 0]);
    s.extend_from_slice(&128u16.to_le_bytes()); // window
    s.extend_from_slice(&0u32.to_le_bytes()); // ts
    s.extend_from_slice(&sn.to_le_bytes());
    s.extend_from_slice(&una.to_le_bytes());
    s.extend_from_slice(&(data.len() as u32).to_le_bytes());
    s.extend_from_slice(data);
    s
}

/// KCP command numbers.
pub const CMD_PUSH: u8 = 81;
pub const CMD_ACK: u8 = 82;
