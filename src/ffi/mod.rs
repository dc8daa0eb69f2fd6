//! The C ABI. This is the only module with `unsafe` code: each exported
//! function checks its arguments, calls the safe core, converts the result,
//! and runs inside a panic boundary so no panic ever unwinds into C.
//!
//! * `ikcp.rs`  — the `ikcp_*` drop-in for ikcp.c 1.7.1 (`include/ikcp.h`).
//! * `conn.rs`  — `kcpx_*` kcp-go compatible connections (`include/kcpx.h`).
//! * `session.rs` — `kcpx_listen`, `kcpx_dial`, `kcpx_session_*`: sessions
//!   over UDP sockets (also `include/kcpx.h`).
//! * `alloc.rs` — `ikcp_allocator` hooks and the allocator the core uses.
//! * `ikcp_log.c` — `ikcp_log`, a C-variadic function (not definable in
//!   stable Rust), compiled by build.rs.

pub mod alloc;
pub mod conn;
pub mod ikcp;
pub mod session;

use std::panic::{catch_unwind, AssertUnwindSafe};

/// Runs `body`, turning a panic into `fallback` (a panic is a bug in kcpx;
/// this keeps it from becoming undefined behaviour in the C caller).
#[inline]
pub(crate) fn guard<T>(fallback: T, body: impl FnOnce() -> T) -> T {
    catch_unwind(AssertUnwindSafe(body)).unwrap_or(fallback)
}
