//! The local address of a listener's sessions: on a socket bound to
//! 0.0.0.0 or `[::]` of a multi-homed host, replies must leave from the
//! address the peer sent to (a kcp-go client, like a kcpx dialer, drops
//! datagrams from any other address), not from the kernel's preferred one.
//! The socket layer reports each datagram's local address (IP_PKTINFO,
//! IPV6_RECVPKTINFO) through [`Endpoint::handle_to`]; the session remembers
//! the last one and its transmits carry it (`Transmits::local_of`).

use super::{Endpoint, Role};
use std::net::{IpAddr, SocketAddr};

impl Endpoint {
    /// Whether this endpoint is a listener (sessions opened by peers), not
    /// a dialer.
    pub fn is_listener(&self) -> bool {
        self.role == Role::Listener
    }

    /// [`Endpoint::handle`] for a datagram that arrived at local address
    /// `to`. When the datagram is taken by a listener's session (not
    /// rejected or dropped), the session's datagrams leave from `to` from
    /// then on. A dialer ignores `to` (the kernel's choice for its one peer
    /// is the address that peer answers). An IPv6 link-local `to` is not
    /// kept: it would need its interface.
    pub fn handle_to(&mut self, now_ms: u32, from: SocketAddr, to: IpAddr, datagram: &mut [u8]) {
        let link_local = matches!(to, IpAddr::V6(ip) if ip.segments()[0] & 0xffc0 == 0xfe80);
        let keep = self.is_listener() && !link_local;
        self.handle_at(now_ms, from, keep.then_some(to), datagram);
    }
}
