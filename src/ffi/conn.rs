//! `kcpx_config_*`, `kcpx_conn_*`: kcp-go compatible connections (FEC,
//! kcp-go's packet ciphers — AES-CFB and 12 others — and CRC-32) as a
//! sans-IO C API, written with the `ptr` toolkit. The caller owns the UDP
//! socket and the clock:
//!
//! ```c
//! kcpx_config *cfg = kcpx_config_new();
//! kcpx_config_set_fec(cfg, 10, 3);
//! kcpx_config_set_crypt(cfg, "aes-128", key, 16);
//! kcpx_conn *c = kcpx_conn_new(conv, cfg, send_udp, &sock);
//! kcpx_config_free(cfg);                     // the connection keeps a copy
//! kcpx_conn_send(c, data, len);
//! for (;;) {
//!     kcpx_conn_update(c, now_ms());         // datagrams go to send_udp
//!     n = recvfrom(...); kcpx_conn_input(c, buf, n);
//!     while ((n = kcpx_conn_recv(c, out, sizeof out)) > 0) use(out, n);
//! }
//! kcpx_conn_free(c);
//! ```
//!
//! Every function checks NULL and invalid arguments and returns one of the
//! `KCPX_*` codes below; nothing panics across the boundary. Objects are
//! not thread-safe: use each from one thread at a time.

use super::ptr::{
    guard, maybe_str, opt_mut, try_mut, try_out, try_ref, try_slice, try_slice_mut, try_slice_or_empty, try_take,
    Handle,
};
use crate::conn::{Conn, ConnConfig, ConnStats, Outbox, RateLimit};
use crate::crypt::key_from_password;
use crate::error::Error;
use core::ffi::{c_char, c_int, c_void};
use core::ptr::null_mut;

pub use crate::error::{
    KCPX_ERR_ADDR, KCPX_ERR_AGAIN, KCPX_ERR_BUFFER_TOO_SMALL, KCPX_ERR_CHECKSUM, KCPX_ERR_CLOSED, KCPX_ERR_FEC,
    KCPX_ERR_INTERNAL, KCPX_ERR_INVALID, KCPX_ERR_IO, KCPX_ERR_KCP, KCPX_ERR_KEY, KCPX_ERR_MTU, KCPX_ERR_NULL,
    KCPX_ERR_RANDOM, KCPX_ERR_SHORT, KCPX_ERR_TOO_LARGE, KCPX_OK,
};

/// Settings for new connections. Create with `kcpx_config_new`, free with
/// `kcpx_config_free`. Opaque.
#[allow(non_camel_case_types)]
pub struct kcpx_config {
    pub(crate) cfg: crate::net::Config,
}

impl Handle for kcpx_config {}

impl kcpx_config {
    /// The settings of each connection.
    fn conn(&mut self) -> &mut ConnConfig {
        &mut self.cfg.endpoint.conn
    }
}

/// A connection. Create with `kcpx_conn_new`, free with `kcpx_conn_free`.
/// Opaque.
#[allow(non_camel_case_types)]
pub struct kcpx_conn {
    conn: Conn,
    /// The datagrams made by the last call, handed to `output` before it
    /// returns (kept for its memory; freed while the connection is quiet).
    outbox: Outbox,
    output: OutputFn,
    user: *mut c_void,
}

impl Handle for kcpx_conn {}

/// Receives each datagram to send, in order. The return value is ignored.
type OutputFn = unsafe extern "C" fn(datagram: *const u8, len: usize, user: *mut c_void) -> c_int;

