//! The product binary, `parent-connection`, that the benchmarks run as child processes
//! (`api` starts `serve`; `digest` runs `digest run` and `dispatch --once`), so what they
//! measure is the shipped program itself.

use anyhow::{Context, Result, bail};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Name of the product's executable.
const PRODUCT: &str = "parent-connection";

/// A `parent-connection` executable that exists.
#[derive(Debug, Clone)]
pub struct ProductBin(PathBuf);

impl ProductBin {
    /// `explicit` (`--product-bin` / `PC_BIN`), or else the `parent-connection` next to this
    /// program (cargo puts both in the same target folder); an error saying how to get one
    /// when there is none.
    pub fn locate(explicit: Option<&Path>) -> Result<Self> {
        let path = match explicit {
            Some(path) => path.to_path_buf(),
            None => beside_this_program()?,
        };
        if !path.is_file() {
            bail!(
                "the product binary {} does not exist: build it with `cargo build --release --workspace` \
                 (it goes next to parent-connection-bench), or name it with --product-bin FILE or PC_BIN",
                path.display()
            );
        }
        Ok(Self(path))
    }

    /// A command that runs the product.
    pub fn command(&self) -> Command {
        Command::new(&self.0)
    }

    /// Where it is.
    pub fn path(&self) -> &Path {
        &self.0
    }
}

/// `parent-connection` in the folder of this program's executable.
fn beside_this_program() -> Result<PathBuf> {
    let exe = std::env::current_exe().context("cannot find this program's executable")?;
    let dir = exe
        .parent()
        .context("this program's executable has no folder")?;
    Ok(dir.join(format!("{PRODUCT}{}", std::env::consts::EXE_SUFFIX)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_binary_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("parent-connection");
        let error = ProductBin::locate(Some(&missing)).unwrap_err().to_string();
        assert!(error.contains("does not exist"), "{error}");
        assert!(error.contains("--product-bin"), "{error}");
        std::fs::write(&missing, "").unwrap();
        assert_eq!(ProductBin::locate(Some(&missing)).unwrap().path(), missing);
    }

    #[test]
    fn the_default_is_next_to_this_program() {
        let path = beside_this_program().unwrap();
        assert_eq!(path.file_name().unwrap(), "parent-connection");
        assert_eq!(path.parent(), std::env::current_exe().unwrap().parent());
    }
}
