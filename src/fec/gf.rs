//! GF(2^8) multiply-accumulate over byte slices, `out_r ^= c_r · input` for
//! several rows `r` at once: the entry points of the FEC code, the run-time
//! choice of kernel, and the scalar kernel, in safe Rust.
//!
//! [`mul_add`] hands the bulk of the bytes to the fastest kernel this CPU has
//! (see [`super::simd`], the one module allowed `unsafe`) and finishes whatever
//! that kernel leaves (nothing, or the last bytes short of its vector width)
//! with the scalar kernel here.
//!
//! The scalar kernel is bit-sliced (SWAR): multiplication by a constant is
//! linear over GF(2), so `c · x = XOR over bits b of x of (c · 2^b)`. For eight
//! bytes in a `u64`, the bytes whose bit `b` is set are turned into a 0xff mask
//! and ANDed with `c · 2^b` repeated in every byte. The masks are shared by all
//! rows, and the loop over 8-byte words uses only shifts, ANDs, subtractions and
//! XORs on `u64` lanes, which the compiler turns into SSE2 instructions. Same
//! field and polynomial (0x11d) as `reed_solomon_erasure::galois_8`, whose
//! byte-wise `mul` (a table lookup) handles the last bytes short of a word.
#![forbid(unsafe_code)]

use reed_solomon_erasure::galois_8;

use super::simd::Kernel;

const LOW_BITS: u64 = 0x0101_0101_0101_0101;
/// Rows processed per pass over the input.
const MAX_ROWS: usize = 4;

/// A multiplier prepared for [`mul_add`]: the tables every kernel needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Multiplier {
    value: u8,
    /// Split-nibble tables: `nibbles[0][i] = c · i`, `nibbles[1][i] = c · (i << 4)`
    /// for `i < 16` (the `pshufb` kernels).
    pub(super) nibbles: [[u8; 16]; 2],
    /// Multiplication by `c` as an 8×8 bit matrix over GF(2), laid out as the
    /// `gf2p8affineqb` instruction wants it: byte `7 - i` holds row `i`, whose bit
    /// `j` is bit `i` of `c · 2^j`.
    pub(super) affine: u64,
}

impl Multiplier {
    pub(super) fn new(value: u8) -> Multiplier {
        // Multiplication is linear: everything follows from c · 2^j, j < 8.
        let columns: [u8; 8] = core::array::from_fn(|j| galois_8::mul(value, 1 << j));
        let nibbles: [[u8; 16]; 2] = core::array::from_fn(|half| {
            core::array::from_fn(|i| {
                (0..4)
                    .filter(|b| i >> b & 1 == 1)
                    .fold(0, |p, b| p ^ columns[4 * half + b])
            })
        });
        let mut affine = 0u64;
        for (j, column) in columns.iter().enumerate() {
            for i in 0..8 {
                affine |= u64::from((column >> i) & 1) << (8 * (7 - i) + j);
            }
        }
        Multiplier { value, nibbles, affine }
    }

    /// `c · 2^b` repeated in all 8 bytes, for each bit `b` (the scalar kernel).
    fn splat(&self) -> [u64; 8] {
        core::array::from_fn(|b| LOW_BITS * u64::from(self.nibbles[b / 4][1 << (b % 4)]))
    }
}

/// `out ^= m · input` for every `(m, out)` row; every `out` is at least
/// `input.len()` long (bytes past that are left alone). Uses the kernel chosen
/// for this CPU ([`Kernel::selected`]).
pub(super) fn mul_add(input: &[u8], rows: &mut [(&Multiplier, &mut [u8])]) {
    mul_add_with(Kernel::selected(), input, rows);
}

/// [`mul_add`] with the given kernel (tests compare every kernel with the scalar one).
pub(super) fn mul_add_with(kernel: Kernel, input: &[u8], rows: &mut [(&Multiplier, &mut [u8])]) {
    for (_, out) in rows.iter() {
        assert!(out.len() >= input.len(), "output row shorter than the input");
    }
    for group in rows.chunks_mut(MAX_ROWS) {
        let done = kernel.mul_add(input, group);
        scalar(input, group, done);
    }
}

