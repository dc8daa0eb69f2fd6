//! The pointer toolkit every `kcpx_*` export is written with: the one place
//! where a C argument becomes a Rust reference, and the panic boundary.
//!
//! * [`guard`] runs an export's body and turns a panic (a bug in kcpx) into
//!   the export's fallback value, so no panic unwinds into C.
//! * [`Handle`] marks the opaque types C holds by pointer (`kcpx_config`,
//!   `kcpx_conn`, `kcpx_listener`, `kcpx_session`): made with
//!   [`Handle::into_ptr`] by their constructor, reached with [`try_ref!`] or
//!   [`try_mut!`], freed with [`try_take!`] by their destructor.
//! * [`try_slice!`], [`try_slice_or_empty!`], [`try_slice_mut!`]: byte
//!   slices from `(pointer, length)`; [`try_array!`]: an array of other
//!   elements (C string pointers); [`try_out!`], [`maybe_out!`]: an
//!   [`Out`] for an out-parameter, written once; [`maybe_str!`]: a C string.
//!
//! Each macro checks NULL and, for NULL, makes the *enclosing closure*
//! return the value given as its last argument: the code the export
//! documents for that argument (KCPX_ERR_NULL mostly; `now_ms`, 0 or NULL
//! where the export says so). The handle and out-parameter macros may omit
//! it in an export that returns nothing (NULL is ignored). Nothing else in `src/ffi/` turns a
//! pointer argument into a reference.
//!
//! # Why the macros are sound
//!
//! Every export is an `unsafe extern "C" fn` whose `# Safety` section states
//! the caller's obligation for each pointer argument: NULL, or valid for
//! the duration of the call as its type says — a live handle from its
//! constructor, not yet freed (`s is NULL or live`); `len` readable or
//! writable bytes; a writable `T`; a NUL-terminated string. The macros are
//! used only on an export's own pointer arguments (or inside an `unsafe fn`
//! helper whose `# Safety` is that export's, such as `listener::open`), so
//! that obligation is the precondition of the `unsafe fn` each one calls;
//! NULL is the one case they check. The `ikcp_*` exports use the slice
//! functions directly (NULL is not an error there) and their own cast of
//! `ikcpcb *` (`ikcp::handle`), which points into the core, not at a Box. A reference they make is the only one to its object during the
//! call: each object is used by one thread at a time (the threading rule of
//! every kcpx type), and kcpx holds no reference across a call into C — a
//! callback (`kcpx_conn`'s output) runs with no borrow alive and the
//! object is re-derived after it (`conn::deliver`).
//!
//! # Writing an export
//!
//! The body is one [`guard`] call, its fallback the code for a panic; the
//! arguments are taken through the macros, each with its NULL code, in the
//! order the export documents its checks; out-parameters are written last,
//! on success only. For example (a datagram send on a session):
//!
//! ```ignore
//! /// Sends `len` bytes as one unreliable datagram. Returns KCPX_OK,
//! /// KCPX_ERR_TOO_LARGE, KCPX_ERR_CLOSED or KCPX_ERR_NULL (`s` NULL, or
//! /// `buf` NULL with `len` > 0).
//! ///
//! /// # Safety
//! /// `s` is NULL or live; `buf` NULL or readable for `len` bytes.
//! #[no_mangle]
//! pub unsafe extern "C" fn kcpx_session_send_datagram(s: *mut kcpx_session, buf: *const c_void, len: usize) -> c_int {
//!     guard(KCPX_ERR_INTERNAL, || {
//!         let data = try_slice_or_empty!(buf, len, KCPX_ERR_NULL);
//!         match try_mut!(s, KCPX_ERR_NULL).target() {
//!             Target::Accepted(l, id) => code(l.send_datagram(id, data)),
//!             Target::Dialed(d) => code(d.send_datagram(data)),
//!         }
//!     })
//! }
//! ```
//!
//! With an out-parameter: `let out = try_out!(out, KCPX_ERR_NULL);` first,
//! then `out.write(value)` once the value is known to be good.

use core::ffi::{c_char, CStr};
use core::marker::PhantomData;
use core::ptr::NonNull;
use core::str::Utf8Error;
use std::panic::{catch_unwind, AssertUnwindSafe};

