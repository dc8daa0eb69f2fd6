//! The idle floor of the `ikcp_*` drop-in (issue 21 item 1): what a
//! connection holds once it has carried traffic and gone quiet. Two
//! control blocks with ikcp.c's defaults exchange one 5-byte echo over a
//! lossless wire, then stay quiet for 60 s of `ikcp_update` every 10 ms;
//! every byte they allocate goes through counting `ikcp_allocator` hooks
//! (the bytes asked for, as `tests/endpoint_memory.rs` counts). The goal is
//! at most 1 KiB per connection, without changing what `ikcp_*` does (the
//! differential harness, `tests/c_harness.rs`, proves the bytes).
//!
//! The hooks are process-global, so this file holds a single test.
#![cfg(feature = "ffi")] // the C ABI

use core::ffi::{c_char, c_int, c_void};
use std::sync::atomic::{AtomicI64, Ordering};

use kcpx::ffi::alloc::ikcp_allocator;
use kcpx::ffi::ikcp::*;

/// Bytes asked for minus bytes freed, through the hooks.
static LIVE: AtomicI64 = AtomicI64::new(0);
/// Each block starts with its size, in a header of this many bytes (malloc's alignment).
const HEADER: usize = 16;

unsafe extern "C" fn counting_malloc(size: usize) -> *mut c_void {
    // SAFETY: plain libc allocation, HEADER bytes more.
    let p = unsafe { libc::malloc(size + HEADER) } as *mut u8;
    if p.is_null() {
        return p as *mut c_void;
    }
    LIVE.fetch_add(size as i64, Ordering::Relaxed);
    // SAFETY: the block holds HEADER + size bytes, malloc-aligned.
    unsafe {
        (p as *mut usize).write(size);
        p.add(HEADER) as *mut c_void
    }
}

unsafe extern "C" fn counting_free(ptr: *mut c_void) {
    if ptr.is_null() {
        return;
    }
    // SAFETY: `ptr` came from `counting_malloc`: its header is HEADER bytes before.
    unsafe {
        let p = (ptr as *mut u8).sub(HEADER);
        LIVE.fetch_sub((p as *const usize).read() as i64, Ordering::Relaxed);
        libc::free(p as *mut c_void);
    }
}

type Wire = Vec<Vec<u8>>;

unsafe extern "C" fn collect(buf: *const c_char, len: c_int, _kcp: *mut ikcpcb, user: *mut c_void) -> c_int {
    // SAFETY: `user` is the `Wire` given at creation; `buf` holds `len` bytes.
    unsafe {
        let wire = &mut *(user as *mut Wire);
        wire.push(core::slice::from_raw_parts(buf as *const u8, len as usize).to_vec());
    }
    0
}

#[test]
fn an_ikcp_connection_after_one_echo_holds_at_most_1_kib() {
    ikcp_allocator(Some(counting_malloc), Some(counting_free));
    let live0 = LIVE.load(Ordering::Relaxed);
    let (mut wire_ab, mut wire_ba): (Box<Wire>, Box<Wire>) = Default::default();
    let a = ikcp_create(7, &mut *wire_ab as *mut Wire as *mut c_void);
    let b = ikcp_create(7, &mut *wire_ba as *mut Wire as *mut c_void);
    assert!(!a.is_null() && !b.is_null());
    let fresh = (LIVE.load(Ordering::Relaxed) - live0) as f64 / 2.0;
    let mut buf = [0u8; 64];
    let (mut echoed, mut back) = (false, false);
    // SAFETY: live control blocks, buffers of the stated sizes; the wires
    // outlive them.
    unsafe {
        ikcp_setoutput(a, Some(collect));
        ikcp_setoutput(b, Some(collect));
        assert_eq!(ikcp_send(a, b"hello".as_ptr() as *const c_char, 5), 5);
        for step in 0..6_200u32 {
            let now = step * 10;
            ikcp_update(a, now);
            ikcp_update(b, now);
            for d in wire_ab.drain(..) {
                assert_eq!(ikcp_input(b, d.as_ptr() as *const c_char, d.len() as _), 0);
            }
            for d in wire_ba.drain(..) {
                assert_eq!(ikcp_input(a, d.as_ptr() as *const c_char, d.len() as _), 0);
            }
            if !echoed && ikcp_recv(b, buf.as_mut_ptr() as *mut c_char, 64) == 5 {
                assert_eq!(ikcp_send(b, buf.as_ptr() as *const c_char, 5), 5);
                echoed = true;
            }
            if ikcp_recv(a, buf.as_mut_ptr() as *mut c_char, 64) == 5 {
                assert_eq!(&buf[..5], b"hello");
                back = true;
            }
        }
        assert!(back, "no echo");
        assert_eq!((ikcp_waitsnd(a), ikcp_waitsnd(b)), (0, 0));
    }
    let idle = (LIVE.load(Ordering::Relaxed) - live0) as f64 / 2.0;
    println!("ikcp_* connection: {fresh:.0} heap bytes when new, {idle:.0} after one 5-byte echo and 60 s of quiet");
    // SAFETY: created above, released once.
    unsafe {
        ikcp_release(a);
        ikcp_release(b);
    }
    assert_eq!(LIVE.load(Ordering::Relaxed), live0, "everything freed on release");
    ikcp_allocator(None, None);
    assert!(idle <= 1024.0, "{idle:.0} bytes per idle connection");
}
