//! `ikcp_*`: the binary drop-in for ikcp.c 1.7.1.
//!
//! Each `ikcpcb*` handed to C points into a core `Kcp<HookAlloc, Block>`:
//! at its scalar store, a `Block`, which *is* `struct IKCPCB` (exact v1
//! layout) followed by guard words. The core's scalars (`Vars`, `Tuning`)
//! are embedded in it at ikcp.h's offsets, so the fields C reads and writes
//! are the core's state itself: nothing is copied in or out. Only the
//! fields that describe memory the core owns (the queue counters,
//! `acklist`, `ackcount`, `ackblock`, `buffer`) are stored by `publish`
//! before control passes to C. See ARCHITECTURE.md, "The `IKCPCB` struct".
//!
//! Callbacks (`output`, `writelog`) run with no Rust borrow alive: the
//! core is re-derived from the raw pointer after each one, so C may call
//! any `ikcp_*` function from inside them.
//!
//! Since the struct is part of the larger `Kcp`, Rust callers pass the
//! pointer `ikcp_create` returned (or raw pointers cast from it), never one
//! made from a reference to the struct: a reference covers only the
//! struct's own bytes, and reaching the rest of the core through it is
//! undefined behaviour under Stacked Borrows (Miri reports it). C callers
//! are unaffected.

use super::alloc::{raw_free, raw_malloc, HookAlloc};
use super::ptr::{guard, opt_slice, opt_slice_mut};
use crate::kcp::{FlushBuf, InputError, Kcp, MtuError, NoDelay, RecvError, Scalars, Tuning, Vars};
use core::ffi::{c_char, c_int, c_long, c_void};
use core::num::NonZeroU32;
use core::ops::{Deref, DerefMut};

/// 32-bit unsigned integer (`unsigned int` on LP64 platforms).
pub type IUINT32 = u32;
/// 32-bit signed integer.
pub type IINT32 = i32;

/// Doubly linked list head of ikcp.h. kcpx keeps its queues elsewhere:
/// the four heads in `IKCPCB` are always empty lists (pointing to themselves).
#[repr(C)]
pub struct IQUEUEHEAD {
    pub next: *mut IQUEUEHEAD,
    pub prev: *mut IQUEUEHEAD,
}

/// Segment type of ikcp.h, declared for source compatibility only: kcpx
/// never hands segments to C.
#[repr(C)]
pub struct IKCPSEG {
    pub node: IQUEUEHEAD,
    pub conv: IUINT32,
    pub cmd: IUINT32,
    pub frg: IUINT32,
    pub wnd: IUINT32,
    pub ts: IUINT32,
    pub sn: IUINT32,
    pub una: IUINT32,
    pub len: IUINT32,
    pub resendts: IUINT32,
    pub rto: IUINT32,
    pub fastack: IUINT32,
    pub xmit: IUINT32,
    pub data: [c_char; 1],
}

/// The KCP control block, with the exact field layout of ikcp.c 1.7.1.
///
/// The scalars (`conv` to `incr`, `fastresend` to `logmask`) are kcpx's
/// state itself, as in ikcp.c: a field C writes between calls (or inside a
/// callback) is what the next step uses. Writing `snd_una`, `snd_nxt` or
/// `rcv_nxt` breaks the protocol, as it does with ikcp.c. `user`, `output`
/// and `writelog` are C's. The four `n*_buf`/`n*_que` counters, `acklist`,
/// `ackcount`, `ackblock` and `buffer` describe memory kcpx owns and are
/// rewritten whenever control passes to C (writes to them are ignored):
/// `acklist` points at the pending (sn, ts) pairs and `buffer` at the flush
/// buffer (NULL when idle). The queue heads are always empty lists.
#[repr(C)]
pub struct IKCPCB {
    pub conv: IUINT32,
    pub mtu: IUINT32,
    pub mss: IUINT32,
    pub state: IUINT32,
    pub snd_una: IUINT32,
    pub snd_nxt: IUINT32,
    pub rcv_nxt: IUINT32,
    pub ts_recent: IUINT32,
    pub ts_lastack: IUINT32,
    pub ssthresh: IUINT32,
    pub rx_rttval: IINT32,
    pub rx_srtt: IINT32,
    pub rx_rto: IINT32,
    pub rx_minrto: IINT32,
    pub snd_wnd: IUINT32,
    pub rcv_wnd: IUINT32,
    pub rmt_wnd: IUINT32,
    pub cwnd: IUINT32,
    pub probe: IUINT32,
    pub current: IUINT32,
    pub interval: IUINT32,
    pub ts_flush: IUINT32,
    pub xmit: IUINT32,
    pub nrcv_buf: IUINT32,
    pub nsnd_buf: IUINT32,
    pub nrcv_que: IUINT32,
    pub nsnd_que: IUINT32,
    pub nodelay: IUINT32,
    pub updated: IUINT32,
    pub ts_probe: IUINT32,
    pub probe_wait: IUINT32,
    pub dead_link: IUINT32,
    pub incr: IUINT32,
    pub snd_queue: IQUEUEHEAD,
    pub rcv_queue: IQUEUEHEAD,
    pub snd_buf: IQUEUEHEAD,
    pub rcv_buf: IQUEUEHEAD,
    pub acklist: *mut IUINT32,
    pub ackcount: IUINT32,
    pub ackblock: IUINT32,
    pub user: *mut c_void,
    pub buffer: *mut c_char,
    pub fastresend: c_int,
    pub fastlimit: c_int,
    pub nocwnd: c_int,
    pub stream: c_int,
    pub logmask: c_int,
    /// Called with each datagram to send; the return value is ignored.
    pub output:
        Option<unsafe extern "C" fn(buf: *const c_char, len: c_int, kcp: *mut IKCPCB, user: *mut c_void) -> c_int>,
    /// Called with each log line (see `logmask`).
    pub writelog: Option<unsafe extern "C" fn(log: *const c_char, kcp: *mut IKCPCB, user: *mut c_void)>,
}