/// Runs `body`, turning a panic into `fallback` (a panic is a bug in kcpx;
/// this keeps it from becoming undefined behaviour in the C caller). What
/// the body changed before the panic stays changed: `AssertUnwindSafe`
/// because a half-updated object is still memory-safe (kcpx's types keep no
/// invariant across a panic that memory safety depends on), only wrong.
#[inline]
pub(crate) fn guard<T>(fallback: T, body: impl FnOnce() -> T) -> T {
    catch_unwind(AssertUnwindSafe(body)).unwrap_or(fallback)
}

/// A Rust type that C holds only as an opaque pointer: made on the heap by
/// its constructor export ([`Handle::into_ptr`]), used through [`try_ref!`]
/// and [`try_mut!`], freed by its destructor export ([`try_take!`]).
pub(crate) trait Handle: Sized {
    /// Moves `self` to the heap and gives up ownership to C.
    fn into_ptr(self) -> *mut Self {
        Box::into_raw(Box::new(self))
    }
}

/// The object behind a handle, or None for NULL.
///
/// # Safety
/// `p` is NULL or from [`Handle::into_ptr`], not yet freed, and not
/// mutably borrowed while the result lives.
#[inline]
pub(crate) unsafe fn opt_ref<'a, T: Handle>(p: *const T) -> Option<&'a T> {
    // SAFETY: `into_ptr` made `p` from a Box (aligned, initialised); the
    // caller guarantees it is still live and not mutably borrowed.
    unsafe { p.as_ref() }
}

/// The object behind a handle, mutably, or None for NULL.
///
/// # Safety
/// As [`opt_ref`], and no other reference to it is alive while the result
/// lives.
#[inline]
pub(crate) unsafe fn opt_mut<'a, T: Handle>(p: *mut T) -> Option<&'a mut T> {
    // SAFETY: as `opt_ref`; the caller guarantees exclusivity. The Box
    // allocation is writable even when C held the pointer as `const`.
    unsafe { p.as_mut() }
}

/// Takes back ownership of a handle (its destructor), or None for NULL.
///
/// # Safety
/// `p` is NULL or from [`Handle::into_ptr`] and not yet freed; it is not
/// used again.
#[inline]
pub(crate) unsafe fn opt_take<T: Handle>(p: *mut T) -> Option<Box<T>> {
    // SAFETY: `p` came from `Box::into_raw` in `into_ptr`, and the caller
    // gives it up: it is turned back into its Box exactly once.
    (!p.is_null()).then(|| unsafe { Box::from_raw(p) })
}

/// `len` bytes at `p`, or None for NULL.
///
/// # Safety
/// `p` is NULL or readable for `len` bytes, which are not written during
/// the call.
#[inline]
pub(crate) unsafe fn opt_slice<'a>(p: *const u8, len: usize) -> Option<&'a [u8]> {
    // SAFETY: readable for `len` bytes per the caller (C objects are at
    // most isize::MAX bytes); u8 has no alignment or validity requirement.
    (!p.is_null()).then(|| unsafe { core::slice::from_raw_parts(p, len) })
}

/// `len` elements of an array argument at `p` (an array of C strings, say),
/// or None for NULL.
///
/// # Safety
/// `p` is NULL or points to `len` initialised, aligned `T`s, not written
/// during the call.
#[inline]
pub(crate) unsafe fn opt_array<'a, T: Copy>(p: *const T, len: usize) -> Option<&'a [T]> {
    // SAFETY: `len` aligned, initialised elements per the caller (a C array
    // is at most isize::MAX bytes); `T: Copy` has no drop to run.
    (!p.is_null()).then(|| unsafe { core::slice::from_raw_parts(p, len) })
}

/// As [`opt_slice`], but NULL with `len` 0 is the empty slice.
///
/// # Safety
/// As [`opt_slice`].
#[inline]
pub(crate) unsafe fn opt_slice_or_empty<'a>(p: *const u8, len: usize) -> Option<&'a [u8]> {
    match (p.is_null(), len) {
        (true, 0) => Some(&[]),
        // SAFETY: this function's contract is `opt_slice`'s.
        _ => unsafe { opt_slice(p, len) },
    }
}

