//! Builds the C examples of `examples/c/` against the libkcpx.so that
//! `cargo test` put next to the test binary, for tests that run them.
//! Include with `#[path = "support/cprog.rs"] mod cprog;`.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

/// The repository root.
pub fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// A work directory for `name` next to the test binary, with `lib/` holding
/// `libkcpx.so.1` (the SONAME the programs load) pointing at the fresh build.
pub fn work_dir(name: &str) -> (PathBuf, PathBuf) {
    let deps = std::env::current_exe().unwrap().parent().unwrap().to_path_buf();
    let work = deps.join(name);
    let lib_dir = work.join("lib");
    std::fs::create_dir_all(&lib_dir).unwrap();
    let link = lib_dir.join("libkcpx.so.1");
    let _ = std::fs::remove_file(&link);
    std::os::unix::fs::symlink(deps.join("libkcpx.so"), &link).unwrap();
    (work, lib_dir)
}

/// Compiles `examples/c/<program>.c` with warnings as errors into `work`,
/// linked to libkcpx.so with an rpath to `lib_dir`.
pub fn compile(program: &str, work: &Path, lib_dir: &Path) -> PathBuf {
    let deps = std::env::current_exe().unwrap().parent().unwrap().to_path_buf();
    let out = work.join(program);
    let cc = Command::new("cc")
        .args(["-std=c11", "-O2", "-Wall", "-Wextra", "-Wpedantic", "-Werror"])
        .arg("-I")
        .arg(root().join("include"))
        .arg(root().join(format!("examples/c/{program}.c")))
        .arg(deps.join("libkcpx.so"))
        .arg(format!("-Wl,-rpath,{}", lib_dir.display()))
        .arg("-o")
        .arg(&out)
        .output()
        .unwrap();
    assert!(
        cc.status.success(),
        "building {program} failed:\n{}",
        String::from_utf8_lossy(&cc.stderr)
    );
    out
}
