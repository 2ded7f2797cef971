//! The layering of `src/`, read from the source as ARCHITECTURE.md states it: the top-level
//! modules (those `lib.rs` declares outside tests) form layers whose imports point one way, the
//! import graph has no cycle, nothing outside `http` reaches `http`, ARCHITECTURE.md names every
//! top-level module, and no source file holds more than 600 lines before its tests.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The layers, bottom first; a module may import modules of its own layer or below (and the
/// graph must stay acyclic inside a layer too). `lib.rs` and `main.rs` wire everything.
const LAYERS: &[&[&str]] = &[
    // the vocabulary and leaves: no IO beyond their own file, nothing of spur above them
    &[
        "domain",
        "config",
        "clock",
        "secrets",
        "rules",
        "metrics",
        "rate_limit",
        "keyed_lock",
        "memory",
        "trace",
        "events",
    ],
    // pure rules, the store, the scheduler's handle, the outbound policy, the job fence
    &["ci_config", "scheduler", "storage", "outbound", "sandbox", "plan_cli"],
    // reading identities and repositories
    &["auth", "git"],
    // the shared context every service receives
    &["context"],
    // services, each the one owner of its changes
    &[
        "accounts",
        "members",
        "projects",
        "trigger_tokens",
        "application_settings",
        "protected_refs",
        "project_variables",
        "mirror",
        "artifacts",
        "test_reports",
        "environments",
        "job_env",
        "backup",
        "hooks",
        "badges",
        "idempotency",
    ],
    // the pipeline wing: creating, triggering, pushing, running
    &[
        "pipeline_create",
        "pipeline_trigger",
        "bridge",
        "project_create",
        "push",
        "refs",
        "releases",
        "schedules",
        "commit_statuses",
        "engine",
        "executor",
        "runners",
        "retention",
    ],
    // assembling the server
    &["app"],
    // the only module that knows HTTP
    &["http"],
];

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// The modules `lib.rs` declares, without the test-only ones.
fn top_level_modules() -> Vec<String> {
    let lib = std::fs::read_to_string(src().join("lib.rs")).unwrap();
    let mut out = Vec::new();
    let mut test_only = false;
    for line in lib.lines() {
        let line = line.trim();
        if line.starts_with("#[cfg(test)]") {
            test_only = true;
            continue;
        }
        let decl = ["pub mod ", "pub(crate) mod ", "mod "]
            .iter()
            .find_map(|prefix| line.strip_prefix(prefix));
        if let Some(name) = decl.and_then(|d| d.strip_suffix(';'))
            && !test_only
        {
            out.push(name.to_string());
        }
        test_only = false;
    }
    out
}

/// Every `.rs` file of a top-level module.
fn files_of(module: &str) -> Vec<PathBuf> {
    let file = src().join(format!("{module}.rs"));
    if file.exists() {
        return vec![file];
    }
    rust_files(&src().join(module))
}

/// Every `.rs` file below `dir`, sorted.
fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut dirs = vec![dir.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

/// A file's code without its tests (`#[cfg(test)] mod x { ... }` blocks) and comments; the
/// names of test-only submodules it declares (`#[cfg(test)] mod x;`) are returned apart.
fn code_of(text: &str) -> (String, Vec<String>) {
    let mut code = String::new();
    let mut test_files = Vec::new();
    let mut lines = text.lines().peekable();
    while let Some(line) = lines.next() {
        if line.starts_with("#[cfg(test)]") {
            match lines.peek() {
                Some(next) if next.trim_start().starts_with("mod ") && next.trim_end().ends_with(';') => {
                    let name = next
                        .trim()
                        .trim_start_matches("pub ")
                        .trim_start_matches("mod ")
                        .trim_end_matches(';');
                    test_files.push(name.to_string());
                    lines.next();
                }
                Some(next) if next.trim_start().starts_with("mod ") => {
                    // Skip to the module's closing brace at the first column.
                    for l in lines.by_ref() {
                        if l == "}" {
                            break;
                        }
                    }
                }
                _ => {}
            }
            continue;
        }
        let trimmed = line.trim_start();
        if trimmed.starts_with("//") {
            continue;
        }
        let without_comment = match line.find(" // ") {
            Some(i) => &line[..i],
            None => line,
        };
        code.push_str(without_comment);
        code.push('\n');
    }
    (code, test_files)
}

/// The top-level modules `code` names through `crate::x` or `crate::{x, y::z}`.
fn references(code: &str, modules: &BTreeSet<String>) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut rest = code;
    while let Some(i) = rest.find("crate::") {
        rest = &rest[i + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            // The names at depth one of the braced group.
            let (mut depth, mut start, mut names) = (1, 0, Vec::new());
            for (k, c) in group.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 1 => {
                        names.push(&group[start..k]);
                        break;
                    }
                    '}' => depth -= 1,
                    ',' if depth == 1 => {
                        names.push(&group[start..k]);
                        start = k + 1;
                    }
                    _ => {}
                }
            }
            for name in names {
                let head: String = name
                    .trim()
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                if modules.contains(&head) {
                    out.insert(head);
                }
            }
        } else {
            let head: String = rest.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
            if modules.contains(&head) {
                out.insert(head);
            }
        }
    }
    out
}

