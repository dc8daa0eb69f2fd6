//! The kcpx_* C API refuses NULL and invalid arguments with its documented
//! codes, never crashes, and round-trips data between two connections.
//! (Called from Rust through the exported functions themselves; the C
//! programs in examples/ and the interop test use them from C.)
#![cfg(feature = "ffi")] // the C ABI and the libraries built from it

use core::ffi::{c_int, c_void, CStr};
use core::ptr::{null, null_mut};
use kcpx::ffi::conn::*;

/// Collects datagrams (the output callback's `user`).
unsafe extern "C" fn collect(datagram: *const u8, len: usize, user: *mut c_void) -> c_int {
    let wire = unsafe { &mut *(user as *mut Vec<Vec<u8>>) };
    wire.push(unsafe { core::slice::from_raw_parts(datagram, len) }.to_vec());
    0
}

/// Every kcptun -crypt name with the key lengths kcp-go takes; other lengths
/// and unknown names get KCPX_ERR_KEY.
#[test]
fn every_kcpgo_cipher_and_its_key_lengths() {
    let key = [0x5au8; 64];
    let methods: [(&CStr, &[usize], &[usize]); 14] = [
        (c"aes-128", &[16], &[0, 15, 24, 32]),
        (c"aes-192", &[24], &[16, 32]),
        (c"aes-256", &[32], &[16, 24, 33]),
        (c"aes", &[32], &[16]),
        (c"salsa20", &[32], &[1, 16, 31, 33]),
        (c"blowfish", &[1, 3, 4, 32, 56], &[0, 57, 64]),
        (c"twofish", &[16, 24, 32], &[0, 8, 20, 33]),
        (c"cast5", &[16], &[5, 15, 17]),
        (c"3des", &[24], &[8, 16, 32]),
        (c"tea", &[16], &[8, 32]),
        (c"xtea", &[16], &[8, 32]),
        (c"sm4", &[16], &[15, 32]),
        (c"xor", &[1, 16, 32, 64], &[0]),
        (c"none", &[0, 16], &[]),
    ];
    unsafe {
        let cfg = kcpx_config_new();
        for (name, good, bad) in methods {
            for &len in good {
                assert_eq!(
                    kcpx_config_set_crypt(cfg, name.as_ptr(), key.as_ptr(), len),
                    KCPX_OK,
                    "{name:?} {len}"
                );
                assert_eq!(kcpx_config_validate(cfg), KCPX_OK, "{name:?} {len}");
            }
            for &len in bad {
                assert_eq!(
                    kcpx_config_set_crypt(cfg, name.as_ptr(), key.as_ptr(), len),
                    KCPX_ERR_KEY,
                    "{name:?} {len}"
                );
            }
        }
        for unknown in [c"AES-128", c"des", c"xxtea", c"chacha20", c""] {
            assert_eq!(
                kcpx_config_set_crypt(cfg, unknown.as_ptr(), key.as_ptr(), 16),
                KCPX_ERR_KEY,
                "{unknown:?}"
            );
        }
        kcpx_config_free(cfg);
    }
}