/// kcp-go's SNMP counters that apply to one connection.
#[allow(non_camel_case_types)]
#[repr(C)]
#[derive(Default)]
pub struct kcpx_stats {
    /// Payload bytes accepted by `kcpx_conn_send`.
    pub bytes_sent: u64,
    /// Payload bytes returned by `kcpx_conn_recv`.
    pub bytes_received: u64,
    /// Datagrams given to `kcpx_conn_input`.
    pub in_pkts: u64,
    /// Bytes given to `kcpx_conn_input`.
    pub in_bytes: u64,
    /// Datagrams produced (parity included).
    pub out_pkts: u64,
    /// Bytes produced.
    pub out_bytes: u64,
    /// Datagrams too short for their headers.
    pub in_errs: u64,
    /// Datagrams failing the CRC-32 check or the AES-GCM tag.
    pub in_csum_errors: u64,
    /// Datagrams KCP refused.
    pub kcp_in_errors: u64,
    /// Segments retransmitted after a timeout.
    pub retrans_segs: u64,
    /// Data datagrams rebuilt from FEC parity.
    pub fec_recovered: u64,
    /// Rebuilt datagrams with an impossible size (dropped).
    pub fec_errs: u64,
    /// FEC parity datagrams received.
    pub fec_parity_shards: u64,
    /// Data shards dropped before their group could be completed.
    pub fec_short_shards: u64,
    /// Datagrams the FEC encoder refused (always 0 unless kcpx has a bug).
    pub fec_encode_errs: u64,
    /// FEC shards never used for reconstruction because their length
    /// disagrees with their size field or group (truncated).
    pub fec_inconsistent: u64,
    /// FEC shards whose data/parity type disagrees with this side's shard
    /// counts: the peer uses other FEC settings (data still arrives,
    /// nothing lost is rebuilt). See docs/troubleshooting.md.
    pub fec_pattern_mismatches: u64,
    /// FEC datagrams received without FEC configured here: the peer has FEC
    /// on (its data is read, as kcp-go does; its parity is dropped).
    pub fec_unconfigured: u64,
    /// Unreliable messages received and queued (kcp-go's OOBPackets).
    pub datagrams_in: u64,
    /// Unreliable messages dropped from the full receive queue, oldest
    /// first (the application read too slowly).
    pub datagrams_dropped: u64,
    /// Unreliable messages of another conversation, dropped.
    pub datagrams_foreign: u64,
    /// Unreliable messages sent.
    pub datagrams_out: u64,
}

impl From<ConnStats> for kcpx_stats {
    fn from(s: ConnStats) -> Self {
        kcpx_stats {
            bytes_sent: s.bytes_sent,
            bytes_received: s.bytes_received,
            in_pkts: s.in_pkts,
            in_bytes: s.in_bytes,
            out_pkts: s.out_pkts,
            out_bytes: s.out_bytes,
            in_errs: s.in_errs,
            in_csum_errors: s.in_csum_errors,
            kcp_in_errors: s.kcp_in_errors,
            retrans_segs: s.retrans_segs,
            fec_recovered: s.fec_recovered,
            fec_errs: s.fec_errs,
            fec_parity_shards: s.fec_parity_shards,
            fec_short_shards: s.fec_short_shards,
            fec_encode_errs: s.fec_encode_errs,
            fec_inconsistent: s.fec_inconsistent,
            fec_pattern_mismatches: s.fec_pattern_mismatches,
            fec_unconfigured: s.fec_unconfigured,
            datagrams_in: s.datagrams_in,
            datagrams_dropped: s.datagrams_dropped,
            datagrams_foreign: s.datagrams_foreign,
            datagrams_out: s.datagrams_out,
        }
    }
}

/// The C code of a result: `ok` on success.
pub(crate) fn code_of<T>(r: Result<T, Error>, ok: impl FnOnce(T) -> c_int) -> c_int {
    r.map_or_else(|e| e.code(), ok)
}

/// The C code of a `Result<(), Error>`.
pub(crate) fn code(r: Result<(), Error>) -> c_int {
    code_of(r, |()| KCPX_OK)
}

/// A count as a non-negative C `int` (saturating at INT_MAX).
pub(crate) fn count(n: usize) -> c_int {
    n.min(c_int::MAX as usize) as c_int
}

/// A new configuration with kcp-go's defaults: no FEC, no crypto header,
/// nodelay (0, 100, 0, 0), windows 32/32, MTU 1400 (whole UDP payload),
/// message mode. Free with `kcpx_config_free`. NULL if out of memory.
#[no_mangle]
pub extern "C" fn kcpx_config_new() -> *mut kcpx_config {
    guard(null_mut(), || {
        kcpx_config {
            cfg: crate::net::Config::default(),
        }
        .into_ptr()
    })
}