/// module → the top-level modules it imports.
fn import_graph() -> BTreeMap<String, BTreeSet<String>> {
    let modules: BTreeSet<String> = top_level_modules().into_iter().collect();
    let mut graph = BTreeMap::new();
    for module in &modules {
        let mut edges = BTreeSet::new();
        let files = files_of(module);
        let mut test_files = BTreeSet::new();
        for file in &files {
            let (_, tests) = code_of(&std::fs::read_to_string(file).unwrap());
            test_files.extend(tests);
        }
        for file in &files {
            let stem = file.file_stem().unwrap().to_string_lossy().to_string();
            if test_files.contains(&stem) {
                continue;
            }
            let (code, _) = code_of(&std::fs::read_to_string(file).unwrap());
            edges.extend(references(&code, &modules));
        }
        edges.remove(module);
        graph.insert(module.clone(), edges);
    }
    graph
}

fn layer_of(module: &str) -> Option<usize> {
    LAYERS.iter().position(|layer| layer.contains(&module))
}

#[test]
fn every_module_has_a_layer_and_imports_point_down() {
    let graph = import_graph();
    assert!(graph.len() >= 40, "lib.rs was not read: {:?}", graph.keys());
    assert!(
        graph["http"].contains("context") && graph["engine"].contains("bridge"),
        "imports were not read"
    );
    let mut wrong = Vec::new();
    for (module, edges) in &graph {
        let Some(own) = layer_of(module) else {
            wrong.push(format!("{module} is in no layer: add it to LAYERS and ARCHITECTURE.md"));
            continue;
        };
        for target in edges {
            match layer_of(target) {
                Some(l) if l > own => {
                    wrong.push(format!("{module} (layer {own}) imports {target} (layer {l}), above it"))
                }
                _ => {}
            }
        }
    }
    assert!(wrong.is_empty(), "layering broken:\n{}", wrong.join("\n"));
}

#[test]
fn the_import_graph_has_no_cycle_and_only_http_knows_http() {
    let graph = import_graph();
    for (module, edges) in &graph {
        assert!(
            module == "http" || !edges.contains("http"),
            "{module} reaches into http"
        );
    }
    if let Some(cycle) = find_cycle(&graph) {
        panic!("import cycle: {}", cycle.join(" -> "));
    }
}

/// A cycle of the graph, printed whole, if it has one (depth-first search for a back edge).
fn find_cycle(graph: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(i) = path.iter().position(|p| p == node) {
            let mut cycle = path[i..].to_vec();
            cycle.push(node.to_string());
            return Some(cycle);
        }
        if done.contains(node) {
            return None;
        }
        path.push(node.to_string());
        for next in graph.get(node).into_iter().flatten() {
            if let Some(cycle) = visit(next, graph, path, done) {
                return Some(cycle);
            }
        }
        path.pop();
        done.insert(node.to_string());
        None
    }
    let mut done = BTreeSet::new();
    graph.keys().find_map(|m| visit(m, graph, &mut Vec::new(), &mut done))
}

#[test]
fn the_reader_finds_imports_and_a_cycle_would_fail() {
    let modules: BTreeSet<String> = ["a", "b", "c"].iter().map(|s| s.to_string()).collect();
    let code = "use crate::a::X;\nuse crate::{b::{Y, Z}, c};\n";
    assert_eq!(references(code, &modules), modules);
    let (code, tests) =
        code_of("use crate::a;\n#[cfg(test)]\nmod tests {\n    use crate::b;\n}\n#[cfg(test)]\nmod cases;\n");
    assert_eq!(references(&code, &modules), ["a".to_string()].into_iter().collect());
    assert_eq!(tests, vec!["cases".to_string()]);
    let edge = |a: &str, b: &str| (a.to_string(), [b.to_string()].into_iter().collect::<BTreeSet<_>>());
    let cyclic: BTreeMap<_, _> = [edge("a", "b"), edge("b", "c"), edge("c", "a")].into_iter().collect();
    assert_eq!(find_cycle(&cyclic).map(|c| c.len()), Some(4));
    let acyclic: BTreeMap<_, _> = [edge("a", "b"), edge("b", "c")].into_iter().collect();
    assert_eq!(find_cycle(&acyclic), None);
}

#[test]
fn architecture_md_names_every_top_level_module() {
    let map = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("ARCHITECTURE.md")).unwrap();
    let missing: Vec<String> = top_level_modules()
        .into_iter()
        .filter(|m| !map.contains(&format!("`{m}`")) && !map.contains(&format!("src/{m}")))
        .collect();
    assert!(missing.is_empty(), "ARCHITECTURE.md does not name: {missing:?}");
}

#[test]
fn no_source_file_is_over_600_lines_before_its_tests() {
    let mut long = Vec::new();
    for path in rust_files(&src()) {
        let text = std::fs::read_to_string(&path).unwrap();
        let before_tests = text.lines().take_while(|l| !l.starts_with("#[cfg(test)]")).count();
        if before_tests > 600 {
            long.push(format!("{} ({before_tests} lines)", path.display()));
        }
    }
    assert!(long.is_empty(), "split these by concept: {long:?}");
}
