//! The `ikcp_*` drop-in called from Rust, small enough for Miri
//! (`cargo +nightly miri test --test ikcp_ffi`): the control block is the
//! core's scalar store, written through the `ikcpcb*` between calls and
//! inside callbacks, and callbacks re-enter the same object (flush, update,
//! queries, field reads of `acklist`/`buffer`). The differential harness
//! (tests/c_harness.rs) checks the same paths byte for byte against ikcp.c;
//! this test is what Miri can run of them.
#![cfg(feature = "ffi")] // the C ABI and the libraries built from it

use core::ffi::{c_char, c_int, c_void, CStr};
use kcpx::ffi::ikcp::*;

/// One endpoint's side of the test: what its callbacks saw.
#[derive(Default)]
struct Side {
    wire: Vec<Vec<u8>>,
    log_lines: usize,
    outputs: usize,
    /// Re-enter from `output` (ikcp_flush once, nested) and from `writelog`
    /// (ikcp_update).
    reenter: bool,
    depth: u32,
    /// Calls made from inside a callback into the same object.
    reentries: usize,
}

unsafe extern "C" fn output(buf: *const c_char, len: c_int, kcp: *mut ikcpcb, user: *mut c_void) -> c_int {
    // SAFETY: `user` is this endpoint's `Side`; `buf` holds `len` bytes;
    // `kcp` is live and no Rust reference to it is held by kcpx here.
    unsafe {
        let side = &mut *(user as *mut Side);
        side.wire
            .push(core::slice::from_raw_parts(buf as *const u8, len as usize).to_vec());
        side.outputs += 1;
        // What C programs read inside the callback: fields, the ACK list,
        // the flush buffer.
        for i in 0..(*kcp).ackcount as usize {
            let _pair = (*(*kcp).acklist.add(2 * i), *(*kcp).acklist.add(2 * i + 1));
        }
        if !(*kcp).buffer.is_null() {
            let _first = *(*kcp).buffer;
        }
        let _ = (ikcp_waitsnd(kcp), ikcp_peeksize(kcp), ikcp_check(kcp, (*kcp).current));
        // A field written inside the callback is what the core uses next.
        (*kcp).rx_minrto = 10 + (side.outputs % 7) as i32;
        if side.reenter && side.depth == 0 && side.outputs % 5 == 0 {
            side.depth += 1;
            side.reentries += 1;
            ikcp_flush(kcp);
            (*(user as *mut Side)).depth -= 1;
        }
    }
    0
}

unsafe extern "C" fn writelog(log: *const c_char, kcp: *mut ikcpcb, user: *mut c_void) {
    // SAFETY: `log` is a NUL-terminated line; `user` is this endpoint's `Side`.
    unsafe {
        assert!(!CStr::from_ptr(log).to_bytes().is_empty());
        let side = &mut *(user as *mut Side);
        side.log_lines += 1;
        if side.reenter && side.depth == 0 && side.log_lines % 11 == 0 {
            side.depth += 1;
            side.reentries += 1;
            ikcp_update(kcp, (*kcp).current.wrapping_add(1));
            (*(user as *mut Side)).depth -= 1;
        }
    }
}

