//! The suite's skip policy for a test whose tool or privilege is missing:
//! a loud message and a pass on a developer's machine, a failure where `CI`
//! is set (a check that silently passes where it never ran proves nothing),
//! unless the named variable asks to skip on purpose (`KCPX_SKIP_GO=1`, as
//! `tests/interop_kcpgo.rs` and `tests/nginx_lb.rs` do).
//! Include with `#[path = "support/skip.rs"] mod skip;`.
#![allow(dead_code)]

/// Call when `what` cannot run because of `why`: panics in CI unless
/// `$skip_var` is set to something other than `0`, else prints a banner
/// saying the test did NOT run and returns (the caller then returns).
pub fn unavailable(what: &str, why: &str, skip_var: &str) {
    let asked = std::env::var_os(skip_var).is_some_and(|v| v != "0");
    if std::env::var_os("CI").is_some() && !asked {
        panic!("{what} cannot run: {why}\n(set {skip_var}=1 to skip it on purpose)");
    }
    eprintln!("\n*** {what} SKIPPED: {why} ***\n*** the test did NOT run (set CI=1 to make this a failure) ***\n");
}
