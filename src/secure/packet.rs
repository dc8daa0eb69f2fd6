//! Sealed datagrams (`docs/secure-wire.md`, sections 1 and 4): a
//! [`Sender`] numbers and seals one direction's datagrams and updates its
//! key every 2²² packets; a [`Receiver`] opens the other direction's: header,
//! packet number, replay check, AEAD, and only then any change of state.

use super::aead::{AeadAlg, PacketKey};
use super::keys::{generation_keys, next_secret, SECRET_LEN};
use super::replay::{ReplayWindow, WINDOW};
use super::wire::{self, ConnectionId, SHORT_HEADER_LEN, SHORT_OVERHEAD};
use super::SecureError;

/// log₂ of the packets per key generation.
pub const KEY_UPDATE_SHIFT: u32 = 22;
/// Packets sealed under one key: 2²² (AES-GCM's limit is 2²³).
pub const KEY_UPDATE_INTERVAL: u64 = 1 << KEY_UPDATE_SHIFT;
/// The first packet number a sender refuses to use.
pub const MAX_PN: u64 = 1 << 62;
/// Failed opens after which a receiver refuses everything (ChaCha20-Poly1305's
/// integrity limit; AES-GCM's is 2⁵²).
pub const INTEGRITY_LIMIT: u64 = 1 << 36;

/// The key generation of a packet number.
pub const fn generation(pn: u64) -> u64 {
    pn >> KEY_UPDATE_SHIFT
}

fn key_of(alg: AeadAlg, secret: &[u8; SECRET_LEN]) -> PacketKey {
    let (key, iv) = generation_keys(secret);
    PacketKey::new(alg, &key, iv)
}

/// One direction's sending side.
pub struct Sender {
    alg: AeadAlg,
    cid: ConnectionId,
    pn: u64,
    generation: u64,
    secret: [u8; SECRET_LEN],
    key: PacketKey,
}

// Hand-written: the derived form would print the secrets.
impl core::fmt::Debug for Sender {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Sender")
            .field("alg", &self.alg)
            .field("pn", &self.pn)
            .field("generation", &self.generation)
            .finish_non_exhaustive()
    }
}

impl core::fmt::Debug for Receiver {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Receiver")
            .field("alg", &self.alg)
            .field("generation", &self.generation)
            .field("expected_pn", &self.window.expected())
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

impl Sender {
    /// A sender starting at packet number 0 with generation 0's `secret`.
    pub fn new(alg: AeadAlg, cid: ConnectionId, secret: [u8; SECRET_LEN]) -> Sender {
        Sender {
            alg,
            cid,
            pn: 0,
            generation: 0,
            key: key_of(alg, &secret),
            secret,
        }
    }

    /// The packet number the next [`Sender::seal`] uses.
    pub fn next_pn(&self) -> u64 {
        self.pn
    }

    /// The connection ID it writes.
    pub fn cid(&self) -> ConnectionId {
        self.cid
    }

    /// Bytes a datagram needs beyond its frames: header and tag.
    pub const fn overhead(&self) -> usize {
        SHORT_OVERHEAD
    }

    /// Seals `datagram` in place: writes the short header into `[..13]`,
    /// encrypts the frames in `[13..len − 16]` and writes the tag into the
    /// last 16 bytes. Returns the packet number used.
    pub fn seal(&mut self, datagram: &mut [u8]) -> Result<u64, SecureError> {
        if datagram.len() < wire::MIN_SHORT_LEN {
            return Err(SecureError::Truncated);
        }
        if self.pn >= MAX_PN {
            return Err(SecureError::KeysExhausted);
        }
        let g = generation(self.pn);
        while self.generation < g {
            self.secret = next_secret(&self.secret);
            self.generation += 1;
            self.key = key_of(self.alg, &self.secret);
        }
        let pn = self.pn;
        wire::write_short(datagram, g & 1 == 1, &self.cid, pn);
        self.key.seal(pn, datagram, SHORT_HEADER_LEN)?;
        self.pn += 1;
        Ok(pn)
    }