/// Frees a configuration (NULL is ignored). Connections created from it
/// keep their own copy.
///
/// # Safety
/// `cfg` is NULL or from `kcpx_config_new` and not yet freed.
#[no_mangle]
pub unsafe extern "C" fn kcpx_config_free(cfg: *mut kcpx_config) {
    guard((), || drop(try_take!(cfg)))
}

/// Forward error correction as kcp-go: after every `data_shards` datagrams,
/// `parity_shards` Reed-Solomon parity datagrams. 0,0 turns FEC off (no FEC
/// header). Returns KCPX_OK, KCPX_ERR_NULL, or KCPX_ERR_FEC (each must be
/// >= 1, their sum <= 256).
///
/// # Safety
/// `cfg` is NULL or live.
#[no_mangle]
pub unsafe extern "C" fn kcpx_config_set_fec(cfg: *mut kcpx_config, data_shards: c_int, parity_shards: c_int) -> c_int {
    guard(KCPX_ERR_INTERNAL, || {
        let (Ok(ds), Ok(ps)) = (usize::try_from(data_shards), usize::try_from(parity_shards)) else {
            return KCPX_ERR_FEC;
        };
        code(try_mut!(cfg, KCPX_ERR_NULL).conn().set_fec(ds, ps))
    })
}

/// Packet encryption as kcp-go (kcptun's `-crypt` names) with a raw key of
/// `key_len` bytes: "aes-128" (16), "aes-192" (24), "aes-256" or "aes" (32),
/// "salsa20" (32), "blowfish" (1 to 56; kcptun uses 32), "twofish" (16, 24
/// or 32), "cast5" (16), "3des" (24), "tea" (16), "xtea" (16), "sm4" (16),
/// "xor" (1 or more; kcptun uses 32), "none" (kcp-go's none cipher: the
/// nonce and CRC-32 header, not encrypted; the key is ignored, may be NULL),
/// or "aes-128-gcm" (16), "aes-192-gcm" (24), "aes-256-gcm" (32): kcp-go
/// master's AES-GCM layout (12-byte nonce, 16-byte tag, no CRC-32; a
/// different wire, both ends must use it; the MTU holds nonce and tag).
/// kcptun derives 32 bytes from its password and passes the first `key_len`.
/// Only the GCM methods authenticate (the others: CRC-32 only) and none stops
/// replays: prefer AES-GCM where the peer has it, else AES.
/// `method` NULL: no crypto header at all (plain kcp-go without a
/// BlockCrypt). The key is copied; its schedule is computed once per
/// connection.
/// Returns KCPX_OK, KCPX_ERR_NULL (cfg, or key with key_len > 0) or
/// KCPX_ERR_KEY (unknown method, wrong key length).
///
/// # Safety
/// `cfg` is NULL or live; `method` NULL or a NUL-terminated string; `key`
/// NULL or readable for `key_len` bytes.
#[no_mangle]
pub unsafe extern "C" fn kcpx_config_set_crypt(
    cfg: *mut kcpx_config,
    method: *const c_char,
    key: *const u8,
    key_len: usize,
) -> c_int {
    guard(KCPX_ERR_INTERNAL, || {
        let c = try_mut!(cfg, KCPX_ERR_NULL);
        let Ok(name) = maybe_str!(method).transpose() else {
            return KCPX_ERR_KEY;
        };
        let key = try_slice_or_empty!(key, key_len, KCPX_ERR_NULL);
        code(c.conn().set_crypt(name, key))
    })
}

/// KCP tuning, as ikcp_nodelay: `nodelay` 0/1/2, `interval` ms (clamped to
/// 10..5000), `resend` fast-retransmit threshold (0 off), `nc` 1 disables
/// congestion control; negative keeps a value. kcptun's fast mode is
/// (0, 30, 2, 1); the fastest is (1, 10, 2, 1). Returns KCPX_OK or
/// KCPX_ERR_NULL.
///
/// # Safety
/// `cfg` is NULL or live.
#[no_mangle]
pub unsafe extern "C" fn kcpx_config_set_nodelay(
    cfg: *mut kcpx_config,
    nodelay: c_int,
    interval: c_int,
    resend: c_int,
    nc: c_int,
) -> c_int {
    guard(KCPX_ERR_INTERNAL, || {
        try_mut!(cfg, KCPX_ERR_NULL)
            .conn()
            .set_nodelay(nodelay, interval, resend, nc);
        KCPX_OK
    })
}

