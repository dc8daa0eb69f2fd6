//! Recycled payload buffers.
//!
//! Every segment owns its payload. Allocating one per segment costs a
//! malloc and a free per KiB moved (ikcp.c pays the same); this pool hands
//! the buffers of acknowledged and delivered segments to new ones instead.
//! Buffers keep their length, so refilling one is a single copy. The pool is
//! bounded, and emptied by the second quiet flush in a row during which it
//! was not used: a connection whose traffic pauses between flushes (a bulk
//! receiver acknowledges a burst, then finds itself quiet) keeps its
//! buffers, while an idle one holds none after two intervals.

use allocator_api2::alloc::Allocator;
use allocator_api2::vec::Vec;

/// Fewest and most buffers kept for reuse; in between, the larger window.
const POOL_MIN: usize = 32;
const POOL_MAX: usize = 4096;

pub(crate) struct PayloadPool<A: Allocator + Clone> {
    free: Vec<Vec<u8, A>, A>,
    /// A buffer was taken or given back since the last [`PayloadPool::shed`].
    used: bool,
    alloc: A,
}

impl<A: Allocator + Clone> PayloadPool<A> {
    pub(crate) fn new_in(alloc: A) -> Self {
        PayloadPool {
            free: Vec::new_in(alloc.clone()),
            used: false,
            alloc,
        }
    }

    /// A buffer holding a copy of `src` followed by `zeros` zero bytes, or
    /// None if memory could not be allocated.
    #[inline(always)]
    pub(crate) fn filled(&mut self, src: &[u8], zeros: usize) -> Option<Vec<u8, A>> {
        let len = src.len() + zeros;
        self.used = true;
        let mut buf = match self.free.last() {
            Some(b) if b.capacity() >= len => self.free.pop()?,
            _ => {
                let mut b = Vec::new_in(self.alloc.clone());
                b.try_reserve_exact(len).ok()?;
                b
            }
        };
        if buf.len() >= len {
            buf.truncate(len);
        } else {
            buf.resize(len, 0);
        }
        let (head, tail) = buf.split_at_mut(src.len());
        head.copy_from_slice(src);
        if zeros != 0 {
            tail.fill(0);
        }
        Some(buf)
    }

    /// Takes back the buffer of a segment that is done, keeping at most
    /// about `window` buffers: what the connection had in flight anyway.
    #[inline]
    pub(crate) fn recycle(&mut self, buf: Vec<u8, A>, window: u32) {
        let limit = (window as usize).clamp(POOL_MIN, POOL_MAX);
        self.used = true;
        if buf.capacity() != 0 && self.free.len() < limit && self.free.try_reserve(1).is_ok() {
            self.free.push(buf);
        }
    }

    /// Called by a quiet flush: frees the pooled buffers unless the pool
    /// was used since the previous call. Returns whether it was not: no
    /// segment was created or retired for a whole quiet interval.
    pub(crate) fn shed(&mut self) -> bool {
        if core::mem::take(&mut self.used) {
            return false;
        }
        self.clear();
        true
    }

    /// Frees every pooled buffer.
    pub(crate) fn clear(&mut self) {
        if self.free.capacity() != 0 {
            self.free = Vec::new_in(self.alloc.clone());
        }
    }

    /// Bytes held.
    pub(crate) fn heap_bytes(&self) -> usize {
        self.free.capacity() * core::mem::size_of::<Vec<u8, A>>()
            + self.free.iter().map(|b| b.capacity()).sum::<usize>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use allocator_api2::alloc::Global;

    #[test]
    fn reuses_buffers_and_fills_exactly() {
        let mut pool = PayloadPool::new_in(Global);
        let a = pool.filled(&[1, 2, 3], 2).unwrap();
        assert_eq!(&a[..], &[1, 2, 3, 0, 0]);
        let ptr = a.as_ptr();
        pool.recycle(a, 0);
        let b = pool.filled(&[9], 1).unwrap();
        assert_eq!((&b[..], b.as_ptr()), (&[9u8, 0][..], ptr), "same memory, new contents");
        pool.recycle(b, 0);
        let c = pool.filled(&[5; 8], 0).unwrap();
        assert_ne!(c.as_ptr(), ptr, "too small to reuse: a new buffer");
        pool.clear();
        assert_eq!(pool.heap_bytes(), 0);
    }
}