/// `len` writable bytes at `p`, or None for NULL.
///
/// # Safety
/// `p` is NULL or writable for `len` bytes, which nothing else reads or
/// writes during the call. They may be uninitialised: kcpx only writes
/// them (every `u8` value is valid, and none is read before written).
#[inline]
pub(crate) unsafe fn opt_slice_mut<'a>(p: *mut u8, len: usize) -> Option<&'a mut [u8]> {
    // SAFETY: writable and exclusive for `len` bytes per the caller.
    (!p.is_null()).then(|| unsafe { core::slice::from_raw_parts_mut(p, len) })
}

/// An out-parameter: a place for one `T` that C gave, written at most once
/// (by value, never read, so it may be uninitialised).
pub(crate) struct Out<'a, T> {
    to: NonNull<T>,
    _place: PhantomData<&'a mut T>,
}

impl<T> Out<'_, T> {
    /// Stores `value` (without dropping what the place held: C data).
    pub(crate) fn write(self, value: T) {
        // SAFETY: `opt_out`'s caller guarantees the place is writable and
        // aligned for a `T` for the call; `self` is consumed, so this
        // happens once.
        unsafe { self.to.as_ptr().write(value) }
    }
}

/// The out-parameter at `p`, or None for NULL.
///
/// # Safety
/// `p` is NULL or writable and aligned for a `T` during the call.
#[inline]
pub(crate) unsafe fn opt_out<'a, T>(p: *mut T) -> Option<Out<'a, T>> {
    NonNull::new(p).map(|to| Out {
        to,
        _place: PhantomData,
    })
}

/// The C string at `p` as UTF-8, or None for NULL.
///
/// # Safety
/// `p` is NULL or a NUL-terminated string not written during the call.
#[inline]
pub(crate) unsafe fn opt_str<'a>(p: *const c_char) -> Option<Result<&'a str, Utf8Error>> {
    // SAFETY: NUL-terminated and unchanging per the caller.
    (!p.is_null()).then(|| unsafe { CStr::from_ptr(p) }.to_str())
}

/// Evaluates `$f($args)`, one of this module's `opt_*` functions on an
/// export's pointer arguments, or makes the enclosing closure return `$or`
/// (or return nothing, without `$or`) when it is None: a NULL pointer.
macro_rules! arg {
    ($f:ident($($a:expr),*) else $($or:expr)?) => {
        // SAFETY: the pointers are arguments of the export this expands in,
        // whose `# Safety` section obliges its caller to pass NULL or what
        // `$f` requires (see "Why the macros are sound" in ffi::ptr).
        match unsafe { $crate::ffi::ptr::$f($($a),*) } {
            Some(v) => v,
            None => return $($or)?,
        }
    };
}

/// `&T` from a handle argument `*const T` (or `*mut T`); NULL returns `$or`.
macro_rules! try_ref {
    ($p:expr $(, $or:expr)?) => {
        $crate::ffi::ptr::arg!(opt_ref($p) else $($or)?)
    };
}

/// `&mut T` from a handle argument `*mut T`; NULL returns `$or`.
macro_rules! try_mut {
    ($p:expr $(, $or:expr)?) => {
        $crate::ffi::ptr::arg!(opt_mut($p) else $($or)?)
    };
}

/// `Box<T>` back from a handle argument, for its destructor; NULL returns
/// `$or`.
macro_rules! try_take {
    ($p:expr $(, $or:expr)?) => {
        $crate::ffi::ptr::arg!(opt_take($p) else $($or)?)
    };
}

/// `&[u8]` from a pointer argument (any byte-like pointee) and its length;
/// NULL returns `$or`, whatever the length.
macro_rules! try_slice {
    ($p:expr, $len:expr, $or:expr) => {
        $crate::ffi::ptr::arg!(opt_slice($p.cast::<u8>(), $len) else $or)
    };
}

/// `&[T]` from an array argument `*const T` and its element count; NULL
/// returns `$or`.
macro_rules! try_array {
    ($p:expr, $len:expr, $or:expr) => {
        $crate::ffi::ptr::arg!(opt_array($p, $len) else $or)
    };
}

