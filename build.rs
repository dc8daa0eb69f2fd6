//! Build script: with the `ffi` feature (the default), compiles the C shim
//! for the variadic `ikcp_log` and gives libkcpx.so its SONAME and export
//! list; without it, there is no C to build.

fn main() {
    gfni_cfg();
    #[cfg(feature = "ffi")]
    c_abi();
}

/// The C side of the `ffi` feature.
#[cfg(feature = "ffi")]
fn c_abi() {
    let dir = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    println!("cargo:rerun-if-changed=src/ffi/ikcp_log.c");
    println!("cargo:rerun-if-changed=include/ikcp.h");
    println!("cargo:rerun-if-changed=src/ffi/exports.map");

    cc::Build::new()
        .file("src/ffi/ikcp_log.c")
        .include("include")
        .warnings(true)
        .extra_warnings(true)
        .compile("kcpx_ikcp_log");

    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux") {
        // Major version 1 of the C ABI: bump only for breaking changes.
        println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libkcpx.so.1");
        // Export ikcp_* and kcpx_* only (checked by the export-list test).
        println!("cargo:rustc-cdylib-link-arg=-Wl,--version-script={dir}/src/ffi/exports.map");
    }
}

/// Sets `kcpx_gfni` when the compiler is Rust 1.89 or newer, where the GFNI and
/// AVX-512 target features and intrinsics are stable: `src/fec/simd.rs` then
/// builds its GFNI kernels (older compilers get the AVX2 kernel only).
fn gfni_cfg() {
    println!("cargo:rustc-check-cfg=cfg(kcpx_gfni)");
    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let minor = std::process::Command::new(rustc)
        .arg("--version")
        .output()
        .ok()
        .and_then(|out| String::from_utf8(out.stdout).ok())
        .and_then(|version| {
            // "rustc 1.95.0 (59807616e 2026-04-14)"
            let number = version.split_whitespace().nth(1)?.to_owned();
            let mut parts = number.split('.');
            (parts.next()? == "1").then_some(())?;
            parts.next()?.parse::<u32>().ok()
        });
    if minor.is_some_and(|minor| minor >= 89) {
        println!("cargo:rustc-cfg=kcpx_gfni");
    }
}