#[test]
fn null_and_invalid_arguments_get_documented_codes() {
    unsafe {
        let key = [7u8; 16];
        assert_eq!(kcpx_config_set_fec(null_mut(), 1, 1), KCPX_ERR_NULL);
        assert_eq!(kcpx_config_set_crypt(null_mut(), null(), null(), 0), KCPX_ERR_NULL);
        assert_eq!(kcpx_config_set_nodelay(null_mut(), 1, 10, 2, 1), KCPX_ERR_NULL);
        assert_eq!(kcpx_config_set_window(null_mut(), 1, 1), KCPX_ERR_NULL);
        assert_eq!(kcpx_config_set_mtu(null_mut(), 1400), KCPX_ERR_NULL);
        assert_eq!(kcpx_config_set_stream(null_mut(), 1), KCPX_ERR_NULL);
        assert_eq!(kcpx_config_validate(null()), KCPX_ERR_NULL);
        kcpx_config_free(null_mut());

        let cfg = kcpx_config_new();
        assert!(!cfg.is_null());
        for (ds, ps) in [(0, 3), (3, 0), (-1, 2), (200, 57), (256, 1)] {
            assert_eq!(kcpx_config_set_fec(cfg, ds, ps), KCPX_ERR_FEC, "{ds},{ps}");
        }
        assert_eq!(kcpx_config_set_fec(cfg, 0, 0), KCPX_OK);
        assert_eq!(kcpx_config_set_fec(cfg, 255, 1), KCPX_OK);
        assert_eq!(kcpx_config_set_fec(cfg, 10, 3), KCPX_OK); // a 256-shard codec is slow to build in debug
        assert_eq!(
            kcpx_config_set_crypt(cfg, c"aes-128".as_ptr(), key.as_ptr(), 15),
            KCPX_ERR_KEY
        );
        assert_eq!(
            kcpx_config_set_crypt(cfg, c"aes-256".as_ptr(), key.as_ptr(), 16),
            KCPX_ERR_KEY
        );
        assert_eq!(
            kcpx_config_set_crypt(cfg, c"rot13".as_ptr(), key.as_ptr(), 16),
            KCPX_ERR_KEY
        );
        assert_eq!(
            kcpx_config_set_crypt(cfg, c"aes-128".as_ptr(), null(), 16),
            KCPX_ERR_NULL
        );
        assert_eq!(kcpx_config_set_crypt(cfg, c"none".as_ptr(), null(), 0), KCPX_OK);
        assert_eq!(
            kcpx_config_set_crypt(cfg, c"aes-128".as_ptr(), key.as_ptr(), 16),
            KCPX_OK
        );
        assert_eq!(kcpx_config_set_window(cfg, 0, 32), KCPX_ERR_INVALID);
        // The window travels in 16 bits: 65536 would reach the peer as 0.
        assert_eq!(kcpx_config_set_window(cfg, 32, 65536), KCPX_ERR_INVALID);
        assert_eq!(kcpx_config_set_window(cfg, 32, c_int::MAX), KCPX_ERR_INVALID);
        assert_eq!(kcpx_config_set_window(cfg, 65535, 65535), KCPX_OK);
        assert_eq!(kcpx_config_set_window(cfg, 32, 32), KCPX_OK);
        assert_eq!(kcpx_config_set_mtu(cfg, 49), KCPX_ERR_MTU);
        assert_eq!(kcpx_config_set_mtu(cfg, 1501), KCPX_ERR_MTU);
        assert_eq!(kcpx_config_set_mtu(cfg, 60), KCPX_OK);
        assert_eq!(
            kcpx_config_validate(cfg),
            KCPX_ERR_MTU,
            "60 bytes leave no room after 28 of headers"
        );
        assert!(
            kcpx_conn_new(1, cfg, Some(collect), null_mut()).is_null(),
            "refused configuration"
        );
        assert_eq!(kcpx_config_set_mtu(cfg, 1400), KCPX_OK);
        assert_eq!(kcpx_config_validate(cfg), KCPX_OK);
        assert!(kcpx_conn_new(1, null(), Some(collect), null_mut()).is_null());
        assert!(kcpx_conn_new(1, cfg, None, null_mut()).is_null());

        let c: *mut kcpx_conn = null_mut();
        let mut buf = [0u8; 16];
        let mut stats = kcpx_stats::default();
        let mut conv = 0u32;
        assert_eq!(kcpx_conn_input(c, buf.as_ptr(), 16), KCPX_ERR_NULL);
        assert_eq!(kcpx_conn_send(c, buf.as_ptr() as *const c_void, 1), KCPX_ERR_NULL);
        assert_eq!(kcpx_conn_recv(c, buf.as_mut_ptr() as *mut c_void, 16), KCPX_ERR_NULL);
        assert_eq!(kcpx_conn_peeksize(c), KCPX_ERR_NULL);
        assert_eq!(kcpx_conn_waitsnd(c), KCPX_ERR_NULL);
        assert_eq!(kcpx_conn_stats(c, &mut stats), KCPX_ERR_NULL);
        assert_eq!(kcpx_conn_check(c, 42), 42);
        kcpx_conn_update(c, 0);
        kcpx_conn_flush(c);
        kcpx_conn_free(c);
        assert_eq!(kcpx_conv_of(cfg, null(), 0, &mut conv), KCPX_ERR_NULL);
        assert_eq!(kcpx_conv_of(null(), buf.as_ptr(), 16, &mut conv), KCPX_ERR_NULL);
        assert_eq!(kcpx_conv_of(cfg, buf.as_ptr(), 16, null_mut()), KCPX_ERR_NULL);
        assert_eq!(kcpx_conv_of(cfg, buf.as_ptr(), 16, &mut conv), KCPX_ERR_SHORT);
        assert_eq!(kcpx_key_from_password(null(), 3, buf.as_mut_ptr(), 16), KCPX_ERR_NULL);
        assert_eq!(kcpx_key_from_password(b"pw".as_ptr(), 2, null_mut(), 16), KCPX_ERR_NULL);
        assert_eq!(
            kcpx_key_from_password(b"pw".as_ptr(), 2, buf.as_mut_ptr(), 0),
            KCPX_ERR_INVALID
        );

        let mut wire: Vec<Vec<u8>> = Vec::new();
        let conn = kcpx_conn_new(1, cfg, Some(collect), &mut wire as *mut _ as *mut c_void);
        assert!(!conn.is_null());
        assert_eq!(kcpx_conn_send(conn, null(), 1), KCPX_ERR_NULL);
        assert_eq!(kcpx_conn_send(conn, null(), 0), 0, "an empty message");
        assert_eq!(kcpx_conn_send(conn, buf.as_ptr() as *const c_void, 0), 0);
        assert_eq!(
            kcpx_conn_waitsnd(conn),
            0,
            "an empty send queues nothing (kcp-go would stall)"
        );
        assert_eq!(
            kcpx_conn_send(conn, buf.as_ptr() as *const c_void, usize::MAX),
            KCPX_ERR_TOO_LARGE
        );
        assert_eq!(kcpx_conn_recv(conn, null_mut(), 16), KCPX_ERR_NULL);
        assert_eq!(
            kcpx_conn_recv(conn, buf.as_mut_ptr() as *mut c_void, 16),
            KCPX_ERR_AGAIN
        );
        assert_eq!(kcpx_conn_input(conn, null(), 5), KCPX_ERR_NULL);
        assert_eq!(kcpx_conn_input(conn, buf.as_ptr(), 5), KCPX_ERR_SHORT);
        assert_eq!(kcpx_conn_input(conn, [0u8; 64].as_ptr(), 64), KCPX_ERR_CHECKSUM);
        assert_eq!(
            kcpx_conn_input(conn, [0u8; 1501].as_ptr(), 1501),
            KCPX_ERR_SHORT,
            "over kcp-go's limit"
        );
        assert_eq!(kcpx_conn_stats(conn, null_mut()), KCPX_ERR_NULL);
        assert_eq!(kcpx_conn_stats(conn, &mut stats), KCPX_OK);
        assert_eq!((stats.in_errs, stats.in_csum_errors), (2, 1));
        kcpx_conn_free(conn);
        kcpx_config_free(cfg);
    }
}

