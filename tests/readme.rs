//! The code blocks of the README and of the documents it links to
//! (`docs/*.md`, ARCHITECTURE.md, CONTRIBUTING.md): a user copies them, so
//! every block of code (C, C++, Rust, CMake, Python) must be a visibly marked
//! excerpt of a complete program that the tests build: its first line says
//! `excerpt of <path>`, and its other lines appear in that file, in order
//! (compared without indentation; `/* ... */`, `// ...` and `# ...` mark
//! elisions). Shell and text blocks are commands and output, not programs;
//! tests/packaging.rs runs the pkg-config block as written. Also: the
//! README's test command is what `.ci/run` runs, every relative link in
//! these documents names a file that exists, and the C and C++ examples say how to
//! build them.
#![cfg(feature = "ffi")] // the C ABI and the libraries built from it

use std::path::{Path, PathBuf};

/// Languages whose blocks are code a user may paste into a program.
const CODE: &[&str] = &["c", "cpp", "c++", "rust", "cmake", "python", "py"];
/// Languages of blocks that are not programs.
const NOT_CODE: &[&str] = &["sh", "text", "console"];
const ELISIONS: &[&str] = &["/* ... */", "// ...", "# ..."];

struct Block {
    /// 1-based line of the opening fence.
    line: usize,
    lang: String,
    body: Vec<String>,
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn blocks(markdown: &str) -> Vec<Block> {
    let mut out = Vec::new();
    let mut open: Option<Block> = None;
    for (i, line) in markdown.lines().enumerate() {
        let Some(rest) = line.trim_start().strip_prefix("```") else {
            if let Some(b) = open.as_mut() {
                b.body.push(line.to_string());
            }
            continue;
        };
        match open.take() {
            Some(b) => out.push(b),
            None => {
                open = Some(Block {
                    line: i + 1,
                    lang: rest.trim().to_string(),
                    body: Vec::new(),
                })
            }
        }
    }
    assert!(open.is_none(), "a code block is never closed");
    out
}

/// The path named by `excerpt of <path>` in the block's first line.
fn excerpt_source(b: &Block) -> Option<PathBuf> {
    let first = b.body.first()?;
    let after = first.split("excerpt of ").nth(1)?;
    let path: String = after
        .chars()
        .take_while(|c| !c.is_whitespace() && !matches!(c, ')' | ',' | ':'))
        .collect();
    Some(root().join(path))
}

/// Checks that the non-elided lines of `excerpt` occur in `source` in order.
fn check_excerpt(doc: &str, b: &Block, source: &Path) -> Result<(), String> {
    let text = std::fs::read_to_string(source).map_err(|e| format!("cannot read {}: {e}", source.display()))?;
    let mut lines = text.lines().map(str::trim);
    for (k, want) in b.body.iter().enumerate().skip(1) {
        let want = want.trim();
        if want.is_empty() || ELISIONS.contains(&want) {
            continue;
        }
        if !lines.any(|l| l == want) {
            return Err(format!(
                "{doc} line {}: `{want}` is not in {} (after the lines before it): update the excerpt",
                b.line + 1 + k,
                source.display()
            ));
        }
    }
    Ok(())
}

/// The README and the documents whose code blocks are checked, as
/// (path relative to the root, text).
fn documents() -> Vec<(String, String)> {
    let mut names = vec![
        "README.md".to_string(),
        "ARCHITECTURE.md".into(),
        "CONTRIBUTING.md".into(),
    ];
    let mut docs: Vec<String> = std::fs::read_dir(root().join("docs"))
        .expect("docs/")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".md"))
        .map(|n| format!("docs/{n}"))
        .collect();
    docs.sort();
    names.extend(docs);
    names
        .into_iter()
        .filter(|n| root().join(n).is_file())
        .map(|n| {
            let text = std::fs::read_to_string(root().join(&n)).unwrap_or_else(|e| panic!("read {n}: {e}"));
            (n, text)
        })
        .collect()
}