/// The name C code uses for the control block.
#[allow(non_camel_case_types)]
pub type ikcpcb = IKCPCB;

#[cfg(all(target_pointer_width = "64", not(windows)))]
const _: () = {
    use core::mem::{offset_of, size_of};
    assert!(offset_of!(IKCPCB, rx_minrto) == 52);
    assert!(offset_of!(IKCPCB, incr) == 128);
    assert!(offset_of!(IKCPCB, snd_queue) == 136);
    assert!(offset_of!(IKCPCB, acklist) == 200);
    assert!(offset_of!(IKCPCB, user) == 216);
    assert!(offset_of!(IKCPCB, fastresend) == 232);
    assert!(offset_of!(IKCPCB, logmask) == 248);
    assert!(offset_of!(IKCPCB, output) == 256);
    assert!(offset_of!(IKCPCB, writelog) == 264);
    assert!(size_of::<IKCPCB>() == 272);
    assert!(size_of::<IKCPSEG>() == 72 && offset_of!(IKCPSEG, data) == 64);
};

/// The output callback's type.
type OutputFn = unsafe extern "C" fn(buf: *const c_char, len: c_int, kcp: *mut IKCPCB, user: *mut c_void) -> c_int;
/// The log callback's type.
type WritelogFn = unsafe extern "C" fn(log: *const c_char, kcp: *mut IKCPCB, user: *mut c_void);

/// What an `ikcpcb*` points at: `struct IKCPCB` as the core's scalar store
/// (the same bytes as [`IKCPCB`], field for field, with the core's [`Vars`]
/// and [`Tuning`] embedded where ikcp.h has those fields; asserted below),
/// then guard words. It lives inside the core `Kcp` (see [`Core`]).
#[repr(C)]
pub(crate) struct Block {
    vars: Vars,
    queues: [IQUEUEHEAD; 4],
    acklist: *mut IUINT32,
    ackcount: IUINT32,
    ackblock: IUINT32,
    user: *mut c_void,
    buffer: *mut c_char,
    tuning: Tuning,
    /// The padding after `logmask` on 64-bit targets, a field here so that
    /// it is initialised and readable (see [`check_layout`]).
    #[cfg(target_pointer_width = "64")]
    logmask_pad: u32,
    output: Option<OutputFn>,
    writelog: Option<WritelogFn>,
    /// Guard words right after the 1.7.1 struct: a program compiled against
    /// another `ikcp.h` whose `struct IKCPCB` is larger (upstream's 2.x: 296
    /// bytes, `logmask`, `output` and `writelog` at 272, 280 and 288) writes
    /// here instead of into the core. See [`check_layout`].
    tail: [u64; TAIL_WORDS],
}

impl Deref for Block {
    type Target = Vars;
    #[inline]
    fn deref(&self) -> &Vars {
        &self.vars
    }
}

impl DerefMut for Block {
    #[inline]
    fn deref_mut(&mut self) -> &mut Vars {
        &mut self.vars
    }
}

impl Scalars for Block {
    #[inline]
    fn tuning(&self) -> &Tuning {
        &self.tuning
    }
    #[inline]
    fn tuning_mut(&mut self) -> &mut Tuning {
        &mut self.tuning
    }
    /// Log lines are produced only while a `writelog` callback is installed.
    #[inline]
    fn logging(&self) -> bool {
        self.writelog.is_some()
    }
}

/// The core behind an `ikcpcb*`: its [`Block`] is the C struct.
type Core = Kcp<HookAlloc, Block>;

/// Where the [`Block`] (the `ikcpcb*` C sees) lies inside a [`Core`].
const BLOCK_OFFSET: usize = core::mem::offset_of!(Core, v);

// `ikcp_create` places a `Core` in one block from the malloc-like hooks,
// which align for any fundamental type (at least 8 bytes, as `HookAlloc`
// assumes too).
const _: () = assert!(core::mem::align_of::<Core>() <= 8);

