//! Triple DES (EDE, three keys), encryption only, with the usual table-driven
//! round: each S-box is merged with the P permutation into one 64-entry table
//! of 32-bit words, and the initial and final permutations are byte-indexed
//! tables, all built at compile time from the tables of FIPS 46-3. The inner
//! final/initial permutation pairs of E-D-E cancel, so a block is one IP, 48
//! rounds and one FP.
//!
//! Written here because RustCrypto's `des` crate computes each round's S-box
//! lookups and bit permutations one by one (half of kcp-go's speed in CFB);
//! that crate stays the test oracle.
#![forbid(unsafe_code)]

/// Initial permutation: output bit `j` (1 = most significant) is input bit `IP[j - 1]`.
const IP: [u8; 64] = [
    58, 50, 42, 34, 26, 18, 10, 2, 60, 52, 44, 36, 28, 20, 12, 4, 62, 54, 46, 38, 30, 22, 14, 6, 64, 56, 48, 40, 32,
    24, 16, 8, 57, 49, 41, 33, 25, 17, 9, 1, 59, 51, 43, 35, 27, 19, 11, 3, 61, 53, 45, 37, 29, 21, 13, 5, 63, 55, 47,
    39, 31, 23, 15, 7,
];

/// The round function's permutation of the S-box outputs.
const P: [u8; 32] = [
    16, 7, 20, 21, 29, 12, 28, 17, 1, 15, 23, 26, 5, 18, 31, 10, 2, 8, 24, 14, 32, 27, 3, 9, 19, 13, 30, 6, 22, 11, 4,
    25,
];

/// Permuted choice 1: the 56 key bits (parity bits dropped) as C then D.
const PC1: [u8; 56] = [
    57, 49, 41, 33, 25, 17, 9, 1, 58, 50, 42, 34, 26, 18, 10, 2, 59, 51, 43, 35, 27, 19, 11, 3, 60, 52, 44, 36, 63, 55,
    47, 39, 31, 23, 15, 7, 62, 54, 46, 38, 30, 22, 14, 6, 61, 53, 45, 37, 29, 21, 13, 5, 28, 20, 12, 4,
];

/// Permuted choice 2: a round key's 48 bits out of C and D.
const PC2: [u8; 48] = [
    14, 17, 11, 24, 1, 5, 3, 28, 15, 6, 21, 10, 23, 19, 12, 4, 26, 8, 16, 7, 27, 20, 13, 2, 41, 52, 31, 37, 47, 55, 30,
    40, 51, 45, 33, 48, 44, 49, 39, 56, 34, 53, 46, 42, 50, 36, 29, 32,
];

/// Left rotations of C and D before each round.
const SHIFTS: [u32; 16] = [1, 1, 2, 2, 2, 2, 2, 2, 1, 2, 2, 2, 2, 2, 2, 1];

