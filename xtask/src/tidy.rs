//! Tidy checks: the architecture invariants of ARCHITECTURE.md, enforced as tests.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// Workspace crates each crate may depend on (normal dependencies). Nothing points upward.
const ALLOWED: &[(&str, &[&str])] = &[
    ("contact", &[]),
    ("gateway", &["virus-scan"]),
    ("media", &[]),
    ("policy", &[]),
    ("posture", &[]),
    ("genkan-agent", &["posture"]),
    ("records", &[]),
    ("sip", &[]),
    ("store-sqlite", &["records"]),
    (
        "server",
        &[
            "contact",
            "gateway",
            "media",
            "policy",
            "posture",
            "records",
            "sip",
            "store-sqlite",
            "virus-scan",
        ],
    ),
    ("virus-scan", &[]),
    ("xtask", &[]),
];

/// Crates that must stay free of async runtimes, HTTP stacks and database drivers.
const PURE: &[&str] = &["contact", "media", "policy", "posture", "records", "sip"];
const IMPURE_DEPENDENCIES: &[&str] = &["tokio", "hyper", "axum", "rusqlite", "postgres", "mio"];

fn metadata() -> serde_json::Value {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let output = Command::new(cargo)
        .args(["metadata", "--format-version", "1", "--locked"])
        .current_dir(root())
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

#[test]
fn workspace_dependencies_point_only_downward() {
    let metadata = metadata();
    let members: Vec<&str> = metadata["packages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|package| package["source"].is_null())
        .map(|package| package["name"].as_str().unwrap())
        .collect();
    for package in metadata["packages"].as_array().unwrap() {
        if !package["source"].is_null() {
            continue;
        }
        let name = package["name"].as_str().unwrap();
        let allowed = ALLOWED
            .iter()
            .find(|(crate_name, _)| *crate_name == name)
            .unwrap_or_else(|| panic!("crate {name} is not in tidy's ALLOWED table; add it with its permitted dependencies"))
            .1;
        for dependency in package["dependencies"].as_array().unwrap() {
            let dep = dependency["name"].as_str().unwrap();
            let is_normal = dependency["kind"].is_null();
            if is_normal && members.contains(&dep) {
                assert!(allowed.contains(&dep), "{name} may not depend on {dep}");
            }
        }
    }
}

#[test]
fn pure_cores_have_no_io_stack_in_their_closure() {
    let metadata = metadata();
    let resolve = &metadata["resolve"]["nodes"];
    let by_id: BTreeMap<&str, &serde_json::Value> = resolve
        .as_array()
        .unwrap()
        .iter()
        .map(|node| (node["id"].as_str().unwrap(), node))
        .collect();
    let name_of = |id: &str| -> String {
        metadata["packages"]
            .as_array()
            .unwrap()
            .iter()
            .find(|package| package["id"] == id)
            .map(|package| package["name"].as_str().unwrap().to_owned())
            .unwrap_or_default()
    };
    for core in PURE {
        let start = by_id.keys().find(|id| name_of(id) == *core).copied();
        let Some(start) = start else {
            panic!("pure core {core} not found");
        };
        let mut stack = vec![start];
        let mut seen = std::collections::BTreeSet::new();
        while let Some(id) = stack.pop() {
            if !seen.insert(id) {
                continue;
            }
            let name = name_of(id);
            assert!(
                !IMPURE_DEPENDENCIES.contains(&name.as_str()),
                "{core} pulls in {name}"
            );
            for dep in by_id[id]["deps"].as_array().unwrap() {
                let normal = dep["dep_kinds"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|kind| kind["kind"].is_null());
                if normal {
                    stack.push(dep["pkg"].as_str().unwrap());
                }
            }
        }
    }
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap().map(Result::unwrap) {
        let path = entry.path();
        if path.is_dir() {
            if path.file_name().is_some_and(|name| name == "target") {
                continue;
            }
            rust_files(&path, out);
        } else if path.extension().is_some_and(|ext| ext == "rs") {
            out.push(path);
        }
    }
}

fn product_files() -> Vec<PathBuf> {
    let mut files = Vec::new();
    rust_files(&root().join("crates"), &mut files);
    files
}

/// Lines before the unit-test module, which is the code a reader has to hold in their head.
fn code_lines(text: &str) -> usize {
    text.lines()
        .take_while(|line| !line.starts_with("#[cfg(test)]"))
        .count()
}

#[test]
fn source_files_stay_readable_in_size() {
    for file in product_files() {
        if file.components().any(|part| part.as_os_str() == "tests") {
            continue;
        }
        let text = std::fs::read_to_string(&file).unwrap();
        let lines = code_lines(&text);
        assert!(
            lines <= 800,
            "{} has {lines} lines of code; split it where a seam shows",
            file.display()
        );
    }
}

#[test]
fn no_stubs_in_product_code() {
    for file in product_files() {
        let text = std::fs::read_to_string(&file).unwrap();
        for marker in [concat!("todo", "!("), concat!("unimplemented", "!(")] {
            assert!(
                !text.contains(marker),
                "{} contains {marker}",
                file.display()
            );
        }
    }
}

#[test]
fn every_crate_explains_itself_and_uses_workspace_lints() {
    for entry in std::fs::read_dir(root().join("crates"))
        .unwrap()
        .map(Result::unwrap)
    {
        let dir = entry.path();
        let manifest = std::fs::read_to_string(dir.join("Cargo.toml")).unwrap();
        assert!(
            manifest.contains("[lints]\nworkspace = true"),
            "{} opts out of workspace lints",
            dir.display()
        );
        assert!(
            manifest.contains("rust-version.workspace = true"),
            "{} sets its own rust-version",
            dir.display()
        );
        let lib = dir.join("src/lib.rs");
        if lib.exists() {
            let text = std::fs::read_to_string(&lib).unwrap();
            assert!(
                text.starts_with("//!"),
                "{} does not open with a //! crate doc",
                lib.display()
            );
        }
    }
}

#[test]
fn ci_runs_exactly_the_readme_test_command() {
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let ci = std::fs::read_to_string(root().join(".ci/run")).unwrap();
    let command = "./scripts/test";
    assert!(
        readme.contains(&format!("\n{command}\n")),
        "README does not give `{command}` on a line of its own"
    );
    let last = ci
        .lines()
        .rfind(|line| !line.trim().is_empty() && !line.starts_with('#'))
        .unwrap();
    assert!(
        last.ends_with(command),
        ".ci/run must end by running {command}, found: {last}"
    );
}

#[test]
fn no_toolchain_file_pins_another_rust() {
    for name in ["rust-toolchain", "rust-toolchain.toml"] {
        assert!(
            !root().join(name).exists(),
            "{name} would make the machines try to download a toolchain"
        );
    }
    let manifest = std::fs::read_to_string(root().join("Cargo.toml")).unwrap();
    assert!(manifest.contains("rust-version = \"1.95\""));
}
