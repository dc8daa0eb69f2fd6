//! SIMD kernels for the GF(2^8) multiply-add of Reed-Solomon, chosen at run time.
//!
//! # The `unsafe` rule
//!
//! This is the only module outside `src/ffi/` that may contain `unsafe` code, and
//! only for two things:
//!
//! 1. calling a `#[target_feature]` kernel, which is sound only on a CPU that has
//!    the features it enables. A kernel is reached only through a [`Kernel`], and a
//!    [`Kernel`] naming a SIMD kernel exists only after `is_x86_feature_detected!`
//!    confirmed every one of those features ([`Kind::detect`]): holding one is the
//!    proof;
//! 2. unaligned SIMD loads and stores through pointers into the caller's slices, at
//!    offsets checked against the slices' lengths (the kernels' loop bounds, and an
//!    assertion before every call).
//!
//! Every `unsafe` block states why it is sound in a `SAFETY` comment. The compiler
//! enforces the confinement: `src/fec.rs` says `#![deny(unsafe_code)]` and lets
//! this module alone `#[allow(unsafe_code)]`; its other submodules, and
//! `conn`, `crypt` and `kcp`, say `#![forbid(unsafe_code)]`.
//!
//! Under Miri, and on targets other than x86-64, none of the SIMD code is
//! compiled: only the scalar kernel (in `gf.rs`, safe) exists. The GFNI kernels
//! need Rust 1.89 (where GFNI and AVX-512 became stable); `build.rs` sets
//! `kcpx_gfni` on such compilers, and older ones build the AVX2 kernel only.
//!
//! # Kernels
//!
//! All compute `out_r ^= c_r · input` for 1 to 4 rows per pass over the input,
//! so the input is read once for all parity rows of a shard:
//!
//! * `avx2`: split-nibble table lookup. `c · x = c · (x & 15) ^ c · (x >> 4 << 4)`,
//!   and each half is a 16-entry table looked up with `vpshufb`, 32 bytes at a
//!   time. Leaves the last `len % 32` bytes to the scalar kernel.
//! * `avx2-gfni`: multiplication by a constant is an 8×8 bit matrix over GF(2),
//!   applied to 32 bytes by one `vgf2p8affineqb` (`gf2p8mulb` would use the AES
//!   polynomial 0x11b, not Reed-Solomon's 0x11d). Same tail as `avx2`.
//! * `avx512-gfni`: the same with 64-byte registers, and the tail done with
//!   masked loads and stores, so it covers every byte.

use super::gf::Multiplier;

/// A GF(2^8) kernel this CPU can run (see the module documentation).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Kernel(Kind);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
enum Kind {
    Scalar = 1,
    #[cfg(all(target_arch = "x86_64", not(miri)))]
    Avx2 = 2,
    #[cfg(all(target_arch = "x86_64", not(miri), kcpx_gfni))]
    Avx2Gfni = 3,
    #[cfg(all(target_arch = "x86_64", not(miri), kcpx_gfni))]
    Avx512Gfni = 4,
}

impl Kind {
    /// Every kernel compiled in, in order of preference (fastest last).
    const ALL: &'static [Kind] = &[
        Kind::Scalar,
        #[cfg(all(target_arch = "x86_64", not(miri)))]
        Kind::Avx2,
        #[cfg(all(target_arch = "x86_64", not(miri), kcpx_gfni))]
        Kind::Avx2Gfni,
        #[cfg(all(target_arch = "x86_64", not(miri), kcpx_gfni))]
        Kind::Avx512Gfni,
    ];

    /// Whether this CPU has every feature the kernel's `#[target_feature]` enables.
    fn detect(self) -> bool {
        match self {
            Kind::Scalar => true,
            #[cfg(all(target_arch = "x86_64", not(miri)))]
            Kind::Avx2 => std::arch::is_x86_feature_detected!("avx2"),
            #[cfg(all(target_arch = "x86_64", not(miri), kcpx_gfni))]
            Kind::Avx2Gfni => {
                std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("gfni")
            }
            #[cfg(all(target_arch = "x86_64", not(miri), kcpx_gfni))]
            Kind::Avx512Gfni => {
                std::arch::is_x86_feature_detected!("avx512f")
                    && std::arch::is_x86_feature_detected!("avx512bw")
                    && std::arch::is_x86_feature_detected!("gfni")
            }
        }
    }

    fn name(self) -> &'static str {
        match self {
            Kind::Scalar => "scalar",
            #[cfg(all(target_arch = "x86_64", not(miri)))]
            Kind::Avx2 => "avx2",
            #[cfg(all(target_arch = "x86_64", not(miri), kcpx_gfni))]
            Kind::Avx2Gfni => "avx2-gfni",
            #[cfg(all(target_arch = "x86_64", not(miri), kcpx_gfni))]
            Kind::Avx512Gfni => "avx512-gfni",
        }
    }
}

