//! The core's module graph has no cycles (issue 14): each module names, through `crate::`,
//! only modules below it, so each concept can be read without the ones that use it.

use std::collections::{BTreeMap, BTreeSet};

fn graph() -> BTreeMap<String, BTreeSet<String>> {
    let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let modules: BTreeSet<String> = std::fs::read_dir(&src)
        .expect("src")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter_map(|n| n.strip_suffix(".rs").map(str::to_string))
        .filter(|n| n != "lib")
        .collect();
    // Names the crate root re-exports (`pub use m::{A, B};`), so `crate::A` counts as `m`.
    let lib = std::fs::read_to_string(src.join("lib.rs")).expect("lib.rs");
    let mut reexports: BTreeMap<String, String> = BTreeMap::new();
    for stmt in lib.split(';') {
        let Some(rest) = stmt
            .trim()
            .rsplit("pub use ")
            .next()
            .filter(|_| stmt.contains("pub use "))
        else {
            continue;
        };
        let Some((module, names)) = rest.split_once("::") else {
            continue;
        };
        let names = names.trim().trim_start_matches('{').trim_end_matches('}');
        for n in names.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            reexports.insert(n.to_string(), module.trim().to_string());
        }
    }
    assert!(
        reexports.get("Ticket").map(String::as_str) == Some("ticket"),
        "read the re-exports: {reexports:?}"
    );
    let mut g = BTreeMap::new();
    for m in &modules {
        let text = std::fs::read_to_string(src.join(format!("{m}.rs"))).expect("read");
        assert!(
            !text.contains("crate::{"),
            "{m}.rs: name modules one path at a time (`use crate::m::Item`), so this scan sees them"
        );
        let mut uses = BTreeSet::new();
        for (i, _) in text.match_indices("crate::") {
            let name: String = text[i + 7..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            let module = match reexports.get(&name) {
                Some(owner) => owner.clone(),
                None => name,
            };
            if modules.contains(&module) && module != *m {
                uses.insert(module);
            }
        }
        g.insert(m.clone(), uses);
    }
    g
}

/// A cycle through `m`, if any (depth-first, with the path on the stack).
fn cycle(
    g: &BTreeMap<String, BTreeSet<String>>,
    m: &str,
    path: &mut Vec<String>,
    done: &mut BTreeSet<String>,
) -> Option<Vec<String>> {
    if let Some(i) = path.iter().position(|p| p == m) {
        let mut c = path[i..].to_vec();
        c.push(m.to_string());
        return Some(c);
    }
    if done.contains(m) {
        return None;
    }
    path.push(m.to_string());
    for n in &g[m] {
        if let Some(c) = cycle(g, n, path, done) {
            return Some(c);
        }
    }
    path.pop();
    done.insert(m.to_string());
    None
}

#[test]
fn the_module_graph_has_no_cycles() {
    let g = graph();
    assert!(g.len() > 10, "read the modules: {g:?}");
    assert!(
        g["verifier"].contains("compiled"),
        "the scan sees imports: {g:?}"
    );
    let mut done = BTreeSet::new();
    for m in g.keys() {
        if let Some(c) = cycle(&g, m, &mut Vec::new(), &mut done) {
            panic!("module cycle: {}", c.join(" -> "));
        }
    }
}
