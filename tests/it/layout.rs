//! The code's shape, checked on its sources: no import cycles between modules (no module
//! uses, directly or through others, a module that uses it) and no source file over 600
//! lines, in every crate of the workspace. Import cycles crept back twice after they were
//! removed (the transports, the TLS listener and the sidecar images); this keeps them out.
//!
//! A module's uses are the `crate::…` and `super::…` paths its file names (tests aside),
//! each taken to the deepest module it reaches. A use between two modules neither of which
//! contains the other counts as a use between their ancestors just below the modules'
//! common ancestor (so `transport::grpc → client` is `transport → client`): the cycles
//! looked for are between siblings at every level.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The crates' source roots, relative to the workspace.
const ROOTS: [&str; 5] = [
    "src",
    "crates/report/src",
    "impls/runtime/src",
    "impls/service-unit/src",
    "impls/state-unit/src",
];

const MAX_LINES: usize = 600;

type Module = Vec<String>;

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// `a/b/mod.rs` and `a/b.rs` are module `a::b`; `lib.rs` and `main.rs` the crate root.
fn module_of(root: &Path, file: &Path) -> Module {
    let relative = file.strip_prefix(root).unwrap().with_extension("");
    let mut parts: Module = relative
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    if matches!(
        parts.last().map(String::as_str),
        Some("mod" | "lib" | "main")
    ) {
        parts.pop();
    }
    parts
}

/// The source without its test module and comments.
fn code_of(text: &str) -> String {
    let text = match text.find("#[cfg(test)]\nmod tests") {
        Some(at) => &text[..at],
        None => text,
    };
    text.lines()
        .map(|line| line.split("//").next().unwrap_or(""))
        .collect::<Vec<_>>()
        .join("\n")
}

fn is_ident(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// Every path `crate::a::b` or `super::x` in `code` (with the first name of each item of a
/// `{…}` group after it), resolved from `module` to its segments.
fn paths(code: &str, module: &Module) -> Vec<Module> {
    let mut found = Vec::new();
    let bytes = code.as_bytes();
    for start in ["crate::", "super::"] {
        let mut from = 0;
        while let Some(at) = code[from..].find(start).map(|i| i + from) {
            from = at + start.len();
            if at > 0 && is_ident(bytes[at - 1] as char) {
                continue;
            }
            let mut base: Module = if start == "crate::" {
                Vec::new()
            } else {
                module[..module.len().saturating_sub(1)].to_vec()
            };
            let rest = &code[at + start.len()..];
            let end = rest
                .find(|c: char| !(is_ident(c) || c == ':'))
                .unwrap_or(rest.len());
            for segment in rest[..end].split("::").filter(|s| !s.is_empty()) {
                if segment == "super" {
                    base.pop();
                } else {
                    base.push(segment.to_string());
                }
            }
            found.push(base.clone());
            if rest[end..].starts_with('{') {
                let group = &rest[end + 1..rest[end..].find('}').map_or(end + 1, |i| end + i)];
                for item in group.split(',') {
                    let first = item.trim().split("::").next().unwrap_or("").trim();
                    if !first.is_empty() && first != "self" && first.chars().all(is_ident) {
                        let mut path = base.clone();
                        path.push(first.to_string());
                        found.push(path);
                    }
                }
            }
        }
    }
    found
}

/// The sibling-level uses of one crate: module → modules it uses.
fn uses(root: &Path) -> BTreeMap<Module, BTreeSet<Module>> {
    let mut files = Vec::new();
    rust_files(root, &mut files);
    let modules: BTreeMap<Module, PathBuf> = files
        .iter()
        .map(|f| (module_of(root, f), f.clone()))
        .collect();
    let mut edges: BTreeMap<Module, BTreeSet<Module>> = BTreeMap::new();
    for (module, file) in &modules {
        let code = code_of(&std::fs::read_to_string(file).unwrap());
        for path in paths(&code, module) {
            let Some(used) = (0..=path.len())
                .rev()
                .map(|k| path[..k].to_vec())
                .find(|m| modules.contains_key(m))
            else {
                continue;
            };
            if used.starts_with(module) || module.starts_with(&used) {
                continue;
            }
            let common = module.iter().zip(&used).take_while(|(a, b)| a == b).count();
            edges
                .entry(module[..=common].to_vec())
                .or_default()
                .insert(used[..=common].to_vec());
        }
    }
    edges
}

/// The cycles of `edges`, each as its modules (Tarjan's strongly connected components).
fn cycles(edges: &BTreeMap<Module, BTreeSet<Module>>) -> Vec<Vec<String>> {
    struct Walk<'a> {
        edges: &'a BTreeMap<Module, BTreeSet<Module>>,
        index: BTreeMap<&'a Module, usize>,
        low: BTreeMap<&'a Module, usize>,
        stack: Vec<&'a Module>,
        found: Vec<Vec<String>>,
    }
    fn visit<'a>(w: &mut Walk<'a>, v: &'a Module) {
        let n = w.index.len();
        w.index.insert(v, n);
        w.low.insert(v, n);
        w.stack.push(v);
        for u in w.edges.get(v).into_iter().flatten() {
            if !w.index.contains_key(u) {
                visit(w, u);
                let low = w.low[v].min(w.low[u]);
                w.low.insert(v, low);
            } else if w.stack.contains(&u) {
                let low = w.low[v].min(w.index[u]);
                w.low.insert(v, low);
            }
        }
        if w.low[v] == w.index[v] {
            let mut component = Vec::new();
            while let Some(u) = w.stack.pop() {
                component.push(u.join("::"));
                if u == v {
                    break;
                }
            }
            if component.len() > 1 {
                w.found.push(component);
            }
        }
    }
    let mut walk = Walk {
        edges,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        found: Vec::new(),
    };
    for v in edges.keys() {
        if !walk.index.contains_key(v) {
            visit(&mut walk, v);
        }
    }
    walk.found
}

fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn no_module_uses_a_module_that_uses_it() {
    for root in ROOTS {
        let found = cycles(&uses(&workspace().join(root)));
        assert!(found.is_empty(), "import cycles in {root}: {found:?}");
    }
}

#[test]
fn the_cycle_check_finds_a_cycle_through_a_submodule() {
    let mut edges = BTreeMap::new();
    let module = |m: &str| m.split("::").map(String::from).collect::<Module>();
    edges.insert(module("client"), BTreeSet::from([module("model")]));
    edges.insert(module("model"), BTreeSet::from([module("transport")]));
    edges.insert(module("transport"), BTreeSet::from([module("client")]));
    edges.insert(module("host"), BTreeSet::from([module("client")]));
    let found = cycles(&edges);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].len(), 3, "{found:?}");
    // A path into a submodule is a use of the module that holds it.
    let code = "use crate::transport::grpc::{GrpcEndpoint, CALL_PATH};\nlet x = super::super::host::bind();";
    let paths = paths(code, &module("transport::grpc"));
    assert!(paths.contains(&module("transport::grpc::GrpcEndpoint")));
    assert!(paths.contains(&module("host::bind")), "{paths:?}");
}

#[test]
fn no_source_file_is_over_600_lines() {
    let mut long = Vec::new();
    for root in ROOTS {
        let mut files = Vec::new();
        rust_files(&workspace().join(root), &mut files);
        for file in files {
            let lines = std::fs::read_to_string(&file).unwrap().lines().count();
            if lines > MAX_LINES {
                long.push(format!("{} ({lines} lines)", file.display()));
            }
        }
    }
    assert!(long.is_empty(), "over {MAX_LINES} lines: {long:?}");
}

/// The modules `# Layout` in `src/lib.rs` lists, in its order (top first).
fn layout_order(lib: &str) -> Vec<String> {
    lib.lines()
        .filter_map(|line| line.strip_prefix("//! - [`"))
        .filter_map(|rest| rest.split('`').next())
        .map(String::from)
        .collect()
}

/// `# Layout` lists grainbench's modules in import order: each uses only those below it.
#[test]
fn each_module_uses_only_those_listed_below_it_in_the_layout() {
    let root = workspace().join("src");
    let order = layout_order(&std::fs::read_to_string(root.join("lib.rs")).unwrap());
    let position = |m: &Module| order.iter().position(|name| Some(name) == m.first());
    let (mut upward, mut checked) = (Vec::new(), 0);
    for (module, used) in uses(&root) {
        let Some(from) = position(&module).filter(|_| module.len() == 1) else {
            continue;
        };
        for target in used {
            checked += 1;
            match position(&target) {
                Some(to) if to > from => {}
                _ => upward.push(format!("{} → {}", module.join("::"), target.join("::"))),
            }
        }
    }
    assert!(order.len() > 10, "# Layout lists the modules: {order:?}");
    assert!(
        checked > 20,
        "only {checked} uses between listed modules were found"
    );
    assert!(
        upward.is_empty(),
        "uses against # Layout's order: {upward:?}"
    );
}
