//! The layering checker: reads every source file under src/, finds each path from one
//! top-level module into another (`crate::m`, `$crate::m`, `super::` chains that climb to the
//! crate root, `crate::{a, b}` groups, and the crate-root macros `print!`/`println!`/`log!`
//! by the module that defines them), prints the edges, and fails on an edge that points up
//! the layer order or on a cycle.
//!
//! The layer order is declared in one place: the order of the top-level `mod` items in
//! src/lib.rs, bottom first. Comments and string literals are not code and are skipped. The
//! crate root itself (src/lib.rs, which wires arch's hook table to startup and selftest) is
//! the composition root above every layer and is not checked.
//!
//! Run `cargo test --test layering -- --nocapture` to see the edge list.
//!
//! A second test checks the unsafe fence from the outside: the crate denies `unsafe_code`,
//! and `allow(unsafe_code)` appears only where [`UNSAFE_ALLOWED`] says.
//!
//! Resources: the Rust reference, "Paths" (`crate`, `super`, `$crate`) and "Tokens"
//! (comments, string, raw string, byte string and char literals, lifetimes).

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

/// Upward edges that exist today in code that phase 2 of the restructuring reworks
/// (iommu/, hcall/, model/). Each is `(from, to, why)`. Nothing else may point up, and no
/// module outside those three may appear here.
const PHASE_2_UPWARD_EDGES: &[(&str, &str, &str)] = &[];

/// The modules whose upward edges phase 2 owns.
const PHASE_2_MODULES: &[&str] = &["iommu", "hcall", "model"];

/// Where `allow(unsafe_code)` may appear, and how often: the crate root (arch, and iommu and
/// model until phase 2, and the hook table's `#[no_mangle]`), mm/mod.rs (mm::phys), the
/// `#[no_mangle]` entry the gdb helpers call (selftest::gdb), and the partition pool's
/// `iommu::ram::Ram::new` call in startup::hv (until phase 2).
const UNSAFE_ALLOWED: &[(&str, usize)] = &[
    ("src/lib.rs", 4),
    ("src/mm/mod.rs", 1),
    ("src/selftest/gdb.rs", 1),
    ("src/startup/hv.rs", 1),
];

fn src_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

// -------------------------------------------------------------------------------------------
// A small Rust lexer: enough to drop comments and literals and to find identifiers, `::`
// and braces, with line numbers.
// -------------------------------------------------------------------------------------------

#[derive(Clone, Debug, PartialEq, Eq)]
enum Tok {
    Ident(String),
    PathSep,
    Dollar,
    Open,
    Close,
    Bang,
    Comma,
    Other,
}

