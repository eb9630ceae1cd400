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

/// A source file without its comments and without its `#[cfg(test)]` tail: the code the
/// build ships, whose imports the rules are about.
fn shipped_code(text: &str) -> String {
    let text = match text.find("#[cfg(test)]") {
        Some(at) => &text[..at],
        None => text,
    };
    text.lines()
        .map(|line| match line.find("//") {
            Some(at) => &line[..at],
            None => line,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The module path of a file under `src/`: `a.rs` and `a/mod.rs` are `[a]`, `a/b.rs` is
/// `[a, b]`; `lib.rs` and `main.rs` are the root `[]`.
fn module_path(relative: &Path) -> Vec<String> {
    let mut parts: Vec<String> = relative
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    let last = parts.pop().expect("a file name");
    let stem = last.strip_suffix(".rs").unwrap_or(&last).to_owned();
    if stem != "mod" && stem != "lib" && stem != "main" {
        parts.push(stem);
    }
    parts
}

/// Expands a use tree (`a::{b, c::{d, e}}`, `a::*`, `a as b`) into its paths.
fn use_paths(tree: &str) -> Vec<Vec<String>> {
    fn split_top(s: &str) -> Vec<&str> {
        let (mut depth, mut start, mut out) = (0, 0, Vec::new());
        for (i, c) in s.char_indices() {
            match c {
                '{' => depth += 1,
                '}' => depth -= 1,
                ',' if depth == 0 => {
                    out.push(&s[start..i]);
                    start = i + 1;
                }
                _ => {}
            }
        }
        out.push(&s[start..]);
        out
    }
    let tree = tree.trim();
    if tree.is_empty() {
        return Vec::new();
    }
    if let Some(open) = tree.find('{') {
        let close = tree.rfind('}').unwrap_or(tree.len());
        let prefix: Vec<String> = tree[..open]
            .split("::")
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(String::from)
            .collect();
        let mut out = Vec::new();
        for part in split_top(&tree[open + 1..close]) {
            for rest in use_paths(part) {
                let mut path = prefix.clone();
                path.extend(rest.into_iter().filter(|p| p != "self"));
                out.push(path);
            }
        }
        if out.is_empty() {
            out.push(prefix);
        }
        return out;
    }
    let tree = tree.split(" as ").next().unwrap_or(tree);
    vec![
        tree.split("::")
            .map(str::trim)
            .filter(|p| !p.is_empty() && *p != "*")
            .map(String::from)
            .collect(),
    ]
}

/// The paths a file's code names: every `use` tree at the start of a line (with `pub`
/// noted), and every `crate::…`, `super::…` and `self::…` path elsewhere in the code.
fn named_paths(code: &str) -> Vec<(bool, Vec<String>)> {
    let mut out = Vec::new();
    let mut rest_of_code = String::new();
    let mut lines = code.lines();
    while let Some(line) = lines.next() {
        let trimmed = line.trim_start();
        let (public, after) = match trimmed.strip_prefix("pub") {
            Some(after_pub) => {
                let after_vis = match after_pub.strip_prefix('(') {
                    Some(v) => v.split_once(')').map_or("", |(_, r)| r),
                    None => after_pub,
                };
                (true, after_vis.trim_start())
            }
            None => (false, trimmed),
        };
        let Some(tree) = after.strip_prefix("use ") else {
            rest_of_code.push_str(line);
            rest_of_code.push('\n');
            continue;
        };
        let mut stmt = tree.to_owned();
        while !stmt.contains(';') {
            match lines.next() {
                Some(next) => stmt.push_str(next),
                None => break,
            }
        }
        let end = stmt.find(';').unwrap_or(stmt.len());
        for path in use_paths(&stmt[..end]) {
            out.push((public, path));
        }
    }
    // Paths in code: every `a::b::c` chain, whatever its first name; the caller keeps those
    // whose first name is a module it knows.
    let bytes = rest_of_code.as_bytes();
    let is_ident = |c: u8| c.is_ascii_alphanumeric() || c == b'_';
    let mut i = 0;
    while i < bytes.len() {
        if !is_ident(bytes[i]) || (i > 0 && (is_ident(bytes[i - 1]) || bytes[i - 1] == b'$')) {
            i += 1;
            continue;
        }
        let start = i;
        while i < bytes.len()
            && (is_ident(bytes[i]) || (bytes[i] == b':' && bytes.get(i + 1) == Some(&b':')))
        {
            i += if bytes[i] == b':' { 2 } else { 1 };
        }
        let chain = &rest_of_code[start..i];
        // `x::y` after `::` belongs to a longer chain already read.
        let after_colons = start >= 2 && &bytes[start - 2..start] == b"::";
        if chain.contains("::") && !after_colons {
            let path: Vec<String> = chain
                .split("::")
                .filter(|p| !p.is_empty())
                .map(String::from)
                .collect();
            out.push((false, path));
        }
    }
    out
}

/// File → the files it imports from: each path is resolved from the file's module (`crate`,
/// `super`, `self` or a child module's name) to the longest module prefix that is a file. A
/// module's `pub use` of its own descendants is a re-export, not a dependency, and is left
/// out; so is a file naming itself.
fn file_graph() -> BTreeMap<String, BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut modules: BTreeMap<Vec<String>, String> = BTreeMap::new();
    let mut texts = Vec::new();
    for file in &files {
        let relative = file.strip_prefix(&src).expect("under src/");
        let name = relative.to_string_lossy().into_owned();
        if name == "main.rs" {
            continue;
        }
        // Test-only files (`x/tests.rs`) are not shipped code.
        if relative.file_name().is_some_and(|n| n == "tests.rs") {
            continue;
        }
        let path = module_path(relative);
        modules.insert(path.clone(), name.clone());
        texts.push((
            name,
            path,
            std::fs::read_to_string(file).expect("reading a source file"),
        ));
    }
    let mut resolved = Vec::new();
    for (name, here, text) in &texts {
        let named = named_paths(&shipped_code(text));
        // The module names this file can start a path with: its child modules, and every
        // module a `use` brought in by name (`use crate::ops::{self, …}` brings `ops`).
        let mut aliases: BTreeMap<String, Vec<String>> = modules
            .keys()
            .filter(|m| m.len() == here.len() + 1 && m[..here.len()] == here[..])
            .map(|m| (m[here.len()].clone(), m.clone()))
            .collect();
        let resolve = |path: &[String], aliases: &BTreeMap<String, Vec<String>>| {
            let first = path.first()?;
            let (mut absolute, skip) = match first.as_str() {
                "crate" => (Vec::new(), 1),
                "self" => (here.clone(), 1),
                "super" => (here[..here.len().saturating_sub(1)].to_vec(), 1),
                other => (aliases.get(other)?.clone(), 1),
            };
            let mut rest = path[skip..].iter().peekable();
            while rest.peek().is_some_and(|p| *p == "super") {
                absolute.pop();
                rest.next();
            }
            absolute.extend(rest.cloned());
            Some(absolute)
        };
        for (_, path) in named.iter().filter(|(_, p)| p.len() > 1) {
            if let Some(absolute) = resolve(path, &aliases)
                && modules.contains_key(&absolute)
                && let Some(last) = absolute.last()
            {
                aliases.insert(last.clone(), absolute.clone());
            }
        }
        let absolute: Vec<(bool, Vec<String>)> = named
            .iter()
            .filter_map(|(public, path)| Some((*public, resolve(path, &aliases)?)))
            .collect();
        resolved.push((name.clone(), here.clone(), absolute));
    }
    // What each module re-exports: `pub use x::Y` in module `m` makes `m::Y` name `x::Y`.
    let mut reexports: BTreeMap<Vec<String>, BTreeMap<String, Vec<String>>> = BTreeMap::new();
    for (_, here, paths) in &resolved {
        for (public, path) in paths {
            if let (true, Some(last)) = (*public, path.last()) {
                reexports
                    .entry(here.clone())
                    .or_default()
                    .insert(last.clone(), path.clone());
            }
        }
    }
    // The file that defines what `path` names: the longest module prefix, through re-exports.
    let defining = |path: &[String]| -> Option<(Vec<String>, String)> {
        let mut path = path.to_vec();
        for _ in 0..8 {
            let n = (0..=path.len())
                .rev()
                .find(|n| modules.contains_key(&path[..*n]))?;
            let next = path
                .get(n)
                .and_then(|item| reexports.get(&path[..n])?.get(item))
                .filter(|target| **target != path[..=n]);
            match next {
                Some(target) => {
                    let mut followed = target.clone();
                    followed.extend(path[n + 1..].iter().cloned());
                    path = followed;
                }
                None => return Some((path[..n].to_vec(), modules[&path[..n]].clone())),
            }
        }
        None
    };
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (name, here, paths) in &resolved {
        let edges = graph.entry(name.clone()).or_default();
        for (_, path) in paths {
            let Some((module, file)) = defining(path) else {
                continue;
            };
            // A module's own files: its parent file names what its children define.
            let own_child = module.len() > here.len() && module[..here.len()] == here[..];
            if file != *name && !own_child {
                edges.insert(file);
            }
        }
    }
    graph
}

#[test]
fn no_import_cycle_among_the_files_of_src() {
    let graph = file_graph();
    assert!(
        graph.len() > 60
            && graph["commands/apply.rs"].contains("ops/apply/mod.rs")
            && graph["ops/apply/preflight.rs"].contains("ops/apply/mod.rs")
            && graph["ops/plan.rs"].contains("ops/api.rs")
            && graph["ops/plan.rs"].contains("ops/mod.rs"),
        "the source scan found too little: {graph:#?}"
    );
    let found: Vec<String> = cycles(&graph).iter().map(|c| describe(&graph, c)).collect();
    assert!(
        found.is_empty(),
        "import cycles among src/ files: {found:#?}"
    );
}

#[test]
fn the_file_scanner_reads_use_trees_and_resolves_relative_paths() {
    assert_eq!(
        use_paths("crate::{a, b::{c, d as e}, f::*}"),
        [
            vec!["crate", "a"],
            vec!["crate", "b", "c"],
            vec!["crate", "b", "d"],
            vec!["crate", "f"],
        ]
        .map(|p| p.into_iter().map(String::from).collect::<Vec<_>>())
    );
    let named = named_paths("pub use api::Api;\nuse super::x::{self, Y};\nlet z = crate::q::r();");
    assert!(
        named.contains(&(true, vec!["api".into(), "Api".into()])),
        "{named:?}"
    );
    assert!(
        named.contains(&(false, vec!["super".into(), "x".into()])),
        "{named:?}"
    );
    assert!(
        named.contains(&(false, vec!["crate".into(), "q".into(), "r".into()])),
        "{named:?}"
    );
    assert_eq!(module_path(Path::new("ops/apply/mod.rs")), ["ops", "apply"]);
    assert_eq!(module_path(Path::new("ops/plan.rs")), ["ops", "plan"]);
    assert!(module_path(Path::new("lib.rs")).is_empty());
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

/// Every shipped source file under `src/`: its name relative to `src/` and its code without
/// comments or its `#[cfg(test)]` tail. Test-only files (`tests.rs`) are left out.
fn shipped_files() -> Vec<(String, String)> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    files
        .iter()
        .filter(|f| f.file_name().is_some_and(|n| n != "tests.rs"))
        .map(|f| {
            let name = f
                .strip_prefix(&src)
                .expect("under src/")
                .to_string_lossy()
                .into_owned();
            let text = std::fs::read_to_string(f).expect("reading a source file");
            (name, shipped_code(&text))
        })
        .collect()
}

/// The files whose shipped code matches `found`, outside the folders and files in `allowed`.
fn offenders(allowed: &[&str], found: impl Fn(&str) -> bool) -> Vec<String> {
    shipped_files()
        .into_iter()
        .filter(|(name, _)| !allowed.iter().any(|a| name == a || name.starts_with(a)))
        .filter(|(_, code)| found(code))
        .map(|(name, _)| name)
        .collect()
}

#[test]
fn only_segment_speaks_http_and_only_the_emulator_serves_it() {
    // Outside `segment/`, `reqwest` may only name its `Url` type (the base URL rules).
    let client = |code: &str| {
        code.match_indices("reqwest::").any(|(at, _)| {
            let after = &code[at + "reqwest::".len()..];
            !(after.starts_with("Url") || after.starts_with("{Url}"))
        })
    };
    let http = offenders(&["segment/", "emulator/"], client);
    assert!(
        http.is_empty(),
        "HTTP clients outside src/segment/: {http:?}"
    );
    let server = offenders(&["emulator/"], |code| {
        ["axum::", "hyper::", "tower::", "axum_server"]
            .iter()
            .any(|s| code.contains(s))
    });
    assert!(
        server.is_empty(),
        "HTTP servers outside src/emulator/: {server:?}"
    );
}

#[test]
fn the_rule_scanners_see_what_they_look_for() {
    assert!(!offenders(&[], |code| code.contains("reqwest::Client")).is_empty());
    assert!(!offenders(&[], |code| code.contains("io::stderr()")).is_empty());
    assert!(!offenders(&[], |code| code.contains("rusqlite")).is_empty());
    assert!(offenders(&["state/"], |code| code.contains("fn record_verification")).is_empty());
}

#[test]
fn only_render_and_ui_print() {
    let prints = |code: &str| {
        [
            "println!",
            "print!(",
            "eprintln!",
            "eprint!(",
            "io::stdout()",
            "io::stderr()",
            "dbg!(",
        ]
        .iter()
        .any(|p| code.contains(p))
    };
    // `main.rs` prints the one error; the emulator is self-contained (it imports nothing of
    // the crate, `ui` included) and prints the address it listens on.
    let found = offenders(&["render/", "ui/", "main.rs", "emulator/"], prints);
    assert!(
        found.is_empty(),
        "files printing outside src/render/ and src/ui/ (use `Ui` or a render view): {found:?}"
    );
}

#[test]
fn only_state_runs_sql_on_the_state_file() {
    // `scratch/` is plan's own scratch database, never the state file.
    let found = offenders(&["state/", "scratch/"], |code| {
        code.contains("rusqlite") || code.contains(".conn()")
    });
    assert!(
        found.is_empty(),
        "SQL outside src/state/ (add a query to state/views.rs): {found:?}"
    );
}

#[test]
fn the_emulator_shares_no_code_with_the_client() {
    let files = shipped_files();
    assert!(
        files
            .iter()
            .filter(|(n, _)| n.starts_with("emulator/"))
            .count()
            > 5,
        "the scan found no emulator files"
    );
    for (name, code) in files {
        let named: BTreeSet<String> = crate_refs(&code);
        if name.starts_with("emulator/") {
            let foreign: Vec<&String> = named.iter().filter(|m| *m != "emulator").collect();
            assert!(
                foreign.is_empty(),
                "`src/{name}` imports {foreign:?}: the emulator shares no code with the crate, so a bug in the client cannot hide in both"
            );
        }
        if name.starts_with("segment/") || name == "model.rs" {
            assert!(
                !named.contains("emulator"),
                "`src/{name}` imports the emulator"
            );
        }
    }
}