/// Send and receive windows in segments (kcp-go defaults 32/32; the
/// receive window is at least 128 in effect, as in ikcp.c). Returns KCPX_OK,
/// KCPX_ERR_NULL, or KCPX_ERR_INVALID unless both are in 1..=65535 (the
/// window travels in a 16-bit field: a larger one would wrap, and the peer
/// would see a nearly closed window).
///
/// # Safety
/// `cfg` is NULL or live.
#[no_mangle]
pub unsafe extern "C" fn kcpx_config_set_window(cfg: *mut kcpx_config, sndwnd: c_int, rcvwnd: c_int) -> c_int {
    guard(KCPX_ERR_INTERNAL, || {
        let c = try_mut!(cfg, KCPX_ERR_NULL).conn();
        match (u32::try_from(sndwnd), u32::try_from(rcvwnd)) {
            (Ok(s), Ok(r)) => code(c.set_window(s, r)),
            _ => KCPX_ERR_INVALID,
        }
    })
}

/// Largest UDP payload in bytes, crypto and FEC headers included (kcp-go's
/// meaning; default 1400). Returns KCPX_OK, KCPX_ERR_NULL, or KCPX_ERR_MTU
/// outside 50..=1500 (`kcpx_conn_new` also needs 50 bytes left for KCP
/// after the headers).
///
/// # Safety
/// `cfg` is NULL or live.
#[no_mangle]
pub unsafe extern "C" fn kcpx_config_set_mtu(cfg: *mut kcpx_config, mtu: c_int) -> c_int {
    guard(KCPX_ERR_INTERNAL, || {
        code(
            try_mut!(cfg, KCPX_ERR_NULL)
                .conn()
                .set_mtu(u32::try_from(mtu).unwrap_or(0)),
        )
    })
}

/// Stream mode (non-zero): a byte stream without message boundaries, as
/// kcp-go's SetStreamMode. Returns KCPX_OK or KCPX_ERR_NULL.
///
/// # Safety
/// `cfg` is NULL or live.
#[no_mangle]
pub unsafe extern "C" fn kcpx_config_set_stream(cfg: *mut kcpx_config, on: c_int) -> c_int {
    guard(KCPX_ERR_INTERNAL, || {
        try_mut!(cfg, KCPX_ERR_NULL).conn().set_stream(on != 0);
        KCPX_OK
    })
}

/// Caps what each connection or session made with `cfg` sends: on average
/// `bytes_per_sec` bytes per second, in bursts of up to `burst` bytes (0:
/// 64 datagrams of the MTU, kcp-go's burst; a burst below the MTU counts
/// as one MTU). Every datagram counts whole (headers, FEC parity, ACKs,
/// unreliable messages). Data waits for the bucket; ACKs never wait, so a
/// cap never stalls the peer's sending; an unreliable message that does
/// not fit now is refused with KCPX_ERR_AGAIN. `bytes_per_sec` 0 removes
/// the cap (the default). kcp-go's SetRateLimit. Returns KCPX_OK or
/// KCPX_ERR_NULL. See also `kcpx_conn_set_rate_limit` and
/// `kcpx_session_set_rate_limit`.
///
/// # Safety
/// `cfg` is NULL or live.
#[no_mangle]
pub unsafe extern "C" fn kcpx_config_set_rate_limit(cfg: *mut kcpx_config, bytes_per_sec: u32, burst: u32) -> c_int {
    guard(KCPX_ERR_INTERNAL, || {
        try_mut!(cfg, KCPX_ERR_NULL).conn().set_rate_limit(bytes_per_sec, burst);
        KCPX_OK
    })
}

