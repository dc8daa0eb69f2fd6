//! Packaging test: installs kcpx with cmake/ into a fresh prefix
//! under the target directory, exactly as the README says, then builds and
//! runs every kind of consumer against the installed files:
//! pkg-config (shared and static), CMake `find_package(kcpx)` and upstream
//! style `find_package(kcp)`, C++, a program compiled against the pristine
//! upstream ikcp.h, and Python ctypes.
//!
//! The first run release-builds the library (target/packaging/cargo, kept for
//! later runs). Needs cmake, pkg-config, cc, g++ and python3: when one is
//! missing the tests that need it skip loudly, and fail under CI unless
//! `KCPX_SKIP_PACKAGING=1` (the skip policy of `tests/support/skip.rs`).
//! `--nocapture` shows every command with its duration.
#![cfg(feature = "ffi")] // the C ABI and the libraries built from it
#![cfg(target_os = "linux")]

#[path = "support/skip.rs"]
mod skip;

use std::borrow::BorrowMut;
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Instant;

/// What the SONAME symlink and the real file are called (cmake/CMakeLists.txt).
const SONAME: &str = "libkcpx.so.1";
const SHARED_REALNAME: &str = "libkcpx.so.1.0.0";
const WARNINGS: &str = "-Wall -Wextra -Wpedantic -Werror";

struct Installed {
    root: PathBuf,
    work: PathBuf,
    prefix: PathBuf,
    _lock: std::fs::File,
}

impl Installed {
    fn libdir(&self) -> PathBuf {
        self.prefix.join("lib")
    }
    fn example(&self) -> PathBuf {
        self.root.join("examples/c/ikcp_dropin.c")
    }
    /// A fresh directory for one consumer's build.
    fn scratch(&self, name: &str) -> PathBuf {
        let dir = self.work.join("consumers").join(name);
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create consumer directory");
        dir
    }
    /// `sh -c script` with PKG_CONFIG_PATH pointing into the prefix.
    fn sh(&self, script: &str, vars: &[(&str, &Path)]) -> Command {
        let mut cmd = Command::new("sh");
        cmd.arg("-c")
            .arg(script)
            .env("PKG_CONFIG_PATH", self.libdir().join("pkgconfig"));
        for (k, v) in vars {
            cmd.env(k, v);
        }
        cmd
    }
}

/// False (after the skip policy, `KCPX_SKIP_PACKAGING`) when a tool is missing.
fn tools_present(what: &str, tools: &[&str]) -> bool {
    let missing: Vec<&str> = tools.iter().copied().filter(|t| !skip::have(t)).collect();
    if !missing.is_empty() {
        skip::unavailable(
            what,
            &format!("{missing:?} not installed (apt-get install -y cmake pkg-config g++ python3)"),
            "KCPX_SKIP_PACKAGING",
        );
    }
    missing.is_empty()
}