/// The kernel in use, as `Kind as u8`; 0 until first detected. Only values of
/// kinds whose `detect()` returned true are ever stored.
static SELECTED: std::sync::atomic::AtomicU8 = std::sync::atomic::AtomicU8::new(0);

impl Kernel {
    /// The scalar kernel (safe Rust, every CPU).
    #[cfg(test)]
    pub(super) fn scalar() -> Kernel {
        Kernel(Kind::Scalar)
    }

    /// Every kernel this CPU can run, the scalar one first.
    pub(super) fn supported() -> Vec<Kernel> {
        Kind::ALL.iter().filter(|k| k.detect()).map(|&k| Kernel(k)).collect()
    }

    /// The kernel FEC uses: the fastest this CPU supports, detected on first use,
    /// unless [`Kernel::select`] chose another.
    pub(super) fn selected() -> Kernel {
        use std::sync::atomic::Ordering::Relaxed;
        let stored = SELECTED.load(Relaxed);
        if let Some(&kind) = Kind::ALL.iter().find(|&&k| k as u8 == stored) {
            return Kernel(kind);
        }
        let best = *Kernel::supported()
            .last()
            .expect("the scalar kernel is always supported");
        SELECTED.store(best.0 as u8, Relaxed);
        best
    }

    /// Makes the supported kernel called `name` the one FEC uses; false (and no
    /// change) if there is no such kernel or this CPU cannot run it.
    pub(super) fn select(name: &str) -> bool {
        match Kernel::supported().into_iter().find(|k| k.name() == name) {
            Some(kernel) => {
                SELECTED.store(kernel.0 as u8, std::sync::atomic::Ordering::Relaxed);
                true
            }
            None => false,
        }
    }

    /// "scalar", "avx2", "avx2-gfni" or "avx512-gfni".
    pub(super) fn name(self) -> &'static str {
        self.0.name()
    }

    /// `out_r ^= m_r · input` over the first bytes of `input`, for a group of 1
    /// to 4 rows whose outputs are at least `input.len()` long. Returns how many
    /// leading bytes were done (0 for the scalar kernel): the caller does the rest.
    pub(super) fn mul_add(self, input: &[u8], group: &mut [(&Multiplier, &mut [u8])]) -> usize {
        assert!(
            group.iter().all(|(_, out)| out.len() >= input.len()),
            "output row shorter than the input"
        );
        // Each arm: the kernel monomorphised for the group's row count.
        #[cfg(all(target_arch = "x86_64", not(miri)))]
        macro_rules! by_rows {
            ($kernel:ident) => {
                match group {
                    [(m0, o0)] => $kernel(input, [*m0], [&mut **o0]),
                    [(m0, o0), (m1, o1)] => $kernel(input, [*m0, *m1], [&mut **o0, &mut **o1]),
                    [(m0, o0), (m1, o1), (m2, o2)] => {
                        $kernel(input, [*m0, *m1, *m2], [&mut **o0, &mut **o1, &mut **o2])
                    }
                    [(m0, o0), (m1, o1), (m2, o2), (m3, o3)] => $kernel(
                        input,
                        [*m0, *m1, *m2, *m3],
                        [&mut **o0, &mut **o1, &mut **o2, &mut **o3],
                    ),
                    _ => panic!("a group has 1 to 4 rows"),
                }
            };
        }
        match self.0 {
            Kind::Scalar => 0,
            // In each arm below, `self` is a `Kernel` of that kind, which exists
            // only once `Kind::detect` found the features its kernel enables, and
            // every output is at least `input.len()` long (asserted above).
            #[cfg(all(target_arch = "x86_64", not(miri)))]
            // SAFETY: this CPU has AVX2 (detected); output lengths asserted.
            Kind::Avx2 => unsafe { by_rows!(avx2) },
            #[cfg(all(target_arch = "x86_64", not(miri), kcpx_gfni))]
            // SAFETY: this CPU has AVX2 and GFNI (detected); output lengths asserted.
            Kind::Avx2Gfni => unsafe { by_rows!(avx2_gfni) },
            #[cfg(all(target_arch = "x86_64", not(miri), kcpx_gfni))]
            // SAFETY: this CPU has AVX-512F, AVX-512BW and GFNI (detected); output
            // lengths asserted.
            Kind::Avx512Gfni => unsafe { by_rows!(avx512_gfni) },
        }
    }
}

