//! `mxtoken lock` and `mxtoken unlock`.

use crate::api::BrokerClient;
use crate::error::ClientError;
use clap::Args;
use mxtoken_proto::{Lock, LockState, Passphrase, Unlock};
use std::io::Read;
use zeroize::Zeroizing;

/// `mxtoken unlock`.
#[derive(Debug, Args)]
pub struct UnlockArgs {
    /// Profile to unlock [default: the broker's default profile]
    #[arg(long, short = 'p', value_name = "NAME")]
    pub profile: Option<String>,
    /// Read the passphrase from standard input instead of the terminal.
    #[arg(long)]
    pub passphrase_stdin: bool,
}

fn report(state: &LockState) {
    for p in &state.profiles {
        eprintln!(
            "mxtoken: profile {} is {}",
            p.name,
            if p.locked { "locked" } else { "unlocked" }
        );
    }
}

/// `mxtoken lock`: reports on stderr, prints nothing.
pub async fn lock(client: &BrokerClient, profile: Option<String>) -> Result<String, ClientError> {
    let state = client.lock(&Lock { profile }).await?;
    report(&state);
    Ok(String::new())
}

/// `mxtoken unlock`: asks for the passphrase only if the profile has one.
pub async fn unlock(client: &BrokerClient, args: UnlockArgs) -> Result<String, ClientError> {
    let status = client.status().await?;
    let name = args.profile.unwrap_or(status.default_profile);
    let Some(profile) = status.profiles.iter().find(|p| p.name == name) else {
        let known: Vec<&str> = status.profiles.iter().map(|p| p.name.as_str()).collect();
        return Err(ClientError::Invalid(format!(
            "there is no profile {name:?}; known profiles: {}",
            known.join(", ")
        )));
    };
    let passphrase = if profile.needs_passphrase {
        Some(if args.passphrase_stdin {
            read_stdin_secret("passphrase")?
        } else {
            prompt_secret(&format!("Passphrase for profile {name}: "))?
        })
    } else {
        None
    };
    let state = client
        .unlock(
            &name,
            &Unlock {
                passphrase: passphrase.map(|p| Passphrase::new(p.to_string())),
            },
        )
        .await?;
    report(&state);
    Ok(String::new())
}

/// Reads a secret from standard input: everything up to EOF, without one
/// trailing newline.
pub fn read_stdin_secret(what: &str) -> Result<Zeroizing<String>, ClientError> {
    let mut text = Zeroizing::new(String::new());
    std::io::stdin().read_to_string(&mut text).map_err(|e| {
        ClientError::Invalid(format!("cannot read the {what} from standard input: {e}"))
    })?;
    let trimmed = text
        .strip_suffix("\r\n")
        .or_else(|| text.strip_suffix('\n'))
        .unwrap_or(&text);
    if trimmed.is_empty() {
        return Err(ClientError::Invalid(format!(
            "standard input held no {what}; pipe it in, e.g. `printf '%s\\n' \"$VAR\" | mxtoken ...`"
        )));
    }
    Ok(Zeroizing::new(trimmed.to_owned()))
}

/// Asks on the terminal without echo.
pub fn prompt_secret(prompt: &str) -> Result<Zeroizing<String>, ClientError> {
    let text = rpassword::prompt_password(prompt).map(Zeroizing::new).map_err(|e| {
        ClientError::Invalid(format!(
            "cannot ask on the terminal ({e}); pass it on standard input instead (--password-stdin for init, --passphrase-stdin for unlock)"
        ))
    })?;
    if text.is_empty() {
        return Err(ClientError::Invalid("nothing was typed; try again".into()));
    }
    Ok(text)
}
