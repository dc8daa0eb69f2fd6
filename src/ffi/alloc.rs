//! Memory for ikcp objects: `ikcp_allocator` hooks, honoured for every byte
//! kcpx allocates on behalf of an `ikcpcb` (control block, queues, segment
//! payloads, ACK list, flush buffer, log lines).

use allocator_api2::alloc::{AllocError, Allocator, Layout};
use core::ffi::c_void;
use core::ptr::NonNull;
use std::sync::atomic::{AtomicPtr, Ordering};

type MallocHook = unsafe extern "C" fn(usize) -> *mut c_void;
type FreeHook = unsafe extern "C" fn(*mut c_void);

static MALLOC_HOOK: AtomicPtr<c_void> = AtomicPtr::new(core::ptr::null_mut());
static FREE_HOOK: AtomicPtr<c_void> = AtomicPtr::new(core::ptr::null_mut());

/// `malloc` through the user's hook, or libc's.
pub(crate) fn raw_malloc(size: usize) -> *mut c_void {
    let hook = MALLOC_HOOK.load(Ordering::Acquire);
    if hook.is_null() {
        // SAFETY: libc's malloc has no precondition.
        unsafe { libc::malloc(size) }
    } else {
        // SAFETY: MALLOC_HOOK is only ever stored by ikcp_allocator, from a
        // `MallocHook` (non-NULL here), so the transmute restores it; the
        // user's hook behaves like malloc (ikcp_allocator's documented rule).
        unsafe { core::mem::transmute::<*mut c_void, MallocHook>(hook)(size) }
    }
}

/// `free` through the user's hook, or libc's.
///
/// # Safety
/// `ptr` must come from [`raw_malloc`] (with the hooks in place then).
pub(crate) unsafe fn raw_free(ptr: *mut c_void) {
    let hook = FREE_HOOK.load(Ordering::Acquire);
    if hook.is_null() {
        // SAFETY: `ptr` came from `raw_malloc` with no hook, i.e. from libc's
        // malloc (this function's contract).
        unsafe { libc::free(ptr) }
    } else {
        // SAFETY: FREE_HOOK is only stored from a `FreeHook` (as for
        // MALLOC_HOOK); `ptr` came from the matching malloc hook, since hooks
        // do not change while objects exist (ikcp_allocator's rule).
        unsafe { core::mem::transmute::<*mut c_void, FreeHook>(hook)(ptr) }
    }
}

/// The allocator of every container inside an `ikcpcb`.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct HookAlloc;

// SAFETY: blocks come from malloc-like hooks, which return memory aligned
// for any fundamental type (at least 8 bytes, all kcpx asks for); each block
// is freed exactly once through the matching free hook.
unsafe impl Allocator for HookAlloc {
    fn allocate(&self, layout: Layout) -> Result<NonNull<[u8]>, AllocError> {
        if layout.align() > 8 {
            return Err(AllocError);
        }
        if layout.size() == 0 {
            let dangling = NonNull::new(layout.align() as *mut u8).ok_or(AllocError)?;
            return Ok(NonNull::slice_from_raw_parts(dangling, 0));
        }
        let p = NonNull::new(raw_malloc(layout.size()) as *mut u8).ok_or(AllocError)?;
        Ok(NonNull::slice_from_raw_parts(p, layout.size()))
    }

    unsafe fn deallocate(&self, ptr: NonNull<u8>, layout: Layout) {
        if layout.size() != 0 {
            // SAFETY: `Allocator::deallocate`'s contract: `ptr` came from
            // `allocate` with this layout, non-zero here, so from `raw_malloc`.
            unsafe { raw_free(ptr.as_ptr() as *mut c_void) }
        }
    }
}

/// Replaces the allocator used for all memory of ikcp objects created from
/// now on (and for their later allocations). `new_malloc` must behave like
/// `malloc` (return NULL on failure, alignment suitable for any type) and
/// `new_free` like `free`. NULL restores the libc function for that hook.
///
/// Blocks are freed through the hook installed *at the time of freeing*,
/// exactly as in ikcp.c: install the hooks before creating any object and
/// do not change them while objects exist.
///
/// Thread-safety: the hooks are process-global; set them before other
/// threads use ikcp objects.
#[no_mangle]
pub extern "C" fn ikcp_allocator(
    new_malloc: Option<unsafe extern "C" fn(size: usize) -> *mut c_void>,
    new_free: Option<unsafe extern "C" fn(ptr: *mut c_void)>,
) {
    super::guard((), || {
        let m = new_malloc.map_or(core::ptr::null_mut(), |f| f as *mut c_void);
        let f = new_free.map_or(core::ptr::null_mut(), |f| f as *mut c_void);
        MALLOC_HOOK.store(m, Ordering::Release);
        FREE_HOOK.store(f, Ordering::Release);
    })
}