/// The tokens of `source`, each with its line.
fn lex(source: &str) -> Vec<(Tok, usize)> {
    let text: Vec<char> = source.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    let mut line = 1;
    let count_lines = |from: usize, to: usize, line: &mut usize| {
        *line += text[from..to].iter().filter(|&&c| c == '\n').count();
    };
    while i < text.len() {
        let c = text[i];
        let next = text.get(i + 1).copied();
        if c == '\n' {
            line += 1;
            i += 1;
        } else if c.is_whitespace() {
            i += 1;
        } else if c == '/' && next == Some('/') {
            while i < text.len() && text[i] != '\n' {
                i += 1;
            }
        } else if c == '/' && next == Some('*') {
            // Block comments nest.
            let start = i;
            let mut depth = 0;
            while i < text.len() {
                if text[i] == '/' && text.get(i + 1) == Some(&'*') {
                    depth += 1;
                    i += 2;
                } else if text[i] == '*' && text.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    i += 1;
                }
            }
            count_lines(start, i, &mut line);
        } else if let Some(end) = raw_string_end(&text, i) {
            count_lines(i, end, &mut line);
            i = end;
            out.push((Tok::Other, line));
        } else if c == '"' || (c == 'b' && next == Some('"')) {
            let start = i;
            i += if c == 'b' { 2 } else { 1 };
            while i < text.len() && text[i] != '"' {
                i += if text[i] == '\\' { 2 } else { 1 };
            }
            i += 1;
            count_lines(start, i.min(text.len()), &mut line);
            out.push((Tok::Other, line));
        } else if c == '\'' || (c == 'b' && next == Some('\'')) {
            // A char literal ('x', '\n', '\u{..}', b'x') or a lifetime ('a).
            let quote = if c == 'b' { i + 1 } else { i };
            let body = quote + 1;
            if text.get(body) == Some(&'\\') {
                let mut j = body + 1;
                while j < text.len() && text[j] != '\'' {
                    j += 1;
                }
                i = j + 1;
            } else if text.get(body + 1) == Some(&'\'') {
                i = body + 2;
            } else {
                i = quote + 1; // a lifetime: the identifier follows as a token
            }
            out.push((Tok::Other, line));
        } else if c.is_alphabetic() || c == '_' {
            let start = i;
            while i < text.len() && (text[i].is_alphanumeric() || text[i] == '_') {
                i += 1;
            }
            let word: String = text[start..i].iter().collect();
            // r#ident
            let word = word.strip_prefix("r#").map(str::to_string).unwrap_or(word);
            out.push((Tok::Ident(word), line));
        } else if c == ':' && next == Some(':') {
            out.push((Tok::PathSep, line));
            i += 2;
        } else {
            out.push((
                match c {
                    '$' => Tok::Dollar,
                    '{' => Tok::Open,
                    '}' => Tok::Close,
                    '!' => Tok::Bang,
                    ',' => Tok::Comma,
                    _ => Tok::Other,
                },
                line,
            ));
            i += 1;
        }
    }
    out
}

/// Where a raw string (`r"..."`, `r#"..."#`, `br#"..."#`) starting at `i` ends.
fn raw_string_end(text: &[char], i: usize) -> Option<usize> {
    let mut j = i;
    if text.get(j) == Some(&'b') {
        j += 1;
    }
    if text.get(j) != Some(&'r') {
        return None;
    }
    if i > 0 && (text[i - 1].is_alphanumeric() || text[i - 1] == '_') {
        return None;
    }
    j += 1;
    let mut hashes = 0;
    while text.get(j) == Some(&'#') {
        hashes += 1;
        j += 1;
    }
    if text.get(j) != Some(&'"') {
        return None;
    }
    j += 1;
    while j < text.len() {
        if text[j] == '"' && (0..hashes).all(|k| text.get(j + 1 + k) == Some(&'#')) {
            return Some(j + 1 + hashes);
        }
        j += 1;
    }
    Some(text.len())
}

// -------------------------------------------------------------------------------------------
// Modules, files and references.
// -------------------------------------------------------------------------------------------

/// The top-level modules in declaration order (bottom layer first), from src/lib.rs.
fn declared_layers() -> Vec<String> {
    let lib = fs::read_to_string(src_dir().join("lib.rs")).unwrap();
    let tokens = lex(&lib);
    let mut layers = Vec::new();
    let mut depth = 0;
    for (k, (tok, _)) in tokens.iter().enumerate() {
        match tok {
            Tok::Open => depth += 1,
            Tok::Close => depth -= 1,
            Tok::Ident(word) if word == "mod" && depth == 0 => {
                if let Some((Tok::Ident(name), _)) = tokens.get(k + 1) {
                    layers.push(name.clone());
                }
            }
            _ => {}
        }
    }
    layers
}

/// Every .rs file under `dir`, sorted.
fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

/// The module path of a file below src/ (`pci/enumerate/mod.rs` -> `[pci, enumerate]`).
fn module_path(relative: &Path) -> Vec<String> {
    let mut parts: Vec<String> = relative
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    let last = parts.pop().unwrap();
    let stem = last.trim_end_matches(".rs");
    if stem != "mod" {
        parts.push(stem.to_string());
    }
    parts
}

/// A file below src/: its path, its module path and its tokens.
type SourceFile = (PathBuf, Vec<String>, Vec<(Tok, usize)>);

/// One reference from a file to a top-level module.
#[derive(Clone, Debug)]
struct Reference {
    from: String,
    to: String,
    file: String,
    line: usize,
}

