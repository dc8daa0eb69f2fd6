//! GF(2^8) multiply-accumulate over byte slices, `out_r ^= c_r · input` for
//! several rows `r` at once, in safe Rust.
//!
//! Bit-sliced (SWAR): multiplication by a constant is linear over GF(2), so
//! `c · x = XOR over bits b of x of (c · 2^b)`. For eight bytes in a `u64`, the
//! bytes whose bit `b` is set are turned into a 0xff mask and ANDed with
//! `c · 2^b` repeated in every byte. The masks are shared by all rows, and the
//! loop over 8-byte words uses only shifts, ANDs, subtractions and XORs on
//! `u64` lanes, which the compiler turns into SIMD instructions (SSE2 on every
//! x86-64, wider where the build enables it). Same field and polynomial (0x11d)
//! as `reed_solomon_erasure::galois_8`, whose scalar `mul` handles the tail bytes.

use reed_solomon_erasure::galois_8;

const LOW_BITS: u64 = 0x0101_0101_0101_0101;
/// Rows processed per pass over the input.
const MAX_ROWS: usize = 4;

/// A multiplier prepared for [`mul_add`]: `c · 2^b` repeated in all 8 bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Multiplier {
    value: u8,
    splat: [u64; 8],
}

impl Multiplier {
    pub(super) fn new(value: u8) -> Multiplier {
        let splat = core::array::from_fn(|b| LOW_BITS * u64::from(galois_8::mul(value, 1 << b)));
        Multiplier { value, splat }
    }
}

/// `out ^= m · input` for every `(m, out)` row; every `out` is `input.len()` long.
pub(super) fn mul_add(input: &[u8], rows: &mut [(&Multiplier, &mut [u8])]) {
    let full = input.len() / 8 * 8;
    for group in rows.chunks_mut(MAX_ROWS) {
        match group {
            [(m0, o0)] => kernel1(&input[..full], [m0], &mut o0[..full]),
            [(m0, o0), (m1, o1)] => kernel2(&input[..full], [m0, m1], &mut o0[..full], &mut o1[..full]),
            [(m0, o0), (m1, o1), (m2, o2)] => kernel3(
                &input[..full],
                [m0, m1, m2],
                &mut o0[..full],
                &mut o1[..full],
                &mut o2[..full],
            ),
            [(m0, o0), (m1, o1), (m2, o2), (m3, o3)] => kernel4(
                &input[..full],
                [m0, m1, m2, m3],
                &mut o0[..full],
                &mut o1[..full],
                &mut o2[..full],
                &mut o3[..full],
            ),
            _ => unreachable!("chunks of 1..=4"),
        }
        for (m, out) in group.iter_mut() {
            // Scalar tail (galois_8's slice kernels are UB under Stacked Borrows).
            for (o, &x) in out[full..input.len()].iter_mut().zip(&input[full..]) {
                *o ^= galois_8::mul(m.value, x);
            }
        }
    }
}

/// Defines `$name`, the kernel for as many rows as output slices listed: one
/// straight-line loop over 8-byte words (the shape the loop vectoriser takes).
macro_rules! kernel {
    ($name:ident, $($out:ident $acc:ident $row:tt),+) => {
        fn $name(input: &[u8], m: [&Multiplier; count!($($out)+)], $($out: &mut [u8]),+) {
            let words = input.chunks_exact(8)$(.zip($out.chunks_exact_mut(8)))+;
            #[allow(unused_parens)]
            for kernel!(@pattern w; $($out)+) in words {
                let x = u64::from_le_bytes(w.try_into().expect("8 bytes"));
                $(let mut $acc = 0u64;)+
                for bit in 0..8 {
                    let set = (x >> bit) & LOW_BITS;
                    let mask = (set << 8).wrapping_sub(set);
                    $($acc ^= mask & m[$row].splat[bit];)+
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

    #[test]
    fn matches_galois_8_for_every_multiplier_and_length() {
        let input: Vec<u8> = (0..200u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect();
        for len in [0, 1, 31, 32, 33, 64, 100, 200] {
            for first in 0..=255u8 {
                let values = [first, first.wrapping_mul(7), 1, first ^ 0x5a, 0, 3];
                let multipliers: Vec<Multiplier> = values.iter().map(|&v| Multiplier::new(v)).collect();
                let mut ours: Vec<Vec<u8>> = (0..values.len()).map(|r| vec![r as u8; len]).collect();
                let mut reference = ours.clone();
                let mut rows: Vec<(&Multiplier, &mut [u8])> = multipliers
                    .iter()
                    .zip(ours.iter_mut())
                    .map(|(m, o)| (m, &mut o[..]))
                    .collect();
                mul_add(&input[..len], &mut rows);
                for (v, out) in values.iter().zip(reference.iter_mut()) {
                    galois_8::mul_slice_xor(*v, &input[..len], out);
                }
                assert_eq!(ours, reference, "len {len} first {first}");
            }
        }
    }
}
