//! A real `ansible-core` from PyPI, in a cached virtualenv, to run the
//! playbooks and the lookup plugin of `packaging/ansible` against the test
//! homeserver.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::OnceLock;

/// The ansible-core release the tests pin (scripts/setup installs the same one).
pub const ANSIBLE_CORE_VERSION: &str = include_str!("../ansible-core-version.txt").trim_ascii();

/// The virtualenv holding ansible-core: `$MXTOKEN_ANSIBLE_VENV`, else
/// `~/.cache/mxtoken/ansible-venv`.
pub fn venv() -> PathBuf {
    if let Some(v) = std::env::var_os("MXTOKEN_ANSIBLE_VENV") {
        return PathBuf::from(v);
    }
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    home.join(".cache/mxtoken/ansible-venv")
}

/// Installs ansible-core into [`venv`] unless the pinned version is there;
/// returns the venv's `bin` directory.
pub fn ensure_installed() -> PathBuf {
    static DONE: OnceLock<PathBuf> = OnceLock::new();
    DONE.get_or_init(|| {
        let v = venv();
        let check = format!(
            "import ansible.release, sys; sys.exit(ansible.release.__version__ != '{ANSIBLE_CORE_VERSION}')"
        );
        let ok = Command::new(v.join("bin/python"))
            .args(["-c", &check])
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            eprintln!(
                "installing ansible-core {ANSIBLE_CORE_VERSION} into {} ...",
                v.display()
            );
            crate::broker::run_ok(Command::new("python3").arg("-m").arg("venv").arg(&v));
            crate::broker::run_ok(Command::new(v.join("bin/pip")).args([
                "install",
                "-q",
                "--disable-pip-version-check",
                &format!("ansible-core=={ANSIBLE_CORE_VERSION}"),
            ]));
        }
        v.join("bin")
    })
    .clone()
}

/// The repository's `packaging/ansible` directory.
pub fn packaging_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .join("packaging/ansible")
}