/// The first identifier of each element of a `{ ... }` group starting at token `k` (the
/// `{`), and the tokens of the group.
fn group_heads(tokens: &[(Tok, usize)], k: usize) -> Vec<(String, usize)> {
    let mut heads = Vec::new();
    let mut depth = 0;
    let mut expect_head = true;
    for (tok, line) in &tokens[k..] {
        match tok {
            Tok::Open => {
                depth += 1;
                expect_head = depth == 1;
            }
            Tok::Close => {
                depth -= 1;
                if depth == 0 {
                    break;
                }
            }
            Tok::Comma if depth == 1 => expect_head = true,
            Tok::Ident(word) if depth == 1 && expect_head => {
                heads.push((word.clone(), *line));
                expect_head = false;
            }
            _ if depth == 1 => expect_head = false,
            _ => {}
        }
    }
    heads
}

/// The crate-root macros (`#[macro_export]`) and the top-level module defining each.
fn exported_macros(files: &[SourceFile]) -> BTreeMap<String, String> {
    let mut macros = BTreeMap::new();
    for (_, module, tokens) in files {
        for k in 0..tokens.len() {
            if tokens[k].0 == Tok::Ident("macro_export".into()) {
                let rest = &tokens[k..tokens.len().min(k + 8)];
                if let Some(w) = rest
                    .windows(3)
                    .find(|w| w[0].0 == Tok::Ident("macro_rules".into()))
                {
                    if let Tok::Ident(name) = &w[2].0 {
                        macros.insert(name.clone(), module[0].clone());
                    }
                }
            }
        }
    }
    macros
}

/// Every reference in the tree from one top-level module into another.
fn references(layers: &[String]) -> Vec<Reference> {
    let src = src_dir();
    let files: Vec<SourceFile> = rust_files(&src)
        .into_iter()
        .filter_map(|path| {
            let relative = path.strip_prefix(&src).unwrap().to_path_buf();
            let module = module_path(&relative);
            // The crate root and the binary are not layers.
            if module.is_empty() || module == ["lib"] || module == ["main"] {
                return None;
            }
            let tokens = lex(&fs::read_to_string(&path).unwrap());
            Some((relative, module, tokens))
        })
        .collect();
    let macros = exported_macros(&files);
    let is_layer = |name: &str| layers.iter().any(|l| l == name);
    let mut found = Vec::new();
    for (relative, module, tokens) in &files {
        let from = module[0].clone();
        let file = format!("src/{}", relative.display());
        let mut push = |to: &str, line: usize| {
            if to != from && is_layer(to) {
                found.push(Reference {
                    from: from.clone(),
                    to: to.to_string(),
                    file: file.clone(),
                    line,
                });
            }
        };
        // Inline modules (`mod tests { ... }`) deepen `super::`.
        let mut inline: Vec<usize> = Vec::new();
        let mut depth = 0usize;
        let mut k = 0;
        while k < tokens.len() {
            let tok = &tokens[k].0;
            let ident = |j: usize| match tokens.get(j) {
                Some((Tok::Ident(w), _)) => Some(w.as_str()),
                _ => None,
            };
            match tok {
                Tok::Open => depth += 1,
                Tok::Close => {
                    depth = depth.saturating_sub(1);
                    if inline.last() == Some(&depth) {
                        inline.pop();
                    }
                }
                Tok::Ident(word)
                    if word == "mod"
                        && ident(k + 1).is_some()
                        && matches!(tokens.get(k + 2), Some((Tok::Open, _))) =>
                {
                    inline.push(depth);
                }
                Tok::Ident(word) if word == "crate" => {
                    let preceded = k > 0 && tokens[k - 1].0 == Tok::PathSep;
                    if !preceded && matches!(tokens.get(k + 1), Some((Tok::PathSep, _))) {
                        match tokens.get(k + 2) {
                            Some((Tok::Ident(name), line)) => match macros.get(name) {
                                Some(home)
                                    if tokens.get(k + 3).map(|t| &t.0) == Some(&Tok::Bang) =>
                                {
                                    push(home, *line)
                                }
                                _ => push(name, *line),
                            },
                            Some((Tok::Open, _)) => {
                                for (name, line) in group_heads(tokens, k + 2) {
                                    push(&name, line);
                                }
                            }
                            _ => {}
                        }
                    }
                }
                Tok::Ident(word) if word == "super" => {
                    let preceded = k > 0 && tokens[k - 1].0 == Tok::PathSep;
                    if !preceded {
                        // Count the chain `super::super::...` and land at its target.
                        let mut levels = 0;
                        let mut j = k;
                        while ident(j) == Some("super")
                            && matches!(tokens.get(j + 1), Some((Tok::PathSep, _)))
                        {
                            levels += 1;
                            j += 2;
                        }
                        let here = module.len() + inline.len();
                        if levels >= here {
                            // The chain reaches the crate root: the next segment is a
                            // top-level item.
                            match tokens.get(j) {
                                Some((Tok::Ident(name), line)) => push(name, *line),
                                Some((Tok::Open, _)) => {
                                    for (name, line) in group_heads(tokens, j) {
                                        push(&name, line);
                                    }
                                }
                                _ => {}
                            }
                        }
                    }
                }
                _ => {}
            }
            k += 1;
        }
    }
    found
}