/// Checks that a connection can be created from `cfg` (what
/// `kcpx_conn_new` would refuse, as a code): KCPX_OK, KCPX_ERR_NULL,
/// KCPX_ERR_KEY, KCPX_ERR_MTU or KCPX_ERR_RANDOM.
///
/// # Safety
/// `cfg` is NULL or live.
#[no_mangle]
pub unsafe extern "C" fn kcpx_config_validate(cfg: *const kcpx_config) -> c_int {
    guard(KCPX_ERR_INTERNAL, || {
        code(try_ref!(cfg, KCPX_ERR_NULL).cfg.endpoint.validate())
    })
}

/// A connection for conversation `conv` (both ends use the same; kcp-go
/// clients pick it at random) with a copy of `cfg`. `output` receives each
/// datagram to send (with `user`), during `kcpx_conn_update` and
/// `kcpx_conn_flush`; it may call other kcpx_conn_* functions on this
/// connection but must not free it. Returns NULL if `cfg` or `output` is
/// NULL or the configuration is refused (see `kcpx_config_validate`).
/// Free with `kcpx_conn_free`.
///
/// # Safety
/// `cfg` is NULL or live; `output` is a valid function (or NULL).
#[no_mangle]
pub unsafe extern "C" fn kcpx_conn_new(
    conv: u32,
    cfg: *const kcpx_config,
    output: Option<unsafe extern "C" fn(datagram: *const u8, len: usize, user: *mut c_void) -> c_int>,
    user: *mut c_void,
) -> *mut kcpx_conn {
    guard(null_mut(), || {
        let c = try_ref!(cfg, null_mut());
        let Some(output) = output else {
            return null_mut();
        };
        match Conn::new(conv, &c.cfg.endpoint.conn) {
            Ok(conn) => kcpx_conn {
                conn,
                outbox: Outbox::default(),
                output,
                user,
            }
            .into_ptr(),
            Err(_) => null_mut(),
        }
    })
}

/// Frees a connection (NULL is ignored). Not from inside its own output
/// callback.
///
/// # Safety
/// `c` is NULL or from `kcpx_conn_new` and not yet freed.
#[no_mangle]
pub unsafe extern "C" fn kcpx_conn_free(c: *mut kcpx_conn) {
    guard((), || drop(try_take!(c)))
}

/// Takes one received UDP datagram (`len` bytes). Returns KCPX_OK, or a
/// negative code: KCPX_ERR_NULL, KCPX_ERR_CHECKSUM, KCPX_ERR_SHORT (too
/// short for its headers; longer than kcp-go's 1500-byte limit; or an FEC
/// shard whose length disagrees with its size field or group, e.g. cut by a
/// receive buffer shorter than the datagram), KCPX_ERR_KCP. Rejected datagrams are counted in the stats and change
/// nothing else. Times RTT samples with the clock of the last
/// `kcpx_conn_update`.
///
/// # Safety
/// `c` is NULL or live; `datagram` is NULL or readable for `len` bytes.
#[no_mangle]
pub unsafe extern "C" fn kcpx_conn_input(c: *mut kcpx_conn, datagram: *const u8, len: usize) -> c_int {
    guard(KCPX_ERR_INTERNAL, || {
        let d = try_slice!(datagram, len, KCPX_ERR_NULL);
        let conn = &mut try_mut!(c, KCPX_ERR_NULL).conn;
        let now = conn.kcp().current();
        code(conn.input(d, now))
    })
}

/// Queues `len` bytes for sending. Returns the bytes queued (all of them;
/// 0 for `len` 0, which queues nothing: kcp-go never sends an empty
/// segment and its reader stalls on one), or KCPX_ERR_NULL,
/// KCPX_ERR_TOO_LARGE (message mode: a message over 127 segments; or `len`
/// over INT_MAX). Stream mode takes any length and cuts it into segments.
/// The send queue is not bounded: throttle with `kcpx_conn_waitsnd`. Data
/// leaves on the next update or flush.
///
/// # Safety
/// `c` is NULL or live; `buf` is NULL or readable for `len` bytes.
#[no_mangle]
pub unsafe extern "C" fn kcpx_conn_send(c: *mut kcpx_conn, buf: *const c_void, len: usize) -> c_int {
    guard(KCPX_ERR_INTERNAL, || {
        // One byte past INT_MAX is enough to tell that `len` is too large.
        let data = try_slice_or_empty!(buf, len.min(c_int::MAX as usize + 1), KCPX_ERR_NULL);
        if data.len() > c_int::MAX as usize {
            return KCPX_ERR_TOO_LARGE;
        }
        code_of(try_mut!(c, KCPX_ERR_NULL).conn.send(data), count)
    })
}