    /// Test hook: continue from packet number `pn` (to reach key updates
    /// and the limits without sealing millions of datagrams).
    #[doc(hidden)]
    pub fn skip_to(&mut self, pn: u64) {
        self.pn = self.pn.max(pn);
    }
}

/// What a [`Receiver`] counted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReceiverStats {
    /// Datagrams that opened.
    pub opened: u64,
    /// Datagrams whose tag failed (forged, corrupted, reflected).
    pub forged: u64,
    /// Datagrams already seen or older than the window (not opened).
    pub replayed: u64,
    /// Datagrams with a bad header, another connection ID, a key phase that
    /// disagrees with their packet number, or a generation out of reach.
    pub malformed: u64,
}

/// A datagram that opened.
#[derive(Debug)]
pub struct Opened<'a> {
    /// Its packet number.
    pub pn: u64,
    /// Whether its packet number is the largest seen so far (a datagram from
    /// a new address starts a path check only then).
    pub newest: bool,
    /// Its frames, decrypted in place.
    pub frames: &'a mut [u8],
}

/// One direction's receiving side.
pub struct Receiver {
    alg: AeadAlg,
    cid: ConnectionId,
    generation: u64,
    current: PacketKey,
    /// The secret of generation `generation + 1`.
    next_secret: [u8; SECRET_LEN],
    previous: Option<Box<PacketKey>>,
    next: Option<Box<PacketKey>>,
    window: ReplayWindow,
    stats: ReceiverStats,
}

impl Receiver {
    /// A receiver expecting packet number 0 under generation 0's `secret`.
    pub fn new(alg: AeadAlg, cid: ConnectionId, secret: [u8; SECRET_LEN]) -> Receiver {
        Receiver {
            alg,
            cid,
            generation: 0,
            current: key_of(alg, &secret),
            next_secret: next_secret(&secret),
            previous: None,
            next: None,
            window: ReplayWindow::new(),
            stats: ReceiverStats::default(),
        }
    }

    /// What it counted.
    pub fn stats(&self) -> ReceiverStats {
        self.stats
    }

    /// The largest packet number opened + 1 (0 before the first).
    pub fn expected_pn(&self) -> u64 {
        self.window.expected()
    }

