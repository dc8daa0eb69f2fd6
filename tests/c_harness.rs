//! Builds the C tests in `c_tests/` with the system C compiler and runs them
//! against libkcpx:
//!
//! * `abi`: `struct IKCPCB`/`IKCPSEG` layout and export signatures checked at
//!   compile time against the pristine ikcp.h 1.7.1 *and* our generated
//!   include/ikcp.h (both builds must print the same layout), then an exchange
//!   configured by direct field writes, linked once with libkcpx.so and once
//!   with libkcpx.a;
//! * `allocator`: counting `ikcp_allocator` hooks: no leak, hooks really used,
//!   refused allocations answered as ikcp.c does, and the MTU shrink that
//!   overruns ikcp.c's own buffer survived;
//! * `differential`: c_tests/diff_harness.c runs pristine ikcp.c (symbols
//!   renamed `ref_*`) and libkcpx side by side on the same seeded operations
//!   and compares everything after every operation;
//! * `differential_harness_catches_injected_faults`: the same harness against
//!   pristine ikcp.c with one injected fault must report a divergence;
//! * `latency`: upstream's latency simulation on a virtual clock must print
//!   ikcp.c 1.7.1's table, identically for pristine ikcp.c and libkcpx;
//! * `wrong_header_or_no_output_aborts_naming_the_cause`:
//!   c_tests/wrong_header.c built against upstream 2.x's and a pre-1.7
//!   `struct IKCPCB` layout, and without an output callback, must die of
//!   SIGABRT with a message naming the cause;
//! * `sanitizers`: the tests above but the last two, built with
//!   AddressSanitizer + UBSan.
//!
//! The pristine reference comes from `c_tests/fetch-pristine.sh` (sha256
//! checked). Build products go to `target/<profile>/c_harness/<pid>/<test>/`,
//! removed when the test passes and kept (the path is printed) when it fails.
//!
//! The differential harness draws its seed from the clock unless `KCPX_SEED`
//! is set; it prints the seed first, and on failure the seed, operation and a
//! `KCPX_SEED=... KCPX_DIFF_OPS=...` line that reproduces it.
//!
//! Environment: `KCPX_SEED`, `KCPX_DIFF_OPS`, `KCPX_DIFF_STRICT_CALLBACKS`
//! (see c_tests/diff_harness.c); `CC` (default `cc`); `KCPX_HARNESS_STANDIN=1`
//! replaces libkcpx by pristine ikcp.c compiled under the real names (only
//! for developing the harness itself).
#![cfg(feature = "ffi")] // the C ABI and the libraries built from it
#![cfg(target_os = "linux")]

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, OnceLock};

/// Flags for our own C code.
const C_FLAGS: &[&str] = &["-std=c11", "-Wall", "-Wextra", "-Wpedantic", "-Werror", "-O2", "-g"];
/// Flags for pristine ikcp.c: it is not warning-clean, and with -fwrapv a
/// signed overflow is defined behaviour instead of undefined (docs/ikcp-1.7.1.md).
const PRISTINE_FLAGS: &[&str] = &["-std=gnu11", "-O2", "-g", "-fwrapv", "-w"];
const SANITIZER_FLAGS: &[&str] = &[
    "-fsanitize=address,undefined",
    "-fno-sanitize-recover=all",
    "-fno-omit-frame-pointer",
];
/// What a Rust staticlib needs from the system when linked into a C program.
const STATIC_LIB_DEPS: &[&str] = &["-lpthread", "-ldl", "-lm", "-lgcc_s", "-lc"];
/// Operations of the differential run inside the (slower) sanitizer build.
const SANITIZER_DIFF_OPS: u64 = 40_000;
/// The injected faults the differential harness must notice (seed 7, see mutant_ikcp.c).
const MUTANTS: &[&str] = &["memcpy:20000", "memcpy:100000", "memcpy:300000", "log:50", "log:2000"];

/// Serialises compiler runs: the machine's two cores are shared.
static COMPILER: Mutex<()> = Mutex::new(());

struct Paths {
    root: PathBuf,
    /// target/<profile>/deps: where cargo test puts libkcpx.so and libkcpx.a.
    deps: PathBuf,
    pristine: PathBuf,
}

