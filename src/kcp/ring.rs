//! A contiguous double-ended queue whose storage comes from an allocator `A`.
//!
//! ikcp.c keeps its four segment queues in linked lists; walking them costs a
//! cache miss per segment. [`Ring`] keeps the segments of a queue side by side
//! in one power-of-two buffer instead: pushing and popping at either end is
//! O(1), inserting in the middle moves the shorter side, and iterating touches
//! memory in order.
//!
//! `allocator_api2` has no `VecDeque`, hence this small one. Slots are
//! `Option<T>` so that the ring needs no `unsafe` and no `T: Default`.

use allocator_api2::alloc::{Allocator, Global};
use allocator_api2::vec::Vec;

pub(crate) struct Ring<T, A: Allocator + Clone = Global> {
    /// Length 0 or a power of two; slots outside the live range are `None`.
    slots: Vec<Option<T>, A>,
    head: usize,
    len: usize,
}

impl<T, A: Allocator + Clone> Ring<T, A> {
    pub(crate) fn new_in(alloc: A) -> Self {
        Ring {
            slots: Vec::new_in(alloc),
            head: 0,
            len: 0,
        }
    }

    #[inline]
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    #[inline]
    pub(crate) fn is_empty(&self) -> bool {
        self.len == 0
    }

    #[inline]
    fn phys(&self, i: usize) -> usize {
        (self.head + i) & (self.slots.len().wrapping_sub(1))
    }

    #[inline]
    pub(crate) fn get(&self, i: usize) -> Option<&T> {
        if i < self.len {
            self.slots.get(self.phys(i)).and_then(Option::as_ref)
        } else {
            None
        }
    }

    #[inline]
    pub(crate) fn get_mut(&mut self, i: usize) -> Option<&mut T> {
        if i < self.len {
            let p = self.phys(i);
            self.slots.get_mut(p).and_then(Option::as_mut)
        } else {
            None
        }
    }

    /// Replaces the element at `i` (which must exist), returning the old one.
    pub(crate) fn replace(&mut self, i: usize, value: T) -> Option<T> {
        if i < self.len {
            let p = self.phys(i);
            self.slots.get_mut(p).and_then(|s| s.replace(value))
        } else {
            None
        }
    }

    #[inline]
    pub(crate) fn front(&self) -> Option<&T> {
        self.get(0)
    }

    #[inline]
    pub(crate) fn back(&self) -> Option<&T> {
        self.len.checked_sub(1).and_then(|i| self.get(i))
    }

    #[inline]
    pub(crate) fn back_mut(&mut self) -> Option<&mut T> {
        match self.len.checked_sub(1) {
            Some(i) => self.get_mut(i),
            None => None,
        }
    }

    /// Makes room for one more element.
    #[inline]
    fn reserve_one(&mut self) -> bool {
        self.len < self.slots.len() || self.grow()
    }

    #[cold]
    fn grow(&mut self) -> bool {
        let new_cap = (self.slots.len() * 2).max(4);
        let mut slots: Vec<Option<T>, A> = Vec::new_in(self.slots.allocator().clone());
        if slots.try_reserve_exact(new_cap).is_err() {
            return false;
        }
        for i in 0..self.len {
            let p = self.phys(i);
            slots.push(self.slots.get_mut(p).and_then(Option::take));
        }
        slots.resize_with(new_cap, || None);
        self.slots = slots;
        self.head = 0;
        true
    }

    /// Appends `value`; gives it back if memory could not be allocated.
    #[inline(always)]
    pub(crate) fn push_back(&mut self, value: T) -> Result<(), T> {
        if !self.reserve_one() {
            return Err(value);
        }
        let p = self.phys(self.len);
        if let Some(slot) = self.slots.get_mut(p) {
            *slot = Some(value);
        }
        self.len += 1;
        Ok(())
    }

    pub(crate) fn pop_front(&mut self) -> Option<T> {
        if self.len == 0 {
            return None;
        }
        let p = self.head;
        let value = self.slots.get_mut(p).and_then(Option::take);
        self.head = self.phys(1);
        self.len -= 1;
        if self.len == 0 {
            self.head = 0;
        }
        value
    }