    /// Opens a short datagram in place. Nothing changes unless it opens and
    /// is new; every refusal is counted in [`Receiver::stats`].
    pub fn open<'a>(&mut self, datagram: &'a mut [u8]) -> Result<Opened<'a>, SecureError> {
        let r = self.open_inner(datagram);
        match r {
            Ok(_) => self.stats.opened += 1,
            Err(SecureError::Replayed) => self.stats.replayed += 1,
            Err(SecureError::Forged) => self.stats.forged += 1,
            Err(_) => self.stats.malformed += 1,
        }
        r
    }

    fn open_inner<'a>(&mut self, datagram: &'a mut [u8]) -> Result<Opened<'a>, SecureError> {
        let h = wire::parse_short(datagram)?;
        if h.cid != self.cid {
            return Err(SecureError::Unexpected);
        }
        if self.stats.forged >= INTEGRITY_LIMIT {
            return Err(SecureError::KeysExhausted);
        }
        let pn = wire::reconstruct_pn(self.window.expected(), h.pn_low);
        if pn >= MAX_PN {
            return Err(SecureError::Malformed);
        }
        let g = generation(pn);
        if (g & 1 == 1) != h.key_phase {
            return Err(SecureError::Malformed);
        }
        self.window.check(pn)?;
        let key: &PacketKey = if g == self.generation {
            &self.current
        } else if g + 1 == self.generation {
            self.previous.as_deref().ok_or(SecureError::Replayed)?
        } else if g == self.generation + 1 {
            let (alg, secret) = (self.alg, &self.next_secret);
            self.next.get_or_insert_with(|| Box::new(key_of(alg, secret)))
        } else {
            return Err(SecureError::Malformed);
        };
        let frames = key.open(pn, datagram, SHORT_HEADER_LEN)?;
        // Authentic: now the state may change.
        let newest = pn >= self.window.expected();
        self.window.insert(pn)?;
        if g == self.generation + 1 {
            let next = self.next.take().expect("derived above");
            self.previous = Some(Box::new(core::mem::replace(&mut self.current, *next)));
            self.generation = g;
            self.next_secret = next_secret(&self.next_secret);
        }
        // The previous key is useless once the window is past its packets.
        if self.previous.is_some() && self.window.expected() > (self.generation << KEY_UPDATE_SHIFT) + WINDOW {
            self.previous = None;
        }
        Ok(Opened { pn, newest, frames })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CID: ConnectionId = [9; 8];

    fn pair(alg: AeadAlg) -> (Sender, Receiver) {
        (Sender::new(alg, CID, [1; 32]), Receiver::new(alg, CID, [1; 32]))
    }

    fn datagram(s: &mut Sender, body: &[u8]) -> Vec<u8> {
        let mut d = vec![0u8; SHORT_HEADER_LEN];
        d.extend_from_slice(body);
        d.extend_from_slice(&[0; 16]);
        s.seal(&mut d).unwrap();
        d
    }

    #[test]
    fn opens_in_order_out_of_order_and_refuses_replays() {
        for alg in [AeadAlg::Aes256Gcm, AeadAlg::ChaCha20Poly1305] {
            let (mut s, mut r) = pair(alg);
            let ds: Vec<Vec<u8>> = (0..10u8).map(|i| datagram(&mut s, &[i; 20])).collect();
            for (i, newest) in [(0usize, true), (2, true), (1, false), (9, true), (5, false)] {
                let mut d = ds[i].clone();
                let o = r.open(&mut d).unwrap();
                assert_eq!((o.pn, o.newest, &o.frames[..]), (i as u64, newest, &[i as u8; 20][..]));
            }
            let mut again = ds[5].clone();
            assert_eq!(r.open(&mut again).unwrap_err(), SecureError::Replayed);
            assert_eq!(again, ds[5], "a replay is not even opened");
            assert_eq!(r.stats().replayed, 1);
        }
    }

    #[test]
    fn forged_truncated_reflected_and_misrouted_datagrams_change_nothing() {
        let (mut s, mut r) = pair(AeadAlg::ChaCha20Poly1305);
        let good = datagram(&mut s, b"hello world");
        for i in 0..good.len() {
            let mut d = good.clone();
            d[i] ^= 1;
            assert!(r.open(&mut d).is_err(), "byte {i}");
        }
        assert!(r.open(&mut good[..good.len() - 1].to_vec()).is_err());
        assert_eq!(r.open(&mut good[..20].to_vec()).unwrap_err(), SecureError::Truncated);
        // Reflected: our own datagram, sealed by our sender, offered to our
        // receiver of the other direction (other secret).
        let mut back = Sender::new(AeadAlg::ChaCha20Poly1305, CID, [2; 32]);
        let mut reflected = datagram(&mut back, b"hello world");
        let mut other_dir = Receiver::new(AeadAlg::ChaCha20Poly1305, CID, [1; 32]);
        assert_eq!(other_dir.open(&mut reflected).unwrap_err(), SecureError::Forged);
        let mut elsewhere = Receiver::new(AeadAlg::ChaCha20Poly1305, [8; 8], [1; 32]);
        assert_eq!(elsewhere.open(&mut good.clone()).unwrap_err(), SecureError::Unexpected);
        // None of it moved the window: the good datagram still opens.
        assert_eq!(r.expected_pn(), 0);
        assert_eq!(r.open(&mut good.clone()).unwrap().pn, 0);
        assert!(r.stats().forged > 0 && r.stats().malformed > 0);
    }

    #[test]
    fn keys_update_every_2_22_packets_with_reordering_across_the_boundary() {
        let (mut s, mut r) = pair(AeadAlg::Aes256Gcm);
        let first = datagram(&mut s, b"g0");
        r.open(&mut first.clone()).unwrap();
        s.skip_to(KEY_UPDATE_INTERVAL - 2);
        let last0 = datagram(&mut s, b"g0 end");
        let last0b = datagram(&mut s, b"g0 end b");
        let first1 = datagram(&mut s, b"g1");
        assert_eq!(first1[0] & 1, 1, "phase bit flips");
        assert_ne!(first1[13..15], first[13..15]);
        // A jump of 2^22: within the 32-bit reconstruction range.
        r.open(&mut last0.clone()).unwrap();
        r.open(&mut first1.clone()).unwrap();
        assert_eq!(r.generation, 1);
        // Reordered from the old generation: still opens (the previous key).
        r.open(&mut last0b.clone()).unwrap();
        // A datagram with the phase bit flipped is refused.
        let mut wrong = datagram(&mut s, b"x");
        wrong[0] ^= 1;
        assert_eq!(r.open(&mut wrong).unwrap_err(), SecureError::Malformed);
        // After a window's worth the previous key is gone.
        s.skip_to(KEY_UPDATE_INTERVAL + WINDOW + 5);
        r.open(&mut datagram(&mut s, b"later")).unwrap();
        assert!(r.previous.is_none());
        // Two generations later at once is out of reach.
        let mut far = Sender::new(AeadAlg::Aes256Gcm, CID, [1; 32]);
        far.skip_to(3 * KEY_UPDATE_INTERVAL);
        assert_eq!(
            r.open(&mut datagram(&mut far, b"far")).unwrap_err(),
            SecureError::Malformed
        );
    }

    #[test]
    fn a_forged_future_generation_does_not_rotate() {
        let (mut s, mut r) = pair(AeadAlg::ChaCha20Poly1305);
        r.open(&mut datagram(&mut s, b"a")).unwrap();
        s.skip_to(KEY_UPDATE_INTERVAL);
        let mut next = datagram(&mut s, b"b");
        let last = next.len() - 1;
        next[last] ^= 1;
        assert_eq!(r.open(&mut next).unwrap_err(), SecureError::Forged);
        assert_eq!(r.generation, 0);
        assert_eq!(r.expected_pn(), 1);
    }

    #[test]
    fn past_the_integrity_limit_nothing_opens() {
        let (mut s, mut r) = pair(AeadAlg::Aes256Gcm);
        let good = datagram(&mut s, b"x");
        r.stats.forged = INTEGRITY_LIMIT;
        assert_eq!(r.open(&mut good.clone()).unwrap_err(), SecureError::KeysExhausted);
        r.stats.forged = INTEGRITY_LIMIT - 1;
        assert_eq!(r.open(&mut good.clone()).unwrap().pn, 0);
    }

    #[test]
    fn the_packet_number_space_ends() {
        let (mut s, _) = pair(AeadAlg::ChaCha20Poly1305);
        s.skip_to(MAX_PN);
        let mut d = vec![0u8; 40];
        assert_eq!(s.seal(&mut d), Err(SecureError::KeysExhausted));
    }

    #[test]
    fn a_sessions_keys_fit_the_idle_memory_budget() {
        // Issue 19 wants an idle secure session within 2.5 KiB; the keys of
        // both directions (no key update under way) take what is printed.
        let (s, r) = pair(AeadAlg::Aes256Gcm);
        let bytes = core::mem::size_of_val(&s) + core::mem::size_of_val(&r);
        eprintln!(
            "Sender {} B + Receiver {} B = {bytes} B",
            core::mem::size_of_val(&s),
            core::mem::size_of_val(&r)
        );
        assert!(bytes <= 1536, "{bytes} B");
        assert!(r.previous.is_none() && r.next.is_none(), "nothing boxed while idle");
    }
}