/// Every field of [`IKCPCB`] sits at the same offset in [`Block`], so the
/// header cbindgen generates from `IKCPCB` describes the memory the core
/// uses.
const _: () = {
    use core::mem::{align_of, offset_of, size_of};
    macro_rules! same {
        ($part:ident: $ty:ty => $($field:ident)*) => {
            $(assert!(offset_of!(IKCPCB, $field) == offset_of!(Block, $part) + offset_of!($ty, $field));)*
        };
        ($($field:ident)*) => {
            $(assert!(offset_of!(IKCPCB, $field) == offset_of!(Block, $field));)*
        };
    }
    same!(vars: Vars => conv mtu mss state snd_una snd_nxt rcv_nxt ts_recent ts_lastack ssthresh rx_rttval
        rx_srtt rx_rto rx_minrto snd_wnd rcv_wnd rmt_wnd cwnd probe current interval ts_flush xmit nrcv_buf
        nsnd_buf nrcv_que nsnd_que nodelay updated ts_probe probe_wait dead_link incr);
    same!(tuning: Tuning => fastresend fastlimit nocwnd stream logmask);
    same!(acklist ackcount ackblock user buffer output writelog);
    assert!(offset_of!(IKCPCB, snd_queue) == offset_of!(Block, queues));
    assert!(offset_of!(IKCPCB, rcv_buf) == offset_of!(Block, queues) + 3 * size_of::<IQUEUEHEAD>());
    assert!(size_of::<Vars>() == offset_of!(IKCPCB, incr) + 4);
    assert!(size_of::<Tuning>() == offset_of!(IKCPCB, logmask) + 4 - offset_of!(IKCPCB, fastresend));
    assert!(size_of::<IKCPCB>() == offset_of!(Block, tail));
    assert!(align_of::<Block>() == align_of::<IKCPCB>());
};

/// Guard words after `struct IKCPCB`: enough to cover upstream 2.x's larger struct.
const TAIL_WORDS: usize = 3;
/// What the guard words hold until a program built against another header
/// writes there: any value that is neither 0 nor a plausible pointer.
const TAIL: u64 = u64::from_be_bytes(*b"kcpx171\0");

/// The 4 padding bytes after `logmask` on LP64 (0 unless a program built
/// against a pre-1.7 `ikcp.h`, without `fastlimit`, stored its `output`
/// pointer at offset 248, which covers `logmask` and this padding).
#[inline]
fn logmask_pad(b: &Block) -> u32 {
    #[cfg(all(target_pointer_width = "64", not(windows)))]
    return b.logmask_pad;
    #[cfg(not(all(target_pointer_width = "64", not(windows))))]
    {
        let _ = b;
        0
    }
}

/// Aborts, naming the cause, when the program wrote where no `ikcp.h` 1.7.1
/// field is: it was compiled against another version of the header, and
/// going on would mean calling function pointers from the wrong offsets or
/// having corrupted memory. Cheap: a few word compares on every non-idle call.
#[inline]
fn check_layout(k: &Core) {
    let b = &k.v;
    if b.tail != [TAIL; TAIL_WORDS] || logmask_pad(b) != 0 {
        layout_mismatch(b);
    }
}

#[cold]
#[inline(never)]
fn layout_mismatch(b: &Block) -> ! {
    let size = core::mem::size_of::<IKCPCB>();
    let written: Vec<String> = b
        .tail
        .iter()
        .enumerate()
        .filter(|(_, w)| **w != TAIL)
        .map(|(i, _)| format!("{}..{}", size + 8 * i, size + 8 * i + 8))
        .collect();
    let cause = if written.is_empty() {
        format!(
            "it stored a pointer at offset {}, where ikcp.c 1.7.1's struct has `int logmask` and padding: the \
             program was compiled against an ikcp.h older than 1.7, without the `fastlimit` field, which puts \
             `output` at offset 248 instead of 256",
            core::mem::offset_of!(IKCPCB, logmask)
        )
    } else {
        format!(
            "it wrote past the end of ikcp.c 1.7.1's {size}-byte struct IKCPCB (bytes {}): the program was \
             compiled against a larger struct IKCPCB, such as upstream's ikcp.h 2.x (296 bytes; `logmask`, \
             `output` and `writelog` at offsets 272, 280 and 288)",
            written.join(", ")
        )
    };
    fatal(&format!(
        "kcpx: fatal: ikcpcb {:p}: {cause}. libkcpx implements the ABI of ikcp.c 1.7.1: recompile the program \
         with kcpx's include/ikcp.h, or upstream's ikcp.h from tag 1.7.1 (branch v1). Aborting before memory \
         is corrupted.\n",
        b as *const Block
    ))
}

/// Writes `message` to stderr and aborts, as ikcp.c's `assert` does.
#[cold]
fn fatal(message: &str) -> ! {
    use std::io::Write;
    let _ = std::io::stderr().write_all(message.as_bytes());
    std::process::abort()
}

/// The output callback is NULL when a datagram must go out: ikcp.c asserts
/// here; kcpx says why.
#[cold]
#[inline(never)]
fn no_output(kcp: *const ikcpcb) -> ! {
    fatal(&format!(
        "kcpx: fatal: ikcpcb {kcp:p} has a datagram to send but kcp->output is NULL (ikcp.c 1.7.1 asserts here \
         too). Set it with ikcp_setoutput(kcp, fn) or kcp->output = fn before calling ikcp_update or \
         ikcp_flush. If the program does set kcp->output, it was compiled against an ikcp.h whose struct \
         IKCPCB differs from ikcp.c 1.7.1's, which has `output` at offset 256 (ikcp.h copies older than 1.7, \
         without `fastlimit`, put it at 248): recompile it with kcpx's include/ikcp.h.\n"
    ))
}

