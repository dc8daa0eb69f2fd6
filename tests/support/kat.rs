//! Reading the known-answer files of `tests/data/`: records of
//! space-separated fields, hex fields.
#![allow(dead_code)] // each test file uses a part

use std::path::PathBuf;

/// The text of `tests/data/DIR/NAME`.
pub fn data_file(dir: &str, name: &str) -> String {
    let path: PathBuf = [env!("CARGO_MANIFEST_DIR"), "tests", "data", dir, name]
        .iter()
        .collect();
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Non-comment lines of `tests/data/DIR/NAME`, split into fields.
pub fn records(dir: &str, name: &str) -> Vec<Vec<String>> {
    data_file(dir, name)
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| l.split(' ').map(str::to_owned).collect())
        .collect()
}

/// Bytes of a hex field ("-" is empty).
pub fn unhex(s: &str) -> Vec<u8> {
    if s == "-" {
        return Vec::new();
    }
    assert!(s.len() % 2 == 0, "odd hex length");
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
        .collect()
}

/// `b` in lower-case hex.
pub fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}
