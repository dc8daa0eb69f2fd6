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
            self.bytes.clear();
            self.dead = 0;
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