/// The core behind `kcp`, or None for NULL.
///
/// # Safety
/// `kcp` is NULL or *live*: returned by [`ikcp_create`] and not yet passed
/// to [`ikcp_release`] (every export's `# Safety` puts this on its caller).
/// No other reference to the core may be alive while the result is: each
/// ikcpcb is used by one thread at a time (ikcp_create's rule), and the
/// result must be dropped before a user callback runs (which may call any
/// export on `kcp`); callers re-derive it afterwards.
#[inline]
unsafe fn handle<'a>(kcp: *const ikcpcb) -> Option<&'a mut Core> {
    if kcp.is_null() {
        return None;
    }
    // SAFETY: a live `kcp` points `BLOCK_OFFSET` bytes into the `Core` that
    // ikcp_create wrote into one malloc'd block (aligned, initialised, its
    // provenance the whole block); the block is writable even when C passes
    // the pointer as `const`; exclusivity is the caller's (above).
    unsafe { ((kcp as *mut u8).sub(BLOCK_OFFSET) as *mut Core).as_mut() }
}

/// Stores what the struct shows of memory the core owns: the queue
/// counters, `acklist`, `ackcount`, `ackblock`, `buffer`. The one step
/// before control passes to C (a return or a callback); nothing is ever
/// copied the other way, since the scalars live in the struct.
#[inline]
fn publish(k: &mut Core) {
    k.count_queues();
    let (acklist, ackcount, ackblock, buffer) = (k.acklist_ptr(), k.ackcount(), k.ackblock(), k.buffer_ptr());
    let b = &mut k.v;
    b.acklist = acklist as *mut IUINT32;
    (b.ackcount, b.ackblock) = (ackcount, ackblock);
    b.buffer = buffer as *mut c_char;
}

/// Runs `op` on the core, publishes what it changed, then hands the log
/// lines it produced to `writelog`.
///
/// # Safety
/// `kcp` is NULL or live (see [`handle`]).
#[inline]
unsafe fn with_core<T>(kcp: *const ikcpcb, fallback: T, op: impl FnOnce(&mut Core) -> T) -> T {
    // SAFETY: `kcp` is NULL or live and unborrowed (this function's
    // contract, which is `handle`'s).
    let Some(k) = (unsafe { handle(kcp) }) else {
        return fallback;
    };
    check_layout(k);
    let r = op(k);
    publish(k);
    // SAFETY: `kcp` is live (it was not NULL above) and `k`, the only
    // reference, is not used again.
    unsafe { deliver_logs(kcp as *mut ikcpcb) };
    r
}

/// Calls `writelog` for each queued log line, in order.
///
/// # Safety
/// `kcp` is live; no borrow of the handle is held by the caller.
#[inline]
unsafe fn deliver_logs(kcp: *mut ikcpcb) {
    // SAFETY: live and unborrowed (this function's contract); the
    // reference ends within the condition.
    if unsafe { handle(kcp) }.is_some_and(|k| k.has_logs()) {
        // SAFETY: this function's contract, which is the callee's.
        unsafe { deliver_queued_logs(kcp) }
    }
}

/// The part of [`deliver_logs`] that runs when logging is on.
///
/// # Safety
/// As [`deliver_logs`].
#[cold]
unsafe fn deliver_queued_logs(kcp: *mut ikcpcb) {
    // SAFETY: live and unborrowed (this function's contract); `k` is not
    // used after the loop's first callback.
    let Some(k) = (unsafe { handle(kcp) }) else { return };
    let lines = k.take_logs();
    for (_, line) in lines.iter() {
        // SAFETY: still live (a callback must not release `kcp`: ikcp_release's
        // rule) and re-derived after each callback, which may have used it.
        let (writelog, user) = match unsafe { handle(kcp) } {
            Some(k) => (k.v.writelog, k.v.user),
            None => return,
        };
        if let Some(writelog) = writelog {
            // SAFETY: `writelog` is the user's callback with ikcp.h's
            // signature; `line` ends in NUL and is owned by `lines`, a local
            // the callback cannot reach; no Rust reference to the core is alive.
            unsafe { writelog(line.as_ptr() as *const c_char, kcp, user) };
        }
    }
    // SAFETY: still live and re-derived after the callbacks, as above.
    if let Some(k) = unsafe { handle(kcp) } {
        check_layout(k);
        k.restore_logs(lines);
    }
}

/// Runs a whole flush, calling `output` for each datagram.
///
/// A callback of a flush in progress may run another one (ikcp_flush or
/// ikcp_update from `output` or `writelog`). In ikcp.c, whose flush state is
/// in locals, the inner flush runs completely and the outer one then goes on
/// where it was: so here, the inner flush keeps the outer one's state and
/// gives it back when done. The common, outer flush copies nothing.
///
/// # Safety
/// `kcp` is live (see [`handle`]); its layout was checked.
unsafe fn run_flush(kcp: *mut ikcpcb) {
    // SAFETY: live and unborrowed (this function's contract).
    let Some(k) = (unsafe { handle(kcp) }) else { return };
    let outer = k.flush_in_progress().then(|| k.suspend_flush());
    // SAFETY: this function's contract; `k` is not used again.
    unsafe { flush_datagrams(kcp) };
    if let Some(cursor) = outer {
        // SAFETY: still live (callbacks must not release it), re-derived
        // after the flush's callbacks.
        if let Some(k) = unsafe { handle(kcp) } {
            k.resume_flush(cursor);
        }
    }
}