#[cfg(all(target_arch = "x86_64", not(miri)))]
use std::arch::x86_64::*;

/// Split-nibble `vpshufb` kernel, 32 bytes at a time; returns the bytes done.
///
/// # Safety
/// The CPU has AVX2, and every `out[r]` is at least `input.len()` long.
#[cfg(all(target_arch = "x86_64", not(miri)))]
#[target_feature(enable = "avx2")]
unsafe fn avx2<const N: usize>(input: &[u8], m: [&Multiplier; N], out: [&mut [u8]; N]) -> usize {
    let len = input.len() / 32 * 32;
    let src = input.as_ptr();
    let dst = out.map(<[u8]>::as_mut_ptr);
    // SAFETY: AVX2 is present (caller's contract), so every intrinsic here may
    // run. Loads read 32 bytes at `src + i` and load/store 32 bytes at
    // `dst[r] + i` with `i + 32 <= len <= input.len() <= out[r].len()`; the
    // `loadu`/`storeu` forms have no alignment requirement. The tables are read
    // from 16-byte arrays. The outputs are distinct `&mut` borrows, so no store
    // aliases the input or another row.
    unsafe {
        let low_nibbles = _mm256_set1_epi8(0x0f);
        let mut lo = [_mm256_setzero_si256(); N];
        let mut hi = [_mm256_setzero_si256(); N];
        for r in 0..N {
            lo[r] = _mm256_broadcastsi128_si256(_mm_loadu_si128(m[r].nibbles[0].as_ptr().cast()));
            hi[r] = _mm256_broadcastsi128_si256(_mm_loadu_si128(m[r].nibbles[1].as_ptr().cast()));
        }
        let mut i = 0;
        while i < len {
            let x = _mm256_loadu_si256(src.add(i).cast());
            let x_lo = _mm256_and_si256(x, low_nibbles);
            let x_hi = _mm256_and_si256(_mm256_srli_epi64::<4>(x), low_nibbles);
            for r in 0..N {
                let product = _mm256_xor_si256(_mm256_shuffle_epi8(lo[r], x_lo), _mm256_shuffle_epi8(hi[r], x_hi));
                let o = dst[r].add(i).cast::<__m256i>();
                _mm256_storeu_si256(o, _mm256_xor_si256(_mm256_loadu_si256(o), product));
            }
            i += 32;
        }
    }
    len
}

