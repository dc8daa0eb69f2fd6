//! Stateless handshake cookies (`docs/secure-wire.md`, section 3.1):
//! `w8 ‖ HMAC(S_w, "kcpx1 cookie" ‖ w ‖ addr ‖ client_random ‖
//! client_public)[..15]`, with a fresh 32-byte secret per 10-second window
//! and only the current and previous windows' secrets kept.

use std::net::SocketAddr;

use ring::hmac;

use super::keys::{ct_eq, hmac, hmac_key};
use super::wire::encode_addr;
use super::{random, Entropy, SecureError};

/// Bytes of a cookie.
pub const COOKIE_LEN: usize = 16;
/// Milliseconds of a cookie window; a cookie lives one to two windows.
pub const COOKIE_WINDOW_MS: u64 = 10_000;

/// The two newest windows' secrets. 2 × (8 + an HMAC key) bytes; nothing
/// per client.
#[derive(Default)]
pub struct CookieJar {
    current: Option<(u64, hmac::Key)>,
    previous: Option<(u64, hmac::Key)>,
}

impl core::fmt::Debug for CookieJar {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("CookieJar")
            .field("current", &self.current.as_ref().map(|c| c.0))
            .field("previous", &self.previous.as_ref().map(|c| c.0))
            .finish()
    }
}

/// The window of a time.
pub const fn window(now_ms: u64) -> u64 {
    now_ms / COOKIE_WINDOW_MS
}

impl CookieJar {
    /// A jar with no secret yet (the first [`CookieJar::rotate`] draws one).
    pub fn new() -> CookieJar {
        CookieJar::default()
    }

    /// Makes sure the current window has a secret: at a new window draws a
    /// fresh one and forgets all but the one before it.
    pub fn rotate(&mut self, now_ms: u64, entropy: &mut dyn Entropy) -> Result<(), SecureError> {
        let w = window(now_ms);
        if matches!(self.current, Some((cw, _)) if cw >= w) {
            return Ok(());
        }
        let secret: [u8; 32] = random(entropy)?;
        let old = self.current.replace((w, hmac_key(&secret)));
        self.previous = old.filter(|(pw, _)| pw + 1 == w);
        Ok(())
    }

    fn mac(key: &hmac::Key, w: u64, addr: SocketAddr, random: &[u8; 32], public: &[u8; 32]) -> [u8; COOKIE_LEN] {
        let full = hmac(
            key,
            &[b"kcpx1 cookie", &w.to_be_bytes(), &encode_addr(addr), random, public],
        );
        let mut c = [0u8; COOKIE_LEN];
        c[0] = w as u8; // the window's low byte, on purpose
        c[1..].copy_from_slice(&full[..COOKIE_LEN - 1]);
        c
    }

    /// The cookie for a hello from `addr` at `now_ms` (rotating first).
    pub fn make(
        &mut self,
        now_ms: u64,
        addr: SocketAddr,
        client_random: &[u8; 32],
        client_public: &[u8; 32],
        entropy: &mut dyn Entropy,
    ) -> Result<[u8; COOKIE_LEN], SecureError> {
        self.rotate(now_ms, entropy)?;
        let (w, key) = self.current.as_ref().ok_or(SecureError::Random)?;
        Ok(Self::mac(key, *w, addr, client_random, client_public))
    }

    /// Checks an echoed cookie: issued in this window or the previous one,
    /// to this address and port, for this hello. `Expired` when its window
    /// is gone; `Forged` when it does not verify (another address, another
    /// hello or invented: the cookie cannot tell which).
    pub fn check(
        &self,
        now_ms: u64,
        cookie: &[u8; COOKIE_LEN],
        addr: SocketAddr,
        client_random: &[u8; 32],
        client_public: &[u8; 32],
    ) -> Result<(), SecureError> {
        let w = window(now_ms);
        let secret = [&self.current, &self.previous]
            .into_iter()
            .flatten()
            .find(|(sw, _)| (*sw == w || sw + 1 == w) && *sw as u8 == cookie[0])
            .ok_or(SecureError::Expired)?;
        let want = Self::mac(&secret.1, secret.0, addr, client_random, client_public);
        if ct_eq(&want, cookie) {
            Ok(())
        } else {
            Err(SecureError::Forged)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secure::SeededEntropy;

    #[test]
    fn a_cookie_is_bound_to_address_port_hello_and_time() {
        let mut e = SeededEntropy::new(1);
        let mut jar = CookieJar::new();
        let a: SocketAddr = "10.0.0.1:4000".parse().unwrap();
        let (r, p) = ([1u8; 32], [2u8; 32]);
        let t0 = 123_456_789;
        let c = jar.make(t0, a, &r, &p, &mut e).unwrap();
        assert_eq!(jar.check(t0, &c, a, &r, &p), Ok(()));
        assert_eq!(
            jar.check(t0, &c, "10.0.0.1:4001".parse().unwrap(), &r, &p),
            Err(SecureError::Forged)
        );
        assert_eq!(
            jar.check(t0, &c, "10.0.0.2:4000".parse().unwrap(), &r, &p),
            Err(SecureError::Forged)
        );
        assert_eq!(jar.check(t0, &c, a, &[3; 32], &p), Err(SecureError::Forged));
        assert_eq!(jar.check(t0, &c, a, &r, &[3; 32]), Err(SecureError::Forged));
        let mut forged = c;
        forged[9] ^= 1;
        assert_eq!(jar.check(t0, &forged, a, &r, &p), Err(SecureError::Forged));
        // Valid in the next window, after one rotation.
        let t1 = t0 + COOKIE_WINDOW_MS;
        jar.rotate(t1, &mut e).unwrap();
        assert_eq!(jar.check(t1, &c, a, &r, &p), Ok(()));
        // Gone two windows later: the secret was forgotten.
        let t2 = t0 + 2 * COOKIE_WINDOW_MS;
        jar.rotate(t2, &mut e).unwrap();
        assert_eq!(jar.check(t2, &c, a, &r, &p), Err(SecureError::Expired));
        // Without rotation, time alone expires it too.
        let mut jar2 = CookieJar::new();
        let c2 = jar2.make(t0, a, &r, &p, &mut e).unwrap();
        assert_eq!(jar2.check(t2, &c2, a, &r, &p), Err(SecureError::Expired));
        // A long pause forgets both secrets at once.
        let mut jar3 = CookieJar::new();
        let c3 = jar3.make(t0, a, &r, &p, &mut e).unwrap();
        jar3.rotate(t0 + 100 * COOKIE_WINDOW_MS, &mut e).unwrap();
        assert!(jar3.previous.is_none());
        assert_eq!(jar3.check(t0, &c3, a, &r, &p), Err(SecureError::Expired));
    }

    #[test]
    fn another_server_secret_refuses_the_cookie() {
        let a: SocketAddr = "[::1]:9".parse().unwrap();
        let (mut j1, mut j2) = (CookieJar::new(), CookieJar::new());
        let c = j1.make(5, a, &[0; 32], &[0; 32], &mut SeededEntropy::new(1)).unwrap();
        j2.rotate(5, &mut SeededEntropy::new(2)).unwrap();
        assert_eq!(j2.check(5, &c, a, &[0; 32], &[0; 32]), Err(SecureError::Forged));
    }
}