/// The scalar kernel over `input[start..]` for one group of 1 to 4 rows.
fn scalar(input: &[u8], group: &mut [(&Multiplier, &mut [u8])], start: usize) {
    let len = input.len();
    let full = start + (len - start) / 8 * 8;
    let words = &input[start..full];
    match group {
        [(m0, o0)] => kernel1(words, [m0], &mut o0[start..full]),
        [(m0, o0), (m1, o1)] => kernel2(words, [m0, m1], &mut o0[start..full], &mut o1[start..full]),
        [(m0, o0), (m1, o1), (m2, o2)] => kernel3(
            words,
            [m0, m1, m2],
            &mut o0[start..full],
            &mut o1[start..full],
            &mut o2[start..full],
        ),
        [(m0, o0), (m1, o1), (m2, o2), (m3, o3)] => kernel4(
            words,
            [m0, m1, m2, m3],
            &mut o0[start..full],
            &mut o1[start..full],
            &mut o2[start..full],
            &mut o3[start..full],
        ),
        _ => unreachable!("chunks of 1..=4"),
    }
    for (m, out) in group.iter_mut() {
        for (o, &x) in out[full..len].iter_mut().zip(&input[full..]) {
            *o ^= galois_8::mul(m.value, x);
        }
    }
}

/// Defines `$name`, the kernel for as many rows as output slices listed: one
/// straight-line loop over 8-byte words (the shape the loop vectoriser takes).
macro_rules! kernel {
    ($name:ident, $($out:ident $acc:ident $row:tt),+) => {
        fn $name(input: &[u8], m: [&Multiplier; count!($($out)+)], $($out: &mut [u8]),+) {
            let splat = m.map(Multiplier::splat);
            let words = input.chunks_exact(8)$(.zip($out.chunks_exact_mut(8)))+;
            #[allow(unused_parens)]
            for kernel!(@pattern w; $($out)+) in words {
                let x = u64::from_le_bytes(w.try_into().expect("8 bytes"));
                $(let mut $acc = 0u64;)+
                for bit in 0..8 {
                    let set = (x >> bit) & LOW_BITS;
                    let mask = (set << 8).wrapping_sub(set);
                    $($acc ^= mask & splat[$row][bit];)+
                }
                $(
                    let v = u64::from_le_bytes((&*$out).try_into().expect("8 bytes")) ^ $acc;
                    $out.copy_from_slice(&v.to_le_bytes());
                )+
            }
        }
    };
    (@pattern $w:ident; $first:ident) => { ($w, $first) };
    (@pattern $w:ident; $first:ident $second:ident) => { (($w, $first), $second) };
    (@pattern $w:ident; $first:ident $second:ident $third:ident) => { ((($w, $first), $second), $third) };
    (@pattern $w:ident; $first:ident $second:ident $third:ident $fourth:ident) => {
        (((($w, $first), $second), $third), $fourth)
    };
}

/// Number of identifiers given (1..=4), as a const expression.
macro_rules! count {
    ($a:ident) => {
        1
    };
    ($a:ident $b:ident) => {
        2
    };
    ($a:ident $b:ident $c:ident) => {
        3
    };
    ($a:ident $b:ident $c:ident $d:ident) => {
        4
    };
}