/// The body of [`run_flush`].
///
/// # Safety
/// As [`run_flush`].
unsafe fn flush_datagrams(kcp: *mut ikcpcb) {
    // SAFETY: live and unborrowed (this function's contract).
    let Some(k) = (unsafe { handle(kcp) }) else { return };
    k.begin_flush();
    if !k.flush_in_progress() {
        publish(k); // an idle connection: nothing to emit
        return;
    }
    let mut buf: FlushBuf<HookAlloc> = k.take_flush_buffer();
    loop {
        // SAFETY: still live (callbacks must not release it); re-derived at
        // each turn, and the reference ends before the callbacks below.
        let Some(k) = (unsafe { handle(kcp) }) else { return };
        let more = k.flush_next(&mut buf);
        publish(k);
        // SAFETY: live, and `k` is not used again.
        unsafe { deliver_logs(kcp) };
        if !more {
            break;
        }
        // SAFETY: still live, re-derived after the log callbacks.
        let Some(k) = (unsafe { handle(kcp) }) else { return };
        let (output, user) = (k.v.output, k.v.user);
        let Some(output) = output else {
            no_output(kcp) // ikcp.c asserts, empty datagram or not
        };
        if buf.is_empty() {
            continue; // ikcp.c logs an empty output but does not send it
        }
        // SAFETY: `output` is the user's callback with ikcp.h's signature;
        // `buf` is owned by this frame, so the callback re-entering kcpx
        // cannot free or move it; no Rust reference to the core is alive.
        let d = buf.as_slice();
        unsafe { output(d.as_ptr() as *const c_char, d.len() as c_int, kcp, user) };
        // SAFETY: still live, re-derived after the callback.
        if let Some(k) = unsafe { handle(kcp) } {
            check_layout(k);
        }
    }
    // SAFETY: still live, re-derived after the last callback.
    if let Some(k) = unsafe { handle(kcp) } {
        k.restore_flush_buffer(buf);
        publish(k);
    }
}

/// Creates a control block for conversation `conv` (both ends must use the
/// same). `user` is passed to the callbacks. Defaults as ikcp.c: MTU 1400,
/// windows 32/128, interval 100 ms, RTO 200 ms, no output callback — set
/// one with [`ikcp_setoutput`] or `kcp->output = fn`.
///
/// Memory comes from the `ikcp_allocator` hooks. Returns NULL when it
/// cannot be allocated. Free with [`ikcp_release`].
///
/// Thread-safety: an ikcpcb is not thread-safe; use each one from one
/// thread at a time (distinct objects may be used concurrently).
#[no_mangle]
pub extern "C" fn ikcp_create(conv: IUINT32, user: *mut c_void) -> *mut ikcpcb {
    guard(core::ptr::null_mut(), || {
        let p = raw_malloc(core::mem::size_of::<Core>()) as *mut Core;
        if p.is_null() {
            return core::ptr::null_mut();
        }
        let empty = || IQUEUEHEAD {
            next: core::ptr::null_mut(),
            prev: core::ptr::null_mut(),
        };
        let block = Block {
            vars: Vars::new(conv),
            queues: [empty(), empty(), empty(), empty()],
            acklist: core::ptr::null_mut(),
            ackcount: 0,
            ackblock: 0,
            user,
            buffer: core::ptr::null_mut(),
            tuning: Tuning::new(),
            #[cfg(target_pointer_width = "64")]
            logmask_pad: 0,
            output: None,
            writelog: None,
            tail: [TAIL; TAIL_WORDS],
        };
        // SAFETY: `p` is a fresh block of the right size from a malloc-like
        // allocator (suitably aligned); it is initialised before any read.
        unsafe {
            p.write(Kcp::with_scalars(block, HookAlloc));
            let k = &mut *p;
            for head in &mut k.v.queues {
                let me: *mut IQUEUEHEAD = head;
                head.next = me;
                head.prev = me;
            }
            publish(k);
            (p as *mut u8).add(BLOCK_OFFSET) as *mut ikcpcb
        }
    })
}

/// Releases a control block and everything it holds. NULL is ignored.
/// `kcp` must not be used afterwards, nor released from inside one of its
/// own callbacks.
///
/// # Safety
/// `kcp` is NULL or a live pointer from [`ikcp_create`].
#[no_mangle]
pub unsafe extern "C" fn ikcp_release(kcp: *mut ikcpcb) {
    guard((), || {
        if kcp.is_null() {
            return;
        }
        // SAFETY: `kcp` lies `BLOCK_OFFSET` bytes into a live `Core` from
        // ikcp_create; it is dropped once, then its memory is returned to the
        // allocator it came from.
        unsafe {
            let p = (kcp as *mut u8).sub(BLOCK_OFFSET) as *mut Core;
            core::ptr::drop_in_place(p);
            raw_free(p as *mut c_void);
        }
    })
}

/// Sets the output callback (same as writing `kcp->output`). It receives
/// each datagram to send; its return value is ignored. It must be set before
/// the first datagram goes out: kcpx aborts with a message on stderr if it is
/// NULL then (ikcp.c asserts). NULL `kcp` is ignored.
///
/// # Safety
/// `kcp` is NULL or live.
#[no_mangle]
pub unsafe extern "C" fn ikcp_setoutput(
    kcp: *mut ikcpcb,
    output: Option<unsafe extern "C" fn(buf: *const c_char, len: c_int, kcp: *mut ikcpcb, user: *mut c_void) -> c_int>,
) {
    guard((), || {
        // SAFETY: `kcp` is NULL or live, as this export's `# Safety` obliges
        // the caller; no other reference to its core is alive (none is held
        // across a callback).
        if let Some(k) = unsafe { handle(kcp) } {
            k.v.output = output;
        }
    })
}