#[test]
fn every_code_block_is_a_checked_excerpt_of_a_complete_program() {
    let mut problems = Vec::new();
    let mut checked = 0;
    for (doc, text) in documents() {
        for b in blocks(&text) {
            let lang = b.lang.as_str();
            if NOT_CODE.contains(&lang) {
                continue;
            }
            if !CODE.contains(&lang) {
                problems.push(format!(
                    "{doc} line {}: code block without a known language (`{lang}`): use one of {CODE:?} or {NOT_CODE:?}",
                    b.line
                ));
                continue;
            }
            match excerpt_source(&b) {
                None => problems.push(format!(
                    "{doc} line {}: a {lang} block must start with a comment `excerpt of <path>` naming the complete program",
                    b.line
                )),
                Some(source) => match check_excerpt(&doc, &b, &source) {
                    Ok(()) => checked += 1,
                    Err(e) => problems.push(e),
                },
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    assert!(checked >= 8, "only {checked} excerpts found");
}

/// The README's "Two commands" block ends with the test command, and
/// `.ci/run` runs exactly that command last.
#[test]
fn the_readme_test_command_is_what_ci_runs() {
    let readme = std::fs::read_to_string(root().join("README.md")).expect("read README.md");
    let section = readme
        .split("## Two commands")
        .nth(1)
        .expect("a \"## Two commands\" section");
    let block = blocks(section).into_iter().next().expect("a code block in it");
    let command = |line: &str| line.split('#').next().unwrap_or("").trim().to_string();
    let commands: Vec<String> = block
        .body
        .iter()
        .map(|l| command(l))
        .filter(|c| !c.is_empty())
        .collect();
    assert_eq!(commands.len(), 2, "two commands: {commands:?}");
    assert_eq!(commands[0], "cargo run --release --example demo");
    let ci = std::fs::read_to_string(root().join(".ci/run")).expect("read .ci/run");
    let last = ci.lines().map(command).rfind(|c| !c.is_empty());
    assert_eq!(last.as_deref(), Some(commands[1].as_str()), ".ci/run's last command");
}

/// Every relative link `[text](path)` or `[text](path#anchor)` in the
/// documents names a file that exists, so nothing the README moved out is
/// unreachable.
#[test]
fn relative_links_name_existing_files() {
    let mut broken = Vec::new();
    for (doc, text) in documents() {
        let base = root().join(&doc);
        let dir = base.parent().expect("parent");
        for part in text.split("](").skip(1) {
            let target = part.split(')').next().unwrap_or("");
            let path = target.split('#').next().unwrap_or("");
            if path.is_empty() || path.contains("://") || path.starts_with('<') {
                continue;
            }
            if !dir.join(path).exists() {
                broken.push(format!("{doc}: ({target})"));
            }
        }
    }
    assert!(broken.is_empty(), "links to missing files:\n{}", broken.join("\n"));
}

/// Everything the README used to hold is linked from it.
#[test]
fn the_readme_links_every_document() {
    let readme = std::fs::read_to_string(root().join("README.md")).expect("read README.md");
    for (doc, _) in documents().iter().skip(1) {
        assert!(readme.contains(&format!("]({doc}")), "README.md does not link {doc}");
    }
}

#[test]
fn excerpt_check_notices_a_changed_line() {
    let b = Block {
        line: 1,
        lang: "rust".into(),
        body: vec![
            "// excerpt of examples/core.rs".into(),
            "use kcpx::kcp::Kcp;".into(),
            "    a.send(b\"goodbye\").expect(\"a 5-byte message fits\");".into(),
        ],
    };
    let source = excerpt_source(&b).expect("a path");
    assert!(check_excerpt("README.md", &b, &source).is_err());
}

/// examples/core.rs, which `cargo test` builds, runs and prints what the README says.
#[test]
fn rust_example_runs() {
    let exe = std::env::current_exe().expect("current_exe");
    // target/<profile>/deps/<this test> -> target/<profile>/examples/core
    let core = exe
        .parent()
        .and_then(Path::parent)
        .expect("profile dir")
        .join("examples/core");
    assert!(
        core.is_file(),
        "{} not built: cargo test builds the examples",
        core.display()
    );
    let out = std::process::Command::new(&core).output().expect("run examples/core");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("b received \"hello\""),
        "examples/core printed {stdout:?}"
    );
}

/// Every C and C++ example says in its first comment how to build it:
/// through pkg-config and with a plain compiler line from a checkout, both
/// with an rpath (without one the program does not find libkcpx.so.1 and
/// does not start).
#[test]
fn every_c_and_cpp_example_says_how_to_build_it() {
    let mut checked = 0;
    for (dir, ext) in [("examples/c", "c"), ("examples/cpp", "cpp")] {
        for entry in std::fs::read_dir(root().join(dir)).expect("examples directory") {
            let path = entry.expect("entry").path();
            if path.extension().and_then(|e| e.to_str()) != Some(ext) {
                continue;
            }
            let text = std::fs::read_to_string(&path).expect("read example");
            let first = text.split("*/").next().unwrap_or("");
            for want in [
                "pkg-config --cflags --libs kcpx",
                "-Wl,-rpath,",
                "-Ltarget/release -lkcpx",
            ] {
                assert!(
                    first.contains(want),
                    "{}: its first comment lacks `{want}`",
                    path.display()
                );
            }
            assert_eq!(
                first.matches("-Wl,-rpath,").count(),
                2,
                "{}: two rpaths",
                path.display()
            );
            checked += 1;
        }
    }
    assert!(checked >= 5, "only {checked} C and C++ examples");
}
