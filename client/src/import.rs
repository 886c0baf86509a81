//! `mxtoken import FILE`: migrate from a plaintext env file of
//! `export MATRIX_...=...` lines (single, double or no quotes; comments;
//! blank lines; CRLF line endings).

use crate::error::ClientError;
use crate::homeserver_check::{self, LoggedOut};
use crate::init::{self, Credentials, StoreArgs};
use clap::Args;
use secrecy::SecretString;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use zeroize::Zeroizing;

/// `mxtoken import`.
#[derive(Debug, Args)]
pub struct ImportArgs {
    /// The env file (MATRIX_HOMESERVER_URL, MATRIX_ADMIN_USER, MATRIX_ADMIN_PASSWORD, optional MATRIX_ADMIN_TOKEN).
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    #[command(flatten)]
    pub store: StoreArgs,
    /// Log out the file's old MATRIX_ADMIN_TOKEN on the homeserver.
    #[arg(long)]
    pub revoke_old_token: bool,
}

/// One assignment: its value and the line it came from.
struct Value {
    text: Zeroizing<String>,
    line: usize,
}

/// The parsed file. Values are secrets until proven otherwise.
pub struct EnvFile {
    vars: HashMap<String, Value>,
}

impl std::fmt::Debug for EnvFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut keys: Vec<&String> = self.vars.keys().collect();
        keys.sort();
        f.debug_struct("EnvFile").field("keys", &keys).finish()
    }
}

impl EnvFile {
    /// Parses env-file text; errors name the file and the line, never a value.
    pub fn parse(path: &Path, text: &str) -> Result<Self, ClientError> {
        let mut vars = HashMap::new();
        for (i, raw) in text.split('\n').enumerate() {
            let n = i + 1;
            let bad =
                |why: &str| ClientError::Invalid(format!("{} line {n}: {why}", path.display()));
            let line = raw.strip_suffix('\r').unwrap_or(raw).trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let line = line
                .strip_prefix("export")
                .filter(|r| r.starts_with([' ', '\t']))
                .map_or(line, str::trim_start);
            let Some((key, rest)) = line.split_once('=') else {
                return Err(bad("expected KEY=VALUE (optionally after `export`)"));
            };
            if key.is_empty()
                || !key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                || key.starts_with(|c: char| c.is_ascii_digit())
            {
                return Err(bad("the name before `=` is not a variable name"));
            }
            let text = parse_value(rest).map_err(bad)?;
            vars.insert(key.to_owned(), Value { text, line: n });
        }
        Ok(Self { vars })
    }

    fn get(&self, key: &str) -> Option<&Value> {
        self.vars.get(key).filter(|v| !v.text.is_empty())
    }

    fn require(&self, path: &Path, key: &str) -> Result<&Value, ClientError> {
        match self.vars.get(key) {
            Some(v) if !v.text.is_empty() => Ok(v),
            Some(v) => Err(ClientError::Invalid(format!(
                "{} line {}: {key} is empty; give it a value",
                path.display(),
                v.line
            ))),
            None => Err(ClientError::Invalid(format!(
                "{} has no {key} line; add `export {key}=\"...\"`",
                path.display()
            ))),
        }
    }
}

/// One shell word: 'single' (literal), "double" (\\ \" \$ \` escapes), or
/// bare (backslash escapes); an unquoted `#` after whitespace starts a comment.
fn parse_value(rest: &str) -> Result<Zeroizing<String>, &'static str> {
    let mut out = Zeroizing::new(String::new());
    let mut chars = rest.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\'' => loop {
                match chars.next() {
                    Some('\'') => break,
                    Some(c) => out.push(c),
                    None => return Err("a single quote is not closed"),
                }
            },
            '"' => loop {
                match chars.next() {
                    Some('"') => break,
                    Some('\\') => match chars.next() {
                        Some(c @ ('\\' | '"' | '$' | '`')) => out.push(c),
                        Some(c) => {
                            out.push('\\');
                            out.push(c);
                        }
                        None => return Err("a double quote is not closed"),
                    },
                    Some('$' | '`') => {
                        return Err(
                            "the value uses $ or ` substitution inside double quotes, which import does not run; write it in single quotes",
                        );
                    }
                    Some(c) => out.push(c),
                    None => return Err("a double quote is not closed"),
                }
            },
            '\\' => match chars.next() {
                Some(c) => out.push(c),
                None => return Err("the line ends with a backslash"),
            },
            ' ' | '\t' => {
                let tail: String = chars.by_ref().collect();
                let tail = tail.trim_start();
                if tail.is_empty() || tail.starts_with('#') {
                    break;
                }
                return Err("the value has unquoted spaces; quote it");
            }
            '$' | '`' => {
                return Err(
                    "the value uses $ or ` substitution, which import does not run; write it in single quotes",
                );
            }
            c => out.push(c),
        }
    }
    Ok(out)
}

/// Runs `import`; prints its report on stderr.
pub fn run(args: ImportArgs) -> ExitCode {
    match import(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => init::fail(&e),
    }
}

