//! Allocation failures injected through `ikcp_allocator` at random rates
//! (1–90%) while two `ikcp_*` endpoints exchange messages over a lossy wire.
//! Every message either is refused by `ikcp_send` (-2, nothing queued) or
//! arrives byte-exact, in order, once allocation recovers: never merged with
//! another, never stalled. ikcp.c crashes in both places (a NULL segment
//! dereferenced); kcpx used to ACK a segment it failed to store (a permanent
//! stall) and to leave part of a refused message queued (a merged, corrupted
//! message at the receiver).
//!
//! The hooks are process-global, so this file holds a single test.
#![cfg(feature = "ffi")] // the C ABI and the libraries built from it

use core::ffi::{c_char, c_int, c_void};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::Mutex;

use kcpx::ffi::alloc::ikcp_allocator;
use kcpx::ffi::ikcp::*;

/// Per-mille of allocations to refuse.
static FAIL_PER_MILLE: AtomicU32 = AtomicU32::new(0);
static REFUSED: AtomicU64 = AtomicU64::new(0);
/// The allocation hooks get no context pointer: their draws come from here,
/// seeded by each transfer.
static HOOK_RNG: Mutex<Option<Rng>> = Mutex::new(None);

fn hook_draw() -> u64 {
    let mut rng = HOOK_RNG.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    rng.get_or_insert_with(|| Rng::new(1)).next_u64()
}

unsafe extern "C" fn failing_malloc(size: usize) -> *mut c_void {
    let rate = FAIL_PER_MILLE.load(Ordering::Relaxed);
    if rate != 0 && (hook_draw() % 1000) < u64::from(rate) {
        REFUSED.fetch_add(1, Ordering::Relaxed);
        return core::ptr::null_mut();
    }
    // SAFETY: plain libc allocation.
    unsafe { libc::malloc(size) }
}

unsafe extern "C" fn plain_free(ptr: *mut c_void) {
    // SAFETY: `ptr` came from `failing_malloc`, i.e. libc's malloc.
    unsafe { libc::free(ptr) }
}

/// Datagrams an endpoint emitted, collected by its output callback.
type Wire = Vec<Vec<u8>>;

unsafe extern "C" fn collect(buf: *const c_char, len: c_int, _kcp: *mut ikcpcb, user: *mut c_void) -> c_int {
    // SAFETY: `user` is the `Wire` given at creation; `buf` holds `len` bytes.
    unsafe {
        let wire = &mut *(user as *mut Wire);
        wire.push(core::slice::from_raw_parts(buf as *const u8, len as usize).to_vec());
    }
    0
}

#[path = "support/sim.rs"]
mod sim;
use sim::{LinkConfig, Rng, SimNet};

