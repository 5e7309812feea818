//! The dependency rule, checked on the source tree: the kernel names no concern and not the
//! composition root, and a concern reaches another concern only through the names that
//! concern's `mod.rs` exports (`pub use` re-exports and items defined in `mod.rs`), never
//! through its submodules. Paths are read from `use` trees (flattened) and from inline
//! `crate::…` paths, comments left out.

use std::{
    collections::{BTreeMap, BTreeSet},
    fs,
    path::{Path, PathBuf},
};

const CONCERNS: &[&str] =
    &["auth", "social", "messaging", "realtime", "upstreams", "flags", "push", "playground", "media", "sync"];
const ROOT: &[&str] = &["app", "schema", "server", "config", "node", "dev"];

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The source without `//` comments (string contents are kept: attribute strings such as
/// `complexity = "crate::…"` are paths too).
fn without_comments(source: &str) -> String {
    source
        .lines()
        .map(|line| {
            let mut in_string = false;
            let bytes = line.as_bytes();
            let mut cut = line.len();
            for i in 0..bytes.len() {
                match bytes[i] {
                    b'"' if i == 0 || bytes[i - 1] != b'\\' => in_string = !in_string,
                    b'/' if !in_string && bytes.get(i + 1) == Some(&b'/') => {
                        cut = i;
                        break;
                    }
                    _ => {}
                }
            }
            &line[..cut]
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Splits `a, b::{c, d}` at top-level commas.
fn split_top(tree: &str) -> Vec<&str> {
    let (mut parts, mut depth, mut start) = (Vec::new(), 0i32, 0);
    for (i, c) in tree.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(&tree[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&tree[start..]);
    parts
}

/// Every path of a use tree (`crate::{a::{b, c as d}, e}` → `crate::a::b`, `crate::a::c as d`, `crate::e`).
fn flatten(prefix: &str, tree: &str, out: &mut Vec<String>) {
    for part in split_top(tree) {
        let part: String = part.split_whitespace().collect::<Vec<_>>().join(" ");
        if part.is_empty() {
            continue;
        }
        match (part.find('{'), part.ends_with('}')) {
            (Some(open), true) => flatten(&format!("{prefix}{}", &part[..open]), &part[open + 1..part.len() - 1], out),
            _ => out.push(format!("{prefix}{part}")),
        }
    }
}

/// Every `crate::…` path in `source`, from use trees and inline.
fn crate_paths(source: &str) -> Vec<String> {
    let mut paths = Vec::new();
    let mut rest = source;
    while let Some(at) = rest.find("use crate::") {
        let tail = &rest[at + 4..];
        let end = tail.find(';').unwrap_or(tail.len());
        flatten("", &tail[..end], &mut paths);
        rest = &tail[end..];
    }
    let bytes = source.as_bytes();
    let mut from = 0;
    while let Some(at) = source[from..].find("crate::") {
        let start = from + at;
        from = start + 7;
        if start > 0
            && (bytes[start - 1].is_ascii_alphanumeric() || bytes[start - 1] == b'_' || bytes[start - 1] == b':')
        {
            continue;
        }
        let end = source[start..]
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
            .map_or(source.len(), |e| start + e);
        paths.push(source[start..end].trim_end_matches(':').to_owned());
    }
    paths
}

/// What a concern's `mod.rs` exports: `pub use` names (after `as`) and items it defines.
fn exports(src: &Path, concern: &str) -> BTreeSet<String> {
    let Ok(source) = fs::read_to_string(src.join(concern).join("mod.rs")) else { return BTreeSet::new() };
    let source = without_comments(&source);
    let mut names = BTreeSet::new();
    let mut rest = source.as_str();
    while let Some(at) = rest.find("pub use ") {
        let tail = &rest[at + 8..];
        let end = tail.find(';').unwrap_or(tail.len());
        let mut paths = Vec::new();
        flatten("", &tail[..end], &mut paths);
        for path in paths {
            let name = match path.split_once(" as ") {
                Some((_, alias)) => alias.trim().to_owned(),
                None => path.rsplit("::").next().unwrap_or_default().trim().to_owned(),
            };
            names.insert(name);
        }
        rest = &tail[end..];
    }
    for line in source.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        if let [first, rest @ ..] = words.as_slice()
            && *first == "pub"
        {
            let rest: Vec<&str> = rest.iter().copied().skip_while(|w| *w == "async").collect();
            if let [kind, name, ..] = rest.as_slice()
                && ["struct", "enum", "fn", "trait", "type", "const", "static"].contains(kind)
            {
                let name: String = name.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
                names.insert(name);
            }
        }
    }
    names
}

#[test]
fn concerns_meet_only_through_their_mod_rs_and_the_kernel_names_none() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let exported: BTreeMap<&str, BTreeSet<String>> = CONCERNS.iter().map(|c| (*c, exports(&src, c))).collect();
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    assert!(files.len() > 50, "the source tree was not found at {}", src.display());
    let mut broken = Vec::new();
    for file in &files {
        let relative = file.strip_prefix(&src).unwrap_or(file);
        let owner = relative.components().next().and_then(|c| c.as_os_str().to_str()).unwrap_or_default();
        let in_kernel = owner == "kernel";
        if !in_kernel && !CONCERNS.contains(&owner) {
            continue;
        }
        let source = without_comments(&fs::read_to_string(file).unwrap_or_default());
        for path in crate_paths(&source) {
            let segments: Vec<&str> = path.split("::").map(str::trim).collect();
            let Some(target) = segments.get(1).map(|s| s.split(' ').next().unwrap_or_default()) else { continue };
            if in_kernel {
                if CONCERNS.contains(&target) || ROOT.contains(&target) {
                    broken.push(format!("{}: the kernel names `{path}`", relative.display()));
                }
                continue;
            }
            if target == owner || !CONCERNS.contains(&target) {
                continue;
            }
            let name = segments.get(2).map(|s| s.split(' ').next().unwrap_or_default()).unwrap_or_default();
            if !name.is_empty() && name != "self" && !exported[target].contains(name) {
                broken.push(format!("{}: `{path}` is not in {target}'s mod.rs API", relative.display()));
            }
        }
    }
    assert!(broken.is_empty(), "the dependency rule is broken:\n{}", broken.join("\n"));
}

#[test]
fn the_check_sees_a_submodule_path_and_a_use_tree() {
    let mut paths = Vec::new();
    flatten("", "crate::{social::{store::users, User}, realtime::log::{self, EventKind as K}}", &mut paths);
    assert_eq!(
        paths,
        [
            "crate::social::store::users",
            "crate::social::User",
            "crate::realtime::log::self",
            "crate::realtime::log::EventKind as K"
        ]
    );
    let inline = crate_paths("let x = crate::social::store::users::by_ids(conn); // crate::auth::keys");
    assert!(inline.contains(&"crate::social::store::users::by_ids".to_owned()));
    assert_eq!(without_comments("a // crate::auth::keys"), "a ");
}