// ----- the C conventions over the core's typed API -----

/// ikcp_send's codes: bytes queued, -1 for `len < 0`, -3 for an MSS that C
/// code set outside `1..=INT_MAX` (ikcp.c divides by zero at 0), -2 for too
/// many fragments or no memory. `data` None is a NULL buffer: zero bytes.
fn send(k: &mut Core, data: Option<&[u8]>, len: c_int) -> c_int {
    let Ok(len) = usize::try_from(len) else { return -1 };
    if k.mss() == 0 || k.mss() > i32::MAX as u32 {
        return -3;
    }
    k.enqueue(data, len).map_or(-2, |n| n as c_int)
}

/// ikcp_recv's codes: the size, or -1 empty, -2 incomplete, -3 too small. A
/// negative `len` peeks with `|len|` bytes of room; `INT_MIN`, whose
/// negation stays negative in C, has less room than any message needs.
/// `buf` None is a NULL buffer: nothing is copied.
fn recv(k: &mut Core, buf: Option<&mut [u8]>, len: c_int) -> c_int {
    let result = match len {
        c_int::MIN => k.next_message().and(Err(RecvError::BufferTooSmall)),
        _ => k.take(buf, len.unsigned_abs() as usize, len < 0),
    };
    match result {
        Ok(n) => n as c_int,
        Err(RecvError::Empty) => -1,
        Err(RecvError::Incomplete) => -2,
        Err(RecvError::BufferTooSmall) => -3,
    }
}

/// ikcp_wndsize's argument: a window `<= 0` leaves that window alone.
fn positive(window: c_int) -> Option<NonZeroU32> {
    u32::try_from(window).ok().and_then(NonZeroU32::new)
}

/// Receives the next message into `buffer` (`len` bytes). Returns its size,
/// -1 if no message is queued, -2 if the next message is incomplete, -3 if
/// it is larger than `len`. A negative `len` peeks: copies without
/// consuming. `buffer` may be NULL (nothing copied). NULL `kcp`: -1.
///
/// # Safety
/// `kcp` is NULL or live; `buffer` is NULL or writable for `|len|` bytes.
#[no_mangle]
pub unsafe extern "C" fn ikcp_recv(kcp: *mut ikcpcb, buffer: *mut c_char, len: c_int) -> c_int {
    guard(-1, || {
        let n = len.unsigned_abs() as usize;
        // SAFETY: `buffer` is NULL or writable for `|len|` bytes (this
        // export's `# Safety`), and not part of the core.
        let buf = unsafe { opt_slice_mut(buffer.cast::<u8>(), n) };
        // SAFETY: `kcp` is NULL or live, as this export's `# Safety` obliges
        // the caller; no other reference to its core is alive (none is held
        // across a callback).
        unsafe { with_core(kcp, -1, |k| recv(k, buf, len)) }
    })
}

/// Queues `len` bytes from `buffer` for sending and returns the number of
/// bytes queued: a message of at most 127 fragments (-2 if larger or out of
/// memory), or in stream mode a byte stream. -1 for `len < 0` or NULL
/// `kcp`. `buffer` NULL with `len > 0` queues zero bytes of that length
/// (ikcp.c would send uninitialised memory).
///
/// # Safety
/// `kcp` is NULL or live; `buffer` is NULL or readable for `len` bytes.
#[no_mangle]
pub unsafe extern "C" fn ikcp_send(kcp: *mut ikcpcb, buffer: *const c_char, len: c_int) -> c_int {
    guard(-1, || {
        // SAFETY: `buffer` is NULL or readable for `len` bytes (this
        // export's `# Safety`); only a positive `len` is read.
        let data = unsafe { opt_slice(buffer.cast::<u8>(), usize::try_from(len).unwrap_or(0)) }.filter(|_| len > 0);
        // SAFETY: `kcp` is NULL or live, as this export's `# Safety` obliges
        // the caller; no other reference to its core is alive (none is held
        // across a callback).
        unsafe { with_core(kcp, -1, |k| send(k, data, len)) }
    })
}

/// Advances the clock to `current` (milliseconds, any origin, wrapping) and
/// flushes when the interval elapsed. Call it every 10–100 ms, or when
/// [`ikcp_check`] says. The first call starts the clock. NULL is ignored.
///
/// # Safety
/// `kcp` is NULL or live.
#[no_mangle]
pub unsafe extern "C" fn ikcp_update(kcp: *mut ikcpcb, current: IUINT32) {
    // The timer step is wrapping integer arithmetic that cannot panic, so it
    // runs before the panic boundary: most calls end here, and idle servers
    // make many of them. It touches one cache line of the struct, like ikcp.c.
    // SAFETY: `kcp` is NULL or live, as this export's `# Safety` obliges
    // the caller; no other reference to its core is alive (none is held
    // across a callback).
    let Some(k) = (unsafe { handle(kcp) }) else { return };
    if !k.advance_clock(current) {
        return;
    }
    guard((), || {
        // SAFETY: as above; the previous reference is no longer used.
        let Some(k) = (unsafe { handle(kcp) }) else { return };
        // A quiet connection's flush changes a few scalars (in the struct)
        // and frees the flush buffer: of what `publish` stores, only
        // `buffer` can change.
        if k.quiet_flush() {
            k.v.buffer = core::ptr::null_mut();
            return;
        }
        check_layout(k);
        // SAFETY: live (not NULL above) and `k` is not used again.
        unsafe { run_flush(kcp) };
    })
}

