//! The shape the code keeps, checked on the sources of every crate: no
//! module imports one that imports it (directly or round a longer loop),
//! source files past 700 lines say why at their top, and dialect version
//! comparisons appear only in `msnp/src/dialect.rs`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn crates_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("the crates folder").to_path_buf()
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("a readable folder").flatten() {
        let path = entry.path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// A file's module path inside its crate: `notification::lists`.
fn module_of(src: &Path, file: &Path) -> String {
    let rel = file.strip_prefix(src).expect("inside src").with_extension("");
    let mut parts: Vec<String> = rel.iter().map(|p| p.to_string_lossy().into_owned()).collect();
    if matches!(parts.last().map(String::as_str), Some("mod" | "lib" | "main")) {
        parts.pop();
    }
    parts.join("::")
}

/// The source without its `#[cfg(test)]` module (tests may reach anywhere).
fn without_tests(text: &str) -> &str {
    text.find("#[cfg(test)]").map_or(text, |i| &text[..i])
}

/// The paths after `prefix` (`crate::` or `super::`) in `text`.
fn paths_after<'a>(text: &'a str, prefix: &str) -> Vec<Vec<&'a str>> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(i) = rest.find(prefix) {
        let boundary = rest[..i].chars().next_back().is_none_or(|c| !(c.is_alphanumeric() || c == '_'));
        rest = &rest[i + prefix.len()..];
        if !boundary {
            continue;
        }
        let end = rest.find(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':')).unwrap_or(rest.len());
        out.push(rest[..end].split("::").filter(|s| !s.is_empty()).collect());
    }
    out
}

/// The module a path names: its longest prefix that is a module.
fn resolve(modules: &BTreeSet<String>, parts: &[&str]) -> Option<String> {
    (1..=parts.len()).rev().map(|k| parts[..k].join("::")).find(|m| modules.contains(m))
}

/// Which modules each module uses, leaving out a module's own ancestors and
/// descendants (a parent declares its children; that is not an import).
fn imports(src: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let mut files = Vec::new();
    rust_files(src, &mut files);
    let modules: BTreeSet<String> = files.iter().map(|f| module_of(src, f)).collect();
    let related = |a: &str, b: &str| a == b || a.starts_with(&format!("{b}::")) || b.starts_with(&format!("{a}::"));
    let mut edges = BTreeMap::new();
    for file in &files {
        let me = module_of(src, file);
        let text = std::fs::read_to_string(file).expect("a readable file");
        let code = without_tests(&text);
        let parent: Vec<&str> = me.split("::").filter(|s| !s.is_empty()).collect();
        let parent = &parent[..parent.len().saturating_sub(1)];
        let mut used = BTreeSet::new();
        for parts in paths_after(code, "crate::") {
            used.extend(resolve(&modules, &parts));
        }
        for parts in paths_after(code, "super::") {
            let full: Vec<&str> = parent.iter().copied().chain(parts).collect();
            used.extend(resolve(&modules, &full));
        }
        used.retain(|m| !related(&me, m));
        edges.insert(me, used);
    }
    edges
}

/// A loop through `edges` back to `start`, if any.
fn cycle_from(edges: &BTreeMap<String, BTreeSet<String>>, start: &str) -> Option<Vec<String>> {
    let mut stack = vec![vec![start.to_string()]];
    let mut seen = BTreeSet::new();
    while let Some(path) = stack.pop() {
        let last = path.last().expect("never empty");
        for next in edges.get(last).into_iter().flatten() {
            if next == start {
                return Some([path.clone(), vec![start.to_string()]].concat());
            }
            if seen.insert(next.clone()) {
                stack.push([path.clone(), vec![next.clone()]].concat());
            }
        }
    }
    None
}

fn crate_sources() -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(crates_dir())
        .expect("the crates folder")
        .flatten()
        .map(|e| e.path().join("src"))
        .filter(|p| p.is_dir())
        .collect();
    out.sort();
    out
}

#[test]
fn no_module_imports_one_that_imports_it() {
    let mut loops = Vec::new();
    for src in crate_sources() {
        let edges = imports(&src);
        for module in edges.keys() {
            if let Some(found) = cycle_from(&edges, module) {
                loops.push(format!("{}: {}", src.display(), found.join(" -> ")));
            }
        }
    }
    assert!(loops.is_empty(), "import loops:\n{}", loops.join("\n"));
}

#[test]
fn the_checker_sees_a_loop_when_there_is_one() {
    let edges: BTreeMap<String, BTreeSet<String>> = [
        ("ns".to_string(), BTreeSet::from(["sb".to_string()])),
        ("sb".to_string(), BTreeSet::from(["transfer".to_string()])),
        ("transfer".to_string(), BTreeSet::from(["ns".to_string()])),
    ]
    .into();
    assert_eq!(cycle_from(&edges, "ns").map(|c| c.len()), Some(4));
    assert_eq!(paths_after("use crate::a::b; xcrate::c", "crate::"), vec![vec!["a", "b"]]);
}

#[test]
fn long_files_say_why_at_their_top() {
    let mut files = Vec::new();
    for dir in crate_sources()
        .into_iter()
        .chain(std::fs::read_dir(crates_dir()).unwrap().flatten().map(|e| e.path().join("tests")))
    {
        if dir.is_dir() {
            rust_files(&dir, &mut files);
        }
    }
    let silent: Vec<String> = files
        .iter()
        .filter_map(|f| {
            let text = std::fs::read_to_string(f).ok()?;
            let header: String = text.lines().take_while(|l| l.starts_with("//!")).collect::<Vec<_>>().join("\n");
            (text.lines().count() > 700 && !header.to_lowercase().contains("over 700 lines on purpose"))
                .then(|| f.display().to_string())
        })
        .collect();
    assert!(silent.is_empty(), "files over 700 lines without a reason at their top: {silent:?}");
}

#[test]
fn dialect_numbers_are_compared_only_in_dialect_rs() {
    let mut files = Vec::new();
    for src in crate_sources() {
        rust_files(&src, &mut files);
    }
    let offenders: Vec<String> = files
        .iter()
        .filter(|f| !f.ends_with("msnp/src/dialect.rs"))
        .filter_map(|f| {
            let text = std::fs::read_to_string(f).ok()?;
            let code = without_tests(&text);
            let compares = [">= Dialect::", "<= Dialect::", "> Dialect::", "< Dialect::", ".number() >", ".number() <"]
                .iter()
                .any(|p| code.contains(p));
            compares.then(|| f.display().to_string())
        })
        .collect();
    assert!(offenders.is_empty(), "dialect version comparisons outside dialect.rs: {offenders:?}");
}
