//! Driving the real `age` CLI where it insists on a terminal: passphrase
//! encryption and decryption run under a pseudo-terminal (python's `pty`),
//! which answers each passphrase prompt.

use std::path::Path;
use std::process::Command;

const PTY_DRIVER: &str = r#"
import os, pty, sys
pw = os.environ["MXT_PASSPHRASE"].encode() + b"\n"
pid, fd = pty.fork()
if pid == 0:
    os.execvp(sys.argv[1], sys.argv[1:])
seen, answered = b"", 0
while True:
    try:
        data = os.read(fd, 1024)
    except OSError:
        break
    if not data:
        break
    seen += data
    while seen.lower().count(b"passphrase") > answered:
        os.write(fd, pw)
        answered += 1
_, status = os.waitpid(pid, 0)
sys.exit(os.waitstatus_to_exitcode(status))
"#;

fn run_under_pty(passphrase: &str, args: &[&std::ffi::OsStr]) -> std::process::Output {
    Command::new("python3")
        .arg("-c")
        .arg(PTY_DRIVER)
        .args(args)
        .env("MXT_PASSPHRASE", passphrase)
        .output()
        .expect("run python3 pty driver")
}

/// `age -p -o OUT` of `plaintext` (with a trailing newline), as a user would.
pub fn encrypt_with_passphrase(plaintext: &str, passphrase: &str, out: &Path) {
    let input = out.with_extension("plain");
    std::fs::write(&input, format!("{plaintext}\n")).expect("write plaintext");
    let o = run_under_pty(
        passphrase,
        &[
            "age".as_ref(),
            "-p".as_ref(),
            "-o".as_ref(),
            out.as_os_str(),
            input.as_os_str(),
        ],
    );
    let _ = std::fs::remove_file(&input);
    assert!(
        o.status.success() && out.exists(),
        "age -p failed: {}",
        String::from_utf8_lossy(&o.stdout)
    );
}

/// `age -d` of a passphrase file; `None` if age refuses the passphrase.
pub fn decrypt_with_passphrase(file: &Path, passphrase: &str) -> Option<String> {
    let out = file.with_extension("decrypted");
    let o = run_under_pty(
        passphrase,
        &[
            "age".as_ref(),
            "-d".as_ref(),
            "-o".as_ref(),
            out.as_os_str(),
            file.as_os_str(),
        ],
    );
    let text = std::fs::read_to_string(&out).ok();
    let _ = std::fs::remove_file(&out);
    o.status.success().then_some(text).flatten()
}

/// `age -d -i IDENTITY FILE` → the plaintext.
pub fn decrypt_with_identity(file: &Path, identity: &Path) -> String {
    let o = crate::broker::run_ok(
        Command::new("age")
            .arg("-d")
            .arg("-i")
            .arg(identity)
            .arg(file),
    );
    String::from_utf8(o.stdout).expect("utf8")
}

/// `age -R RECIPIENTS_FILE -o OUT` of `plaintext` + newline (e.g. an SSH `.pub`).
pub fn encrypt_to_recipients_file(plaintext: &str, recipients: &Path, out: &Path) {
    use std::io::Write;
    let mut child = Command::new("age")
        .arg("-R")
        .arg(recipients)
        .arg("-o")
        .arg(out)
        .stdin(std::process::Stdio::piped())
        .spawn()
        .expect("spawn age");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(format!("{plaintext}\n").as_bytes())
        .expect("write");
    assert!(child.wait().expect("age").success(), "age -R failed");
}
