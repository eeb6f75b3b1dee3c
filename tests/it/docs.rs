//! The snippets in docs/ are compiled: every Markdown file there with a Rust block is included
//! as doctests by src/lib.rs, and none hides a block from the compiler with `ignore`.

use std::path::Path;

#[test]
fn every_rust_snippet_in_docs_is_a_doctest() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let lib = std::fs::read_to_string(root.join("src/lib.rs")).unwrap();
    let mut checked = 0;
    for entry in std::fs::read_dir(root.join("docs")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|ext| ext != "md") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let name = path.file_name().unwrap().to_str().unwrap();
        for line in text.lines().filter(|line| line.trim_start().starts_with("```rust")) {
            assert!(
                !line.contains("ignore"),
                "{name}: `{line}` is never compiled; make it a doctest (`no_run` if it needs the network)"
            );
        }
        if text.contains("```rust") {
            assert!(
                lib.contains(&format!("include_str!(\"../docs/{name}\")")),
                "{name} has Rust snippets but src/lib.rs does not include it as doctests"
            );
            checked += 1;
        }
    }
    assert!(checked >= 5, "only {checked} files with snippets found");
}