/// S-boxes S1..S8, row by row (row = outer input bits, column = middle four).
#[rustfmt::skip]
const SBOXES: [[[u8; 16]; 4]; 8] = [
    [[14, 4, 13, 1, 2, 15, 11, 8, 3, 10, 6, 12, 5, 9, 0, 7], [0, 15, 7, 4, 14, 2, 13, 1, 10, 6, 12, 11, 9, 5, 3, 8],
     [4, 1, 14, 8, 13, 6, 2, 11, 15, 12, 9, 7, 3, 10, 5, 0], [15, 12, 8, 2, 4, 9, 1, 7, 5, 11, 3, 14, 10, 0, 6, 13]],
    [[15, 1, 8, 14, 6, 11, 3, 4, 9, 7, 2, 13, 12, 0, 5, 10], [3, 13, 4, 7, 15, 2, 8, 14, 12, 0, 1, 10, 6, 9, 11, 5],
     [0, 14, 7, 11, 10, 4, 13, 1, 5, 8, 12, 6, 9, 3, 2, 15], [13, 8, 10, 1, 3, 15, 4, 2, 11, 6, 7, 12, 0, 5, 14, 9]],
    [[10, 0, 9, 14, 6, 3, 15, 5, 1, 13, 12, 7, 11, 4, 2, 8], [13, 7, 0, 9, 3, 4, 6, 10, 2, 8, 5, 14, 12, 11, 15, 1],
     [13, 6, 4, 9, 8, 15, 3, 0, 11, 1, 2, 12, 5, 10, 14, 7], [1, 10, 13, 0, 6, 9, 8, 7, 4, 15, 14, 3, 11, 5, 2, 12]],
    [[7, 13, 14, 3, 0, 6, 9, 10, 1, 2, 8, 5, 11, 12, 4, 15], [13, 8, 11, 5, 6, 15, 0, 3, 4, 7, 2, 12, 1, 10, 14, 9],
     [10, 6, 9, 0, 12, 11, 7, 13, 15, 1, 3, 14, 5, 2, 8, 4], [3, 15, 0, 6, 10, 1, 13, 8, 9, 4, 5, 11, 12, 7, 2, 14]],
    [[2, 12, 4, 1, 7, 10, 11, 6, 8, 5, 3, 15, 13, 0, 14, 9], [14, 11, 2, 12, 4, 7, 13, 1, 5, 0, 15, 10, 3, 9, 8, 6],
     [4, 2, 1, 11, 10, 13, 7, 8, 15, 9, 12, 5, 6, 3, 0, 14], [11, 8, 12, 7, 1, 14, 2, 13, 6, 15, 0, 9, 10, 4, 5, 3]],
    [[12, 1, 10, 15, 9, 2, 6, 8, 0, 13, 3, 4, 14, 7, 5, 11], [10, 15, 4, 2, 7, 12, 9, 5, 6, 1, 13, 14, 0, 11, 3, 8],
     [9, 14, 15, 5, 2, 8, 12, 3, 7, 0, 4, 10, 1, 13, 11, 6], [4, 3, 2, 12, 9, 5, 15, 10, 11, 14, 1, 7, 6, 0, 8, 13]],
    [[4, 11, 2, 14, 15, 0, 8, 13, 3, 12, 9, 7, 5, 10, 6, 1], [13, 0, 11, 7, 4, 9, 1, 10, 14, 3, 5, 12, 2, 15, 8, 6],
     [1, 4, 11, 13, 12, 3, 7, 14, 10, 15, 6, 8, 0, 5, 9, 2], [6, 11, 13, 8, 1, 4, 10, 7, 9, 5, 0, 15, 14, 2, 3, 12]],
    [[13, 2, 8, 4, 6, 15, 11, 1, 10, 9, 3, 14, 5, 0, 12, 7], [1, 15, 13, 8, 10, 3, 7, 4, 12, 5, 6, 11, 0, 14, 9, 2],
     [7, 11, 4, 1, 9, 12, 14, 2, 0, 6, 10, 13, 15, 3, 5, 8], [2, 1, 14, 7, 4, 10, 8, 13, 15, 12, 9, 0, 3, 5, 6, 11]],
];

/// Bit `n` (1 = most significant) of a `width`-bit value.
const fn bit(value: u64, width: u32, n: u8) -> u64 {
    (value >> (width - n as u32)) & 1
}

/// A 64-bit permutation as eight byte-indexed tables: the output is the XOR of
/// `table[k][byte k of the input]`.
const fn byte_tables(perm: &[u8; 64]) -> [[u64; 256]; 8] {
    let mut tables = [[0u64; 256]; 8];
    let mut k = 0;
    while k < 8 {
        let mut b = 0;
        while b < 256 {
            let input = (b as u64) << (56 - 8 * k);
            let mut out = 0u64;
            let mut j = 0;
            while j < 64 {
                out |= bit(input, 64, perm[j]) << (63 - j);
                j += 1;
            }
            tables[k][b] = out;
            b += 1;
        }
        k += 1;
    }
    tables
}

const fn inverse(perm: &[u8; 64]) -> [u8; 64] {
    let mut inv = [0u8; 64];
    let mut j = 0;
    while j < 64 {
        inv[perm[j] as usize - 1] = j as u8 + 1;
        j += 1;
    }
    inv
}

/// Each S-box merged with P: `SP[i][v]` is P applied to S-box `i`'s output for
/// the 6-bit input `v`, in its place.
const fn sp_tables() -> [[u32; 64]; 8] {
    let mut sp = [[0u32; 64]; 8];
    let mut i = 0;
    while i < 8 {
        let mut v = 0;
        while v < 64 {
            let row = ((v >> 4) & 2) | (v & 1);
            let column = (v >> 1) & 0xF;
            let s = (SBOXES[i][row][column] as u64) << (28 - 4 * i);
            let mut out = 0u64;
            let mut j = 0;
            while j < 32 {
                out |= bit(s, 32, P[j]) << (31 - j);
                j += 1;
            }
            sp[i][v] = out as u32;
            v += 1;
        }
        i += 1;
    }
    sp
}

static IP_TABLES: [[u64; 256]; 8] = byte_tables(&IP);
static FP_TABLES: [[u64; 256]; 8] = byte_tables(&inverse(&IP));
static SP: [[u32; 64]; 8] = sp_tables();

#[inline(always)]
fn permute(tables: &[[u64; 256]; 8], x: u64) -> u64 {
    let b = x.to_be_bytes();
    let t = |k: usize| tables[k][usize::from(b[k])];
    t(0) ^ t(1) ^ t(2) ^ t(3) ^ t(4) ^ t(5) ^ t(6) ^ t(7)
}