/// `vgf2p8affineqb` kernel, 32 bytes at a time; returns the bytes done.
///
/// # Safety
/// The CPU has AVX2 and GFNI, and every `out[r]` is at least `input.len()` long.
// GFNI and AVX-512 are stable since Rust 1.89, newer than the crate's MSRV:
// `kcpx_gfni` (build.rs) compiles this only on such a compiler.
#[allow(clippy::incompatible_msrv)]
#[cfg(all(target_arch = "x86_64", not(miri), kcpx_gfni))]
#[target_feature(enable = "avx2,gfni")]
unsafe fn avx2_gfni<const N: usize>(input: &[u8], m: [&Multiplier; N], out: [&mut [u8]; N]) -> usize {
    let len = input.len() / 32 * 32;
    let src = input.as_ptr();
    let dst = out.map(<[u8]>::as_mut_ptr);
    // SAFETY: AVX2 and GFNI are present (caller's contract). Loads read 32 bytes
    // at `src + i` and load/store 32 bytes at `dst[r] + i` with
    // `i + 32 <= len <= input.len() <= out[r].len()`, unaligned forms. The
    // outputs are distinct `&mut` borrows, so no store aliases anything read.
    unsafe {
        let mut matrix = [_mm256_setzero_si256(); N];
        for r in 0..N {
            matrix[r] = _mm256_set1_epi64x(m[r].affine as i64);
        }
        let mut i = 0;
        while i < len {
            let x = _mm256_loadu_si256(src.add(i).cast());
            for r in 0..N {
                let product = _mm256_gf2p8affine_epi64_epi8::<0>(x, matrix[r]);
                let o = dst[r].add(i).cast::<__m256i>();
                _mm256_storeu_si256(o, _mm256_xor_si256(_mm256_loadu_si256(o), product));
            }
            i += 32;
        }
    }
    len
}

/// `vgf2p8affineqb` kernel, 64 bytes at a time and a masked tail: does every
/// byte, returns `input.len()`.
///
/// # Safety
/// The CPU has AVX-512F, AVX-512BW and GFNI, and every `out[r]` is at least
/// `input.len()` long.
// GFNI and AVX-512 are stable since Rust 1.89, newer than the crate's MSRV:
// `kcpx_gfni` (build.rs) compiles this only on such a compiler.
#[allow(clippy::incompatible_msrv)]
#[cfg(all(target_arch = "x86_64", not(miri), kcpx_gfni))]
#[target_feature(enable = "avx512f,avx512bw,gfni")]
unsafe fn avx512_gfni<const N: usize>(input: &[u8], m: [&Multiplier; N], out: [&mut [u8]; N]) -> usize {
    let len = input.len();
    let src = input.as_ptr();
    let dst = out.map(<[u8]>::as_mut_ptr);
    // SAFETY: AVX-512F/BW and GFNI are present (caller's contract). Full loads
    // and stores cover 64 bytes at offset `i` with `i + 64 <= len <= input.len()
    // <= out[r].len()`, unaligned forms. The tail's masked loads and stores touch
    // only the `len - i < 64` bytes their mask selects, all in bounds (masked-off
    // bytes are not accessed and cannot fault). The outputs are distinct `&mut`
    // borrows, so no store aliases anything read.
    unsafe {
        let mut matrix = [_mm512_setzero_si512(); N];
        for r in 0..N {
            matrix[r] = _mm512_set1_epi64(m[r].affine as i64);
        }
        let mut i = 0;
        while i + 64 <= len {
            let x = _mm512_loadu_si512(src.add(i).cast());
            for r in 0..N {
                let product = _mm512_gf2p8affine_epi64_epi8::<0>(x, matrix[r]);
                let o = dst[r].add(i);
                _mm512_storeu_si512(o.cast(), _mm512_xor_si512(_mm512_loadu_si512(o.cast()), product));
            }
            i += 64;
        }
        if i < len {
            let mask: __mmask64 = u64::MAX >> (64 - (len - i));
            let x = _mm512_maskz_loadu_epi8(mask, src.add(i).cast());
            for r in 0..N {
                let product = _mm512_gf2p8affine_epi64_epi8::<0>(x, matrix[r]);
                let o = dst[r].add(i).cast();
                let sum = _mm512_xor_si512(_mm512_maskz_loadu_epi8(mask, o), product);
                _mm512_mask_storeu_epi8(o, mask, sum);
            }
        }
    }
    len
}