fn import(args: &ImportArgs) -> Result<(), ClientError> {
    let path = &args.file;
    let text = Zeroizing::new(
        std::fs::read_to_string(path)
            .map_err(|e| ClientError::Invalid(format!("cannot read {}: {e}", path.display())))?,
    );
    let env = EnvFile::parse(path, &text)?;
    drop(text);
    let hs = env.require(path, "MATRIX_HOMESERVER_URL")?;
    let homeserver = homeserver_check::parse_base_url(&hs.text)
        .map_err(|e| ClientError::Invalid(format!("{} line {}: {e}", path.display(), hs.line)))?;
    let user = env.require(path, "MATRIX_ADMIN_USER")?.text.to_string();
    let password = SecretString::from(env.require(path, "MATRIX_ADMIN_PASSWORD")?.text.as_str());
    let creds = Credentials {
        homeserver: homeserver.clone(),
        user,
        password,
    };
    if args.revoke_old_token && env.get("MATRIX_ADMIN_TOKEN").is_none() {
        return Err(ClientError::Invalid(format!(
            "{} has no MATRIX_ADMIN_TOKEN to revoke; drop --revoke-old-token",
            path.display()
        )));
    }
    let done = init::onboard(&args.store, &creds)?;
    init::report(&done);
    let mut todo = Vec::new();
    if let Some(old) = env.get("MATRIX_ADMIN_TOKEN") {
        if args.revoke_old_token {
            let token = SecretString::from(old.text.as_str());
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| ClientError::Other(format!("cannot start the async runtime: {e}")))?;
            match rt.block_on(homeserver_check::logout(&homeserver, &token))? {
                LoggedOut::Now => eprintln!("mxtoken: the old MATRIX_ADMIN_TOKEN is logged out"),
                LoggedOut::AlreadyDead => eprintln!(
                    "mxtoken: the old MATRIX_ADMIN_TOKEN was already dead on the homeserver"
                ),
            }
        } else {
            todo.push(format!(
                "the old MATRIX_ADMIN_TOKEN (line {}) still works: revoke it with `mxtoken import {} --revoke-old-token` (or log it out yourself)",
                old.line,
                path.display()
            ));
        }
    }
    if let Some(bot) = env.get("MATRIX_ACCESS_TOKEN") {
        todo.push(format!(
            "MATRIX_ACCESS_TOKEN (line {}) is a bot's token and was not imported; keep it somewhere safe before you delete the file",
            bot.line
        ));
    }
    todo.push(format!(
        "delete the plaintext file: `shred -u {}` (or `rm`), and remove copies of it",
        path.display()
    ));
    eprintln!("mxtoken: left to do:");
    for (i, t) in todo.iter().enumerate() {
        eprintln!("  {}. {t}", i + 1);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<EnvFile, String> {
        EnvFile::parse(Path::new("old.env"), text).map_err(|e| e.to_string())
    }

    fn val(env: &EnvFile, k: &str) -> String {
        env.vars[k].text.to_string()
    }

    #[test]
    fn quoting_styles_comments_and_crlf() {
        let env = parse(
            "# admin creds\r\n\r\nexport MATRIX_HOMESERVER_URL=\"https://m.example\"  # prod\r\nexport MATRIX_ADMIN_USER='@admin:m.example'\r\nMATRIX_ADMIN_PASSWORD=p\\ w'it''s'\"\\\"x\\$\"\r\n",
        )
        .expect("parse");
        assert_eq!(val(&env, "MATRIX_HOMESERVER_URL"), "https://m.example");
        assert_eq!(val(&env, "MATRIX_ADMIN_USER"), "@admin:m.example");
        assert_eq!(val(&env, "MATRIX_ADMIN_PASSWORD"), "p wits\"x$");
        assert_eq!(env.vars["MATRIX_ADMIN_PASSWORD"].line, 5);
    }

    #[test]
    fn malformed_lines_are_named_without_their_value() {
        let e =
            parse("export A=1\nexport MATRIX_ADMIN_PASSWORD='s3cret\n").expect_err("open quote");
        assert_eq!(e, "old.env line 2: a single quote is not closed");
        let e = parse("\n\njust words\n").expect_err("no =");
        assert!(e.starts_with("old.env line 3: expected KEY=VALUE"), "{e}");
        let e = parse("P=s3cret word\n").expect_err("space");
        assert!(e.contains("line 1") && !e.contains("s3cret"), "{e}");
        let e = parse("P=\"$HOME\"\n").expect_err("subst");
        assert!(e.contains("substitution"), "{e}");
    }

    #[test]
    fn a_missing_password_is_named() {
        let env =
            parse("MATRIX_HOMESERVER_URL=https://h\nMATRIX_ADMIN_PASSWORD=\n").expect("parse");
        let e = env
            .require(Path::new("old.env"), "MATRIX_ADMIN_USER")
            .err()
            .map(|e| e.to_string());
        assert_eq!(
            e.as_deref(),
            Some("old.env has no MATRIX_ADMIN_USER line; add `export MATRIX_ADMIN_USER=\"...\"`")
        );
        let e = env
            .require(Path::new("old.env"), "MATRIX_ADMIN_PASSWORD")
            .err()
            .map(|e| e.to_string());
        assert_eq!(
            e.as_deref(),
            Some("old.env line 2: MATRIX_ADMIN_PASSWORD is empty; give it a value")
        );
        assert!(!format!("{env:?}").contains("https://h"));
    }
}