/// Sends `messages` from a to b over a wire that drops every `drop_every`th
/// datagram, with log lines on and re-entry on `a`; returns what b received.
fn transfer(messages: &[Vec<u8>], stream: bool, drop_every: usize) -> Vec<Vec<u8>> {
    // Raw from here on: the callbacks write through `user`.
    let sa = Box::into_raw(Box::new(Side {
        reenter: true,
        ..Side::default()
    }));
    let sb = Box::into_raw(Box::<Side>::default());
    let a = ikcp_create(7, sa as *mut c_void);
    let b = ikcp_create(7, sb as *mut c_void);
    assert!(!a.is_null() && !b.is_null());
    let mut got = Vec::new();
    // SAFETY: live control blocks, released once at the end; the `Side`s
    // outlive them; buffers have the sizes passed.
    unsafe {
        for k in [a, b] {
            ikcp_setoutput(k, Some(output));
            (*k).writelog = Some(writelog);
            (*k).logmask = -1;
            (*k).stream = c_int::from(stream);
            assert_eq!(ikcp_nodelay(k, 1, 10, 2, 1), 0);
            assert_eq!(ikcp_wndsize(k, 16, 16), 0);
        }
        assert_eq!(ikcp_setmtu(a, 200), 0);
        for m in messages {
            assert_eq!(
                ikcp_send(a, m.as_ptr() as *const c_char, m.len() as c_int),
                m.len() as c_int
            );
        }
        let mut buf = vec![0u8; 4096];
        let mut n = 0usize;
        for step in 0..400u32 {
            let now = 1000 + step * 10;
            ikcp_update(a, now);
            ikcp_update(b, now);
            for (from, to) in [(sa, b), (sb, a)] {
                for d in core::mem::take(&mut (*from).wire) {
                    n += 1;
                    if n % drop_every != 0 {
                        assert_eq!(ikcp_input(to, d.as_ptr() as *const c_char, d.len() as _), 0);
                    }
                }
            }
            // Peek, then receive.
            while ikcp_peeksize(b) >= 0 {
                let size = ikcp_peeksize(b);
                assert_eq!(
                    ikcp_recv(b, buf.as_mut_ptr() as *mut c_char, -(buf.len() as c_int)),
                    size
                );
                assert_eq!(ikcp_recv(b, buf.as_mut_ptr() as *mut c_char, buf.len() as c_int), size);
                got.push(buf[..size as usize].to_vec());
            }
            if ikcp_waitsnd(a) == 0 && (*b).nrcv_buf == 0 && (*b).nrcv_que == 0 && step > 20 {
                break;
            }
        }
        assert_eq!(ikcp_waitsnd(a), 0, "a's data was all acknowledged");
        // Hostile input is refused without effect on memory safety.
        let mut junk = [0u8; 64];
        junk[..4].copy_from_slice(&7u32.to_le_bytes());
        junk[4] = 81;
        junk[20] = 200; // a length past the datagram
        assert_eq!(ikcp_input(b, junk.as_ptr() as *const c_char, junk.len() as _), -2);
        assert_eq!(ikcp_input(b, core::ptr::null(), 0), -1);
        ikcp_release(a);
        ikcp_release(b);
        let (sa, sb) = (Box::from_raw(sa), Box::from_raw(sb));
        assert!(sa.reentries > 2 && sa.log_lines > 0 && sb.log_lines > 0);
    }
    got
}

#[test]
fn message_transfer_with_reentry_and_field_writes() {
    let messages: Vec<Vec<u8>> = (0..12u8).map(|i| vec![i; 1 + usize::from(i) * 97]).collect();
    assert_eq!(transfer(&messages, false, 4), messages);
}

#[test]
fn stream_transfer_with_reentry_and_field_writes() {
    let messages: Vec<Vec<u8>> = (0..6u8).map(|i| vec![i; 150 + usize::from(i) * 31]).collect();
    let got: Vec<u8> = transfer(&messages, true, 5).concat();
    assert_eq!(got, messages.concat());
}

#[test]
fn null_and_fresh_objects() {
    // SAFETY: NULL is accepted by every function; the object is live until
    // released.
    unsafe {
        let null = core::ptr::null_mut::<ikcpcb>();
        assert_eq!(ikcp_recv(null, core::ptr::null_mut(), 10), -1);
        assert_eq!(ikcp_send(null, core::ptr::null(), 10), -1);
        assert_eq!(ikcp_check(null, 5), 5);
        assert_eq!(ikcp_getconv(core::ptr::null()), 0);
        ikcp_update(null, 0);
        ikcp_flush(null);
        ikcp_release(null);
        let k = ikcp_create(0x11223344, core::ptr::null_mut());
        assert_eq!((*k).conv, 0x11223344);
        assert_eq!(((*k).mtu, (*k).mss, (*k).snd_wnd, (*k).rcv_wnd), (1400, 1376, 32, 128));
        let me: *mut IQUEUEHEAD = &mut (*k).snd_queue;
        assert_eq!((*k).snd_queue.next, me);
        assert_eq!(ikcp_send(k, core::ptr::null(), 3000), 3000); // zeros, three fragments
        assert_eq!((*k).nsnd_que, 3);
        assert_eq!((ikcp_waitsnd(k), ikcp_peeksize(k), ikcp_check(k, 5)), (3, -1, 5));
        assert_eq!(ikcp_setmtu(k, 49), -1);
        (*k).mss = 0; // C code may write anything
        assert_eq!(ikcp_send(k, b"x".as_ptr() as *const c_char, 1), -3);
        ikcp_release(k);
    }
}