/// Receives into `buf`. Message mode: the next whole message, or
/// KCPX_ERR_BUFFER_TOO_SMALL (grow the buffer to `kcpx_conn_peeksize`).
/// Stream mode: as many of the next bytes as fit, whatever `len` is.
/// Returns the length, or KCPX_ERR_AGAIN (nothing complete yet),
/// KCPX_ERR_NULL.
///
/// # Safety
/// `c` is NULL or live; `buf` is NULL or writable for `len` bytes.
#[no_mangle]
pub unsafe extern "C" fn kcpx_conn_recv(c: *mut kcpx_conn, buf: *mut c_void, len: usize) -> c_int {
    guard(KCPX_ERR_INTERNAL, || {
        let out = try_slice_mut!(buf, len.min(c_int::MAX as usize), KCPX_ERR_NULL);
        code_of(try_mut!(c, KCPX_ERR_NULL).conn.recv(out), count)
    })
}

/// Size of the next complete message, or KCPX_ERR_AGAIN / KCPX_ERR_NULL.
///
/// # Safety
/// `c` is NULL or live.
#[no_mangle]
pub unsafe extern "C" fn kcpx_conn_peeksize(c: *const kcpx_conn) -> c_int {
    guard(KCPX_ERR_INTERNAL, || {
        try_ref!(c, KCPX_ERR_NULL)
            .conn
            .peek_size()
            .map_or(KCPX_ERR_AGAIN, count)
    })
}

/// Segments queued or in flight (use it to throttle: the send queue is
/// unbounded), or KCPX_ERR_NULL.
///
/// # Safety
/// `c` is NULL or live.
#[no_mangle]
pub unsafe extern "C" fn kcpx_conn_waitsnd(c: *const kcpx_conn) -> c_int {
    guard(KCPX_ERR_INTERNAL, || count(try_ref!(c, KCPX_ERR_NULL).conn.wait_snd()))
}

/// Hands the datagrams produced so far to the output callback, with no
/// Rust borrow of the connection alive (the callback may re-enter).
///
/// # Safety
/// `c` is live.
unsafe fn deliver(c: *mut kcpx_conn) {
    // SAFETY: `c` is live (this function's contract); the reference ends
    // before the callbacks run, so it is the only one.
    let Some(k) = (unsafe { opt_mut(c) }) else { return };
    let (output, user) = (k.output, k.user);
    let mut outbox = core::mem::take(&mut k.outbox);
    for d in outbox.iter() {
        // SAFETY: `output` is the caller's callback, which kcpx_conn_new
        // documents to receive (pointer, length, user); `d` lives in
        // `outbox`, owned by this frame, so a callback that re-enters kcpx
        // cannot free or move it.
        unsafe { output(d.as_ptr(), d.len(), user) };
    }
    // SAFETY: still live: kcpx_conn_new forbids the callback to free the
    // connection; re-derived because the callbacks may have used it.
    if let Some(k) = unsafe { opt_mut(c) } {
        if k.outbox.is_empty() {
            outbox.clear();
            k.outbox = outbox;
        }
    }
}

/// Sends `len` bytes as one unreliable message (kcp-go's out-of-band
/// packet): sealed and handed to the output callback before this returns,
/// never retransmitted, never FEC-protected, not ordered with the stream or
/// other messages. Returns `len`, KCPX_ERR_TOO_LARGE (over
/// `kcpx_conn_datagram_max`), KCPX_ERR_AGAIN (the rate limit of
/// `kcpx_conn_set_rate_limit` has no room for it now; not sent),
/// KCPX_ERR_NULL (`c` NULL, or `buf` NULL with `len` > 0). `len` 0 sends an empty message. Never send one to a kcp-go
/// 5.6.1 peer: it reads it as a KCP segment of conversation 0xFFFFFFFF.
///
/// # Safety
/// `c` is NULL or live; `buf` is NULL or readable for `len` bytes.
#[no_mangle]
pub unsafe extern "C" fn kcpx_conn_send_datagram(c: *mut kcpx_conn, buf: *const c_void, len: usize) -> c_int {
    guard(KCPX_ERR_INTERNAL, || {
        let data = try_slice_or_empty!(buf, len, KCPX_ERR_NULL);
        let k = try_mut!(c, KCPX_ERR_NULL);
        let r = k.conn.send_datagram(data, &mut k.outbox);
        // SAFETY: `c` is live (not NULL, checked above; this export's
        // contract) and the reference above is not used again.
        unsafe { deliver(c) };
        code_of(r, count)
    })
}