/// Edges with how many references make each and where the first one is.
fn edges(refs: &[Reference]) -> BTreeMap<(String, String), (usize, String)> {
    let mut edges: BTreeMap<(String, String), (usize, String)> = BTreeMap::new();
    for r in refs {
        let entry = edges
            .entry((r.from.clone(), r.to.clone()))
            .or_insert((0, format!("{}:{}", r.file, r.line)));
        entry.0 += 1;
    }
    edges
}

/// The cycles of a directed graph, each as its set of nodes (strongly connected components
/// with more than one node).
fn cycles(edges: &BTreeSet<(String, String)>) -> Vec<BTreeSet<String>> {
    let nodes: BTreeSet<String> = edges
        .iter()
        .flat_map(|(a, b)| [a.clone(), b.clone()])
        .collect();
    let reach = |start: &String| {
        let mut seen = BTreeSet::new();
        let mut stack = vec![start.clone()];
        while let Some(n) = stack.pop() {
            for (a, b) in edges {
                if *a == n && seen.insert(b.clone()) {
                    stack.push(b.clone());
                }
            }
        }
        seen
    };
    let reachable: BTreeMap<String, BTreeSet<String>> =
        nodes.iter().map(|n| (n.clone(), reach(n))).collect();
    let mut found: Vec<BTreeSet<String>> = Vec::new();
    for n in &nodes {
        let component: BTreeSet<String> = nodes
            .iter()
            .filter(|m| reachable[n].contains(*m) && reachable[*m].contains(n))
            .cloned()
            .collect();
        if component.len() > 1 && !found.contains(&component) {
            found.push(component);
        }
    }
    found
}

/// The verdict on a set of edges: the problems found, empty when the layering holds.
fn problems(layers: &[String], edges: &BTreeMap<(String, String), (usize, String)>) -> Vec<String> {
    let rank = |m: &str| layers.iter().position(|l| l == m).unwrap();
    let allowed = |from: &str, to: &str| {
        PHASE_2_UPWARD_EDGES
            .iter()
            .any(|&(f, t, _)| f == from && t == to)
    };
    let mut problems = Vec::new();
    for ((from, to), (count, first)) in edges {
        if rank(to) > rank(from) && !allowed(from, to) {
            problems.push(format!(
                "upward edge {from} -> {to} ({count} reference(s), first at {first}): {to} is \
                 declared above {from} in src/lib.rs"
            ));
        }
    }
    let all: BTreeSet<(String, String)> = edges.keys().cloned().collect();
    for cycle in cycles(&all) {
        let documented = all
            .iter()
            .any(|(a, b)| cycle.contains(a) && cycle.contains(b) && allowed(a, b));
        if !documented {
            problems.push(format!("cycle between {cycle:?}"));
        }
    }
    problems
}

