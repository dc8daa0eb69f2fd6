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
        let refused = self.refused();
        self.handle(now_ms, from, datagram);
        let link_local = matches!(to, IpAddr::V6(ip) if ip.segments()[0] & 0xffc0 == 0xfe80);
        if !self.is_listener() || link_local || self.refused() != refused {
            return;
        }
        if let Some(&slot) = self.by_addr.get(&from) {
            if let Some(s) = self.slots[slot as usize].as_mut() {
                s.local = Some(to);
            }
        }
    }

    /// Datagrams rejected or dropped so far, by any counter.
    fn refused(&self) -> u64 {
        let s = &self.stats;
        s.in_errs + s.in_csum_errors + s.kcp_in_errors + s.dropped_unknown + s.dropped_backlog + s.dropped_limit
    }
}