/// When to call [`ikcp_update`] next: an absolute time in milliseconds, at
/// most one interval after `current`, `current` itself if due now. NULL
/// `kcp` returns `current`.
///
/// # Safety
/// `kcp` is NULL or live.
#[no_mangle]
pub unsafe extern "C" fn ikcp_check(kcp: *const ikcpcb, current: IUINT32) -> IUINT32 {
    guard(current, || {
        // SAFETY: `kcp` is NULL or live, as this export's `# Safety` obliges
        // the caller; no other reference to its core is alive (none is held
        // across a callback).
        let Some(k) = (unsafe { handle(kcp) }) else {
            return current;
        };
        check_layout(k);
        k.check(current)
    })
}

/// Feeds one received datagram of `size` bytes. Returns 0, or -1 (NULL,
/// shorter than 24 bytes, or another conversation's segment), -2 (a
/// segment's length exceeds the data), -3 (unknown command); on error the
/// segments before the bad one keep their effects, as in ikcp.c.
///
/// # Safety
/// `kcp` is NULL or live; `data` is NULL or readable for `size` bytes.
#[no_mangle]
pub unsafe extern "C" fn ikcp_input(kcp: *mut ikcpcb, data: *const c_char, size: c_long) -> c_int {
    guard(-1, || {
        let n = if size > 0 { size as usize } else { 0 };
        // SAFETY: `data` is NULL or readable for `size` bytes (this export's
        // `# Safety`); `d` holds `max(size, 0)` of them.
        let d = unsafe { opt_slice(data.cast::<u8>(), n) };
        // SAFETY: `kcp` is NULL or live, as this export's `# Safety` obliges
        // the caller; no other reference to its core is alive (none is held
        // across a callback).
        // The core sees `size` as ikcp.c's `int` conversion of the `long`.
        unsafe {
            with_core(kcp, -1, |k| {
                k.input_from(d, size as i32, true).map_or_else(InputError::code, |()| 0)
            })
        }
    })
}

/// Sends everything due now (ACKs, window probes, new and retransmitted
/// data) through the output callback. Does nothing before the first
/// [`ikcp_update`]. NULL is ignored.
///
/// # Safety
/// `kcp` is NULL or live.
#[no_mangle]
pub unsafe extern "C" fn ikcp_flush(kcp: *mut ikcpcb) {
    guard((), || {
        // SAFETY: `kcp` is NULL or live, as this export's `# Safety` obliges
        // the caller; no other reference to its core is alive (none is held
        // across a callback).
        let Some(k) = (unsafe { handle(kcp) }) else { return };
        check_layout(k);
        // SAFETY: live (not NULL above) and `k` is not used again.
        unsafe { run_flush(kcp) };
    })
}

/// Size of the next complete message, or -1 if none (also for NULL).
///
/// # Safety
/// `kcp` is NULL or live.
#[no_mangle]
pub unsafe extern "C" fn ikcp_peeksize(kcp: *const ikcpcb) -> c_int {
    // SAFETY: `kcp` is NULL or live, as this export's `# Safety` obliges
    // the caller; no other reference to its core is alive (none is held
    // across a callback).
    guard(-1, || unsafe { handle(kcp) }.map_or(-1, |k| k.peeksize()))
}

/// Sets the MTU (bytes per datagram, headers included); the MSS becomes
/// `mtu - 24`. Returns 0, -1 if `mtu < 50` or `kcp` is NULL, -2 if the
/// flush buffer for it cannot be allocated (the MTU is then unchanged).
/// Queued segments are not re-split.
///
/// # Safety
/// `kcp` is NULL or live.
#[no_mangle]
pub unsafe extern "C" fn ikcp_setmtu(kcp: *mut ikcpcb, mtu: c_int) -> c_int {
    // SAFETY: `kcp` is NULL or live, as this export's `# Safety` obliges
    // the caller; no other reference to its core is alive (none is held
    // across a callback).
    guard(-1, || unsafe {
        with_core(kcp, -1, |k| match k.set_mtu(if mtu < 50 { 0 } else { mtu as u32 }) {
            Ok(()) => 0,
            Err(MtuError::OutOfRange) => -1,
            Err(MtuError::NoMemory) => -2,
        })
    })
}

/// Sets the send and receive windows (segments); values <= 0 leave that
/// window unchanged; the receive window is at least 128. Returns 0 (also
/// for NULL, as ikcp.c).
///
/// # Safety
/// `kcp` is NULL or live.
#[no_mangle]
pub unsafe extern "C" fn ikcp_wndsize(kcp: *mut ikcpcb, sndwnd: c_int, rcvwnd: c_int) -> c_int {
    // SAFETY: `kcp` is NULL or live, as this export's `# Safety` obliges
    // the caller; no other reference to its core is alive (none is held
    // across a callback).
    guard((), || unsafe {
        with_core(kcp, (), |k| k.set_window(positive(sndwnd), positive(rcvwnd)))
    });
    0
}