/// Runs `cmd`, printing it and its duration; panics with its output on failure.
fn run(mut cmd: impl BorrowMut<Command>) -> String {
    let cmd = cmd.borrow_mut();
    let shown = format!("{cmd:?}");
    let start = Instant::now();
    let out = cmd.output().unwrap_or_else(|e| panic!("cannot run {shown}: {e}"));
    println!("[{:5.1}s] {shown}", start.elapsed().as_secs_f64());
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{shown} failed ({})\n--- stdout\n{stdout}\n--- stderr\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// The values of the `tag` entries (NEEDED, SONAME) of an ELF file's dynamic section.
fn dynamic_entries(file: &Path, tag: &str) -> Vec<String> {
    run(Command::new("readelf").arg("-d").arg(file))
        .lines()
        .filter(|l| l.contains(&format!("({tag})")))
        .filter_map(|l| Some(l.split('[').nth(1)?.split(']').next()?.to_string()))
        .collect()
}

/// Checks that `exe` links libkcpx dynamically (`shared`) or not at all, then
/// runs it with nothing from the test environment telling the loader where
/// libraries are (cargo test sets LD_LIBRARY_PATH) but `libdir`.
fn check_program(exe: &Path, shared: bool, libdir: Option<&Path>, expect: &str) {
    let needed = dynamic_entries(exe, "NEEDED");
    let linked = needed.iter().any(|l| l == SONAME);
    let want = if shared { "among them" } else { "absent" };
    assert_eq!(
        linked,
        shared,
        "{} needs {needed:?}: {SONAME} expected {want}",
        exe.display()
    );

    let mut cmd = Command::new(exe);
    cmd.env_remove("LD_LIBRARY_PATH");
    if let Some(dir) = libdir {
        cmd.env("LD_LIBRARY_PATH", dir);
    }
    let out = run(cmd);
    assert!(
        out.contains(expect),
        "{} printed {out:?}, expected {expect:?}",
        exe.display()
    );
}

/// What examples/c/ikcp_dropin.c prints when it succeeds.
const DROPIN_OK: &str = "10 of 10 messages echoed";
/// What tests/consumers/headers.cpp prints when it succeeds.
const CXX_OK: &str = "hello from C++\"; kcpx: success; kcpx.hpp: ok";

/// Builds and installs once per test binary; None when skipped. Holds a lock
/// on the work directory until the process exits, since other `cargo test`
/// runs in the same target directory use the same paths.
fn installed() -> Option<&'static Installed> {
    static INSTALLED: OnceLock<Result<Option<Installed>, String>> = OnceLock::new();
    let result = INSTALLED.get_or_init(|| {
        if !tools_present("tests/packaging.rs", &["cmake", "pkg-config"]) {
            return Ok(None);
        }
        std::panic::catch_unwind(install).map(Some).map_err(|e| {
            e.downcast_ref::<String>()
                .cloned()
                .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default()
        })
    });
    match result {
        Ok(installed) => installed.as_ref(),
        Err(e) => panic!("building and installing with cmake/ failed:\n{e}"),
    }
}

fn install() -> Installed {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let exe = std::env::current_exe().expect("current_exe");
    // target/<profile>/deps/<test binary> -> target/
    let target = exe
        .ancestors()
        .nth(3)
        .expect("test binary lives in target/<profile>/deps");
    let work = target.join("packaging");
    std::fs::create_dir_all(&work).expect("create target/packaging");
    let lock = std::fs::File::create(work.join(".lock")).expect("lock file");
    // SAFETY: flock on a file descriptor this function owns.
    assert_eq!(
        unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX) },
        0,
        "flock target/packaging/.lock"
    );

    let prefix = work.join("prefix");
    let build = work.join("build");
    let _ = std::fs::remove_dir_all(&prefix);
    let start = Instant::now();
    // The README's sequence, with the cargo this test was built by and a
    // target directory of its own (the build passes a flag `cargo build`
    // does not, so sharing target/ would rebuild the library each time).
    run(Command::new("cmake")
        .arg("-S")
        .arg(root.join("cmake"))
        .arg("-B")
        .arg(&build)
        .arg(format!("-DCMAKE_INSTALL_PREFIX={}", prefix.display()))
        .arg("-DCMAKE_INSTALL_LIBDIR=lib")
        .env("CARGO", env!("CARGO"))
        .env("CARGO_TARGET_DIR", work.join("cargo")));
    run(Command::new("cmake").arg("--build").arg(&build));
    run(Command::new("cmake").arg("--install").arg(&build));
    println!("built and installed in {:.1}s", start.elapsed().as_secs_f64());
    Installed {
        root,
        work,
        prefix,
        _lock: lock,
    }
}

