//! `kcpx_token_make`: connect tokens for the secure wire
//! (`docs/secure-wire.md`, section 6), made by a game's backend
//! (matchmaker) that holds the servers' token key.

use super::conn::{code, count};
use super::ptr::{guard, maybe_str, try_array, try_slice, try_slice_mut};
use crate::error::{Error, KCPX_ERR_INTERNAL, KCPX_ERR_NULL};
use crate::secure::token::{make_now, BLOB_LEN, MAX_ADDRS};
use core::ffi::{c_char, c_int};

/// Bytes of the blob `kcpx_token_make` writes.
pub const KCPX_TOKEN_LEN: usize = 357;
const _: () = assert!(KCPX_TOKEN_LEN == BLOB_LEN);

/// Makes a connect token (a backend's call): for client `client_id`, valid
/// for `valid_s` seconds from now (the system clock, Unix seconds), for the
/// game servers at `server_addrs` (1 to 8 numeric `"ip:port"` strings,
/// `"[::1]:4000"` for IPv6: the addresses the servers' clients dial), sealed
/// with `token_key` (32 bytes, the key the servers are configured with). It
/// writes KCPX_TOKEN_LEN bytes to `out`: the part sealed for the server
/// and the client's fresh session keys. Hand it to that one client over
/// your own secure channel (HTTPS, say): whoever holds it can connect as
/// the client until it expires, once per server. Returns KCPX_TOKEN_LEN,
/// or KCPX_ERR_NULL (a NULL pointer, also among the first `n_addrs`),
/// KCPX_ERR_KEY (`key_len` not 32), KCPX_ERR_INVALID (`n_addrs` 0 or over 8,
/// `valid_s` 0), KCPX_ERR_ADDR (an address that does not parse),
/// KCPX_ERR_BUFFER_TOO_SMALL (`out_len` under KCPX_TOKEN_LEN; nothing
/// written), KCPX_ERR_RANDOM. Thread-safe: it reads only its arguments.
///
/// Sessions do not speak the secure wire yet (docs/secure-wire.md, section
/// 15): a token made now is for the servers of a later kcpx release.
///
/// # Safety
/// `token_key` NULL or readable for `key_len` bytes; `server_addrs` NULL or
/// readable for `n_addrs` pointers, each NULL or NUL-terminated; `out` NULL
/// or writable for `out_len` bytes.
#[no_mangle]
pub unsafe extern "C" fn kcpx_token_make(
    token_key: *const u8,
    key_len: usize,
    client_id: u64,
    valid_s: u32,
    server_addrs: *const *const c_char,
    n_addrs: usize,
    out: *mut u8,
    out_len: usize,
) -> c_int {
    guard(KCPX_ERR_INTERNAL, || {
        let key = try_slice!(token_key, key_len, KCPX_ERR_NULL);
        if n_addrs == 0 || n_addrs > MAX_ADDRS {
            return code(Err(Error::Invalid));
        }
        let ptrs = try_array!(server_addrs, n_addrs, KCPX_ERR_NULL);
        let mut addrs = [""; MAX_ADDRS];
        for (slot, &p) in addrs.iter_mut().zip(ptrs) {
            // Each element is NULL or NUL-terminated, per this export's contract.
            *slot = match maybe_str!(p) {
                None => return KCPX_ERR_NULL,
                Some(Ok(text)) => text,
                Some(Err(_)) => return code(Err(Error::Addr)),
            };
        }
        let out = try_slice_mut!(out, out_len, KCPX_ERR_NULL);
        if out.len() < BLOB_LEN {
            return code(Err(Error::BufferTooSmall));
        }
        match make_now(key, client_id, valid_s, &addrs[..n_addrs]) {
            Ok(blob) => {
                out[..BLOB_LEN].copy_from_slice(&blob);
                count(BLOB_LEN)
            }
            Err(e) => code(Err(e)),
        }
    })
}