/// Segments queued or in flight, not yet acknowledged (-1 for NULL). Use
/// it to throttle senders: the send queue is unbounded.
///
/// # Safety
/// `kcp` is NULL or live.
#[no_mangle]
pub unsafe extern "C" fn ikcp_waitsnd(kcp: *const ikcpcb) -> c_int {
    // SAFETY: `kcp` is NULL or live, as this export's `# Safety` obliges
    // the caller; no other reference to its core is alive (none is held
    // across a callback).
    guard(-1, || unsafe { handle(kcp) }.map_or(-1, |k| k.wait_snd() as c_int))
}

/// Tuning: `nodelay` 0 normal / 1 no-delay (min RTO 30 ms) / 2 gentler
/// backoff; `interval` update interval in ms (clamped to 10..5000);
/// `resend` fast retransmit after that many duplicate ACKs (0 off); `nc` 1
/// disables congestion control. Negative values leave a setting unchanged.
/// Fastest: `ikcp_nodelay(kcp, 1, 10, 2, 1)`. Returns 0, -1 for NULL.
///
/// # Safety
/// `kcp` is NULL or live.
#[no_mangle]
pub unsafe extern "C" fn ikcp_nodelay(
    kcp: *mut ikcpcb,
    nodelay: c_int,
    interval: c_int,
    resend: c_int,
    nc: c_int,
) -> c_int {
    // SAFETY: `kcp` is NULL or live, as this export's `# Safety` obliges
    // the caller; no other reference to its core is alive (none is held
    // across a callback).
    guard(-1, || unsafe {
        with_core(kcp, -1, |k| {
            // A negative argument leaves that setting alone.
            let keep_if_negative = |x: c_int| u32::try_from(x).ok();
            k.set_nodelay(NoDelay {
                nodelay: keep_if_negative(nodelay),
                interval: keep_if_negative(interval),
                resend: keep_if_negative(resend),
                nc: keep_if_negative(nc),
            });
            0
        })
    })
}

/// Sets the update interval in ms, clamped to 10..5000 (exported by
/// ikcp.c although its header omits it). Returns 0, -1 for NULL.
///
/// # Safety
/// `kcp` is NULL or live.
#[no_mangle]
pub unsafe extern "C" fn ikcp_interval(kcp: *mut ikcpcb, interval: c_int) -> c_int {
    // SAFETY: `kcp` is NULL or live, as this export's `# Safety` obliges
    // the caller; no other reference to its core is alive (none is held
    // across a callback).
    guard(-1, || unsafe {
        with_core(kcp, -1, |k| {
            // A negative interval clamps to the least, as in ikcp.c.
            k.set_interval(interval.max(0) as u32);
            0
        })
    })
}

/// Reads the conversation id from the first 4 bytes of a datagram (little
/// endian), e.g. to pick the ikcpcb for it. NULL returns 0.
///
/// # Safety
/// `ptr` is NULL or readable for 4 bytes.
#[no_mangle]
pub unsafe extern "C" fn ikcp_getconv(ptr: *const c_void) -> IUINT32 {
    guard(0, || {
        // SAFETY: `ptr` is NULL or readable for 4 bytes (this export's
        // `# Safety`).
        let b = unsafe { opt_slice(ptr.cast::<u8>(), 4) };
        b.map_or(0, |b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    })
}

// ikcp_log lives in ikcp_log.c; referencing it here makes the linker keep
// it in libkcpx.so and libkcpx.a.
extern "C" {
    /// Formats a log line like printf and passes it to `kcp->writelog`
    /// when `(mask & kcp->logmask) != 0` and `writelog` is set. Lines
    /// longer than 1023 bytes are truncated; NULL `kcp` or `fmt` is ignored.
    pub fn ikcp_log(kcp: *mut ikcpcb, mask: c_int, fmt: *const c_char, ...);
}
#[used]
static KEEP_IKCP_LOG: unsafe extern "C" fn(*mut ikcpcb, c_int, *const c_char, ...) = ikcp_log;

/// Log mask: datagrams output.
pub const IKCP_LOG_OUTPUT: c_int = 1;
/// Log mask: datagrams input.
pub const IKCP_LOG_INPUT: c_int = 2;
/// Log mask: send (unused by ikcp.c 1.7.1).
pub const IKCP_LOG_SEND: c_int = 4;
/// Log mask: messages received.
pub const IKCP_LOG_RECV: c_int = 8;
/// Log mask: data segments input.
pub const IKCP_LOG_IN_DATA: c_int = 16;
/// Log mask: ACK segments input.
pub const IKCP_LOG_IN_ACK: c_int = 32;
/// Log mask: window probes input.
pub const IKCP_LOG_IN_PROBE: c_int = 64;
/// Log mask: window tells input.
pub const IKCP_LOG_IN_WINS: c_int = 128;
/// Log mask: data output (unused by ikcp.c 1.7.1).
pub const IKCP_LOG_OUT_DATA: c_int = 256;
/// Log mask: ACK output (unused by ikcp.c 1.7.1).
pub const IKCP_LOG_OUT_ACK: c_int = 512;
/// Log mask: probe output (unused by ikcp.c 1.7.1).
pub const IKCP_LOG_OUT_PROBE: c_int = 1024;
/// Log mask: window tell output (unused by ikcp.c 1.7.1).
pub const IKCP_LOG_OUT_WINS: c_int = 2048;
