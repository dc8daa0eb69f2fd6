//! The C ABI. This is the only module with `unsafe` code: each exported
//! function checks its arguments, calls the safe core, converts the result,
//! and runs inside a panic boundary so no panic ever unwinds into C.
//!
//! * `ptr.rs` — the toolkit every `kcpx_*` export is written with: the
//!   panic boundary, handle casts, slices, out-parameters and C strings,
//!   each NULL mapped to the export's documented code (read it before
//!   writing an export).
//! * `ikcp.rs`  — the `ikcp_*` drop-in for ikcp.c 1.7.1 (`include/ikcp.h`).
//! * `conn.rs`  — `kcpx_config_*` (connection settings) and `kcpx_conn_*`:
//!   kcp-go compatible sans-IO connections (`include/kcpx.h`).
//! * `session.rs` — `kcpx_dial`, `kcpx_session_*`, events and the session
//!   settings of `kcpx_config`: sessions over UDP sockets (also
//!   `include/kcpx.h`).
//! * `listener.rs` — `kcpx_listen`, `kcpx_listener_*`, `kcpx_accept`.
//! * `token.rs` — `kcpx_token_make`: connect tokens of the secure wire.
//! * `alloc.rs` — `ikcp_allocator` hooks and the allocator the core uses.
//! * `ikcp_log.c` — `ikcp_log`, a C-variadic function (not definable in
//!   stable Rust), compiled by build.rs.

pub mod alloc;
pub mod conn;
pub mod ikcp;
pub mod listener;
pub(crate) mod ptr;
pub mod session;
pub mod token;

pub(crate) use ptr::guard;
