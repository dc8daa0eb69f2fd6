//! Build script: compiles the C shim for the variadic `ikcp_log`, and gives
//! libkcpx.so its SONAME and export list.

fn main() {
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