#[test]
fn imports_point_down_the_declared_layers() {
    let layers = declared_layers();
    println!("layers, bottom first (src/lib.rs): {}", layers.join(" < "));
    assert!(
        layers.len() >= 10,
        "src/lib.rs declares too few modules: {layers:?}"
    );
    for (from, to, why) in PHASE_2_UPWARD_EDGES {
        assert!(
            PHASE_2_MODULES.contains(from),
            "the allow-list may only hold phase-2 modules: {from} -> {to} ({why})"
        );
    }
    let edges = edges(&references(&layers));
    println!("edges between top-level modules (count, first reference):");
    for ((from, to), (count, first)) in &edges {
        println!("  {from:>9} -> {to:<9} {count:>4}  {first}");
    }
    let problems = problems(&layers, &edges);
    assert!(
        problems.is_empty(),
        "layering broken:\n  {}",
        problems.join("\n  ")
    );
}

#[test]
fn the_checker_finds_what_it_must() {
    let source = r#"
        //! crate::selftest in a doc comment is not a reference
        use crate::{hw::regio, mm::{phys, PhysAddr}};
        use super::super::pci::Bdf; /* crate::startup in a comment */
        const S: &str = "crate::startup"; const R: &str = r"crate::startup";
        fn f<'a>(x: &'a u8) -> char { crate::log!(Notice, "X", "y"); 'c' }
        mod tests { use super::super::super::platform::fault; }
        use super::sibling;
    "#;
    let tokens = lex(source);
    let words: Vec<&str> = tokens
        .iter()
        .filter_map(|(t, _)| match t {
            Tok::Ident(w) => Some(w.as_str()),
            _ => None,
        })
        .collect();
    assert!(!words.contains(&"startup") && !words.contains(&"selftest"));
    assert!(words.contains(&"a"), "a lifetime's name is an identifier");
    let k = tokens.iter().position(|(t, _)| *t == Tok::Open).unwrap();
    let heads: Vec<String> = group_heads(&tokens, k)
        .into_iter()
        .map(|(h, _)| h)
        .collect();
    assert_eq!(heads, ["hw", "mm"]);
    // The layers as declared today, and one upward edge added to them: it must be found.
    let layers = declared_layers();
    let mut edges = edges(&references(&layers));
    assert!(problems(&layers, &edges).is_empty());
    edges.insert(("pci".into(), "startup".into()), (1, "test".into()));
    let found = problems(&layers, &edges);
    assert!(
        found
            .iter()
            .any(|p| p.contains("upward edge pci -> startup")),
        "{found:?}"
    );
    // And a cycle, even between modules that are not otherwise ordered wrongly.
    let mut cyclic = BTreeSet::new();
    cyclic.insert(("a".to_string(), "b".to_string()));
    cyclic.insert(("b".to_string(), "a".to_string()));
    cyclic.insert(("b".to_string(), "c".to_string()));
    assert_eq!(cycles(&cyclic).len(), 1);
}

#[test]
fn unsafe_is_allowed_only_where_declared() {
    let src = src_dir();
    let lib = fs::read_to_string(src.join("lib.rs")).unwrap();
    assert!(
        lex(&lib).windows(6).any(|w| {
            w[0].0 == Tok::Bang
                && w[2].0 == Tok::Ident("deny".into())
                && w[4].0 == Tok::Ident("unsafe_code".into())
        }),
        "src/lib.rs must deny unsafe_code crate-wide"
    );
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    for path in rust_files(&src) {
        let tokens = lex(&fs::read_to_string(&path).unwrap());
        let allows = tokens
            .windows(3)
            .filter(|w| {
                w[0].0 == Tok::Ident("allow".into()) && w[2].0 == Tok::Ident("unsafe_code".into())
            })
            .count();
        if allows > 0 {
            let name = format!("src/{}", path.strip_prefix(&src).unwrap().display());
            seen.insert(name, allows);
        }
    }
    let expected: BTreeMap<String, usize> = UNSAFE_ALLOWED
        .iter()
        .map(|&(f, n)| (f.to_string(), n))
        .collect();
    assert_eq!(
        seen, expected,
        "allow(unsafe_code) outside the declared places"
    );
}
