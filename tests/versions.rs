//! One version story (docs/install.md, "Versions"): the package version is
//! Cargo.toml's, and kcpx.h's `KCPX_VERSION_*` and the docs say the same;
//! the ABI version of the shared library (cmake/CMakeLists.txt) has its
//! major number in the SONAME that build.rs links in.

use std::path::PathBuf;

fn read(path: &str) -> String {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(root.join(path)).unwrap_or_else(|e| panic!("read {path}: {e}"))
}

/// The value of `#define NAME value` in `text`.
fn define(text: &str, name: &str) -> String {
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("#define {name} ")))
        .unwrap_or_else(|| panic!("no #define {name}"))
        .trim()
        .to_string()
}

#[test]
fn the_header_carries_the_crate_version() {
    let h = read("include/kcpx.h");
    let header = ["MAJOR", "MINOR", "PATCH"]
        .map(|p| define(&h, &format!("KCPX_VERSION_{p}")))
        .join(".");
    assert_eq!(
        header,
        env!("CARGO_PKG_VERSION"),
        "kcpx.h's KCPX_VERSION_* vs Cargo.toml"
    );
}

#[test]
fn the_abi_major_is_the_soname() {
    let cmake = read("cmake/CMakeLists.txt");
    let abi = cmake
        .lines()
        .find_map(|l| l.trim().strip_prefix("set(KCPX_ABI_VERSION "))
        .and_then(|v| v.strip_suffix(')'))
        .expect("set(KCPX_ABI_VERSION x.y.z) in cmake/CMakeLists.txt")
        .to_string();
    let major = abi.split('.').next().expect("a major number");
    let soname = format!("libkcpx.so.{major}");
    assert!(
        read("build.rs").contains(&format!("-soname,{soname}\"")),
        "build.rs does not link SONAME {soname} (the CMake ABI version is {abi})"
    );
    let docs = read("docs/install.md");
    for want in [env!("CARGO_PKG_VERSION"), abi.as_str(), soname.as_str()] {
        assert!(docs.contains(want), "docs/install.md's versions do not mention {want}");
    }
}