#[test]
fn every_code_has_a_description() {
    let codes = [
        KCPX_OK,
        KCPX_ERR_NULL,
        KCPX_ERR_INVALID,
        KCPX_ERR_AGAIN,
        KCPX_ERR_BUFFER_TOO_SMALL,
        KCPX_ERR_TOO_LARGE,
        KCPX_ERR_KEY,
        KCPX_ERR_FEC,
        KCPX_ERR_MTU,
        KCPX_ERR_CHECKSUM,
        KCPX_ERR_SHORT,
        KCPX_ERR_KCP,
        KCPX_ERR_RANDOM,
        KCPX_ERR_INTERNAL,
    ];
    let mut seen = std::collections::HashSet::new();
    for code in codes {
        let s = unsafe { CStr::from_ptr(kcpx_strerror(code)) }.to_str().unwrap();
        assert!(s != "unknown error" && seen.insert(s), "code {code}: {s:?}");
    }
    assert_eq!(
        unsafe { CStr::from_ptr(kcpx_strerror(-999)) }.to_str(),
        Ok("unknown error")
    );
}

/// Two connections through the C API: message mode with a too-small buffer,
/// then the message itself.
#[test]
fn message_round_trip_through_the_c_api() {
    unsafe {
        let cfg = kcpx_config_new();
        assert_eq!(kcpx_config_set_fec(cfg, 3, 2), KCPX_OK);
        assert_eq!(
            kcpx_config_set_crypt(cfg, c"aes-256".as_ptr(), [9u8; 32].as_ptr(), 32),
            KCPX_OK
        );
        let (mut wa, mut wb): (Vec<Vec<u8>>, Vec<Vec<u8>>) = (Vec::new(), Vec::new());
        let a = kcpx_conn_new(5, cfg, Some(collect), &mut wa as *mut _ as *mut c_void);
        let b = kcpx_conn_new(5, cfg, Some(collect), &mut wb as *mut _ as *mut c_void);
        kcpx_config_free(cfg);
        let msg = vec![0xabu8; 5000];
        assert_eq!(kcpx_conn_send(a, msg.as_ptr() as *const c_void, msg.len()), 5000);
        let mut small = [0u8; 100];
        let mut big = vec![0u8; 8000];
        let mut got = None;
        let mut checked_conv = 0;
        for now in (0..5000u32).step_by(10) {
            kcpx_conn_update(a, now);
            kcpx_conn_update(b, now);
            for d in wa.drain(..) {
                let mut conv = 0;
                if checked_conv < 8 {
                    checked_conv += 1;
                    assert_eq!(kcpx_conv_of_cfg_free(&d, &mut conv), 0);
                }
                assert_eq!(kcpx_conn_input(b, d.as_ptr(), d.len()), KCPX_OK);
            }
            for d in wb.drain(..) {
                assert_eq!(kcpx_conn_input(a, d.as_ptr(), d.len()), KCPX_OK);
            }
            if kcpx_conn_peeksize(b) == 5000 {
                assert_eq!(
                    kcpx_conn_recv(b, small.as_mut_ptr() as *mut c_void, 100),
                    KCPX_ERR_BUFFER_TOO_SMALL
                );
                got = Some(kcpx_conn_recv(b, big.as_mut_ptr() as *mut c_void, big.len()));
                break;
            }
        }
        assert_eq!(got, Some(5000));
        assert_eq!(&big[..5000], &msg[..]);
        let mut s = kcpx_stats::default();
        assert_eq!(kcpx_conn_stats(b, &mut s), KCPX_OK);
        assert_eq!((s.bytes_received, s.in_csum_errors), (5000, 0));
        kcpx_conn_free(a);
        kcpx_conn_free(b);
    }
}

