//! The committed C headers must be exactly what cbindgen generates from the
//! code. On drift this test fails; `KCPX_BLESS=1 cargo test --test
//! header_drift` rewrites them.

use std::path::Path;

fn check(header: &str, config: &str, sources: &[&str]) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let config = cbindgen::Config::from_file(root.join(config)).expect("cbindgen config");
    let mut builder = cbindgen::Builder::new().with_config(config);
    for src in sources {
        builder = builder.with_src(root.join(src));
    }
    let mut generated = Vec::new();
    builder.generate().expect("cbindgen failed").write(&mut generated);
    let path = root.join(header);
    let committed = std::fs::read(&path).unwrap_or_default();
    if committed != generated {
        if std::env::var_os("KCPX_BLESS").is_some() {
            std::fs::write(&path, &generated).expect("write header");
            eprintln!("rewrote {header}");
        } else {
            panic!("{header} is out of date with the code: run `KCPX_BLESS=1 cargo test --test header_drift` and commit it");
        }
    }
}

#[test]
fn ikcp_h_matches_code() {
    check(
        "include/ikcp.h",
        "cbindgen-ikcp.toml",
        &["src/ffi/ikcp.rs", "src/ffi/alloc.rs"],
    );
}

#[test]
fn kcpx_h_matches_code() {
    check(
        "include/kcpx.h",
        "cbindgen-kcpx.toml",
        &[
            "src/error.rs",
            "src/ffi/conn.rs",
            "src/ffi/session.rs",
            "src/ffi/listener.rs",
            "src/ffi/token.rs",
        ],
    );
}