fn paths() -> &'static Paths {
    static PATHS: OnceLock<Paths> = OnceLock::new();
    PATHS.get_or_init(|| {
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
        let exe = std::env::current_exe().expect("current_exe");
        let deps = exe.parent().expect("test binary has a directory").to_path_buf();
        let pristine = fetch_pristine(&root, &deps);
        Paths { root, deps, pristine }
    })
}

/// Runs c_tests/fetch-pristine.sh (downloads once, then only checks sha256).
fn fetch_pristine(root: &Path, deps: &Path) -> PathBuf {
    let dest = deps
        .parent()
        .and_then(Path::parent)
        .expect("target dir")
        .join("pristine");
    let out = Command::new("bash")
        .arg(root.join("c_tests/fetch-pristine.sh"))
        .arg(&dest)
        .output()
        .expect("cannot run bash c_tests/fetch-pristine.sh");
    assert!(
        out.status.success(),
        "fetch-pristine.sh failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    dest
}

fn c_tests() -> PathBuf {
    paths().root.join("c_tests")
}

fn standin() -> bool {
    std::env::var("KCPX_HARNESS_STANDIN").is_ok_and(|v| v == "1")
}

/// Every non-static function and object that ikcp.c defines at file scope
/// (`ikcp_create(`..., `IKCP_RTO_NDL =`...), as `-Dname=ref_name` flags.
/// The list is double-checked with `nm` once the reference object is built.
fn rename_flags() -> Vec<String> {
    let source = fs::read_to_string(paths().pristine.join("ikcp.c")).expect("read pristine ikcp.c");
    let mut names: Vec<String> = source
        .lines()
        .filter(|l| l.starts_with(|c: char| c.is_ascii_alphabetic()))
        .filter(|l| !l.starts_with("static") && !l.starts_with("typedef"))
        .filter_map(|l| {
            let head = &l[..l.find(['(', '=']).unwrap_or(0)];
            let name = head
                .trim_end()
                .rsplit(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .next()?;
            (name.starts_with("ikcp_") || name.starts_with("IKCP_")).then(|| name.to_string())
        })
        .collect();
    names.sort();
    names.dedup();
    assert!(
        names.len() >= 40,
        "found only {} exported names in ikcp.c: {names:?}",
        names.len()
    );
    names.into_iter().map(|n| format!("-D{n}=ref_{n}")).collect()
}

/// A scratch directory and the flags of one test's builds.
struct Build {
    dir: PathBuf,
    sanitize: bool,
}

impl Build {
    fn new(name: &str, sanitize: bool) -> Build {
        let dir = paths()
            .deps
            .parent()
            .expect("profile dir")
            .join("c_harness")
            .join(std::process::id().to_string())
            .join(name);
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).expect("create build dir");
        Build { dir, sanitize }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// Runs the C compiler; panics with its diagnostics on failure.
    fn cc(&self, args: &[String]) {
        let _lock = COMPILER.lock().unwrap_or_else(|e| e.into_inner());
        let cc = std::env::var("CC").unwrap_or_else(|_| "cc".to_string());
        let mut all: Vec<String> = args.to_vec();
        if self.sanitize {
            all.extend(SANITIZER_FLAGS.iter().map(|s| s.to_string()));
        }
        let out = Command::new(&cc)
            .args(&all)
            .output()
            .unwrap_or_else(|e| panic!("cannot run the C compiler `{cc}` (install gcc): {e}"));
        assert!(
            out.status.success(),
            "{cc} {}\nfailed:\n{}",
            all.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Compiles one of our C files (-Werror) to the object `out`.
    fn object(&self, source: &str, out: &str, include: &Path, defines: &[String]) -> PathBuf {
        let obj = self.path(out);
        let mut args = strings(C_FLAGS);
        args.extend(defines.iter().cloned());
        if standin() {
            args.push("-DKCPX_HARNESS_STANDIN".into()); // skips what only libkcpx survives
        }
        args.extend([
            format!("-I{}", include.display()),
            format!("-I{}", c_tests().display()),
            "-c".into(),
        ]);
        args.extend([
            c_tests().join(source).display().to_string(),
            "-o".into(),
            obj.display().to_string(),
        ]);
        self.cc(&args);
        obj
    }

    /// Compiles a C file that contains (or #includes) pristine ikcp.c.
    fn pristine_object(&self, source: &Path, out: &str, extra: &[String]) -> PathBuf {
        let obj = self.path(out);
        let mut args = strings(PRISTINE_FLAGS);
        args.extend(extra.iter().cloned());
        args.extend([
            format!("-I{}", paths().pristine.display()),
            "-c".into(),
            source.display().to_string(),
        ]);
        args.extend(["-o".into(), obj.display().to_string()]);
        self.cc(&args);
        obj
    }

    fn link(&self, out: &str, objects: &[PathBuf], libs: &[String]) -> PathBuf {
        let exe = self.path(out);
        let mut args: Vec<String> = objects.iter().map(|o| o.display().to_string()).collect();
        args.extend(libs.iter().cloned());
        args.extend(["-o".into(), exe.display().to_string()]);
        self.cc(&args);
        exe
    }

    /// Runs a program; returns its stdout, panics with all its output on failure.
    fn run(&self, exe: &Path, args: &[&str], env: &[(&str, String)]) -> String {
        let mut cmd = Command::new(exe);
        cmd.args(args)
            .env("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=0")
            .env("UBSAN_OPTIONS", "print_stacktrace=1");
        for (k, v) in env {
            cmd.env(k, v);
        }
        let out = cmd
            .output()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", exe.display()));
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success(),
            "{} {args:?} failed ({}); build dir kept: {}\n--- stdout ---\n{stdout}\n--- stderr ---\n{stderr}",
            exe.display(),
            out.status,
            self.dir.display()
        );
        print!("{stdout}");
        eprint!("{stderr}");
        stdout
    }

    /// Called at the end of a passing test.
    fn done(self) {
        let _ = fs::remove_dir_all(&self.dir);
        let _ = self.dir.parent().map(fs::remove_dir); // the per-process directory, once empty
    }
}

fn strings(flags: &[&str]) -> Vec<String> {
    flags.iter().map(|s| s.to_string()).collect()
}

/// How a test program gets libkcpx.
#[derive(Clone, Copy)]
enum Linkage {
    Shared,
    Static,
}

/// Linker arguments for libkcpx (or, with KCPX_HARNESS_STANDIN=1, its stand-in).
fn libkcpx(b: &Build, linkage: Linkage) -> Vec<String> {
    let (so, a) = if standin() {
        build_standin(b)
    } else {
        (paths().deps.join("libkcpx.so"), paths().deps.join("libkcpx.a"))
    };
    match linkage {
        Linkage::Shared => {
            assert!(
                so.is_file(),
                "{} not found: cargo test should have built it",
                so.display()
            );
            // The SONAME is libkcpx.so.1: give the loader a directory that has it.
            let rpath = b.path("rpath");
            if !rpath.join("libkcpx.so.1").exists() {
                fs::create_dir_all(&rpath).expect("create rpath dir");
                std::os::unix::fs::symlink(&so, rpath.join("libkcpx.so.1")).expect("symlink libkcpx.so.1");
            }
            vec![so.display().to_string(), format!("-Wl,-rpath,{}", rpath.display())]
        }
        Linkage::Static => {
            assert!(
                a.is_file(),
                "{} not found: cargo test should have built it",
                a.display()
            );
            let mut args = vec![a.display().to_string()];
            args.extend(strings(STATIC_LIB_DEPS));
            args
        }
    }
}

/// Pristine ikcp.c under the real names, as libkcpx.so (SONAME libkcpx.so.1) and libkcpx.a.
fn build_standin(b: &Build) -> (PathBuf, PathBuf) {
    let dir = b.path("standin");
    let (so, a) = (dir.join("libkcpx.so"), dir.join("libkcpx.a"));
    if so.exists() {
        return (so, a);
    }
    eprintln!("c_harness: KCPX_HARNESS_STANDIN=1: pristine ikcp.c plays libkcpx (harness development only)");
    fs::create_dir_all(&dir).expect("create stand-in dir");
    let obj = b.pristine_object(&paths().pristine.join("ikcp.c"), "standin/ikcp.o", &["-fPIC".into()]);
    let mut args = vec![
        "-shared".into(),
        "-Wl,-soname,libkcpx.so.1".into(),
        obj.display().to_string(),
    ];
    args.extend(["-o".into(), so.display().to_string()]);
    b.cc(&args);
    let ar = Command::new("ar")
        .arg("rcs")
        .arg(&a)
        .arg(&obj)
        .status()
        .expect("run ar");
    assert!(ar.success(), "ar failed");
    (so, a)
}

/// The directory of include/ikcp.h, which is committed: its absence is a
/// failure, never a skip (tests/support/skip.rs).
fn generated_header() -> PathBuf {
    let dir = paths().root.join("include");
    assert!(
        dir.join("ikcp.h").is_file(),
        "include/ikcp.h is missing: it is committed (regenerate it with KCPX_BLESS=1 cargo test --test header_drift)"
    );
    dir
}

// ---------------------------------------------------------------------------
// the programs
// ---------------------------------------------------------------------------

/// abi_test built with one header and one linkage; returns its --layout output.
fn abi_with(b: &Build, header: &Path, tag: &str, linkage: Linkage) -> String {
    let sub = Build {
        dir: b.path(tag),
        sanitize: b.sanitize,
    };
    fs::create_dir_all(&sub.dir).expect("create dir");
    let objs = [
        sub.object("abi_test.c", "abi_test.o", header, &[]),
        sub.object("loopback.c", "loopback.o", header, &[]),
    ];
    let exe = sub.link("abi_test", &objs, &libkcpx(b, linkage));
    let layout = sub.run(&exe, &["--layout"], &[]);
    sub.run(&exe, &[], &[]);
    layout
}

fn run_abi(b: &Build) {
    let pristine = abi_with(b, &paths().pristine, "pristine-header-so", Linkage::Shared);
    abi_with(b, &paths().pristine, "pristine-header-a", Linkage::Static);
    let ours = abi_with(b, &generated_header(), "generated-header-so", Linkage::Shared);
    assert_eq!(
        pristine, ours,
        "struct layout differs between the pristine ikcp.h and include/ikcp.h"
    );
}

fn run_allocator(b: &Build) {
    let inc = &paths().pristine;
    let objs = ["alloc_test", "loopback", "count_alloc"]
        .map(|name| b.object(&format!("{name}.c"), &format!("{name}.o"), inc, &[]));
    let exe = b.link("alloc_test", &objs, &libkcpx(b, Linkage::Shared));
    b.run(&exe, &[], &[]);
}

/// Objects of the differential harness, with pristine ikcp.c renamed to ref_* (checked with nm).
fn diff_objects(b: &Build) -> Vec<PathBuf> {
    let inc = &paths().pristine;
    let renames = rename_flags();
    let reference = b.pristine_object(&paths().pristine.join("ikcp.c"), "ref_ikcp.o", &renames);
    assert_all_renamed(&reference);
    let mut ref_table = renames;
    ref_table.push("-DKCP_API_TABLE=ref_api".into());
    let mut objs = vec![
        reference,
        b.object("kcp_api.c", "ref_api.o", inc, &ref_table),
        b.object("kcp_api.c", "kcpx_api.o", inc, &["-DKCP_API_TABLE=kcpx_api".into()]),
    ];
    for name in ["diff_harness", "diff_gen", "diff_trace", "count_alloc"] {
        objs.push(b.object(&format!("{name}.c"), &format!("{name}.o"), inc, &[]));
    }
    objs
}

/// Every global symbol the reference object defines must carry the ref_ prefix,
/// or it could interpose libkcpx's (or be interposed).
fn assert_all_renamed(object: &Path) {
    let out = Command::new("nm")
        .args(["--defined-only", "-g"])
        .arg(object)
        .output()
        .expect("run nm (binutils)");
    assert!(out.status.success(), "nm failed");
    let text = String::from_utf8_lossy(&out.stdout);
    let leaked: Vec<&str> = text
        .lines()
        .filter_map(|l| l.split_whitespace().nth(2))
        .filter(|name| !name.strip_prefix("__odr_asan.").unwrap_or(name).starts_with("ref_")) // ASan's ODR markers
        .collect();
    assert!(leaked.is_empty(), "pristine ikcp.c symbols not renamed: {leaked:?}");
}

fn diff_env(ops: Option<u64>) -> Vec<(&'static str, String)> {
    let mut env = Vec::new();
    if let Some(ops) = ops {
        let requested = std::env::var("KCPX_DIFF_OPS").ok().and_then(|v| v.parse::<u64>().ok());
        env.push(("KCPX_DIFF_OPS", requested.map_or(ops, |r| r.min(ops)).to_string()));
    }
    env
}

fn run_differential(b: &Build, ops_cap: Option<u64>) {
    let exe = b.link("diff_harness", &diff_objects(b), &libkcpx(b, Linkage::Shared));
    let out = b.run(&exe, &[], &diff_env(ops_cap));
    assert!(out.contains("diff_harness: OK"), "no OK line from diff_harness");
}

/// The harness against pristine ikcp.c with an injected fault (mutant_ikcp.c)
/// in place of libkcpx: clean it must pass, each fault must be reported.
fn run_mutants(b: &Build) {
    let mut objs = diff_objects(b);
    objs.push(b.pristine_object(&c_tests().join("mutant_ikcp.c"), "mutant_ikcp.o", &[]));
    let exe = b.link("diff_mutant", &objs, &[]);
    let clean = b.run(
        &exe,
        &[],
        &[("KCPX_SEED", "7".into()), ("KCPX_DIFF_OPS", "20000".into())],
    );
    assert!(clean.contains("diff_harness: OK"), "the un-mutated stand-in must pass");
    for mutant in MUTANTS {
        let out = Command::new(&exe)
            .envs([("KCPX_MUTANT", *mutant), ("KCPX_SEED", "7"), ("KCPX_DIFF_OPS", "50000")])
            .output()
            .expect("run diff_mutant");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success() && stderr.contains("DIVERGENCE"),
            "the differential harness missed the injected fault KCPX_MUTANT={mutant}:\n{}{stderr}",
            String::from_utf8_lossy(&out.stdout)
        );
        println!(
            "KCPX_MUTANT={mutant}: caught ({})",
            stderr.lines().find(|l| l.contains("DIVERGENCE")).unwrap_or("")
        );
    }
}

/// Re-entrant callbacks and clock steps, pristine ikcp.c against libkcpx
/// (c_tests/reentry.c): every datagram, result and field identical.
fn run_reentry(b: &Build) {
    let inc = &paths().pristine;
    let renames = rename_flags();
    let reference = b.pristine_object(&paths().pristine.join("ikcp.c"), "ref_ikcp.o", &renames);
    let mut ref_table = renames;
    ref_table.push("-DKCP_API_TABLE=ref_api".into());
    let objs = vec![
        reference,
        b.object("kcp_api.c", "ref_api.o", inc, &ref_table),
        b.object("kcp_api.c", "kcpx_api.o", inc, &["-DKCP_API_TABLE=kcpx_api".into()]),
        b.object("reentry.c", "reentry.o", inc, &[]),
    ];
    let exe = b.link("reentry", &objs, &libkcpx(b, Linkage::Shared));
    let out = b.run(&exe, &[], &[]);
    assert!(out.contains("reentry: OK"), "no OK line from reentry");
}

fn run_latency(b: &Build) {
    // Against pristine ikcp.c: a program of its own, so no renaming.
    let sim = b.object("latency_sim.c", "latency_ref.o", &paths().pristine, &[]);
    let ikcp = b.pristine_object(&paths().pristine.join("ikcp.c"), "ikcp_plain.o", &[]);
    let ref_exe = b.link("latency_ikcp", &[sim, ikcp], &[]);
    // Against libkcpx, with kcpx's own header: the drop-in view.
    let sim = b.object("latency_sim.c", "latency_kcpx.o", &generated_header(), &[]);
    let kcpx_exe = b.link("latency_kcpx", &[sim], &libkcpx(b, Linkage::Shared));
    let reference = b.run(&ref_exe, &["--check"], &[]);
    let ours = b.run(&kcpx_exe, &["--check"], &[]);
    assert_eq!(
        reference, ours,
        "latency tables differ (left: ikcp.c 1.7.1, right: kcpx)"
    );
}

/// c_tests/wrong_header.c in one variant must die of SIGABRT before it
/// finishes, with `expect` on stderr (and without printing NOT CAUGHT).
fn expect_abort(b: &Build, tag: &str, cflags: &[&str], link: &[&str], linkage: Linkage, expect: &str) {
    use std::os::unix::process::ExitStatusExt;
    let obj = b.object(
        "wrong_header.c",
        &format!("{tag}.o"),
        &generated_header(),
        &strings(cflags),
    );
    let mut libs = strings(link);
    libs.extend(libkcpx(b, linkage));
    let exe = b.link(tag, &[obj], &libs);
    let out = Command::new(&exe)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", exe.display()));
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(
        out.status.signal() == Some(libc::SIGABRT) && stderr.contains(expect) && !stdout.contains("NOT CAUGHT"),
        "{tag}: expected an abort with {expect:?}, got {}\n--- stdout\n{stdout}--- stderr\n{stderr}",
        out.status
    );
    println!("{tag}: aborted as expected: {}", stderr.trim());
}

/// Programs built against another ikcp.h, or that never set the output
/// callback, abort at once naming the cause.
fn run_wrong_header(b: &Build) {
    const V2X: &str = "upstream's ikcp.h 2.x";
    const PRE17: &str = "an ikcp.h older than 1.7";
    const NO_OUTPUT: &str = "kcp->output is NULL";
    expect_abort(b, "v2x-shared", &["-DKCPX_LAYOUT_2X"], &[], Linkage::Shared, V2X);
    expect_abort(b, "v2x-static", &["-DKCPX_LAYOUT_2X"], &[], Linkage::Static, V2X);
    // A PIE's code addresses do not fit in 32 bits: the pointer stored at
    // offset 248 spills into the padding after logmask, caught at the next call.
    let pre17 = ["-DKCPX_LAYOUT_PRE17", "-fPIE"];
    expect_abort(b, "pre17-pie", &pre17, &["-pie"], Linkage::Shared, PRE17);
    // Without PIE it fits in logmask: caught when the first datagram finds
    // kcpx's own output field empty, with the header named as a likely cause.
    let pre17 = ["-DKCPX_LAYOUT_PRE17", "-fno-pie"];
    expect_abort(b, "pre17-no-pie", &pre17, &["-no-pie"], Linkage::Shared, NO_OUTPUT);
    expect_abort(b, "no-output", &[], &[], Linkage::Shared, NO_OUTPUT);
    expect_abort(
        b,
        "no-output-static",
        &[],
        &[],
        Linkage::Static,
        "ikcp_setoutput(kcp, fn)",
    );
}

// ---------------------------------------------------------------------------
// tests
// ---------------------------------------------------------------------------

/// Runs `body` in a fresh build directory, removed only if the test passes.
fn in_build(name: &str, sanitize: bool, body: impl FnOnce(&Build)) {
    let b = Build::new(name, sanitize);
    body(&b);
    b.done();
}

#[test]
fn abi() {
    in_build("abi", false, run_abi);
}

#[test]
fn allocator() {
    in_build("allocator", false, run_allocator);
}

#[test]
fn differential() {
    in_build("differential", false, |b| run_differential(b, None));
}

#[test]
fn differential_harness_catches_injected_faults() {
    in_build("mutants", false, run_mutants);
}

#[test]
fn reentrant_callbacks_and_clock_steps_match_ikcp_c() {
    in_build("reentry", false, run_reentry);
}

#[test]
fn latency() {
    in_build("latency", false, run_latency);
}

#[test]
fn wrong_header_or_no_output_aborts_naming_the_cause() {
    in_build("wrong_header", false, run_wrong_header);
}

#[test]
fn sanitizers() {
    in_build("sanitizers", true, |b| {
        // Every part runs even if an earlier one fails: one run shows all problems.
        type Part = (&'static str, fn(&Build));
        let parts: [Part; 5] = [
            ("abi", run_abi),
            ("allocator", run_allocator),
            ("reentry", run_reentry),
            ("latency", run_latency),
            ("differential", |b| run_differential(b, Some(SANITIZER_DIFF_OPS))),
        ];
        let failed: Vec<&str> = parts
            .iter()
            .filter(|(_, part)| std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| part(b))).is_err())
            .map(|(name, _)| *name)
            .collect();
        assert!(
            failed.is_empty(),
            "failed under -fsanitize=address,undefined: {failed:?} (see the messages above)"
        );
    });
}
