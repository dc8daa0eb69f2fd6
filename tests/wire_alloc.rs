//! The datagram hot path allocates nothing once warm: KCP bytes → FEC encode →
//! seal / seal_many → open → FEC decode (no loss). Counted with a global
//! allocator wrapper, so this file holds a single test (tests of one binary run
//! on parallel threads and would pollute the count).

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use kcpx::crypt::{CryptMethod, PacketCrypt, HEADER_LEN};
use kcpx::fec::{FecConfig, FecDecoder, FecEncoder, FecInput, FEC_DATA_OVERHEAD};

struct Counting;

static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards every call unchanged to the system allocator.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

#[test]
fn hot_path_does_not_allocate_once_warm() {
    let crypt = PacketCrypt::new(CryptMethod::Aes128, &[9; 16]).unwrap();
    let fec = FecConfig::new(10, 3).unwrap();
    let mut encoder = FecEncoder::new(fec, HEADER_LEN, 1400);
    let mut decoder = FecDecoder::new(fec, 1400);
    let mut datagram = vec![0u8; 1400];
    let mut receive = vec![0u8; 1400];
    let mut sent = 0usize;

    let mut round = |count: usize| {
        for i in 0..count {
            let len = 60 + (i * 211) % 1300;
            datagram[HEADER_LEN + FEC_DATA_OVERHEAD..len].fill(i as u8);
            let data = &mut datagram[..len];
            let parity = encoder.encode(data, 0).unwrap();
            crypt.seal(data).unwrap();
            receive[..len].copy_from_slice(data);
            let payload = crypt.open(&mut receive[..len]).unwrap();
            assert!(matches!(decoder.decode(payload, i as u32), FecInput::Data(_)));
            crypt.seal_many(parity).unwrap();
            for p in parity.iter() {
                receive[..p.len()].copy_from_slice(p);
                let payload = crypt.open(&mut receive[..p.len()]).unwrap();
                assert_eq!(decoder.decode(payload, i as u32), FecInput::Parity);
            }
            sent += 1;
        }
    };
    round(200); // warm-up: buffers of the decoder's pool reach their sizes
    let before = ALLOCATIONS.load(Ordering::Relaxed);
    round(2000);
    let during = ALLOCATIONS.load(Ordering::Relaxed) - before;
    assert_eq!(during, 0, "{during} allocations in 2000 warm datagrams");
    assert_eq!(sent, 2200);
}