/// Parity datagrams carry no KCP header: kcpx_conv_of says "again" for them.
fn kcpx_conv_of_cfg_free(datagram: &[u8], conv: &mut u32) -> i32 {
    unsafe {
        let cfg = kcpx_config_new();
        kcpx_config_set_fec(cfg, 3, 2);
        kcpx_config_set_crypt(cfg, c"aes-256".as_ptr(), [9u8; 32].as_ptr(), 32);
        let r = kcpx_conv_of(cfg, datagram.as_ptr(), datagram.len(), conv);
        kcpx_config_free(cfg);
        match r {
            KCPX_OK => {
                assert_eq!(*conv, 5);
                0
            }
            KCPX_ERR_AGAIN => 0,
            other => other,
        }
    }
}

/// The session functions refuse NULL and out-of-range arguments with their
/// documented codes; a listener and a dialer exchange data through the C
/// API; closing the listener frees the sessions it still holds.
#[test]
#[cfg_attr(miri, ignore = "uses UDP sockets, which Miri does not support")]
fn session_functions_check_their_arguments_and_exchange_data() {
    use kcpx::ffi::session::*;
    use std::ffi::CString;
    unsafe {
        let mut err = 0;
        let cfg = kcpx_config_new();
        assert_eq!(kcpx_config_set_limits(null_mut(), 1, 1), KCPX_ERR_NULL);
        assert_eq!(kcpx_config_set_limits(cfg, 0, 10), KCPX_ERR_INVALID);
        assert_eq!(kcpx_config_set_limits(cfg, 10, -1), KCPX_ERR_INVALID);
        assert_eq!(kcpx_config_set_memory_limits(null_mut(), 0, 0), KCPX_ERR_NULL);
        assert_eq!(kcpx_config_set_memory_limits(cfg, 100, 0), KCPX_ERR_INVALID);
        assert_eq!(kcpx_config_set_memory_limits(cfg, 1 << 20, 1 << 19), KCPX_ERR_INVALID);
        assert_eq!(kcpx_config_set_memory_limits(cfg, 0, usize::MAX), KCPX_OK);
        assert_eq!(kcpx_config_set_memory_limits(cfg, 0, 0), KCPX_OK);
        assert_eq!(kcpx_config_set_sockbuf(cfg, 100), KCPX_ERR_INVALID);
        assert_eq!(kcpx_config_set_sockbuf(null_mut(), 1 << 20), KCPX_ERR_NULL);
        assert_eq!(kcpx_config_set_reuseport(cfg, 1), KCPX_OK);
        assert_eq!(kcpx_config_set_reuseport(null_mut(), 1), KCPX_ERR_NULL);
        assert_eq!(kcpx_config_set_offload(cfg, 1), KCPX_OK);
        assert_eq!(kcpx_config_set_offload(null_mut(), 0), KCPX_ERR_NULL);
        assert_eq!(kcpx_config_set_coalesce(cfg, 1000), KCPX_OK);
        assert_eq!(kcpx_config_set_coalesce(cfg, 100_001), KCPX_ERR_INVALID);
        assert_eq!(kcpx_config_set_coalesce(null_mut(), 0), KCPX_ERR_NULL);
        assert_eq!(kcpx_config_set_idle_timeout(null_mut(), 5), KCPX_ERR_NULL);
        assert_eq!(kcpx_config_set_flush(null_mut(), 1, 1), KCPX_ERR_NULL);
        assert_eq!(kcpx_config_set_stream(cfg, 1), KCPX_OK);
        assert_eq!(kcpx_config_set_idle_timeout(cfg, 10_000), KCPX_OK);
        assert!(kcpx_listen(null(), cfg, &mut err).is_null());
        assert_eq!(err, KCPX_ERR_NULL);
        let bad = CString::new("localhost:80").unwrap();
        assert!(kcpx_listen(bad.as_ptr(), cfg, &mut err).is_null());
        assert_eq!(err, KCPX_ERR_ADDR, "numeric addresses only");
        let any = CString::new("127.0.0.1:0").unwrap();
        assert!(
            kcpx_listen(any.as_ptr(), null(), null_mut()).is_null(),
            "NULL err is allowed"
        );
        assert!(kcpx_dial(bad.as_ptr(), cfg, &mut err).is_null());
        assert_eq!(kcpx_listener_update(null_mut(), 0), KCPX_ERR_NULL);
        assert_eq!(kcpx_listener_flush(null_mut()), KCPX_ERR_NULL);
        assert_eq!(kcpx_listener_fd(null()), KCPX_ERR_NULL);
        assert_eq!(kcpx_listener_check(null_mut(), 77), 77);
        assert_eq!(kcpx_listener_poll_event(null_mut(), null_mut()), KCPX_ERR_NULL);
        assert!(kcpx_accept(null_mut()).is_null());
        assert_eq!(
            kcpx_session_send(null_mut(), b"x".as_ptr() as *const c_void, 1),
            KCPX_ERR_NULL
        );
        assert_eq!(kcpx_session_recv(null_mut(), null_mut(), 0), KCPX_ERR_NULL);
        assert_eq!(kcpx_session_conv(null()), 0);
        kcpx_session_close(null_mut());
        kcpx_listener_close(null_mut());

        let l = kcpx_listen(any.as_ptr(), cfg, &mut err);
        assert!(!l.is_null(), "{err}");
        assert_eq!(kcpx_listener_wait(l, -1), KCPX_ERR_INVALID);
        let port = kcpx_listener_local_port(l);
        assert!(port > 0);
        let to = CString::new(format!("127.0.0.1:{port}")).unwrap();
        let d = kcpx_dial(to.as_ptr(), cfg, &mut err);
        assert!(!d.is_null(), "{err}");
        assert!(kcpx_session_update(d, kcpx_now_ms()) >= 0);
        assert_eq!(kcpx_session_send(d, null(), 5), KCPX_ERR_NULL);
        assert_eq!(kcpx_session_send(d, b"hello".as_ptr() as *const c_void, 0), 0);
        assert_eq!(kcpx_session_send(d, b"hello".as_ptr() as *const c_void, 5), 5);
        let mut accepted = null_mut();
        let mut ev = kcpx_event {
            kind: 0,
            session: null_mut(),
            reason: 0,
        };
        for _ in 0..200 {
            kcpx_listener_wait(l, 10);
            while kcpx_listener_poll_event(l, &mut ev) == 1 {
                if ev.kind == KCPX_EVENT_ACCEPT {
                    accepted = ev.session;
                }
            }
            if !accepted.is_null() && kcpx_session_peeksize(accepted) == 5 {
                break;
            }
            kcpx_session_update(d, kcpx_now_ms());
        }
        assert!(!accepted.is_null());
        assert!(kcpx_accept(l).is_null(), "handed out once");
        assert_eq!(
            kcpx_session_update(accepted, 0),
            KCPX_ERR_INVALID,
            "accepted sessions run with their listener"
        );
        assert_eq!(kcpx_session_fd(accepted), KCPX_ERR_INVALID);
        let mut buf = [0u8; 16];
        assert_eq!(kcpx_session_recv(accepted, buf.as_mut_ptr() as *mut c_void, 16), 5);
        assert_eq!(&buf[..5], b"hello");
        assert_eq!(
            kcpx_session_recv(accepted, buf.as_mut_ptr() as *mut c_void, 16),
            KCPX_ERR_AGAIN
        );
        assert_eq!(kcpx_session_conv(accepted), kcpx_session_conv(d));
        let mut text = [0 as core::ffi::c_char; 48];
        let n = kcpx_session_remote_addr(accepted, text.as_mut_ptr(), 48);
        assert!(
            n > 10
                && CStr::from_ptr(text.as_ptr())
                    .to_str()
                    .unwrap()
                    .starts_with("127.0.0.1:")
        );
        assert_eq!(
            kcpx_session_remote_addr(accepted, text.as_mut_ptr(), 4),
            KCPX_ERR_BUFFER_TOO_SMALL
        );
        let mut marker = 5u8;
        kcpx_session_set_user(accepted, &mut marker as *mut u8 as *mut c_void);
        assert_eq!(kcpx_session_user(accepted), &mut marker as *mut u8 as *mut c_void);
        let mut stats = kcpx_stats::default();
        assert_eq!(kcpx_session_stats(accepted, &mut stats), KCPX_OK);
        assert_eq!(stats.bytes_received, 5);
        let mut counters = kcpx_listener_counters::default();
        assert_eq!(kcpx_listener_stats(l, &mut counters), KCPX_OK);
        assert_eq!(counters.passive_opens, 1);
        assert!(counters.rcvbuf > 0);
        // A dialed session's own socket counters; none for an accepted one.
        let mut dialer = kcpx_listener_counters::default();
        assert_eq!(kcpx_session_socket_stats(d, &mut dialer), KCPX_OK);
        assert!(
            dialer.active_opens == 1 && dialer.sent_datagrams > 0,
            "one session, datagrams sent"
        );
        assert_eq!(dialer.dropped_unknown, 0);
        assert_eq!(kcpx_session_socket_stats(accepted, &mut dialer), KCPX_ERR_INVALID);
        assert_eq!(kcpx_session_socket_stats(d, null_mut()), KCPX_ERR_NULL);
        assert_eq!(kcpx_session_socket_stats(null(), &mut dialer), KCPX_ERR_NULL);
        kcpx_session_close(d);
        kcpx_listener_close(l); // frees `accepted` too
        kcpx_config_free(cfg);
    }
}

