//! The module rules of docs/architecture.md, read from the sources: a module may use only the
//! modules its row of the table names. A new `use crate::x` that crosses a layer fails here
//! with the file and the module it reached.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Each module below the HTTP and assembly layer (`api`, `web`, `server`, `cli`, `checks`,
/// which may use everything) and the modules of the crate it may use. Listed by layer, low to
/// high; nothing here may use `api`, `web`, `server`, `cli` or `checks`.
const MAY_USE: &[(&str, &[&str])] = &[
    // 0: types.
    ("domain", &[]),
    ("entities", &["domain"]),
    // 1: infrastructure.
    ("config", &["domain"]),
    ("tls", &[]),
    ("outbound", &["config", "tls"]),
    ("db", &["config", "domain", "entities"]),
    ("secrets", &["config", "db", "domain"]),
    ("privacy", &["config", "secrets"]),
    ("audit", &["db", "domain", "entities"]),
    ("links", &["config", "db", "domain", "secrets"]),
    ("i18n", &[]),
    // 2: the outbox is a port: no capability.
    (
        "outbox",
        &[
            "audit", "config", "db", "domain", "entities", "outbound", "privacy", "secrets", "tls",
        ],
    ),
    // 2: districts and rosters.
    (
        "tenants",
        &[
            "audit", "db", "domain", "entities", "i18n", "links", "outbox",
        ],
    ),
    ("roster", &["db", "domain", "entities"]),
    // 3: capabilities.
    ("contacts", &["audit", "db", "domain", "entities", "roster"]),
    (
        "invites",
        &[
            "audit", "contacts", "db", "domain", "entities", "i18n", "links", "outbox", "tenants",
        ],
    ),
    (
        "chats",
        &[
            "audit", "contacts", "db", "domain", "entities", "invites", "outbox", "roster",
            "tenants",
        ],
    ),
    (
        "sync",
        &[
            "audit", "chats", "config", "db", "domain", "entities", "outbound", "privacy",
            "secrets", "tenants", "tls",
        ],
    ),
    (
        "approvals",
        &[
            "audit", "chats", "db", "domain", "entities", "outbox", "privacy", "sync", "tenants",
        ],
    ),
    (
        "assignments",
        &["audit", "config", "db", "domain", "entities", "sync"],
    ),
    (
        "digest",
        &[
            "audit", "config", "contacts", "db", "domain", "entities", "i18n", "links", "outbox",
            "tenants",
        ],
    ),
    (
        "guardians",
        &[
            "audit", "config", "contacts", "db", "digest", "domain", "entities", "i18n", "outbox",
            "secrets",
        ],
    ),
    (
        "restrictions",
        &["audit", "chats", "db", "domain", "entities"],
    ),
    // 4: the access policy decides over the capabilities' scopes.
    (
        "auth",
        &["chats", "config", "contacts", "db", "domain", "roster"],
    ),
];

fn rules() -> BTreeMap<&'static str, BTreeSet<&'static str>> {
    MAY_USE
        .iter()
        .map(|(module, allowed)| (*module, allowed.iter().copied().collect()))
        .collect()
}

/// Every `.rs` file of a module (`src/x.rs` or `src/x/**.rs`).
fn files(src: &Path, module: &str) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let single = src.join(format!("{module}.rs"));
    if single.exists() {
        out.push(single);
    }
    let mut dirs = vec![src.join(module)];
    while let Some(dir) = dirs.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }
    out
}

/// The top-level modules a source file names through `crate::…`, including inside
/// `use crate::{a, b::c}` groups and `$crate::` macro paths.
fn uses(source: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    let mut rest = source;
    while let Some(at) = rest.find("crate::") {
        let after = &rest[at + "crate::".len()..];
        if let Some(group) = after.strip_prefix('{') {
            let end = matching_brace(group);
            for item in top_level_items(&group[..end]) {
                found.insert(item);
            }
        } else {
            let name: String = after
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            if !name.is_empty() {
                found.insert(name);
            }
        }
        rest = after;
    }
    found
}

fn matching_brace(text: &str) -> usize {
    let mut depth = 0;
    for (i, c) in text.char_indices() {
        match c {
            '{' => depth += 1,
            '}' if depth == 0 => return i,
            '}' => depth -= 1,
            _ => {}
        }
    }
    text.len()
}

/// `a, b::{c, d}, e::f` → `a`, `b`, `e`.
fn top_level_items(group: &str) -> Vec<String> {
    let mut items = Vec::new();
    let mut depth = 0;
    let mut current = String::new();
    for c in group.chars() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => items.push(std::mem::take(&mut current)),
            _ if depth == 0 => current.push(c),
            _ => {}
        }
    }
    items.push(current);
    items
        .iter()
        .filter_map(|item| {
            let name: String = item
                .trim()
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            (!name.is_empty()).then_some(name)
        })
        .collect()
}

/// Macros exported at the crate root (`crate::visible_link!`) belong to the module that
/// defines them.
const ROOT_MACROS: &[(&str, &str)] = &[
    ("visible_link", "domain"),
    ("visible_student", "domain"),
    ("outbox_kind", "entities"),
];

/// The HTTP and assembly modules, which may use every other.
const TOP: &[&str] = &["api", "web", "server", "cli", "checks"];

#[test]
fn modules_use_only_what_docs_architecture_allows() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let rules = rules();
    let mut broken = Vec::new();
    for (module, allowed) in &rules {
        for file in files(&src, module) {
            let source = std::fs::read_to_string(&file).expect("read source");
            // Doc links name modules without using them.
            let source: String = source
                .lines()
                .filter(|line| !line.trim_start().starts_with("//"))
                .collect::<Vec<_>>()
                .join("\n");
            for used in uses(&source) {
                let used = ROOT_MACROS
                    .iter()
                    .find(|(name, _)| *name == used)
                    .map(|(_, owner)| owner.to_string())
                    .unwrap_or(used);
                if used == *module || allowed.contains(used.as_str()) {
                    continue;
                }
                broken.push(format!(
                    "{} uses crate::{used} ({module} may use: {})",
                    file.strip_prefix(&src).unwrap_or(&file).display(),
                    allowed.iter().copied().collect::<Vec<_>>().join(", ")
                ));
            }
        }
    }
    assert!(
        broken.is_empty(),
        "module rules broken (docs/architecture.md):\n{}",
        broken.join("\n")
    );
}

#[test]
fn every_module_has_rules() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let lib = std::fs::read_to_string(src.join("lib.rs")).expect("lib.rs");
    let rules = rules();
    for line in lib.lines() {
        if let Some(module) = line
            .strip_prefix("pub mod ")
            .and_then(|m| m.strip_suffix(';'))
        {
            assert!(
                rules.contains_key(module) || TOP.contains(&module),
                "module {module} has no row in MAY_USE (tests/it/architecture.rs) nor in docs/architecture.md"
            );
        }
    }
}

#[test]
fn the_reader_sees_groups_and_paths() {
    let found = uses("use crate::{db, domain::{A, B}, x::y};\nlet a = crate::outbox::f();");
    let names: Vec<&str> = found.iter().map(String::as_str).collect();
    assert_eq!(names, ["db", "domain", "outbox", "x"]);
}
