//! Replays the committed fuzz corpus (`fuzz/corpus/<target>/`) through the
//! same checks the fuzz targets run (`fuzz/checks.rs`), on stable
//! `cargo test`: every input a fuzzer ever kept — crashes found and fixed
//! included — stays a regression test.

use std::path::{Path, PathBuf};

#[path = "../../fuzz/checks.rs"]
mod checks;

fn corpus(target: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert!(!files.is_empty(), "empty corpus {}", dir.display());
    files
}

fn replay(target: &str, check: impl Fn(&[u8])) {
    let files = corpus(target);
    for f in &files {
        let data = std::fs::read(f).unwrap();
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| check(&data)));
        assert!(result.is_ok(), "{target}: {} fails", f.display());
    }
    eprintln!("{target}: {} corpus inputs replayed", files.len());
}

#[test]
fn scope_corpus() {
    replay("scope", checks::scope);
}

#[test]
fn params_corpus() {
    replay("params", checks::params);
}

#[test]
fn basic_corpus() {
    replay("basic", checks::basic);
}

#[test]
fn htpasswd_corpus() {
    replay("htpasswd", checks::htpasswd);
}

#[test]
fn config_corpus() {
    let keys = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/keys");
    replay("config", |d| checks::config(d, &keys));
}