    pub(crate) fn pop_back(&mut self) -> Option<T> {
        let i = self.len.checked_sub(1)?;
        let p = self.phys(i);
        let value = self.slots.get_mut(p).and_then(Option::take);
        self.len = i;
        if self.len == 0 {
            self.head = 0;
        }
        value
    }

    /// Inserts `value` so that it becomes element `i` (`i <= len`), shifting
    /// whichever side of the ring is shorter. Gives `value` back if memory
    /// could not be allocated.
    pub(crate) fn insert(&mut self, i: usize, value: T) -> Result<(), T> {
        let i = i.min(self.len);
        if !self.reserve_one() {
            return Err(value);
        }
        if i < self.len / 2 {
            // Move elements [0, i) one slot towards the front.
            self.head = self.phys(self.slots.len() - 1);
            for k in 0..i {
                let from = self.phys(k + 1);
                let to = self.phys(k);
                self.slots.swap(from, to);
            }
        } else {
            // Move elements [i, len) one slot towards the back.
            for k in (i..self.len).rev() {
                let from = self.phys(k);
                let to = self.phys(k + 1);
                self.slots.swap(from, to);
            }
        }
        let p = self.phys(i);
        if let Some(slot) = self.slots.get_mut(p) {
            *slot = Some(value);
        }
        self.len += 1;
        Ok(())
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = &T> + '_ {
        let (first, second) = self.as_slices();
        first.iter().chain(second).filter_map(Option::as_ref)
    }

    /// The occupied slots in order, as at most two runs (`head..` and the
    /// wrapped start): loops over them need no index arithmetic.
    pub(crate) fn as_slices(&self) -> (&[Option<T>], &[Option<T>]) {
        let end = self.head + self.len;
        let cap = self.slots.len();
        let (first, second) = if end <= cap {
            (self.slots.get(self.head..end), None)
        } else {
            (self.slots.get(self.head..), self.slots.get(..end - cap))
        };
        (first.unwrap_or(&[]), second.unwrap_or(&[]))
    }

    /// Bytes of heap this ring holds (for memory accounting).
    /// Frees the storage of an empty ring (it grows again when pushed to).
    pub(crate) fn release_if_empty(&mut self) {
        if self.len == 0 && self.slots.capacity() != 0 {
            self.slots = Vec::new_in(self.slots.allocator().clone());
            self.head = 0;
        }
    }

    pub(crate) fn heap_bytes(&self) -> usize {
        self.slots.capacity() * core::mem::size_of::<Option<T>>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::VecDeque;

    /// Random operations against std's VecDeque as the model.
    #[test]
    fn matches_vecdeque_model() {
        let seed = 0x5eed_0001_u64;
        let mut rng = crate::sim::Rng::new(seed);
        let mut next = move || rng.next_u64();
        let mut ring: Ring<u32> = Ring::new_in(Global);
        let mut model: VecDeque<u32> = VecDeque::new();
        for step in 0..200_000u32 {
            // Balanced pushes/inserts vs pops keep the ring small (and wrapping).
            match next() % 5 {
                0 => {
                    assert!(ring.push_back(step).is_ok());
                    model.push_back(step);
                }
                1 | 2 => assert_eq!(ring.pop_front(), model.pop_front(), "seed {seed:#x} step {step}"),
                3 => {
                    let i = (next() as usize) % (model.len() + 1);
                    assert!(ring.insert(i, step).is_ok());
                    model.insert(i, step);
                }
                _ => {
                    if let Some(i) = (next() as usize).checked_rem(model.len()) {
                        ring.replace(i, step);
                        model[i] = step;
                    }
                }
            }
            assert_eq!(ring.len(), model.len(), "seed {seed:#x} step {step}");
            if step % 997 == 0 {
                assert!(ring.iter().eq(model.iter()), "seed {seed:#x} step {step}");
                assert_eq!(ring.back(), model.back());
            }
        }
        while ring.pop_front().is_some() {}
        assert!(ring.is_empty() && ring.front().is_none() && ring.back_mut().is_none());
    }
}