#[test]
fn installed_layout() {
    let Some(inst) = installed() else { return };
    let lib = inst.libdir();
    for (link, to) in [("libkcpx.so", SONAME), (SONAME, SHARED_REALNAME)] {
        let target = std::fs::read_link(lib.join(link)).unwrap_or_else(|e| panic!("lib/{link} is not a symlink: {e}"));
        assert_eq!(target, Path::new(to), "lib/{link}");
    }
    let real = lib.join(SHARED_REALNAME);
    assert_eq!(
        dynamic_entries(&real, "SONAME"),
        [SONAME],
        "SONAME of {}",
        real.display()
    );
    // The release build exports what tests/exports.rs checks in the test build.
    let exports = |so: &Path| {
        run(Command::new("nm")
            .args(["-D", "--defined-only", "--format=just-symbols"])
            .arg(so))
    };
    let tested = exports(&std::env::current_exe().unwrap().with_file_name("libkcpx.so"));
    assert_eq!(
        exports(&real),
        tested,
        "installed library exports differ from the tested one"
    );
    assert!(lib.join("libkcpx.a").is_file());
    // Shipped stripped: no debug info in either library, no static symbol
    // table in the shared one (its exports are in .dynsym).
    for (file, forbidden) in [
        (real.clone(), &[".debug_info", ".symtab", ".llvmbc"][..]),
        (lib.join("libkcpx.a"), &[".debug_info", ".llvmbc"][..]),
    ] {
        let sections = run(Command::new("readelf").arg("-S").arg("-W").arg(&file));
        for section in forbidden {
            assert!(
                !sections.contains(&format!(" {section} ")),
                "{} has a {section} section: the release artefacts must be stripped",
                file.display()
            );
        }
    }

    for header in std::fs::read_dir(inst.root.join("include")).unwrap() {
        let header = header.unwrap().path();
        let name = header.file_name().unwrap();
        let copy = inst.prefix.join("include").join(name);
        assert_eq!(
            std::fs::read(&copy).ok(),
            std::fs::read(&header).ok(),
            "{} installed as {}",
            header.display(),
            copy.display()
        );
    }
    for file in [
        "pkgconfig/kcpx.pc",
        "cmake/kcpx/kcpx-config.cmake",
        "cmake/kcpx/kcpx-config-version.cmake",
        "cmake/kcp/kcp-config.cmake",
        "cmake/kcp/kcp-config-version.cmake",
    ] {
        assert!(lib.join(file).is_file(), "lib/{file} not installed");
    }
    let pc = |args: &[&str]| {
        run(inst.sh(&format!("pkg-config {} kcpx", args.join(" ")), &[]))
            .trim()
            .to_string()
    };
    assert_eq!(pc(&["--modversion"]), env!("CARGO_PKG_VERSION"));
    let private = pc(&["--static", "--libs"]);
    assert!(
        private.contains("-lkcpx -l"),
        "Libs.private (rustc's native-static-libs) missing: {private}"
    );
}

/// The commands of README.md's "With pkg-config" block, continuation lines
/// joined, comment lines dropped.
fn readme_pkg_config_commands(root: &Path) -> Vec<String> {
    let readme = std::fs::read_to_string(root.join("README.md")).expect("read README.md");
    let section = readme
        .split("### With pkg-config")
        .nth(1)
        .expect("README.md has a \"### With pkg-config\" section");
    let block = section
        .split("```sh\n")
        .nth(1)
        .and_then(|b| b.split("```").next())
        .expect("a ```sh block in the pkg-config section");
    let mut commands: Vec<String> = Vec::new();
    let mut continued = false;
    for line in block
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
    {
        let (text, more) = match line.strip_suffix('\\') {
            Some(t) => (t.trim_end(), true),
            None => (line, false),
        };
        match commands.last_mut() {
            Some(last) if continued => {
                last.push(' ');
                last.push_str(text);
            }
            _ => commands.push(text.to_string()),
        }
        continued = more;
    }
    commands
}

