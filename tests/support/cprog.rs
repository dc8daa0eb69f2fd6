//! Builds the C examples of `examples/c/` (and C++ programs) against the libkcpx.so that
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
    let flags = ["-std=c11", "-O2", "-Wall", "-Wextra", "-Wpedantic", "-Werror"];
    let source = root().join(format!("examples/c/{program}.c"));
    build("cc", &flags, &source, &work.join(program), lib_dir)
}

/// Compiles the C++ file `source` (relative to the repository root) with
/// g++ as C++17 (`-std=c++17 -Wall -Wextra -Wpedantic -Werror`, then
/// `extra`, which may override the standard) into `work/<name>`, linked as
/// [`compile`] does. The caller checks first that g++ is installed
/// (tests/support/skip.rs).
pub fn compile_cxx(source: &str, name: &str, extra: &[&str], work: &Path, lib_dir: &Path) -> PathBuf {
    let mut flags = vec!["-std=c++17", "-O1", "-Wall", "-Wextra", "-Wpedantic", "-Werror"];
    flags.extend_from_slice(extra);
    build("g++", &flags, &root().join(source), &work.join(name), lib_dir)
}

/// `compiler flags -Iinclude source libkcpx.so -Wl,-rpath,lib_dir -o out`.
fn build(compiler: &str, flags: &[&str], source: &Path, out: &Path, lib_dir: &Path) -> PathBuf {
    let deps = std::env::current_exe().unwrap().parent().unwrap().to_path_buf();
    let cc = Command::new(compiler)
        .args(flags)
        .arg("-I")
        .arg(root().join("include"))
        .arg(source)
        .arg(deps.join("libkcpx.so"))
        .arg(format!("-Wl,-rpath,{}", lib_dir.display()))
        .arg("-o")
        .arg(out)
        .output()
        .unwrap();
    assert!(
        cc.status.success(),
        "{compiler} {flags:?} {} failed:\n{}",
        source.display(),
        String::from_utf8_lossy(&cc.stderr)
    );
    out.to_path_buf()
}

/// Runs `exe` with `args` to its end, its output collected, killed after
/// `limit` (the test then fails): a test that waits for a program must not
/// hang when the program does.
pub fn run_bounded(exe: &Path, args: &[&str], limit: std::time::Duration) -> std::process::Output {
    use std::process::Stdio;
    use std::sync::mpsc;
    let child = Command::new(exe)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{}: {e}", exe.display()));
    let pid = child.id() as libc::pid_t;
    let (done, finished) = mpsc::channel::<()>();
    let watchdog = std::thread::spawn(move || {
        let late = finished.recv_timeout(limit) == Err(mpsc::RecvTimeoutError::Timeout);
        if late {
            // SAFETY: signalling our own child, not reaped yet (wait_with_output
            // below reaps it only after it exits, which this makes it do).
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
        late
    });
    let out = child.wait_with_output().unwrap();
    let _ = done.send(());
    assert!(
        !watchdog.join().unwrap(),
        "{} still running after {limit:?}, killed; its output:\n{}{}",
        exe.display(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}
