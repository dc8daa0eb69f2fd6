//! ARCHITECTURE.md's layer table holds: every `crate::<module>` that code in
//! `src/<module>/` (or `src/<module>.rs`) names is listed in that layer's
//! "may use" column. Comment lines (doc links included) and the test-only
//! `crate::sim` do not count.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The names the table uses for layers, and the modules they mean.
fn module_of(word: &str) -> Option<&'static str> {
    Some(match word {
        "core" | "kcp" => "kcp",
        "fec" => "fec",
        "crypt" => "crypt",
        "secure" => "secure",
        "conn" | "connection" => "conn",
        "endpoint" => "endpoint",
        "net" => "net",
        "error" | "errors" => "error",
        "ffi" => "ffi",
        _ => return None,
    })
}

/// Text without its parenthesised asides, so that a note such as
/// "(`src/conn/config.rs` does that)" does not count as a permission.
fn without_parentheses(text: &str) -> String {
    let (mut out, mut depth) = (String::new(), 0usize);
    for c in text.chars() {
        match c {
            '(' => depth += 1,
            ')' => depth = depth.saturating_sub(1),
            _ if depth == 0 => out.push(c),
            _ => {}
        }
    }
    out
}

/// Module name -> the modules its row allows, from the table whose header
/// has a "may use" column.
fn allowed(markdown: &str) -> BTreeMap<String, BTreeSet<String>> {
    let mut rows = markdown
        .lines()
        .skip_while(|l| !(l.starts_with('|') && l.contains("may use")))
        .take_while(|l| l.starts_with('|'));
    let header: Vec<&str> = rows
        .next()
        .expect("a table with a \"may use\" column")
        .split('|')
        .collect();
    let (at_where, at_may) = (
        header
            .iter()
            .position(|c| c.trim() == "where")
            .expect("a \"where\" column"),
        header
            .iter()
            .position(|c| c.trim() == "may use")
            .expect("a \"may use\" column"),
    );
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut above: BTreeSet<String> = BTreeSet::new();
    for row in rows.skip(1) {
        let cells: Vec<&str> = row.split('|').collect();
        let modules: Vec<String> = cells[at_where]
            .split("src/")
            .skip(1)
            .map(|p| {
                p.chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect()
            })
            .collect();
        assert!(!modules.is_empty(), "a row without a src/ path: {row}");
        let may = without_parentheses(cells[at_may]);
        let mut set: BTreeSet<String> = may
            .split(|c: char| !c.is_ascii_alphanumeric() && c != '_')
            .filter_map(module_of)
            .map(String::from)
            .collect();
        if may.contains("everything above") {
            set.extend(above.iter().cloned());
        }
        for m in &modules {
            out.insert(m.clone(), set.clone());
        }
        above.extend(modules);
    }
    out
}

fn rust_files(path: &Path, out: &mut Vec<PathBuf>) {
    if path.is_dir() {
        for entry in std::fs::read_dir(path).expect("read_dir") {
            rust_files(&entry.expect("entry").path(), out);
        }
    } else if path.is_file() && path.extension().is_some_and(|e| e == "rs") {
        out.push(path.to_path_buf());
    }
}

/// The modules that code (not comments) in `module` names as `crate::X`,
/// with one place each is named.
fn used(module: &str) -> BTreeMap<String, String> {
    let src = root().join("src");
    let mut files = Vec::new();
    rust_files(&src.join(module), &mut files);
    rust_files(&src.join(format!("{module}.rs")), &mut files);
    let mut out = BTreeMap::new();
    for file in files {
        let text = std::fs::read_to_string(&file).expect("read source");
        for (n, line) in text.lines().enumerate() {
            let code = line.trim_start();
            if code.starts_with("//") {
                continue;
            }
            for part in code.split("crate::").skip(1) {
                let name: String = part
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                if name.is_empty() || name == module || name == "sim" {
                    continue;
                }
                let at = format!("{}:{}", file.strip_prefix(root()).unwrap_or(&file).display(), n + 1);
                out.entry(name).or_insert(at);
            }
        }
    }
    out
}

#[test]
fn code_uses_only_what_the_layer_table_allows() {
    let text = std::fs::read_to_string(root().join("ARCHITECTURE.md")).expect("read ARCHITECTURE.md");
    let table = allowed(&text);
    for layer in [
        "kcp", "fec", "crypt", "secure", "conn", "endpoint", "net", "ffi", "error",
    ] {
        assert!(
            table.contains_key(layer),
            "ARCHITECTURE.md's table has no row for src/{layer}"
        );
    }
    let mut problems = Vec::new();
    for (module, may) in &table {
        for (name, at) in used(module) {
            if !may.contains(&name) {
                problems.push(format!(
                    "{at}: src/{module} uses crate::{name}, which its row does not list ({may:?})"
                ));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn the_table_parser_reads_asides_and_everything_above() {
    let table = allowed(
        "| layer | where | may use |\n|---|---|---|\n| a | `src/kcp/` | nothing (not `conn`) |\n\
         | b | `src/conn/` | core |\n| c | `src/ffi/` | everything above |\n",
    );
    assert!(table["kcp"].is_empty());
    assert_eq!(table["conn"], BTreeSet::from(["kcp".to_string()]));
    assert_eq!(table["ffi"], BTreeSet::from(["kcp".to_string(), "conn".to_string()]));
}
