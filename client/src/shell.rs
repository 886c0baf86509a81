//! Printing variables so a shell can `eval` them.

use clap::ValueEnum;

/// The syntax `mxtoken env` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Shell {
    /// POSIX sh (also dash, ksh).
    Sh,
    /// bash.
    Bash,
    /// zsh.
    Zsh,
    /// fish.
    Fish,
    /// One JSON object, for programs.
    Json,
}

/// Renders `vars` for `shell`; values are quoted so `eval` sees them verbatim.
pub fn render(shell: Shell, vars: &[(&str, &str)]) -> String {
    match shell {
        Shell::Sh | Shell::Bash | Shell::Zsh => vars
            .iter()
            .map(|(k, v)| format!("export {k}={};\n", posix_quote(v)))
            .collect(),
        Shell::Fish => vars
            .iter()
            .map(|(k, v)| format!("set -gx {k} {};\n", fish_quote(v)))
            .collect(),
        Shell::Json => {
            let map: serde_json::Map<String, serde_json::Value> = vars
                .iter()
                .map(|(k, v)| ((*k).to_owned(), serde_json::Value::from(*v)))
                .collect();
            format!("{}\n", serde_json::Value::Object(map))
        }
    }
}

/// Single quotes, with each `'` written as `'\''`.
fn posix_quote(v: &str) -> String {
    format!("'{}'", v.replace('\'', r"'\''"))
}

/// fish single quotes: only `\` and `'` are special inside.
fn fish_quote(v: &str) -> String {
    format!("'{}'", v.replace('\\', r"\\").replace('\'', r"\'"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting() {
        let vars = [("A", "it's $HOME `x` \\ \"q\"")];
        assert_eq!(
            render(Shell::Sh, &vars),
            "export A='it'\\''s $HOME `x` \\ \"q\"';\n"
        );
        assert_eq!(
            render(Shell::Fish, &vars),
            "set -gx A 'it\\'s $HOME `x` \\\\ \"q\"';\n"
        );
        assert_eq!(
            render(Shell::Json, &vars),
            "{\"A\":\"it's $HOME `x` \\\\ \\\"q\\\"\"}\n"
        );
    }
}
