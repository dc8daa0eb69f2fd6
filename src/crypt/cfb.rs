//! The CFB engines: kcp-go's "local CFB" (standard CFB with full-block feedback,
//! restarted from [`KCPGO_IV`] for every datagram, a final partial block XORed
//! with the head of the next keystream block).
//!
//! Two engines: one for AES that runs inside the `aes` crate's backend and
//! seals up to [`SEAL_LANES`] datagrams side by side through its pipelined
//! block path, and a generic one for every other block cipher (8- or 16-byte
//! blocks), given as a closure that encrypts one block in place.
#![forbid(unsafe_code)]

use aes::cipher::consts::U16;
use aes::cipher::generic_array::GenericArray;
use aes::cipher::typenum::Unsigned;
use aes::cipher::{BlockBackend, BlockClosure, BlockSizeUser};
use aes::Block;

use super::{KCPGO_IV, SEAL_LANES};

/// XORs `keystream` into `data` (`data.len() <= 16`).
#[inline(always)]
fn xor_into(data: &mut [u8], keystream: &Block) {
    if let Ok(full) = <&mut [u8; 16]>::try_from(&mut *data) {
        let k: [u8; 16] = (*keystream).into();
        *full = (u128::from_ne_bytes(*full) ^ u128::from_ne_bytes(k)).to_ne_bytes();
    } else {
        for (d, k) in data.iter_mut().zip(keystream.iter()) {
            *d ^= k;
        }
    }
}

/// One CFB encryption step: `chunk ^= register` (the keystream), and the
/// ciphertext becomes the next cipher input, kept in `register` rather than
/// reloaded from memory.
#[inline(always)]
fn xor_feedback(chunk: &mut [u8], register: &mut Block) {
    if let Ok(full) = <&mut [u8; 16]>::try_from(&mut *chunk) {
        // Fixed-size arrays: one 128-bit XOR, no round trip through bytes.
        let keystream: [u8; 16] = (*register).into();
        let ciphertext = (u128::from_ne_bytes(keystream) ^ u128::from_ne_bytes(*full)).to_ne_bytes();
        *full = ciphertext;
        *register = Block::from(ciphertext);
    } else {
        xor_into(chunk, register);
    }
}

/// Encrypts the eight registers in place through the backend's pipelined path.
#[inline(always)]
fn encrypt_registers<B: BlockBackend<BlockSize = U16>, const N: usize>(backend: &mut B, registers: &mut [Block; N]) {
    let mut chunks = registers.chunks_exact_mut(B::ParBlocksSize::USIZE);
    for chunk in &mut chunks {
        backend.proc_par_blocks_inplace(GenericArray::from_mut_slice(chunk));
    }
    backend.proc_tail_blocks_inplace(chunks.into_remainder());
}

/// Declares a CFB routine as a [`BlockClosure`], so that it runs inside the
/// cipher's backend (no CPU-feature dispatch per block).
macro_rules! cfb_closure {
    ($(#[$doc:meta])* $name:ident<$lt:lifetime>($field:ty), |$this:pat, $backend:ident| $body:block) => {
        $(#[$doc])*
        pub(super) struct $name<$lt>(pub(super) $field);

        impl BlockSizeUser for $name<'_> {
            type BlockSize = U16;
        }

        impl BlockClosure for $name<'_> {
            #[inline(always)]
            fn call<B: BlockBackend<BlockSize = U16>>(self, $backend: &mut B) {
                let $this = self.0;
                $body
            }
        }
    };
}

cfb_closure! {
    /// Standard CFB-128 encryption of a buffer in place, from [`KCPGO_IV`], given
    /// the IV's encryption (the first keystream block, the same for every datagram).
    CfbEncrypt<'a>((&'a mut [u8], Block)), |(buf, first), backend| {
        let mut register = first;
        let mut chunks = buf.chunks_mut(16);
        if let Some(chunk) = chunks.next() {
            xor_feedback(chunk, &mut register);
        }
        for chunk in chunks {
            backend.proc_block_inplace(&mut register);
            xor_feedback(chunk, &mut register);
        }
    }
}

