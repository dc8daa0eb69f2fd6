//! The FEC send state of idle sessions, side by side.
//!
//! A session quiet for [`super::SHED_AFTER_MS`] frees every buffer but one:
//! the parity its FEC encoder has accumulated for an incomplete group
//! (`parity_shards` times the group's longest shard so far; a few hundred
//! bytes after a short message). Kept in an allocation of its own, each
//! would land among the freed buffers of its session's first messages and
//! pin a page of heap per idle session; kept here, the bytes of all idle
//! sessions share one buffer.

/// Where one session's bytes are in [`Parked`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Spot {
    at: u32,
    len: u32,
}

/// One buffer of parked bytes; freed spots are reclaimed by
/// [`Parked::compact`] once they make up half of it.
#[derive(Debug, Default)]
pub(crate) struct Parked {
    bytes: Vec<u8>,
    dead: usize,
}

impl Parked {
    /// Keeps `packed`; returns where. `None` past 4 GiB (the caller then
    /// leaves the bytes where they were).
    pub(crate) fn park(&mut self, packed: &[u8]) -> Option<Spot> {
        let at = u32::try_from(self.bytes.len()).ok()?;
        let len = u32::try_from(packed.len()).ok()?;
        at.checked_add(len)?;
        if self.bytes.capacity() - self.bytes.len() < packed.len() {
            // A quarter more, not twice: it holds every idle session's bytes.
            self.bytes
                .reserve_exact((self.bytes.len() / 4).max(packed.len()).max(4096));
        }
        self.bytes.extend_from_slice(packed);
        Some(Spot { at, len })
    }

    /// The bytes at `spot`, which is freed.
    pub(crate) fn unpark(&mut self, spot: Spot) -> Box<[u8]> {
        let packed = Box::from(&self.bytes[spot.at as usize..][..spot.len as usize]);
        self.forget(spot);
        packed
    }

    /// Frees `spot` (its session went away).
    pub(crate) fn forget(&mut self, spot: Spot) {
        self.dead += spot.len as usize;
        if self.dead == self.bytes.len() {
            // Every session woke or went away: the memory goes too.
            *self = Parked::default();
        }
    }

    /// Whether freed spots make up half the buffer (and some memory).
    pub(crate) fn wants_compaction(&self) -> bool {
        self.dead >= 4096 && 2 * self.dead >= self.bytes.len()
    }

    /// Moves the live spots to the front of a buffer of their size: `spots`
    /// yields every live spot once, each updated in place.
    pub(crate) fn compact<'a>(&mut self, spots: impl Iterator<Item = &'a mut Spot>) {
        let mut bytes = Vec::with_capacity(self.bytes.len() - self.dead);
        for spot in spots {
            let at = bytes.len() as u32;
            bytes.extend_from_slice(&self.bytes[spot.at as usize..][..spot.len as usize]);
            spot.at = at;
        }
        self.bytes = bytes;
        self.dead = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Bytes come back as parked, across compactions; the buffer is freed
    /// when nothing is parked any more.
    #[test]
    fn parked_bytes_survive_compaction() {
        let mut parked = Parked::default();
        let mut spots: Vec<(Option<Spot>, Vec<u8>)> = (0..600u32)
            .map(|i| {
                let bytes: Vec<u8> = (0..(i % 97 + 3)).map(|k| (i * 7 + k) as u8).collect();
                (parked.park(&bytes), bytes)
            })
            .collect();
        let mut compactions = 0;
        for round in 0..3 {
            for i in (round..spots.len()).step_by(3) {
                let (spot, bytes) = &mut spots[i];
                assert_eq!(&*parked.unpark(spot.take().unwrap()), &bytes[..]);
                if parked.wants_compaction() {
                    compactions += 1;
                    parked.compact(spots_mut(&mut spots));
                }
            }
            // The ones still parked are intact.
            for (spot, bytes) in spots.iter().filter(|s| s.0.is_some()) {
                let s = spot.unwrap();
                assert_eq!(&parked.bytes[s.at as usize..][..s.len as usize], &bytes[..]);
            }
        }
        assert!(compactions > 0);
        assert_eq!(parked.bytes.capacity(), 0, "nothing parked, nothing held");
    }

    fn spots_mut(spots: &mut [(Option<Spot>, Vec<u8>)]) -> impl Iterator<Item = &mut Spot> {
        spots.iter_mut().filter_map(|(s, _)| s.as_mut())
    }
}