/// README.md's pkg-config block, run as written (its /some/prefix replaced
/// by the test's prefix) on a copy of examples/c/ikcp_dropin.c named app.c,
/// with nothing else telling the loader where libkcpx is: each `./app` must
/// run, the shared build must load libkcpx.so.1 through its rpath, and the
/// static build, stripped, must stay under 1 MB.
#[test]
fn readme_pkg_config_block_works_as_written() {
    let Some(inst) = installed() else { return };
    let dir = inst.scratch("readme-pkg-config");
    std::fs::copy(inst.example(), dir.join("app.c")).expect("copy the example to app.c");
    let prefix = inst.prefix.display().to_string();
    let commands: Vec<String> = readme_pkg_config_commands(&inst.root)
        .iter()
        .map(|c| c.replace("/some/prefix", &prefix))
        .collect();
    let setup: Vec<&String> = commands.iter().filter(|c| c.starts_with("export ")).collect();
    let builds: Vec<&String> = commands.iter().filter(|c| c.starts_with("cc ")).collect();
    assert!(
        setup.len() == 1 && builds.len() == 2 && commands.iter().filter(|c| *c == "./app").count() == 2,
        "the README's pkg-config block changed shape: {commands:#?}"
    );
    for (build, shared) in builds.iter().zip([true, false]) {
        let script = format!("set -e\n{}\n{build}\n./app\n", setup[0]);
        let mut cmd = Command::new("sh");
        cmd.arg("-c")
            .arg(&script)
            .current_dir(&dir)
            .env_remove("LD_LIBRARY_PATH")
            .env_remove("PKG_CONFIG_PATH");
        let out = run(cmd);
        assert!(out.contains(DROPIN_OK), "{build}: ./app printed {out:?}");
        check_program(&dir.join("app"), shared, None, DROPIN_OK);
        if !shared {
            let stripped = dir.join("app.stripped");
            run(Command::new("strip").arg(dir.join("app")).arg("-o").arg(&stripped));
            let size = std::fs::metadata(&stripped).expect("stripped app").len();
            println!("static ikcp hello-world, stripped: {size} bytes");
            assert!(
                size < 1_000_000,
                "a stripped static program calling only ikcp_* is {size} bytes, over 1 MB"
            );
        }
    }
}

/// Configures (with `defines`, `-DNAME=VALUE` each) and builds one of the
/// CMake projects in tests/consumers/.
fn cmake_consumer(inst: &Installed, project: &str, defines: &[String]) -> PathBuf {
    let build = inst.scratch(project);
    run(Command::new("cmake")
        .arg("-S")
        .arg(inst.root.join("tests/consumers").join(project))
        .arg("-B")
        .arg(&build)
        .arg(format!("-DCMAKE_PREFIX_PATH={}", inst.prefix.display()))
        .arg(format!("-DKCPX_EXAMPLE={}", inst.example().display()))
        .args(defines));
    run(Command::new("cmake").arg("--build").arg(&build));
    build
}

#[test]
fn cmake_find_package_kcpx() {
    let Some(inst) = installed() else { return };
    // With g++, also a C++ program including kcpx.hpp (docs/cpp.md's CMake lines).
    let cxx = tools_present("cmake_find_package_kcpx (its C++ consumer)", &["g++"]);
    let consumer = inst.root.join("tests/consumers/headers.cpp");
    let defines = match cxx {
        true => vec![format!("-DKCPX_CXX_CONSUMER={}", consumer.display())],
        false => Vec::new(),
    };
    let build = cmake_consumer(inst, "cmake-kcpx", &defines);
    // CMake gives build-tree executables an RPATH to the imported library.
    check_program(&build.join("dropin_shared"), true, None, DROPIN_OK);
    if cxx {
        check_program(&build.join("headers_cxx"), true, None, CXX_OK);
    }
    check_program(&build.join("dropin_static"), false, None, DROPIN_OK);
    // kcpx::kcpx_static links with --gc-sections: 459 KB, not 1.9 MB.
    let size = std::fs::metadata(build.join("dropin_static"))
        .expect("dropin_static")
        .len();
    println!("static ikcp hello-world through kcpx::kcpx_static: {size} bytes");
    assert!(
        size < 1_000_000,
        "kcpx::kcpx_static gave a {size}-byte hello-world: --gc-sections missing?"
    );
}

#[test]
fn cmake_upstream_style_find_package_kcp() {
    let Some(inst) = installed() else { return };
    let build = cmake_consumer(inst, "cmake-kcp", &[]);
    check_program(&build.join("app"), true, None, DROPIN_OK);
}

#[test]
fn cxx_includes_the_headers() {
    let Some(inst) = installed() else { return };
    if !tools_present("cxx_includes_the_headers", &["g++"]) {
        return;
    }
    let exe = inst.scratch("cxx").join("headers");
    let src = inst.root.join("tests/consumers/headers.cpp");
    run(inst.sh(
        &format!("g++ {WARNINGS} \"$SRC\" -o \"$EXE\" $(pkg-config --cflags --libs kcpx)"),
        &[("SRC", &src), ("EXE", &exe)],
    ));
    check_program(&exe, true, Some(&inst.libdir()), CXX_OK);
}