kernel!(kernel1, o0 a0 0);
kernel!(kernel2, o0 a0 0, o1 a1 1);
kernel!(kernel3, o0 a0 0, o1 a1 1, o2 a2 2);
kernel!(kernel4, o0 a0 0, o1 a1 1, o2 a2 2, o3 a3 3);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fec::tests::Rng;

    /// `out ^= c · input` byte by byte with `galois_8::mul` (a table lookup).
    fn reference(c: u8, input: &[u8], out: &mut [u8]) {
        for (o, &x) in out.iter_mut().zip(input) {
            *o ^= galois_8::mul(c, x);
        }
    }

    /// Names the first differing byte instead of printing whole shards.
    fn assert_same(ours: &[Vec<u8>], expected: &[Vec<u8>], context: impl std::fmt::Display) {
        for (row, (a, b)) in ours.iter().zip(expected).enumerate() {
            if let Some(at) = (0..a.len().max(b.len())).find(|&i| a.get(i) != b.get(i)) {
                panic!(
                    "{context}: row {row} differs first at byte {at}: {:?} != {:?}",
                    a.get(at),
                    b.get(at)
                );
            }
        }
        assert_eq!(ours.len(), expected.len(), "{context}: row count");
    }

    fn run(kernel: Kernel, input: &[u8], values: &[u8], outs: &mut [Vec<u8>]) {
        let multipliers: Vec<Multiplier> = values.iter().map(|&v| Multiplier::new(v)).collect();
        let mut rows: Vec<(&Multiplier, &mut [u8])> = multipliers
            .iter()
            .zip(outs.iter_mut())
            .map(|(m, o)| (m, &mut o[..]))
            .collect();
        mul_add_with(kernel, input, &mut rows);
    }

    #[test]
    fn every_kernel_matches_galois_8_for_every_multiplier_and_length() {
        let input: Vec<u8> = (0..200u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect();
        // Miri is slow: there, a sample of the multipliers.
        let step = if cfg!(miri) { 37 } else { 1 };
        for kernel in Kernel::supported() {
            for len in [0, 1, 31, 32, 33, 64, 100, 200] {
                for first in (0..=255u8).step_by(step) {
                    let values = [first, first.wrapping_mul(7), 1, first ^ 0x5a, 0, 3];
                    let mut ours: Vec<Vec<u8>> = (0..values.len()).map(|r| vec![r as u8; len]).collect();
                    let mut expected = ours.clone();
                    run(kernel, &input[..len], &values, &mut ours);
                    for (&v, out) in values.iter().zip(expected.iter_mut()) {
                        reference(v, &input[..len], out);
                    }
                    assert_same(&ours, &expected, format_args!("{kernel:?} len {len} first {first}"));
                }
            }
        }
    }

    /// Every kernel this CPU supports against the scalar one on random shards:
    /// random lengths (FEC's 1400 and 1500 among them), 1 to 9 rows, random
    /// multipliers (0 and 1 included), inputs and outputs at random alignments,
    /// and output rows longer than the input whose extra bytes must not change.
    #[test]
    fn every_supported_kernel_matches_the_scalar_one_on_random_shards() {
        let kernels = Kernel::supported();
        eprintln!("kernels on this CPU: {kernels:?}; selected: {:?}", Kernel::selected());
        #[cfg(all(target_arch = "x86_64", not(miri)))]
        if std::arch::is_x86_feature_detected!("avx2") {
            assert!(
                kernels.len() > 1,
                "AVX2 detected, but only the scalar kernel is offered"
            );
        }
        let rounds = if cfg!(miri) { 8 } else { 400 };
        for seed in 0..rounds {
            let mut rng = Rng::new(seed);
            let len = match seed % 4 {
                0 => 1400,
                1 => 1500,
                _ => rng.index(1600),
            };
            let rows = 1 + rng.index(9);
            let values: Vec<u8> = (0..rows)
                .map(|_| match rng.index(8) {
                    0 => 0,
                    1 => 1,
                    _ => rng.next_u64() as u8,
                })
                .collect();
            let skew = rng.index(64);
            let buffer = rng.bytes(skew + len);
            let input = &buffer[skew..];
            let extra = rng.index(40);
            let start: Vec<Vec<u8>> = (0..rows).map(|_| rng.bytes(len + extra)).collect();
            let mut expected = start.clone();
            run(Kernel::scalar(), input, &values, &mut expected);
            for (r, out) in expected.iter().enumerate() {
                assert_eq!(out[len..], start[r][len..], "seed {seed}: scalar wrote past the input");
            }
            for &kernel in &kernels {
                let mut ours = start.clone();
                run(kernel, input, &values, &mut ours);
                assert_same(
                    &ours,
                    &expected,
                    format_args!("seed {seed}: {kernel:?}, len {len}, rows {rows}, skew {skew}"),
                );
            }
        }
    }
}
