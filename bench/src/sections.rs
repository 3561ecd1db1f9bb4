//! `BENCHMARKS.md` holds one section per benchmark; each command rewrites only its own.
//! A section other than the import's is framed by `<!-- bench:NAME -->` and
//! `<!-- /bench:NAME -->`; the import benchmark writes the file's head and keeps the
//! framed sections below it.

use anyhow::{Context, Result};
use std::path::Path;

fn markers(name: &str) -> (String, String) {
    (
        format!("<!-- bench:{name} -->"),
        format!("<!-- /bench:{name} -->"),
    )
}

/// The framed sections of `text`, in order, markers included.
fn framed(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("<!-- bench:") {
        let after = &rest[start + "<!-- bench:".len()..];
        let Some(name_end) = after.find(" -->") else {
            break;
        };
        let name = after[..name_end].to_string();
        let (_, close) = markers(&name);
        let Some(end) = rest[start..].find(&close) else {
            break;
        };
        let end = start + end + close.len();
        out.push((name, rest[start..end].to_string()));
        rest = &rest[end..];
    }
    out
}

/// Rewrites section `name` of `path` with `body` (the import benchmark passes
/// `name = "import"`: its body becomes the file's head).
pub fn write(path: &Path, name: &str, body: &str) -> Result<()> {
    let old = std::fs::read_to_string(path).unwrap_or_default();
    let sections = framed(&old);
    let mut text = if name == "import" {
        body.trim_end().to_string()
    } else {
        let head = old.find("<!-- bench:").map_or(old.as_str(), |i| &old[..i]);
        head.trim_end().to_string()
    };
    let mut wrote_own = false;
    for (section, framed_text) in &sections {
        text.push_str("\n\n");
        if section == name {
            let (open, close) = markers(name);
            text.push_str(&format!("{open}\n{}\n{close}", body.trim_end()));
            wrote_own = true;
        } else {
            text.push_str(framed_text);
        }
    }
    if !wrote_own && name != "import" {
        let (open, close) = markers(name);
        text.push_str(&format!("\n\n{open}\n{}\n{close}", body.trim_end()));
    }
    text.push('\n');
    std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_benchmark_keeps_the_others_sections() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("B.md");
        write(&file, "import", "# Benchmarks\n\nimport v1").unwrap();
        write(&file, "dispatch", "dispatch v1").unwrap();
        write(&file, "import", "# Benchmarks\n\nimport v2").unwrap();
        write(&file, "dispatch", "dispatch v2").unwrap();
        let text = std::fs::read_to_string(&file).unwrap();
        assert!(text.starts_with("# Benchmarks\n\nimport v2"), "{text}");
        assert!(
            text.contains("<!-- bench:dispatch -->\ndispatch v2\n<!-- /bench:dispatch -->"),
            "{text}"
        );
        assert!(!text.contains("v1"), "{text}");
    }
}