/// One transfer from `a` to `b` (echoing nothing back but ACKs) with `rate`
/// per mille of allocations refused for the first 400 steps, none after.
/// Returns (messages refused by send, messages delivered).
fn transfer(seed: u64, rate: u32, stream: bool) -> (usize, usize) {
    let mut rng = Rng::new(seed);
    *HOOK_RNG.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(Rng::new(!seed));
    // 5% loss each way, delivered within the step (tests/support/sim.rs).
    let link = LinkConfig {
        delay_ms: 0,
        jitter_ms: 0,
        loss: 0.05,
        duplicate: 0.0,
    };
    let mut net = SimNet::new(seed.rotate_left(17), link);
    let (addr_a, addr_b) = (
        SocketAddr::from(([127, 0, 0, 1], 1)),
        SocketAddr::from(([127, 0, 0, 1], 2)),
    );
    let (mut wire_ab, mut wire_ba): (Box<Wire>, Box<Wire>) = Default::default();
    let a = ikcp_create(0x1234, &mut *wire_ab as *mut Wire as *mut c_void);
    let b = ikcp_create(0x1234, &mut *wire_ba as *mut Wire as *mut c_void);
    assert!(!a.is_null() && !b.is_null());
    // SAFETY: live control blocks; the wires outlive them.
    unsafe {
        for k in [a, b] {
            ikcp_setoutput(k, Some(collect));
            ikcp_nodelay(k, 1, 10, 2, 1);
            ikcp_wndsize(k, 128, 128);
            (*k).stream = c_int::from(stream);
        }
    }
    let mut expected: Vec<u8> = Vec::new();
    let mut expected_msgs: Vec<Vec<u8>> = Vec::new();
    let mut got: Vec<u8> = Vec::new();
    let mut got_msgs: Vec<Vec<u8>> = Vec::new();
    let mut refused = 0;
    let mut buf = vec![0u8; 1 << 20];
    let mut id = 0u32;
    let mut done_at = None;
    for step in 0..6000u32 {
        let now = step * 10;
        let failing = step < 400;
        FAIL_PER_MILLE.store(if failing { rate } else { 0 }, Ordering::Relaxed);
        // SAFETY: live control blocks, buffers of the stated sizes.
        unsafe {
            if failing && ikcp_waitsnd(a) < 256 {
                for _ in 0..rng.below(3) {
                    id += 1;
                    let len = 1 + rng.below(if stream { 3000 } else { 20_000 }) as usize;
                    let msg: Vec<u8> = (0..len).map(|i| (id as usize * 31 + i) as u8).collect();
                    match ikcp_send(a, msg.as_ptr() as *const c_char, len as c_int) {
                        n if n == len as c_int => {
                            expected.extend_from_slice(&msg);
                            expected_msgs.push(msg);
                        }
                        -2 => refused += 1,
                        n => panic!("seed {seed}: ikcp_send returned {n} for {len} bytes"),
                    }
                }
            }
            ikcp_update(a, now);
            ikcp_update(b, now);
            for (wire, from, to) in [(&mut wire_ab, addr_a, addr_b), (&mut wire_ba, addr_b, addr_a)] {
                for d in wire.drain(..) {
                    net.send(u64::from(now), from, to, &d);
                }
            }
            for d in net.arrivals(u64::from(now)) {
                let to = if d.to == addr_b { b } else { a };
                ikcp_input(to, d.bytes.as_ptr() as *const c_char, d.bytes.len() as _);
            }
            loop {
                let n = ikcp_recv(b, buf.as_mut_ptr() as *mut c_char, buf.len() as c_int);
                if n < 0 {
                    break;
                }
                got.extend_from_slice(&buf[..n as usize]);
                got_msgs.push(buf[..n as usize].to_vec());
            }
            if !failing && ikcp_waitsnd(a) == 0 && got.len() == expected.len() {
                done_at = Some(step);
                break;
            }
        }
    }
    FAIL_PER_MILLE.store(0, Ordering::Relaxed);
    // SAFETY: created above, released once.
    let (waitsnd, nrcv_buf) = unsafe { (ikcp_waitsnd(a), (*b).nrcv_buf) };
    unsafe {
        ikcp_release(a);
        ikcp_release(b);
    }
    assert!(
        done_at.is_some(),
        "seed {seed} rate {rate}‰ stream {stream}: stalled with {waitsnd} segments unacknowledged, \
         {nrcv_buf} held out of order, {} of {} bytes delivered",
        got.len(),
        expected.len()
    );
    assert!(
        got == expected,
        "seed {seed} rate {rate}‰ stream {stream}: delivered bytes differ"
    );
    if !stream {
        assert!(
            got_msgs == expected_msgs,
            "seed {seed} rate {rate}‰: message boundaries differ"
        );
    }
    (refused, expected_msgs.len())
}

#[test]
fn transfers_survive_allocation_failures_at_any_rate() {
    ikcp_allocator(Some(failing_malloc), Some(plain_free));
    let mut refused = 0;
    let mut delivered = 0;
    for (i, rate) in [10u32, 50, 100, 200, 300, 500, 700, 900].into_iter().enumerate() {
        for stream in [false, true] {
            let seed = 0x5eed + i as u64 * 2 + u64::from(stream);
            println!("seed {seed} rate {rate}‰ stream {stream}");
            let (r, d) = transfer(seed, rate, stream);
            refused += r;
            delivered += d;
        }
    }
    ikcp_allocator(None, None);
    println!(
        "{refused} sends refused, {delivered} messages delivered, {} allocations refused",
        REFUSED.load(Ordering::Relaxed)
    );
    assert!(refused > 10 && delivered > 100, "the failures were exercised");
}
