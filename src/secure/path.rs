//! Path validation and anti-amplification (`docs/secure-wire.md`, section
//! 8), sans-IO: a session's current path, and at most one check of a new
//! address that sent an authentic, newest datagram. The session moves only
//! when the new address answers the check's PATH_CHALLENGE; until then it
//! may send there at most 3 × what it received from there.

use std::net::SocketAddr;

use super::wire::canonical;
use super::{random, Entropy, SecureError};

/// Bytes a session may send to an unvalidated address per byte received from it.
pub const AMPLIFICATION: u64 = 3;
/// Tries of one path check.
pub const PATH_TRIES: u8 = 3;
/// Shortest and longest wait for a PATH_RESPONSE.
pub const PATH_TIMEOUT_MS: (u64, u64) = (200, 3000);

/// The wait for a PATH_RESPONSE: 3 × the smoothed RTT within the bounds.
pub fn path_timeout(srtt_ms: u64) -> u64 {
    srtt_ms.saturating_mul(3).clamp(PATH_TIMEOUT_MS.0, PATH_TIMEOUT_MS.1)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Check {
    addr: SocketAddr,
    data: [u8; 8],
    deadline_ms: u64,
    tries: u8,
    received: u64,
    sent: u64,
}

/// A PATH_CHALLENGE to send.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Challenge {
    /// Where to.
    pub to: SocketAddr,
    /// Its 8 bytes.
    pub data: [u8; 8],
}

/// A session's path and its pending check.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Paths {
    current: SocketAddr,
    check: Option<Check>,
}

impl Paths {
    /// A session whose address is `current` (proven by the handshake).
    pub fn new(current: SocketAddr) -> Paths {
        Paths {
            current: canonical(current),
            check: None,
        }
    }

    /// Where the session sends.
    pub fn current(&self) -> SocketAddr {
        self.current
    }

    /// The address under check, if any.
    pub fn checking(&self) -> Option<SocketAddr> {
        self.check.map(|c| c.addr)
    }

    /// An authentic, new datagram of `len` bytes arrived from `from`;
    /// `newest` when its packet number is the largest seen. Returns the
    /// challenge to send when it starts a check (only a newest datagram from
    /// an address that is neither the path nor under check does).
    pub fn on_datagram(
        &mut self,
        from: SocketAddr,
        len: usize,
        newest: bool,
        now_ms: u64,
        srtt_ms: u64,
        entropy: &mut dyn Entropy,
    ) -> Result<Option<Challenge>, SecureError> {
        let from = canonical(from);
        if from == self.current {
            return Ok(None);
        }
        if let Some(c) = self.check.as_mut().filter(|c| c.addr == from) {
            c.received = c.received.saturating_add(len as u64);
            return Ok(None);
        }
        if !newest {
            return Ok(None);
        }
        let data: [u8; 8] = random(entropy)?;
        self.check = Some(Check {
            addr: from,
            data,
            deadline_ms: now_ms + path_timeout(srtt_ms),
            tries: 1,
            received: len as u64,
            sent: 0,
        });
        Ok(Some(Challenge { to: from, data }))
    }

    /// A PATH_RESPONSE arrived from `from`: `true` when it answers the check
    /// (the bytes match and it came from the checked address), and the path
    /// moved there.
    pub fn on_response(&mut self, from: SocketAddr, data: &[u8; 8]) -> bool {
        let from = canonical(from);
        match self.check {
            Some(c) if c.addr == from && c.data == *data => {
                self.current = from;
                self.check = None;
                true
            }
            _ => false,
        }
    }

    /// Whether `len` more bytes may go to `to`: always to the path, within
    /// the anti-amplification budget to the address under check, never
    /// elsewhere.
    pub fn may_send(&self, to: SocketAddr, len: usize) -> bool {
        let to = canonical(to);
        if to == self.current {
            return true;
        }
        self.check
            .is_some_and(|c| c.addr == to && c.sent + len as u64 <= c.received.saturating_mul(AMPLIFICATION))
    }

    /// `len` bytes were sent to `to`.
    pub fn on_sent(&mut self, to: SocketAddr, len: usize) {
        let to = canonical(to);
        if let Some(c) = self.check.as_mut().filter(|c| c.addr == to) {
            c.sent = c.sent.saturating_add(len as u64);
        }
    }

    /// When [`Paths::handle_timeout`] wants to run.
    pub fn poll_timeout(&self) -> Option<u64> {
        self.check.map(|c| c.deadline_ms)
    }