#[test]
fn pristine_upstream_header_links_against_libkcpx() {
    let Some(inst) = installed() else { return };
    let pristine = inst.work.parent().unwrap().join("pristine");
    run(Command::new(inst.root.join("c_tests/fetch-pristine.sh")).arg(&pristine));
    let exe = inst.scratch("pristine-header").join("dropin");
    // Only upstream's ikcp.h on the include path; libkcpx from the prefix.
    run(inst.sh(
        &format!("cc {WARNINGS} -I\"$PRISTINE\" \"$SRC\" -o \"$EXE\" -L\"$LIBDIR\" -lkcpx"),
        &[
            ("PRISTINE", &pristine),
            ("SRC", &inst.example()),
            ("EXE", &exe),
            ("LIBDIR", &inst.libdir()),
        ],
    ));
    check_program(&exe, true, Some(&inst.libdir()), DROPIN_OK);
}

#[test]
fn python_ctypes_example() {
    let Some(inst) = installed() else { return };
    if !tools_present("python_ctypes_example", &["python3"]) {
        return;
    }
    let mut cmd = Command::new("python3");
    cmd.arg(inst.root.join("examples/python/kcp_echo.py"))
        .arg(inst.libdir().join("libkcpx.so"));
    let out = run(cmd);
    assert!(out.contains("echoed"), "kcp_echo.py printed {out:?}");

    // Sessions over UDP through the kcpx_* C API.
    let mut cmd = Command::new("python3");
    cmd.arg(inst.root.join("examples/python/kcpx_sessions.py"))
        .arg(inst.libdir().join("libkcpx.so"));
    let out = run(cmd);
    assert!(out.contains("byte-exact"), "kcpx_sessions.py printed {out:?}");

    // No library to be found: a message saying how to pass it, no traceback.
    let out = Command::new("python3")
        .arg(inst.root.join("examples/python/kcp_echo.py"))
        .env("KCPX_LIB", inst.work.join("no-such-dir/libkcpx.so"))
        .output()
        .expect("run python3");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.code() == Some(2) && stderr.contains("Pass the library's path") && !stderr.contains("Traceback"),
        "kcp_echo.py without a library: {} {stderr}",
        out.status
    );
}

/// examples/c/kcpx_udp_echo.c, built from the installed kcpx.h through
/// pkg-config, echoes 256 KiB between two of its own processes over UDP on
/// 127.0.0.1 with AES-256 and FEC 10/3 (the interop test pits it against
/// kcp-go).
#[test]
fn kcpx_example_over_loopback() {
    let Some(inst) = installed() else { return };
    let exe = inst.scratch("kcpx-udp-echo").join("kcpx_udp_echo");
    let src = inst.root.join("examples/c/kcpx_udp_echo.c");
    run(inst.sh(
        &format!("cc -std=c11 {WARNINGS} \"$SRC\" -o \"$EXE\" $(pkg-config --cflags --libs kcpx)"),
        &[("SRC", &src), ("EXE", &exe)],
    ));
    let port = std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr = format!("127.0.0.1:{port}");
    let echo = |role: &str| {
        let mut cmd = Command::new(&exe);
        cmd.args([
            role,
            addr.as_str(),
            "--crypt",
            "aes-256",
            "--fec",
            "10",
            "3",
            "--bytes",
            "262144",
            "--timeout",
            "30",
        ]);
        cmd.env_remove("LD_LIBRARY_PATH").env("LD_LIBRARY_PATH", inst.libdir());
        cmd
    };
    let server = echo("server")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("start the echo server");
    std::thread::sleep(std::time::Duration::from_millis(200));
    let client = run(echo("client"));
    let server = server.wait_with_output().expect("echo server");
    let server_out = String::from_utf8_lossy(&server.stdout);
    assert!(client.contains("\"ok\":true"), "client: {client}");
    assert!(
        server.status.success() && server_out.contains("\"ok\":true"),
        "server: {server_out}"
    );
}
