//! Where the binaries under test are.

use std::path::PathBuf;

/// The directory holding `mxtokend` and `mxtoken`: `$MXTOKEN_BIN_DIR`, else
/// the cargo target directory of the running test executable.
pub fn bin_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("MXTOKEN_BIN_DIR") {
        return PathBuf::from(d);
    }
    let exe = std::env::current_exe().expect("current_exe");
    // target/debug/deps/e2e-HASH or target/debug/mxtoken-demo
    let mut dir = exe.parent().expect("exe dir").to_path_buf();
    if dir.ends_with("deps") {
        dir.pop();
    }
    dir
}

/// The path of binary `name`; panics with the fix if it was not built.
pub fn bin(name: &str) -> PathBuf {
    let p = bin_dir().join(name);
    assert!(
        p.exists(),
        "{} is missing: run `cargo build --workspace --bins` first (scripts/test does)",
        p.display()
    );
    p
}
