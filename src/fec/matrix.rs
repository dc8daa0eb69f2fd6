//! The Reed-Solomon matrices of kcp-go's FEC, computed here with the scalar
//! GF(2^8) operations of `reed_solomon_erasure::galois_8` (table lookups).
//!
//! The crate's slice kernels (`mul_slice`, `mul_slice_xor`, reached from
//! `ReedSolomon::encode` and `reconstruct_data`) are not used: under Miri's
//! Stacked Borrows they are undefined behaviour (they step a pointer taken
//! from `&mut out[0]` past that one element). Encoding and reconstruction
//! multiply slices with the kernels of `gf.rs` instead.
//!
//! The encoding matrix is Backblaze's, as in the crate and in klauspost's Go
//! package: a `total × data` Vandermonde matrix (row `r`, column `c` holds
//! `r^c`) multiplied by the inverse of its top square, so that the top
//! `data` rows are the identity and the rest produce parity.
#![forbid(unsafe_code)]

use reed_solomon_erasure::galois_8::{div, exp, mul};

/// A dense matrix over GF(2^8), row-major.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Matrix {
    rows: usize,
    cols: usize,
    cells: Vec<u8>,
}

impl Matrix {
    fn zero(rows: usize, cols: usize) -> Matrix {
        Matrix {
            rows,
            cols,
            cells: vec![0; rows * cols],
        }
    }

    pub(super) fn get(&self, r: usize, c: usize) -> u8 {
        self.cells[r * self.cols + c]
    }

    fn set(&mut self, r: usize, c: usize, value: u8) {
        self.cells[r * self.cols + c] = value;
    }

    fn row(&self, r: usize) -> &[u8] {
        &self.cells[r * self.cols..(r + 1) * self.cols]
    }

    /// The encoding matrix for `data` data shards out of `total` (both
    /// validated by `FecConfig`: `1 <= data < total <= 256`).
    pub(super) fn encoding(data: usize, total: usize) -> Matrix {
        let mut vandermonde = Matrix::zero(total, data);
        for r in 0..total {
            for c in 0..data {
                vandermonde.set(r, c, exp(r as u8, c));
            }
        }
        let top = vandermonde.select(&(0..data).collect::<Vec<_>>());
        let inverse = top
            .invert()
            .expect("a Vandermonde square with distinct rows is invertible");
        vandermonde.multiply(&inverse)
    }

    /// The square matrix made of the given rows.
    pub(super) fn select(&self, rows: &[usize]) -> Matrix {
        let mut out = Matrix::zero(rows.len(), self.cols);
        for (i, &r) in rows.iter().enumerate() {
            out.cells[i * self.cols..(i + 1) * self.cols].copy_from_slice(self.row(r));
        }
        out
    }

    fn multiply(&self, rhs: &Matrix) -> Matrix {
        let mut out = Matrix::zero(self.rows, rhs.cols);
        for r in 0..self.rows {
            for c in 0..rhs.cols {
                let value = (0..self.cols).fold(0u8, |acc, k| acc ^ mul(self.get(r, k), rhs.get(k, c)));
                out.set(r, c, value);
            }
        }
        out
    }

    /// Gauss-Jordan inverse of a square matrix; None if it is singular.
    pub(super) fn invert(&self) -> Option<Matrix> {
        let n = self.rows;
        debug_assert_eq!(n, self.cols);
        let mut work = self.cells.clone();
        let mut inverse = Matrix::zero(n, n);
        invert_into(n, &mut work, &mut inverse.cells).then_some(inverse)
    }

    /// The inverse of the square matrix made of the given rows (as
    /// `self.select(rows).invert()`), computed in `scratch` without
    /// allocating once `scratch` has held `2 · rows.len()²` bytes: on
    /// success, `scratch[n·n..2·n·n]` holds the inverse, row-major (`n` =
    /// `rows.len()`). False if it is singular.
    pub(super) fn invert_rows_into(&self, rows: &[u8], scratch: &mut Vec<u8>) -> bool {
        let n = rows.len();
        debug_assert_eq!(n, self.cols);
        scratch.clear();
        scratch.resize(2 * n * n, 0);
        let (work, inverse) = scratch.split_at_mut(n * n);
        for (i, &r) in rows.iter().enumerate() {
            work[i * n..(i + 1) * n].copy_from_slice(self.row(usize::from(r)));
        }
        invert_into(n, work, inverse)
    }
}

/// Gauss-Jordan: turns the `n × n` matrix `work` into the identity and
/// writes its inverse into `inverse` (both row-major, `n · n` bytes; the
/// old contents of `inverse` are ignored). False if `work` is singular.
fn invert_into(n: usize, work: &mut [u8], inverse: &mut [u8]) -> bool {
    inverse.fill(0);
    for i in 0..n {
        inverse[i * n + i] = 1;
    }
    for col in 0..n {
        let Some(pivot) = (col..n).find(|&r| work[r * n + col] != 0) else {
            return false;
        };
        if pivot != col {
            for c in 0..n {
                work.swap(pivot * n + c, col * n + c);
                inverse.swap(pivot * n + c, col * n + c);
            }
        }
        let scale = div(1, work[col * n + col]);
        for c in 0..n {
            work[col * n + c] = mul(work[col * n + c], scale);
            inverse[col * n + c] = mul(inverse[col * n + c], scale);
        }
        for r in (0..n).filter(|&r| r != col) {
            let factor = work[r * n + col];
            if factor == 0 {
                continue;
            }
            for c in 0..n {
                work[r * n + c] ^= mul(factor, work[col * n + c]);
                inverse[r * n + c] ^= mul(factor, inverse[col * n + c]);
            }
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn top_rows_are_the_identity_and_any_data_rows_invert() {
        for (data, total) in [(1, 2), (3, 5), (10, 13), (17, 20)] {
            let m = Matrix::encoding(data, total);
            for r in 0..data {
                for c in 0..data {
                    assert_eq!(m.get(r, c), u8::from(r == c));
                }
            }
            // Every choice of `data` rows made of the last ones is invertible.
            let rows: Vec<usize> = (total - data..total).collect();
            let square = m.select(&rows);
            let inverse = square.invert().expect("MDS code");
            assert_eq!(square.multiply(&inverse), Matrix::encoding(data, data));
            // The allocation-free form gives the same inverse.
            let rows: Vec<u8> = rows.iter().map(|&r| r as u8).collect();
            let mut scratch = Vec::new();
            assert!(m.invert_rows_into(&rows, &mut scratch));
            assert_eq!(scratch[data * data..], inverse.cells[..]);
        }
    }
}
