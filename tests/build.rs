//! Makes the workspace README's Rust examples into doctests of this crate (see `README_DOCTESTS`
//! in `src/lib.rs`), without the README showing any test setup.
//!
//! The README is for people, who copy its examples: each `rust` block is code as they would
//! write it, naming its Redis by URL (`LockClient::connect("redis://127.0.0.1:6379")`). Rustdoc's
//! hidden lines (`# ...`) would show on GitHub, so the setup is added here, to a copy in
//! `OUT_DIR`: a block tagged exactly `rust` that names N distinct `redis://` URLs and has no
//! hidden line and no `fn main` of its own becomes, for rustdoc,
//!
//! ```text
//! # lock_tests::locks::run_with_masters(N, |readme_urls| async move {
//! <the block, each URL literal replaced by `readme_urls[i].as_str()`, i its order of first use>
//! # Ok::<(), lock_runtime::LockError>(())
//! # });
//! ```
//!
//! so it runs against N throwaway servers of the kit (one per URL: three for a Redlock over
//! three masters). Every other block (a whole program with `fn main`, `rust,no_run`, `text`, a
//! block with hidden lines of its own) is left as it is.

use std::{env, fs, path::PathBuf};

fn main() {
    let manifest = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let readme = manifest.join("../README.md");
    println!("cargo:rerun-if-changed={}", readme.display());
    let text = fs::read_to_string(&readme)
        .unwrap_or_else(|err| panic!("reading {}: {err}", readme.display()));
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("set by cargo")).join("README.md");
    fs::write(&out, doctests(&text))
        .unwrap_or_else(|err| panic!("writing {}: {err}", out.display()));
}

/// `readme` with the setup added to each block that needs it (see the module docs).
fn doctests(readme: &str) -> String {
    let mut out = String::with_capacity(readme.len() * 2);
    let mut block: Option<Vec<&str>> = None;
    for line in readme.lines() {
        match &mut block {
            None => {
                out.push_str(line);
                out.push('\n');
                if line == "```rust" {
                    block = Some(Vec::new());
                }
            }
            Some(lines) if line == "```" => {
                out.push_str(&with_setup(lines));
                out.push_str("```\n");
                block = None;
            }
            Some(lines) => lines.push(line),
        }
    }
    out
}

/// One `rust` block's lines, with the setup added if it names Redis URLs and has none of its own.
fn with_setup(lines: &[&str]) -> String {
    let own_setup = lines
        .iter()
        .any(|line| *line == "#" || line.starts_with("# ") || line.contains("fn main"));
    let mut urls: Vec<&str> = Vec::new();
    for line in lines {
        for url in url_literals(line) {
            if !urls.contains(&url) {
                urls.push(url);
            }
        }
    }
    if own_setup || urls.is_empty() {
        return lines.iter().map(|line| format!("{line}\n")).collect();
    }
    let mut text = format!(
        "# lock_tests::locks::run_with_masters({}, |readme_urls| async move {{\n",
        urls.len()
    );
    for line in lines {
        let mut line = (*line).to_owned();
        for (index, url) in urls.iter().enumerate() {
            line = line.replace(url, &format!("readme_urls[{index}].as_str()"));
        }
        text.push_str(&line);
        text.push('\n');
    }
    text.push_str("# Ok::<(), lock_runtime::LockError>(())\n# });\n");
    text
}

/// The string literals of `line` that are Redis URLs, quotes included.
fn url_literals(line: &str) -> Vec<&str> {
    let mut found = Vec::new();
    let mut rest = line;
    while let Some(start) = rest.find("\"redis://") {
        let literal = &rest[start..];
        let Some(end) = literal[1..].find('"') else {
            break;
        };
        found.push(&literal[..end + 2]);
        rest = &literal[end + 2..];
    }
    found
}