cfb_closure! {
    /// CFB-128 encryption of up to [`SEAL_LANES`] independent buffers in lock-step:
    /// block `i` of every buffer goes through one pipelined backend call. `first`
    /// is the IV's encryption, the keystream of every buffer's block 0.
    CfbEncryptLanes<'a>((&'a mut [&'a mut [u8]], Block)), |(lanes, first), backend| {
        debug_assert!(lanes.len() <= SEAL_LANES);
        // Longest first, so that the lanes still running are always a prefix.
        lanes.sort_unstable_by_key(|lane| core::cmp::Reverse(lane.len()));
        let mut registers = [first; SEAL_LANES];
        let mut active = lanes.len();
        let mut offset = 0;
        loop {
            while active > 0 && lanes[active - 1].len() <= offset {
                active -= 1;
            }
            if active == 0 {
                return;
            }
            // All eight registers: the full parallel path costs the same as fewer.
            if offset > 0 {
                encrypt_registers(backend, &mut registers);
            }
            for (lane, register) in lanes[..active].iter_mut().zip(registers.iter_mut()) {
                let end = lane.len().min(offset + 16);
                xor_feedback(&mut lane[offset..end], register);
            }
            offset += 16;
        }
    }
}

cfb_closure! {
    /// Standard CFB-128 decryption of a buffer in place, from [`KCPGO_IV`]. All
    /// cipher inputs (IV and ciphertext blocks) are known up front, so blocks are
    /// processed eight at a time through the pipelined path.
    CfbDecrypt<'a>(&'a mut [u8]), |buf, backend| {
        const GROUP: usize = 8;
        let mut previous = Block::from(KCPGO_IV);
        let mut keystream = [Block::default(); GROUP];
        for group in buf.chunks_mut(16 * GROUP) {
            let blocks = group.len().div_ceil(16);
            keystream[0] = previous;
            for (k, ciphertext) in group.chunks_exact(16).take(blocks - 1).enumerate() {
                keystream[k + 1].copy_from_slice(ciphertext);
            }
            if group.len() == 16 * GROUP {
                previous.copy_from_slice(&group[16 * (GROUP - 1)..]);
            }
            encrypt_registers(backend, &mut keystream);
            for (chunk, k) in group.chunks_mut(16).zip(&keystream) {
                xor_into(chunk, k);
            }
        }
    }
}

/// XORs `keystream` into a whole block.
#[inline(always)]
fn xor_block<const N: usize>(block: &mut [u8; N], keystream: &[u8; N]) {
    for (d, k) in block.iter_mut().zip(keystream) {
        *d ^= k;
    }
}

/// XORs the head of `keystream` into a final partial block.
#[inline(always)]
fn xor_tail<const N: usize>(tail: &mut [u8], keystream: &[u8; N]) {
    for (d, k) in tail.iter_mut().zip(keystream) {
        *d ^= k;
    }
}

/// Standard CFB encryption of `buf` in place with an `N`-byte block cipher:
/// `first` is the encryption of the IV (the keystream of block 0, a constant
/// of the key) and `encrypt` encrypts one block in place. Serial: every block's
/// cipher input is the previous ciphertext block.
#[inline(always)]
pub(super) fn encrypt<const N: usize>(buf: &mut [u8], first: [u8; N], encrypt: impl Fn(&mut [u8; N])) {
    let mut keystream = first;
    let has_tail = buf.len() % N != 0;
    let blocks = buf.len() / N;
    let mut chunks = buf.chunks_exact_mut(N);
    for (i, chunk) in (&mut chunks).enumerate() {
        let block = <&mut [u8; N]>::try_from(chunk).expect("chunks_exact");
        xor_block(block, &keystream);
        // The ciphertext is the next cipher input; none is needed after the last block.
        if has_tail || i + 1 < blocks {
            keystream = *block;
            encrypt(&mut keystream);
        }
    }
    xor_tail(chunks.into_remainder(), &keystream);
}

/// Standard CFB decryption of `buf` in place (see [`encrypt`]). Every block's
/// keystream depends only on ciphertext, so successive block encryptions are
/// independent and overlap in the CPU.
#[inline(always)]
pub(super) fn decrypt<const N: usize>(buf: &mut [u8], first: [u8; N], encrypt: impl Fn(&mut [u8; N])) {
    let mut keystream = first;
    let mut started = false;
    let mut chunks = buf.chunks_exact_mut(N);
    for chunk in &mut chunks {
        let block = <&mut [u8; N]>::try_from(chunk).expect("chunks_exact");
        if started {
            encrypt(&mut keystream);
        }
        started = true;
        let ciphertext = *block;
        xor_block(block, &keystream);
        keystream = ciphertext;
    }
    let tail = chunks.into_remainder();
    if !tail.is_empty() {
        if started {
            encrypt(&mut keystream);
        }
        xor_tail(tail, &keystream);
    }
}