/// Out-parameters are written only when the call succeeds: a refused call
/// leaves the caller's memory as it was (`*err` excepted, which reports
/// the failure).
#[test]
fn out_parameters_are_written_only_on_success() {
    use kcpx::ffi::session::*;
    unsafe {
        let cfg = kcpx_config_new();
        let mut conv = 0xdead_beef_u32;
        let short = [0u8; 3];
        assert_eq!(kcpx_conv_of(cfg, short.as_ptr(), 3, &mut conv), KCPX_ERR_SHORT);
        assert_eq!(conv, 0xdead_beef);
        let mut stats = kcpx_stats {
            bytes_sent: 42,
            ..Default::default()
        };
        assert_eq!(kcpx_conn_stats(null(), &mut stats), KCPX_ERR_NULL);
        assert_eq!(kcpx_session_stats(null(), &mut stats), KCPX_ERR_NULL);
        assert_eq!(stats.bytes_sent, 42);
        let mut counters = kcpx_listener_counters {
            in_pkts: 42,
            ..Default::default()
        };
        assert_eq!(kcpx_listener_stats(null(), &mut counters), KCPX_ERR_NULL);
        assert_eq!(kcpx_session_socket_stats(null(), &mut counters), KCPX_ERR_NULL);
        assert_eq!(counters.in_pkts, 42);
        let mut ev = kcpx_event {
            kind: 42,
            session: null_mut(),
            reason: 42,
        };
        assert_eq!(kcpx_session_poll_event(null_mut(), &mut ev), KCPX_ERR_NULL);
        assert_eq!((ev.kind, ev.reason), (42, 42));
        let mut key = [7u8; 16];
        assert_eq!(kcpx_key_from_password(null(), 1, key.as_mut_ptr(), 16), KCPX_ERR_NULL);
        assert_eq!(key, [7; 16]);
        assert_eq!(kcpx_session_check(null_mut(), 77), 77);
        assert!(kcpx_session_user(null()).is_null());
        kcpx_session_set_user(null_mut(), null_mut());
        kcpx_config_free(cfg);
    }
}