/// Copies the oldest unreliable message received into `buf` and removes
/// it. Returns its length (0 for an empty message), KCPX_ERR_AGAIN (none
/// waiting), KCPX_ERR_BUFFER_TOO_SMALL (it stays: `buf` must hold
/// `kcpx_conn_datagram_max` bytes of the peer's MTU), KCPX_ERR_NULL. At
/// most 64 messages (64 KiB) wait; beyond, the oldest are dropped and
/// counted (`datagrams_dropped`).
///
/// # Safety
/// `c` is NULL or live; `buf` is NULL or writable for `len` bytes.
#[no_mangle]
pub unsafe extern "C" fn kcpx_conn_recv_datagram(c: *mut kcpx_conn, buf: *mut c_void, len: usize) -> c_int {
    guard(KCPX_ERR_INTERNAL, || {
        let out = try_slice_mut!(buf, len, KCPX_ERR_NULL);
        code_of(try_mut!(c, KCPX_ERR_NULL).conn.recv_datagram(out), count)
    })
}

/// The longest unreliable message `kcpx_conn_send_datagram` takes (kcp-go's
/// GetOOBMaxSize: the MTU less the crypto header, the 8-byte out-of-band
/// header and the 4-byte conv; 1,368 with the defaults and a CFB cipher,
/// 1,360 with AES-GCM), or
/// KCPX_ERR_NULL.
///
/// # Safety
/// `c` is NULL or live.
#[no_mangle]
pub unsafe extern "C" fn kcpx_conn_datagram_max(c: *const kcpx_conn) -> c_int {
    guard(KCPX_ERR_INTERNAL, || {
        count(try_ref!(c, KCPX_ERR_NULL).conn.datagram_max())
    })
}

/// Caps what `c` sends from now on, as `kcpx_config_set_rate_limit` does
/// for new connections (`bytes_per_sec` 0 removes the cap); the bucket
/// starts full. Tokens accrue on the connection's clock (the `now_ms` of
/// `kcpx_conn_update` and `kcpx_conn_input`); `kcpx_conn_check` says when
/// held-back data can go. Returns KCPX_OK or KCPX_ERR_NULL.
///
/// # Safety
/// `c` is NULL or live.
#[no_mangle]
pub unsafe extern "C" fn kcpx_conn_set_rate_limit(c: *mut kcpx_conn, bytes_per_sec: u32, burst: u32) -> c_int {
    guard(KCPX_ERR_INTERNAL, || {
        try_mut!(c, KCPX_ERR_NULL)
            .conn
            .set_rate_limit(RateLimit::new(bytes_per_sec, burst));
        KCPX_OK
    })
}

/// Advances the clock to `now_ms` (milliseconds, any origin, wrapping) and
/// sends what is due through the output callback. Call it every interval
/// or when `kcpx_conn_check` says. NULL is ignored.
///
/// # Safety
/// `c` is NULL or live.
#[no_mangle]
pub unsafe extern "C" fn kcpx_conn_update(c: *mut kcpx_conn, now_ms: u32) {
    guard((), || {
        let k = try_mut!(c);
        if k.outbox.is_empty() && k.conn.shed_if_quiet() {
            k.outbox = Outbox::default();
        }
        k.conn.update(now_ms, &mut k.outbox);
        // SAFETY: `c` is live (not NULL, checked above; this export's
        // contract) and the reference above is not used again.
        unsafe { deliver(c) };
    })
}