/// `&[u8]` as [`try_slice!`], but NULL with length 0 is the empty slice
/// (for exports that document "NULL or readable for `len` bytes" with NULL
/// allowed when `len` is 0).
macro_rules! try_slice_or_empty {
    ($p:expr, $len:expr, $or:expr) => {
        $crate::ffi::ptr::arg!(opt_slice_or_empty($p.cast::<u8>(), $len) else $or)
    };
}

/// `&mut [u8]` from a writable buffer argument and its length; NULL returns
/// `$or`.
macro_rules! try_slice_mut {
    ($p:expr, $len:expr, $or:expr) => {
        $crate::ffi::ptr::arg!(opt_slice_mut($p.cast::<u8>(), $len) else $or)
    };
}

/// An [`Out`] from an out-parameter argument `*mut T`; NULL returns `$or`.
macro_rules! try_out {
    ($p:expr $(, $or:expr)?) => {
        $crate::ffi::ptr::arg!(opt_out($p) else $($or)?)
    };
}

/// `Option<Out<T>>` from an optional out-parameter (NULL: None).
macro_rules! maybe_out {
    ($p:expr) => {
        // SAFETY: as in `arg!`: an export's argument, NULL or writable.
        unsafe { $crate::ffi::ptr::opt_out($p) }
    };
}

/// `Option<Result<&str, Utf8Error>>` from a C string argument (NULL: None).
macro_rules! maybe_str {
    ($p:expr) => {
        // SAFETY: as in `arg!`: an export's argument, NULL or NUL-terminated.
        unsafe { $crate::ffi::ptr::opt_str($p) }
    };
}

pub(crate) use {
    arg, maybe_out, maybe_str, try_array, try_mut, try_out, try_ref, try_slice, try_slice_mut, try_slice_or_empty,
    try_take,
};

#[cfg(test)]
mod tests {
    use super::*;
    use core::ffi::c_int;
    use core::ptr::{null, null_mut};

    struct Thing(u32);
    impl Handle for Thing {}

    /// The macros' NULL rules, as an export would meet them.
    #[test]
    fn null_returns_the_code_given_and_valid_pointers_pass() {
        fn get(p: *const Thing) -> c_int {
            guard(-99, || try_ref!(p, -1).0 as c_int)
        }
        fn bytes(p: *const u8, len: usize, empty_ok: bool) -> c_int {
            guard(-99, || match empty_ok {
                true => try_slice_or_empty!(p, len, -1).len() as c_int,
                false => try_slice!(p, len, -1).len() as c_int,
            })
        }
        fn set(out: *mut u32, ok: bool) -> c_int {
            guard(-99, || {
                let out = try_out!(out, -1);
                if ok {
                    out.write(7);
                }
                0
            })
        }
        let h = Thing(5).into_ptr();
        assert_eq!((get(h), get(null())), (5, -1));
        // SAFETY: `h` came from `into_ptr` and is not used again.
        assert_eq!(unsafe { opt_take(h) }.map(|t| t.0), Some(5));
        let data = [1u8, 2, 3];
        assert_eq!(bytes(data.as_ptr(), 3, false), 3);
        assert_eq!(bytes(null(), 0, false), -1, "NULL is refused even when empty");
        assert_eq!(bytes(null(), 0, true), 0, "NULL with 0 is the empty slice");
        assert_eq!(bytes(null(), 1, true), -1);
        let mut v = 1u32;
        assert_eq!(set(&mut v, false), 0);
        assert_eq!(v, 1, "not written unless the export succeeds");
        assert_eq!(set(&mut v, true), 0);
        assert_eq!(v, 7);
        assert_eq!(set(null_mut(), true), -1);
    }

    /// A panic inside the boundary becomes the fallback; without a code,
    /// a NULL handle returns nothing.
    #[test]
    fn the_guard_turns_a_panic_into_the_fallback() {
        assert_eq!(guard(-13, || -> c_int { panic!("a bug (expected by this test)") }), -13);
        let mut ran = false;
        guard((), || {
            let _t: &mut Thing = try_mut!(null_mut::<Thing>());
            ran = true;
        });
        assert!(!ran);
    }
}
