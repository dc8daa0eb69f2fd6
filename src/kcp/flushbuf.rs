//! The buffer a flush assembles datagrams in.
//!
//! It is sized to the MTU once (zeroed once) and then written at a cursor,
//! so assembling a datagram costs only the copies. A connection keeps it
//! while it is active and frees it when a flush finds it quiet, so idle
//! connections hold none.

use allocator_api2::alloc::Allocator;
use allocator_api2::vec::Vec;

/// The datagram under assembly: `bytes[..used]`.
pub struct FlushBuf<A: Allocator> {
    bytes: Vec<u8, A>,
    used: usize,
}

impl<A: Allocator> FlushBuf<A> {
    pub(crate) fn new_in(alloc: A) -> Self {
        FlushBuf {
            bytes: Vec::new_in(alloc),
            used: 0,
        }
    }

    /// A buffer sized for `mtu` (up to the preallocation cap), or None if it
    /// cannot be allocated.
    pub(crate) fn for_mtu(alloc: A, mtu: usize) -> Option<Self> {
        let mut b = FlushBuf::new_in(alloc);
        b.reserve(1, mtu).then_some(b)
    }

    /// The datagram assembled so far.
    pub fn as_slice(&self) -> &[u8] {
        self.bytes.get(..self.used).unwrap_or(&[])
    }

    /// Bytes assembled so far.
    pub fn len(&self) -> usize {
        self.used
    }

    /// Whether nothing is assembled.
    pub fn is_empty(&self) -> bool {
        self.used == 0
    }

    pub(crate) fn clear(&mut self) {
        self.used = 0;
    }

    /// Bytes of memory held.
    pub(crate) fn capacity(&self) -> usize {
        self.bytes.len()
    }

    /// Address of the memory held (shown to C as `IKCPCB.buffer`), NULL if none.
    #[cfg_attr(not(feature = "ffi"), allow(dead_code))] // used by the C layer only
    pub(crate) fn as_ptr(&self) -> *const u8 {
        if self.bytes.is_empty() {
            core::ptr::null()
        } else {
            self.bytes.as_ptr()
        }
    }

    /// Makes room for `n` more bytes, allocating at least `size_hint` bytes
    /// (up to 64 KiB: huge MTUs grow on demand) in all. False if memory could
    /// not be allocated.
    #[inline]
    pub(crate) fn reserve(&mut self, n: usize, size_hint: usize) -> bool {
        let need = self.used.saturating_add(n);
        need <= self.bytes.len() || self.grow(need, size_hint)
    }

    /// The allocating part of [`FlushBuf::reserve`]: once per connection
    /// becoming active, or for a segment larger than the MTU.
    #[cold]
    fn grow(&mut self, need: usize, size_hint: usize) -> bool {
        const MAX_PREALLOCATION: usize = 64 * 1024;
        let target = need.max(size_hint.min(MAX_PREALLOCATION));
        if self.bytes.try_reserve_exact(target - self.bytes.len()).is_err() {
            return false;
        }
        self.bytes.resize(target, 0);
        true
    }

    /// Appends `src`; the caller reserved room with [`FlushBuf::reserve`].
    pub(crate) fn put(&mut self, src: &[u8]) {
        if let Some(dst) = self.bytes.get_mut(self.used..self.used + src.len()) {
            dst.copy_from_slice(src);
            self.used += src.len();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use allocator_api2::alloc::Global;

    #[test]
    fn grows_once_then_reuses() {
        let mut b = FlushBuf::new_in(Global);
        assert!(b.as_ptr().is_null() && b.is_empty());
        assert!(b.reserve(24, 1400));
        b.put(&[7; 24]);
        assert_eq!((b.len(), b.capacity()), (24, 1400));
        assert!(b.reserve(2000, 1400), "an oversized segment still fits");
        b.put(&[1; 2000]);
        assert_eq!(b.as_slice().len(), 2024);
        b.clear();
        assert_eq!(b.as_slice(), &[] as &[u8]);
    }
}