    /// At `now_ms`: the challenge to send again, or `None` (nothing due, or
    /// the check failed after its tries and the path stays as it was).
    pub fn handle_timeout(
        &mut self,
        now_ms: u64,
        srtt_ms: u64,
        entropy: &mut dyn Entropy,
    ) -> Result<Option<Challenge>, SecureError> {
        let Some(c) = self.check.as_mut() else {
            return Ok(None);
        };
        if now_ms < c.deadline_ms {
            return Ok(None);
        }
        if c.tries >= PATH_TRIES {
            self.check = None;
            return Ok(None);
        }
        c.tries += 1;
        c.data = random(entropy)?;
        c.deadline_ms = now_ms + path_timeout(srtt_ms);
        Ok(Some(Challenge {
            to: c.addr,
            data: c.data,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secure::SeededEntropy;

    fn a(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn a_new_address_is_checked_before_the_session_moves() {
        let mut e = SeededEntropy::new(1);
        let mut p = Paths::new(a("10.0.0.1:1000"));
        // The path itself, and an old datagram from elsewhere: nothing.
        assert_eq!(p.on_datagram(a("10.0.0.1:1000"), 100, true, 0, 50, &mut e), Ok(None));
        assert_eq!(p.on_datagram(a("10.0.0.1:2000"), 100, false, 0, 50, &mut e), Ok(None));
        // The newest from a new port: a check.
        let ch = p
            .on_datagram(a("10.0.0.1:2000"), 100, true, 0, 50, &mut e)
            .unwrap()
            .unwrap();
        assert_eq!(ch.to, a("10.0.0.1:2000"));
        assert_eq!(p.current(), a("10.0.0.1:1000"), "not moved yet");
        assert_eq!(p.poll_timeout(), Some(200), "3 x 50 ms, at least 200");
        // Wrong bytes, or the right bytes from elsewhere: no move.
        let mut wrong = ch.data;
        wrong[0] ^= 1;
        assert!(!p.on_response(a("10.0.0.1:2000"), &wrong));
        assert!(!p.on_response(a("10.0.0.9:2000"), &ch.data));
        assert!(
            p.on_response(a("[::ffff:10.0.0.1]:2000"), &ch.data),
            "mapped form of the same address"
        );
        assert_eq!(p.current(), a("10.0.0.1:2000"));
        assert_eq!(p.checking(), None);
    }

    #[test]
    fn an_unvalidated_address_gets_three_times_what_it_sent() {
        let mut e = SeededEntropy::new(2);
        let mut p = Paths::new(a("10.0.0.1:1000"));
        let new = a("10.0.0.2:1000");
        p.on_datagram(new, 100, true, 0, 50, &mut e).unwrap().unwrap();
        assert!(p.may_send(a("10.0.0.1:1000"), 1 << 20), "the path is not limited");
        assert!(p.may_send(new, 300));
        assert!(!p.may_send(new, 301));
        p.on_sent(new, 250);
        assert!(!p.may_send(new, 51));
        p.on_datagram(new, 20, false, 1, 50, &mut e).unwrap();
        assert!(p.may_send(new, 110));
        assert!(
            !p.may_send(a("10.0.0.3:1000"), 1),
            "never to an address not under check"
        );
    }

    #[test]
    fn a_check_is_retried_then_abandoned_and_a_third_address_replaces_it() {
        let mut e = SeededEntropy::new(3);
        let mut p = Paths::new(a("10.0.0.1:1000"));
        let first = p
            .on_datagram(a("10.0.0.2:1"), 50, true, 0, 2000, &mut e)
            .unwrap()
            .unwrap();
        assert_eq!(p.poll_timeout(), Some(3000), "at most 3 s");
        assert_eq!(p.handle_timeout(2999, 2000, &mut e), Ok(None));
        let again = p.handle_timeout(3000, 2000, &mut e).unwrap().unwrap();
        assert_ne!(again.data, first.data, "each try has fresh bytes");
        assert!(
            !p.on_response(a("10.0.0.2:1"), &first.data),
            "an old try's answer is stale"
        );
        p.handle_timeout(6000, 2000, &mut e).unwrap().unwrap();
        assert_eq!(p.handle_timeout(9000, 2000, &mut e), Ok(None), "third try timed out");
        assert_eq!((p.checking(), p.current()), (None, a("10.0.0.1:1000")));
        // A check replaced by a newer address.
        p.on_datagram(a("10.0.0.2:1"), 50, true, 0, 10, &mut e)
            .unwrap()
            .unwrap();
        let c3 = p
            .on_datagram(a("10.0.0.3:1"), 50, true, 0, 10, &mut e)
            .unwrap()
            .unwrap();
        assert_eq!(p.checking(), Some(a("10.0.0.3:1")));
        assert!(p.on_response(a("10.0.0.3:1"), &c3.data));
    }
}
