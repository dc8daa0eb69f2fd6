//! The sliding replay window (`docs/secure-wire.md`, sections 10 and 11): the
//! largest packet number authenticated so far and a bit for each of the
//! 1,024 packet numbers up to it. [`ReplayWindow::check`] changes nothing
//! (it runs before the AEAD, to spare the work for an obvious replay);
//! [`ReplayWindow::insert`] runs only after the datagram opened.

use super::SecureError;

/// Packet numbers the window remembers below the largest.
pub const WINDOW: u64 = 1024;
const WORDS: usize = (WINDOW / 64) as usize;

/// 1,024 bits and the largest packet number seen (136 bytes).
#[derive(Clone, Debug)]
pub struct ReplayWindow {
    /// Largest packet number inserted + 1; 0 before the first.
    next: u64,
    /// Bit `pn % 1024` is set when `pn` (within the window) was seen.
    bits: [u64; WORDS],
}

impl Default for ReplayWindow {
    fn default() -> Self {
        ReplayWindow::new()
    }
}

impl ReplayWindow {
    /// An empty window.
    pub const fn new() -> ReplayWindow {
        ReplayWindow {
            next: 0,
            bits: [0; WORDS],
        }
    }

    /// The largest packet number inserted + 1 (0 before the first): what
    /// the next packet number is expected to be.
    pub fn expected(&self) -> u64 {
        self.next
    }

    fn bit(pn: u64) -> (usize, u64) {
        (((pn / 64) as usize) % WORDS, 1 << (pn % 64))
    }

    /// `Ok` when `pn` is new: above the largest, or within the window and
    /// not seen. Changes nothing.
    pub fn check(&self, pn: u64) -> Result<(), SecureError> {
        if pn >= self.next {
            return Ok(());
        }
        if self.next - pn > WINDOW {
            return Err(SecureError::Replayed);
        }
        let (w, m) = Self::bit(pn);
        if self.bits[w] & m != 0 {
            Err(SecureError::Replayed)
        } else {
            Ok(())
        }
    }

    /// Records `pn` (after [`ReplayWindow::check`] and the AEAD both passed);
    /// `Replayed` if it is not new after all.
    pub fn insert(&mut self, pn: u64) -> Result<(), SecureError> {
        self.check(pn)?;
        if pn >= self.next {
            // Clear the bits of the numbers the window slides over.
            let advance = pn - self.next + 1;
            if advance >= WINDOW {
                self.bits = [0; WORDS];
            } else {
                for n in self.next..=pn {
                    let (w, m) = Self::bit(n);
                    self.bits[w] &= !m;
                }
            }
            self.next = pn + 1;
        }
        let (w, m) = Self::bit(pn);
        self.bits[w] |= m;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::Rng;

    #[test]
    fn duplicates_and_old_packets_are_refused() {
        let mut w = ReplayWindow::new();
        assert_eq!(w.insert(0), Ok(()));
        assert_eq!(w.insert(0), Err(SecureError::Replayed));
        assert_eq!(w.insert(5), Ok(()));
        assert_eq!(w.insert(3), Ok(()));
        assert_eq!(w.check(3), Err(SecureError::Replayed));
        assert_eq!(w.check(4), Ok(()));
        assert_eq!(w.insert(5 + 1024), Ok(()));
        assert_eq!(w.check(5), Err(SecureError::Replayed), "slid out");
        assert_eq!(w.check(6), Ok(()), "inside, unseen");
        assert_eq!(w.insert(1 << 40), Ok(()));
        assert_eq!(w.check((1 << 40) - 1), Ok(()));
        assert_eq!(w.check((1 << 40) - 1023), Ok(()), "the window's oldest");
        assert_eq!(w.check((1 << 40) - 1024), Err(SecureError::Replayed));
        assert_eq!(w.check(u64::MAX - 1), Ok(()));
    }

    /// Against a set of everything seen: within the window the two agree,
    /// below it the window refuses.
    #[test]
    fn agrees_with_a_set_model() {
        let seed = 19;
        eprintln!("seed {seed}");
        let mut rng = Rng::new(seed);
        let mut w = ReplayWindow::new();
        let mut seen = std::collections::HashSet::new();
        let mut top = 0u64;
        for _ in 0..100_000 {
            let pn = (top + 64).saturating_sub(rng.below(1500));
            let new = !seen.contains(&pn) && pn + WINDOW >= top;
            assert_eq!(w.check(pn).is_ok(), new, "pn {pn} top {top}");
            if new {
                w.insert(pn).unwrap();
                seen.insert(pn);
                top = top.max(pn + 1);
            }
        }
    }
}
