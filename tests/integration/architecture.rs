//! The module graph of `src/` has no cycles: every `crate::MODULE` path outside comments (in
//! `use` lines and in code) is an edge from the top-level module of the file it is in (`src/x.rs`
//! and `src/x/**` are module `x`) to `MODULE`. A cycle between top-level modules fails the test,
//! which prints it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Cycles allowed to exist: none. (The suite's first version listed `cli` ↔ `commands` and
/// `render` ↔ `markdown`; both are gone.) A listed cycle that no longer exists fails the test
/// too, so the list cannot go stale if one is ever added back while being removed.
const KNOWN_CYCLES: &[&[&str]] = &[];

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("listing src/") {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The top-level modules a piece of code names through `crate::`: `crate::a::b`, and each
/// name of a `crate::{a, b::c}` group.
fn crate_refs(code: &str) -> BTreeSet<String> {
    let ident = |s: &str| -> String {
        s.chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect()
    };
    let mut refs = BTreeSet::new();
    let mut rest = code;
    while let Some(at) = rest.find("crate::") {
        let before = rest[..at].chars().next_back();
        rest = &rest[at + "crate::".len()..];
        // `$crate::` and `idprune_crate::` are not this crate's paths.
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '$') {
            continue;
        }
        if let Some(group) = rest.strip_prefix('{') {
            let end = group.find('}').unwrap_or(group.len());
            for part in group[..end].split(',') {
                let name = ident(part.trim());
                if !name.is_empty() {
                    refs.insert(name);
                }
            }
        } else {
            let name = ident(rest);
            if !name.is_empty() {
                refs.insert(name);
            }
        }
    }
    refs
}

/// Top-level module → the top-level modules it names.
fn module_graph() -> BTreeMap<String, BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in files {
        let relative = file.strip_prefix(&src).expect("under src/");
        let first = relative
            .components()
            .next()
            .expect("a path component")
            .as_os_str()
            .to_string_lossy()
            .into_owned();
        let module = first.strip_suffix(".rs").unwrap_or(&first).to_owned();
        if module == "lib" || module == "main" {
            continue;
        }
        let text = std::fs::read_to_string(&file).expect("reading a source file");
        let code: String = text
            .lines()
            .map(|line| match line.find("//") {
                Some(at) => &line[..at],
                None => line,
            })
            .collect::<Vec<_>>()
            .join("\n");
        let edges = graph.entry(module.clone()).or_default();
        for target in crate_refs(&code) {
            if target != module {
                edges.insert(target);
            }
        }
    }
    graph
}

/// The strongly connected components with more than one module (Tarjan's algorithm).
fn cycles(graph: &BTreeMap<String, BTreeSet<String>>) -> Vec<BTreeSet<String>> {
    struct Tarjan<'a> {
        graph: &'a BTreeMap<String, BTreeSet<String>>,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        on_stack: BTreeSet<&'a str>,
        found: Vec<BTreeSet<String>>,
    }
    impl<'a> Tarjan<'a> {
        fn visit(&mut self, v: &'a str) {
            let n = self.index.len();
            self.index.insert(v, n);
            self.low.insert(v, n);
            self.stack.push(v);
            self.on_stack.insert(v);
            let graph = self.graph;
            for w in graph.get(v).into_iter().flatten() {
                let w = w.as_str();
                if !self.index.contains_key(w) {
                    self.visit(w);
                    let low = self.low[v].min(self.low[w]);
                    self.low.insert(v, low);
                } else if self.on_stack.contains(w) {
                    let low = self.low[v].min(self.index[w]);
                    self.low.insert(v, low);
                }
            }
            if self.low[v] == self.index[v] {
                let mut component = BTreeSet::new();
                while let Some(w) = self.stack.pop() {
                    self.on_stack.remove(w);
                    component.insert(w.to_owned());
                    if w == v {
                        break;
                    }
                }
                if component.len() > 1 {
                    self.found.push(component);
                }
            }
        }
    }
    let mut t = Tarjan {
        graph,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        found: Vec::new(),
    };
    for v in graph.keys() {
        if !t.index.contains_key(v.as_str()) {
            t.visit(v);
        }
    }
    t.found
}

/// One cycle through `component`, as `a → b → a`, for the failure message.
fn describe(graph: &BTreeMap<String, BTreeSet<String>>, component: &BTreeSet<String>) -> String {
    let start = component.first().expect("a non-empty component");
    // Breadth-first from `start` back to `start`, inside the component.
    let mut came_from: BTreeMap<&str, &str> = BTreeMap::new();
    let mut queue = std::collections::VecDeque::from([start.as_str()]);
    while let Some(v) = queue.pop_front() {
        for w in graph.get(v).into_iter().flatten() {
            if !component.contains(w) {
                continue;
            }
            if w == start {
                let mut path = vec![start.as_str(), v];
                let mut at = v;
                while let Some(prev) = came_from.get(at) {
                    path.push(prev);
                    at = prev;
                }
                path.reverse();
                return path.join(" → ");
            }
            if !came_from.contains_key(w.as_str()) {
                came_from.insert(w, v);
                queue.push_back(w);
            }
        }
    }
    format!("{component:?}")
}

#[test]
fn no_import_cycle_among_the_top_level_modules_of_src() {
    let graph = module_graph();
    assert!(
        graph.len() > 10 && graph.contains_key("scratch") && graph["scratch"].contains("plan"),
        "the source scan found too little: {graph:?}"
    );
    let known: Vec<BTreeSet<String>> = KNOWN_CYCLES
        .iter()
        .map(|c| c.iter().map(|m| (*m).to_owned()).collect())
        .collect();
    let found = cycles(&graph);
    let new: Vec<String> = found
        .iter()
        .filter(|c| !known.contains(c))
        .map(|c| format!("{} (modules {c:?})", describe(&graph, c)))
        .collect();
    assert!(new.is_empty(), "import cycles among src/ modules: {new:#?}");
    let gone: Vec<&BTreeSet<String>> = known.iter().filter(|c| !found.contains(c)).collect();
    assert!(
        gone.is_empty(),
        "these KNOWN_CYCLES no longer exist; remove them from the list: {gone:?}"
    );
}

#[test]
fn the_scanner_reads_paths_and_groups() {
    let refs = crate_refs(
        "use crate::a::B;\nuse crate::{b, c::d};\nlet x = crate::e::f();\n$crate::g; my_crate::h;",
    );
    let expected: BTreeSet<String> = ["a", "b", "c", "e"].map(String::from).into();
    assert_eq!(refs, expected);
    let graph: BTreeMap<String, BTreeSet<String>> = [
        ("x", vec!["y"]),
        ("y", vec!["z"]),
        ("z", vec!["x"]),
        ("w", vec!["x"]),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.into_iter().map(String::from).collect()))
    .collect();
    let found = cycles(&graph);
    assert_eq!(found.len(), 1);
    assert_eq!(describe(&graph, &found[0]), "x → y → z → x");
}
