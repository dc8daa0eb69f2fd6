//! The secure wire's per-datagram path allocates nothing in steady state:
//! frames encoded, sealed by a `Sender`, opened by a `Receiver` (replay
//! window included), frames parsed; for both AEADs. Only a key update boxes
//! the next key, once per 2²² datagrams. Counted per thread (a thread-local
//! counter in a global allocator wrapper), so other tests of this binary do
//! not disturb the count.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use kcpx::secure::frames::{self, Frame};
use kcpx::secure::wire::{SHORT_HEADER_LEN, TAG_LEN};
use kcpx::secure::{AeadAlg, Receiver, Sender};

thread_local! {
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

struct PerThread;

// SAFETY: forwards every call unchanged to the system allocator; the
// counter is a const-initialised thread-local Cell, which never allocates.
unsafe impl GlobalAlloc for PerThread {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let _ = ALLOCATIONS.try_with(|c| c.set(c.get() + 1));
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: PerThread = PerThread;

fn allocations() -> u64 {
    ALLOCATIONS.with(Cell::get)
}

#[test]
fn sealing_and_opening_allocate_nothing_once_set_up() {
    let probe = allocations();
    drop(std::hint::black_box(vec![1u8; 10]));
    assert!(allocations() > probe, "the counter sees this thread's allocations");
    for alg in [AeadAlg::Aes256Gcm, AeadAlg::ChaCha20Poly1305] {
        let cid = [3; 8];
        let mut s = Sender::new(alg, cid, [4; 32]);
        let mut r = Receiver::new(alg, cid, [4; 32]);
        let mut d = vec![0u8; 1500];
        let payload = vec![0x55u8; 1400];
        let before = allocations();
        for i in 0..10_000usize {
            let len = 1 + (i * 131) % 1400;
            let frame = Frame::Kcp(&payload[..len]);
            let n = SHORT_HEADER_LEN + frame.len() + TAG_LEN;
            frame.encode(&mut d[SHORT_HEADER_LEN..]).unwrap();
            s.seal(&mut d[..n]).unwrap();
            let o = r.open(&mut d[..n]).unwrap();
            assert_eq!(o.pn, i as u64);
            assert!(matches!(frames::parse(o.frames).next(), Some(Ok(Frame::Kcp(p))) if p.len() == len));
            // Every fourth datagram is replayed: refused, still no allocation.
            if i % 4 == 0 {
                assert!(r.open(&mut d[..n]).is_err());
            }
        }
        assert_eq!(allocations() - before, 0, "{alg:?}: allocations in 10,000 datagrams");
    }
}
