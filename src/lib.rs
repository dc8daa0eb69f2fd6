//! kcpx: the KCP reliable-UDP protocol in safe, sans-IO Rust.
//!
//! * [`kcp`] is the protocol core (`ikcp.c` 1.7.1 behaviour, byte for byte).
//! * `ffi` exports the C ABI (`ikcp_*` drop-in, `kcpx_*` extensions); it is the
//!   only module that contains `unsafe` code besides `fec`'s SIMD kernels
//!   (`src/fec/simd.rs`, run-time dispatch) and the socket layer's batched
//!   system calls (`src/net/sys.rs`); the others forbid it. It exists
//!   with the `ffi` feature, on by default; `default-features = false` leaves
//!   out every exported C symbol and the C compiler.
//! * [`crypt`] is kcp-go's datagram encryption (nonce + CRC-32 + every kcp-go cipher).
//! * [`fec`] is kcp-go's forward error correction (Reed-Solomon parity datagrams).
//! * [`conn`] composes them into one kcp-go compatible connection, sans-IO.
//! * [`endpoint`] is a sans-IO multi-session endpoint (kcp-go's listener
//!   demultiplexing, timers, events) over many connections.
//! * [`net`] drives endpoints over real UDP sockets: listeners and dialers.
//! * [`secure`] is kcpx's own secure wire (handshake, per-session AEAD, replay
//!   window, connection IDs; `docs/secure-wire.md`), sans-IO, not yet used by
//!   the session layer.
//! * [`error`] is the library's one error type and its C codes.
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(missing_docs)]

// `missing_docs` is allowed, for now, on `ffi` only: its exports are
// documented (their `///` text is the C header's), but 78 of its constants
// and `#[repr(C)]` fields are not yet. Document them and remove the `allow`.
pub mod conn;
pub mod crypt;
pub mod endpoint;
pub mod error;
pub mod fec;
#[cfg(feature = "ffi")]
#[allow(missing_docs)]
pub mod ffi;
pub mod kcp;
pub mod net;
pub mod secure;

/// The tests' seeded PRNG and simulated network, shared with the
/// integration tests (`tests/support/sim.rs`).
#[cfg(test)]
#[path = "../tests/support/sim.rs"]
pub(crate) mod sim;