/// Sends what is due now (e.g. right after `kcpx_conn_send`, as kcp-go
/// does on every write) without waiting for the next update. NULL is
/// ignored.
///
/// # Safety
/// `c` is NULL or live.
#[no_mangle]
pub unsafe extern "C" fn kcpx_conn_flush(c: *mut kcpx_conn) {
    guard((), || {
        let k = try_mut!(c);
        k.conn.flush(&mut k.outbox);
        // SAFETY: `c` is live (not NULL, checked above; this export's
        // contract) and the reference above is not used again.
        unsafe { deliver(c) };
    })
}

/// When to call `kcpx_conn_update` next: an absolute time in ms, at most
/// one interval after `now_ms`. NULL returns `now_ms`.
///
/// # Safety
/// `c` is NULL or live.
#[no_mangle]
pub unsafe extern "C" fn kcpx_conn_check(c: *const kcpx_conn, now_ms: u32) -> u32 {
    guard(now_ms, || try_ref!(c, now_ms).conn.check(now_ms))
}

/// Copies the connection's counters into `*out`. Returns KCPX_OK or
/// KCPX_ERR_NULL.
///
/// # Safety
/// `c` is NULL or live; `out` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn kcpx_conn_stats(c: *const kcpx_conn, out: *mut kcpx_stats) -> c_int {
    guard(KCPX_ERR_INTERNAL, || {
        let k = try_ref!(c, KCPX_ERR_NULL);
        try_out!(out, KCPX_ERR_NULL).write(k.conn.stats().into());
        KCPX_OK
    })
}

/// Reads the conversation id of a datagram made with `cfg`'s FEC and crypto
/// settings into `*conv`: what a server needs to create the connection of a
/// new peer (kcp-go clients pick a random conv). Decrypts a copy, with a
/// key schedule per call, so use it for datagrams from unknown peers only.
/// Returns KCPX_OK, KCPX_ERR_NULL, KCPX_ERR_CHECKSUM, KCPX_ERR_SHORT, or
/// KCPX_ERR_AGAIN for an FEC parity datagram (no KCP header: wait for the
/// next one).
///
/// # Safety
/// `cfg` is NULL or live; `datagram` NULL or readable for `len` bytes;
/// `conv` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn kcpx_conv_of(
    cfg: *const kcpx_config,
    datagram: *const u8,
    len: usize,
    conv: *mut u32,
) -> c_int {
    guard(KCPX_ERR_INTERNAL, || {
        let d = try_slice!(datagram, len, KCPX_ERR_NULL);
        let out = try_out!(conv, KCPX_ERR_NULL);
        let c = try_ref!(cfg, KCPX_ERR_NULL);
        code_of(crate::conn::conv_of(&c.cfg.endpoint.conn, d), |v| {
            out.write(v);
            KCPX_OK
        })
    })
}

/// Derives a key from a password as kcptun does (PBKDF2-HMAC-SHA1, salt
/// "kcp-go", 4096 rounds) into `key[0..key_len]`: 16, 24 or 32 bytes for
/// aes-128/192/256 (kcptun's default "aes" uses 32). Returns KCPX_OK,
/// KCPX_ERR_NULL or KCPX_ERR_INVALID (key_len 0 or over 64).
///
/// # Safety
/// `password` is NULL or readable for `password_len` bytes; `key` is NULL
/// or writable for `key_len` bytes.
#[no_mangle]
pub unsafe extern "C" fn kcpx_key_from_password(
    password: *const u8,
    password_len: usize,
    key: *mut u8,
    key_len: usize,
) -> c_int {
    guard(KCPX_ERR_INTERNAL, || {
        let p = try_slice_or_empty!(password, password_len, KCPX_ERR_NULL);
        let out = try_slice_mut!(key, key_len, KCPX_ERR_NULL);
        if out.is_empty() || out.len() > 64 {
            return KCPX_ERR_INVALID;
        }
        out.copy_from_slice(&key_from_password(p, out.len()));
        KCPX_OK
    })
}

/// A static, NUL-terminated English description of a KCPX_* code (never
/// NULL; unknown codes get "unknown error"). Do not free it.
#[no_mangle]
pub extern "C" fn kcpx_strerror(code: c_int) -> *const c_char {
    guard(c"unknown error".as_ptr(), || crate::error::describe(code).as_ptr())
}