/// The 16 round keys of one DES key, each as eight 6-bit S-box inputs.
fn round_keys(key: &[u8]) -> [[u8; 8]; 16] {
    let key = u64::from_be_bytes(key.try_into().expect("8 bytes"));
    let mut cd = 0u64;
    for &n in &PC1 {
        cd = (cd << 1) | bit(key, 64, n);
    }
    let (mut c, mut d) = ((cd >> 28) as u32, (cd & 0x0FFF_FFFF) as u32);
    let rotate = |half: u32, by: u32| ((half << by) | (half >> (28 - by))) & 0x0FFF_FFFF;
    let mut keys = [[0u8; 8]; 16];
    for (round, &shift) in keys.iter_mut().zip(&SHIFTS) {
        (c, d) = (rotate(c, shift), rotate(d, shift));
        let cd = (u64::from(c) << 28) | u64::from(d);
        let mut k = 0u64;
        for &n in &PC2 {
            k = (k << 1) | bit(cd, 56, n);
        }
        for (i, group) in round.iter_mut().enumerate() {
            *group = ((k >> (42 - 6 * i)) & 0x3F) as u8;
        }
    }
    keys
}

/// An expanded three-key Triple DES key: the 48 round keys in the order one
/// E-D-E block uses them.
#[derive(Clone)]
pub(super) struct TripleDes {
    keys: [[u8; 8]; 48],
}

impl TripleDes {
    /// `key` must be 24 bytes (checked by the caller).
    pub(super) fn new(key: &[u8]) -> TripleDes {
        let mut keys = [[0u8; 8]; 48];
        for (i, part) in key.chunks_exact(8).enumerate() {
            let mut ks = round_keys(part);
            if i == 1 {
                ks.reverse(); // the middle DES decrypts
            }
            keys[16 * i..16 * (i + 1)].copy_from_slice(&ks);
        }
        TripleDes { keys }
    }

    #[inline(always)]
    pub(super) fn encrypt(&self, block: &mut [u8; 8]) {
        let x = permute(&IP_TABLES, u64::from_be_bytes(*block));
        let (mut l, mut r) = ((x >> 32) as u32, x as u32);
        for des in self.keys.chunks_exact(16) {
            for k in des {
                // Expansion E: S-box i reads bits 4i..4i+5 of R (1-based,
                // cyclic), that is R rotated left by 5 + 4i, low six bits.
                // Unrolled: debug builds (the interop tests) stay usable.
                let f = SP[0][(r.rotate_left(5) & 0x3F) as usize ^ k[0] as usize]
                    ^ SP[1][(r.rotate_left(9) & 0x3F) as usize ^ k[1] as usize]
                    ^ SP[2][(r.rotate_left(13) & 0x3F) as usize ^ k[2] as usize]
                    ^ SP[3][(r.rotate_left(17) & 0x3F) as usize ^ k[3] as usize]
                    ^ SP[4][(r.rotate_left(21) & 0x3F) as usize ^ k[4] as usize]
                    ^ SP[5][(r.rotate_left(25) & 0x3F) as usize ^ k[5] as usize]
                    ^ SP[6][(r.rotate_left(29) & 0x3F) as usize ^ k[6] as usize]
                    ^ SP[7][(r.rotate_left(1) & 0x3F) as usize ^ k[7] as usize];
                (l, r) = (r, l ^ f);
            }
            (l, r) = (r, l);
        }
        *block = permute(&FP_TABLES, (u64::from(l) << 32) | u64::from(r)).to_be_bytes();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ::des::cipher::{BlockEncrypt, KeyInit};

    /// The worked example of DES (key 133457799BBCDFF1): Triple DES with three
    /// equal keys is single DES.
    #[test]
    fn published_vector() {
        let key: Vec<u8> = [0x13, 0x34, 0x57, 0x79, 0x9B, 0xBC, 0xDF, 0xF1].repeat(3);
        let mut block = [0x01, 0x23, 0x45, 0x67, 0x89, 0xAB, 0xCD, 0xEF];
        TripleDes::new(&key).encrypt(&mut block);
        assert_eq!(block, [0x85, 0xE8, 0x13, 0x54, 0x0F, 0x0A, 0xB4, 0x05]);
    }

    /// Agrees with RustCrypto's `des` crate on seeded random keys and blocks.
    #[test]
    fn matches_the_des_crate() {
        let seed = 0x3de5_u64;
        eprintln!("seed {seed:#x}");
        let mut next = crate::crypt::draws(seed);
        let mut byte = move || next() as u8;
        for _ in 0..50 {
            let key: Vec<u8> = (0..24).map(|_| byte()).collect();
            let ours = TripleDes::new(&key);
            let theirs = ::des::TdesEde3::new_from_slice(&key).unwrap();
            for _ in 0..5 {
                let mut a = [0u8; 8].map(|_| byte());
                let mut b = a.into();
                ours.encrypt(&mut a);
                theirs.encrypt_block(&mut b);
                assert_eq!(a[..], b[..], "key {key:02x?}");
            }
        }
    }
}