/// A token made through the C API opens at a server it names, until it
/// expires, and at no other; every bad argument gets its documented code.
#[test]
#[cfg_attr(miri, ignore)] // the system clock and random source are outside Miri's isolation
fn tokens_made_in_c_open_at_the_servers_they_name() {
    use kcpx::ffi::token::{kcpx_token_make, KCPX_TOKEN_LEN};
    use kcpx::secure::token::{TokenBlob, TokenOpener};
    let key = [0x3cu8; 32];
    let addrs = [c"127.0.0.1:4000".as_ptr(), c"[::1]:4001".as_ptr()];
    let mut out = [0u8; KCPX_TOKEN_LEN];
    let make = |key: &[u8], valid: u32, addrs: &[*const core::ffi::c_char], out: &mut [u8]| unsafe {
        kcpx_token_make(
            key.as_ptr(),
            key.len(),
            77,
            valid,
            addrs.as_ptr(),
            addrs.len(),
            out.as_mut_ptr(),
            out.len(),
        )
    };
    assert_eq!(make(&key, 60, &addrs, &mut out), KCPX_TOKEN_LEN as c_int);
    let blob = TokenBlob::parse(&out).unwrap();
    assert_eq!(blob.client_id, 77);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let opener = TokenOpener::new(&key).unwrap();
    for at in ["127.0.0.1:4000", "[::1]:4001"] {
        let opened = opener.open(&blob.sealed, now, 3600, at.parse().unwrap()).unwrap();
        assert_eq!((opened.client_id, opened.c2s_key), (77, blob.c2s_key));
    }
    assert!(opener
        .open(&blob.sealed, now, 3600, "127.0.0.1:4002".parse().unwrap())
        .is_err());
    assert!(opener
        .open(&blob.sealed, now + 61, 3600, "127.0.0.1:4000".parse().unwrap())
        .is_err());
    assert!(TokenOpener::new(&[0x3d; 32])
        .unwrap()
        .open(&blob.sealed, now, 3600, "127.0.0.1:4000".parse().unwrap())
        .is_err());
    // Two tokens for the same client differ (fresh keys and nonce).
    let mut again = [0u8; KCPX_TOKEN_LEN];
    assert_eq!(make(&key, 60, &addrs, &mut again), KCPX_TOKEN_LEN as c_int);
    assert_ne!(out, again);

    let nine = [addrs[0]; 9];
    let bad = [c"localhost:4000".as_ptr()];
    let with_null = [addrs[0], null()];
    assert_eq!(make(&key[..31], 60, &addrs, &mut out), KCPX_ERR_KEY);
    assert_eq!(make(&key, 0, &addrs, &mut out), KCPX_ERR_INVALID);
    assert_eq!(make(&key, 60, &[], &mut out), KCPX_ERR_INVALID);
    assert_eq!(make(&key, 60, &nine, &mut out), KCPX_ERR_INVALID);
    assert_eq!(make(&key, 60, &bad, &mut out), KCPX_ERR_ADDR);
    assert_eq!(make(&key, 60, &with_null, &mut out), KCPX_ERR_NULL);
    assert_eq!(
        make(&key, 60, &addrs, &mut out[..KCPX_TOKEN_LEN - 1]),
        KCPX_ERR_BUFFER_TOO_SMALL
    );
    unsafe {
        assert_eq!(
            kcpx_token_make(null(), 32, 1, 60, addrs.as_ptr(), 2, out.as_mut_ptr(), out.len()),
            KCPX_ERR_NULL
        );
        assert_eq!(
            kcpx_token_make(key.as_ptr(), 32, 1, 60, null(), 2, out.as_mut_ptr(), out.len()),
            KCPX_ERR_NULL
        );
        assert_eq!(
            kcpx_token_make(key.as_ptr(), 32, 1, 60, addrs.as_ptr(), 2, null_mut(), 500),
            KCPX_ERR_NULL
        );
    }
}
