//! Running a command on a pseudo-terminal (python's `pty`) and answering its
//! prompts, for the interactive paths (`mxtoken init`, `mxtoken unlock`).

use std::process::Command;

const DRIVER: &str = r#"
import json, os, pty, sys, termios, time
answers = json.loads(os.environ["MXT_ANSWERS"])
pid, fd = pty.fork()
if pid == 0:
    os.execvp(sys.argv[1], sys.argv[1:])
seen, i, pos = b"", 0, 0
while True:
    try:
        data = os.read(fd, 1024)
    except OSError:
        break
    if not data:
        break
    seen += data
    while i < len(answers):
        at = seen.find(answers[i][0].encode(), pos)
        if at < 0:
            break
        pos = at + len(answers[i][0])
        if answers[i][2]:
            # A secret: type it only once the program has turned echo off, as
            # a person would after seeing the prompt (the prompt comes first).
            end = time.time() + 10
            while termios.tcgetattr(fd)[3] & termios.ECHO and time.time() < end:
                time.sleep(0.01)
        os.write(fd, answers[i][1].encode() + b"\n")
        i += 1
_, status = os.waitpid(pid, 0)
sys.stdout.buffer.write(seen)
sys.exit(os.waitstatus_to_exitcode(status))
"#;

/// One prompt to wait for and what to type at it.
#[derive(Debug, Clone, Copy)]
pub struct Answer<'a> {
    /// Text of the prompt.
    pub prompt: &'a str,
    /// What to type (Enter follows).
    pub text: &'a str,
    /// Wait for echo to be off before typing (a password prompt).
    pub secret: bool,
}

/// Runs `cmd` (its program, args and environment) on a terminal; each time the
/// next prompt appears, types its answer and Enter. Returns the exit code and
/// everything the terminal showed.
pub fn run(cmd: &Command, answers: &[Answer<'_>]) -> (Option<i32>, String) {
    let mut py = Command::new("python3");
    py.arg("-c")
        .arg(DRIVER)
        .arg(cmd.get_program())
        .args(cmd.get_args());
    py.env_clear();
    for (k, v) in cmd.get_envs() {
        if let Some(v) = v {
            py.env(k, v);
        }
    }
    if let Some(dir) = cmd.get_current_dir() {
        py.current_dir(dir);
    }
    let answers: Vec<serde_json::Value> = answers
        .iter()
        .map(|a| serde_json::json!([a.prompt, a.text, a.secret]))
        .collect();
    py.env(
        "MXT_ANSWERS",
        serde_json::to_string(&answers).expect("json"),
    );
    let out = py.output().expect("run python3 pty driver");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}
