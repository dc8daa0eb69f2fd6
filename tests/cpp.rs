//! C++ users' header, include/kcpx.hpp: tests/cpp/kcpx_hpp.cpp is compiled
//! with g++ as C++17 with `-Wall -Wextra -Wpedantic -Werror` (and `-Wshadow
//! -Wconversion -Wsign-conversion -Wold-style-cast`), once more with
//! `-fno-exceptions -fno-rtti`, as C++20 (where `std::span` converts), and
//! under AddressSanitizer and UBSan,
//! against the libkcpx.so of this build, and run: its checks drive
//! listeners, dialed sessions and connections over loopback (every wait
//! bounded; the run is killed after two minutes). Without g++ the tests skip
//! loudly, and fail under CI unless `KCPX_SKIP_CXX=1` (the skip policy of
//! `tests/support/skip.rs`). The C++ echo server example is run beside the
//! C one in tests/sessions.rs.
#![cfg(feature = "ffi")] // the C ABI the header wraps

#[path = "support/cprog.rs"]
mod cprog;
#[path = "support/skip.rs"]
mod skip;

use std::time::Duration;

/// Builds tests/cpp/kcpx_hpp.cpp with `flags` and runs it: every check passes.
fn build_and_run(name: &str, flags: &[&str]) {
    if !skip::have("g++") {
        skip::unavailable(
            &format!("tests/cpp.rs {name}"),
            "g++ is not installed (apt-get install -y g++)",
            "KCPX_SKIP_CXX",
        );
        return;
    }
    let (work, lib_dir) = cprog::work_dir(&format!("cpp_{name}"));
    let exe = cprog::compile_cxx("tests/cpp/kcpx_hpp.cpp", name, flags, &work, &lib_dir);
    let out = cprog::run_bounded(&exe, &[], Duration::from_secs(120));
    let text = String::from_utf8_lossy(&out.stdout);
    eprintln!("{text}{}", String::from_utf8_lossy(&out.stderr));
    assert!(
        out.status.success() && text.contains(" checks, 0 failed"),
        "kcpx_hpp ({flags:?}) failed: {}",
        text.lines()
            .filter(|l| l.starts_with("FAIL"))
            .collect::<Vec<_>>()
            .join("\n")
    );
}

#[test]
fn header_as_cxx17() {
    // The warnings strict game-server builds add, as errors too.
    let strict = ["-Wshadow", "-Wconversion", "-Wsign-conversion", "-Wold-style-cast"];
    build_and_run("cxx17", &strict);
}

#[test]
fn header_without_exceptions_or_rtti() {
    build_and_run("no_exceptions", &["-fno-exceptions", "-fno-rtti"]);
}

/// Under AddressSanitizer (leaks included) and UBSan: a session that
/// outlives its listener frees nothing twice (the lifeline; without it this
/// run reports a double free), and no owner leaks.
#[test]
fn header_under_address_and_undefined_behaviour_sanitizers() {
    let sanitize = [
        "-g",
        "-fsanitize=address,undefined",
        "-fno-sanitize-recover=all",
        "-fno-omit-frame-pointer",
    ];
    build_and_run("sanitizers", &sanitize);
}

#[test]
fn header_as_cxx20_with_span() {
    build_and_run("cxx20", &["-std=c++20"]);
}

/// Every function of kcpx.h has its wrapper in kcpx.hpp (a new export
/// needs one: a method of the owner it belongs to).
#[test]
fn header_wraps_every_kcpx_function() {
    let read = |p: &str| std::fs::read_to_string(cprog::root().join(p)).unwrap();
    let (c, cpp) = (read("include/kcpx.h"), read("include/kcpx.hpp"));
    // Every `kcpx_name(` of kcpx.h: its declarations (and the names its
    // comments call, all of which are declared too).
    let ident = |ch: char| ch.is_ascii_alphanumeric() || ch == '_';
    let declared: std::collections::BTreeSet<&str> = c
        .match_indices("kcpx_")
        .filter(|(at, _)| !c[..*at].ends_with(ident))
        .filter_map(|(at, _)| {
            let name = &c[at..];
            let len = name.find(|ch: char| !ident(ch))?;
            name[len..].starts_with('(').then(|| &name[..len])
        })
        .collect();
    assert!(
        declared.len() > 60,
        "only {} kcpx_* functions found in kcpx.h",
        declared.len()
    );
    let missing: Vec<&&str> = declared.iter().filter(|f| !cpp.contains(&format!("{f}("))).collect();
    assert!(
        missing.is_empty(),
        "kcpx.hpp does not wrap {missing:?}: add them to the owner they belong to (and docs/cpp.md if a rule changes)"
    );
}
