//! `mxtoken init`: check credentials with one real login, seal the password
//! in the chosen store, and add the profile to config.toml. `import` shares
//! everything after reading its env file ([`onboard`]).

use crate::error::ClientError;
use crate::homeserver_check;
use crate::profile_config::{self, PasswordEntry};
use crate::unlock::{prompt_secret, read_stdin_secret};
use clap::Args;
use mxtoken_store::{age_file, identity, os_keyring};
use secrecy::SecretString;
use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use url::Url;

/// The keyring service name `init` and `import` store under.
pub const KEYRING_SERVICE: &str = "mxtoken";

/// Where to seal the password.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreChoice {
    /// The OS keyring.
    Keyring,
    /// An age file for `identity.txt` beside the config (created if missing).
    AgeIdentity,
    /// An age file with a passphrase; the broker starts locked.
    AgePassphrase,
    /// An age file for an SSH key (its `.pub` must sit beside it).
    AgeSsh(PathBuf),
}

impl std::str::FromStr for StoreChoice {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "keyring" => Ok(Self::Keyring),
            "age-identity" => Ok(Self::AgeIdentity),
            "age-passphrase" => Ok(Self::AgePassphrase),
            _ => match s.strip_prefix("age-ssh:") {
                Some(k) if !k.is_empty() => Ok(Self::AgeSsh(PathBuf::from(k))),
                _ => Err("use keyring, age-identity, age-passphrase or age-ssh:KEYFILE".into()),
            },
        }
    }
}

/// Options `init` and `import` share.
#[derive(Debug, Args)]
pub struct StoreArgs {
    /// Profile name in config.toml
    #[arg(long, short = 'p', value_name = "NAME", default_value = "admin")]
    pub profile: String,
    /// Where to keep the password: keyring, age-identity, age-passphrase or age-ssh:KEYFILE
    #[arg(long, value_name = "STORE", default_value = "age-identity")]
    pub store: StoreChoice,
    /// For --store age-passphrase: read the passphrase from this file's first line instead of the terminal
    #[arg(long, value_name = "FILE")]
    pub passphrase_file: Option<PathBuf>,
    /// Config file to write [default: $MXTOKEN_CONFIG, else $XDG_CONFIG_HOME/mxtoken/config.toml]
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
}

/// `mxtoken init`.
#[derive(Debug, Args)]
pub struct InitArgs {
    #[command(flatten)]
    pub store: StoreArgs,
    /// Homeserver base URL [asked on the terminal when missing]
    #[arg(long, value_name = "URL")]
    pub homeserver: Option<String>,
    /// Admin user id, e.g. @admin:example.com [asked on the terminal when missing]
    #[arg(long, value_name = "MXID")]
    pub user: Option<String>,
    /// Read the password from standard input instead of the terminal.
    #[arg(long)]
    pub password_stdin: bool,
}

/// What [`onboard`] is given.
#[derive(Debug)]
pub struct Credentials {
    /// Homeserver base URL.
    pub homeserver: Url,
    /// The admin's user id.
    pub user: String,
    /// The admin's password.
    pub password: SecretString,
}

/// What [`onboard`] did, to tell the user.
#[derive(Debug)]
pub struct Onboarded {
    /// The config file written.
    pub config: PathBuf,
    /// Where the password went, in words.
    pub stored_in: String,
    /// Whether the broker will start locked.
    pub needs_unlock: bool,
}

/// Runs `init`; prints its report on stderr.
pub fn run(args: InitArgs) -> ExitCode {
    match init(args) {
        Ok(done) => {
            report(&done);
            ExitCode::SUCCESS
        }
        Err(e) => fail(&e),
    }
}

pub(crate) fn fail(e: &ClientError) -> ExitCode {
    eprintln!("mxtoken: {e}");
    ExitCode::from(e.exit_code())
}

pub(crate) fn report(done: &Onboarded) {
    eprintln!(
        "mxtoken: password checked with the homeserver and stored in {}; profile written to {}",
        done.stored_in,
        done.config.display()
    );
    if done.needs_unlock {
        eprintln!(
            "mxtoken: start (or restart) mxtokend, then run `mxtoken unlock` to give it the passphrase"
        );
    } else {
        eprintln!("mxtoken: start (or restart) mxtokend to use it");
    }
}

fn init(args: InitArgs) -> Result<Onboarded, ClientError> {
    let interactive = std::io::stdin().is_terminal();
    let homeserver = match args.homeserver {
        Some(h) => h,
        None if interactive => ask_line("Homeserver URL (e.g. https://matrix.example.com): ")?,
        None => return Err(missing("--homeserver URL")),
    };
    let homeserver = homeserver_check::parse_base_url(&homeserver)?;
    let user = match args.user {
        Some(u) => u,
        None if interactive => ask_line("Admin user id (e.g. @admin:example.com): ")?,
        None => return Err(missing("--user MXID")),
    };
    let password = if args.password_stdin {
        read_stdin_secret("password")?
    } else {
        prompt_secret(&format!("Password of {user}: "))?
    };
    let creds = Credentials {
        homeserver,
        user,
        password: SecretString::from(password.as_str()),
    };
    drop(password);
    onboard(&args.store, &creds)
}

fn missing(flag: &str) -> ClientError {
    ClientError::Invalid(format!(
        "standard input is not a terminal, so nothing can be asked; pass {flag}"
    ))
}

fn ask_line(prompt: &str) -> Result<String, ClientError> {
    eprint!("{prompt}");
    let _ = std::io::stderr().flush();
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(|e| ClientError::Invalid(format!("cannot read the answer: {e}")))?;
    let line = line.trim().to_owned();
    if line.is_empty() {
        return Err(ClientError::Invalid("nothing was typed; try again".into()));
    }
    Ok(line)
}

fn check_mxid(user: &str) -> Result<(), ClientError> {
    match user.strip_prefix('@').and_then(|r| r.split_once(':')) {
        Some((l, s)) if !l.is_empty() && !s.is_empty() => Ok(()),
        _ => Err(ClientError::Invalid(format!(
            "{user:?} is not a full Matrix user id; write it as @name:server.name"
        ))),
    }
}

/// Checks the credentials, seals the password, writes the profile.
pub fn onboard(args: &StoreArgs, creds: &Credentials) -> Result<Onboarded, ClientError> {
    let name = &args.profile;
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Err(ClientError::Invalid(format!(
            "{name:?} is not a valid profile name; use letters, digits, '-' and '_'"
        )));
    }
    check_mxid(&creds.user)?;
    let config = config_path(args.config.as_deref());
    let dir = config
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."));
    // Get the passphrase before the login, so a typo costs no login attempt.
    let passphrase = match (&args.store, &args.passphrase_file) {
        (StoreChoice::AgePassphrase, Some(f)) => Some(read_passphrase_file(f)?),
        (StoreChoice::AgePassphrase, None) => Some(ask_new_passphrase()?),
        (_, Some(_)) => {
            return Err(ClientError::Invalid(
                "--passphrase-file only applies to --store age-passphrase".into(),
            ));
        }
        _ => None,
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| ClientError::Other(format!("cannot start the async runtime: {e}")))?;
    rt.block_on(homeserver_check::check_login(
        &creds.homeserver,
        &creds.user,
        &creds.password,
    ))?;
    drop(rt);
    create_private_dir(&dir)?;
    let store_err = |e: mxtoken_store::StoreError| ClientError::Other(e.to_string());
    let age_name = format!("{name}.age");
    let age_path = dir.join(&age_name);
    let (entry, stored_in, needs_unlock) = match &args.store {
        StoreChoice::Keyring => {
            let backend = os_keyring::set(KEYRING_SERVICE, &creds.user, &creds.password)
                .map_err(|e| ClientError::Other(e.to_string()))?;
            (
                PasswordEntry::Keyring {
                    service: KEYRING_SERVICE.into(),
                },
                format!(
                    "{backend} (service {KEYRING_SERVICE:?}, account {})",
                    creds.user
                ),
                false,
            )
        }
        StoreChoice::AgeIdentity => {
            let id_path = dir.join("identity.txt");
            let recipient = if id_path.exists() {
                identity::recipient_of_age_identity(&id_path).map_err(store_err)?
            } else {
                identity::generate(&id_path).map_err(store_err)?
            };
            age_file::seal_to(&recipient, &creds.password, &age_path).map_err(store_err)?;
            (
                PasswordEntry::AgeIdentity {
                    age_file: age_name.clone(),
                    identity: "identity.txt".into(),
                },
                format!(
                    "{} (decrypts with {})",
                    age_path.display(),
                    id_path.display()
                ),
                false,
            )
        }
        StoreChoice::AgeSsh(key) => {
            let key = std::path::absolute(key).unwrap_or_else(|_| key.clone());
            identity::check_private(&key).map_err(store_err)?;
            let recipient = identity::recipient_of_ssh_key(&key).map_err(store_err)?;
            age_file::seal_to(&recipient, &creds.password, &age_path).map_err(store_err)?;
            (
                PasswordEntry::AgeIdentity {
                    age_file: age_name.clone(),
                    identity: key.display().to_string(),
                },
                format!(
                    "{} (decrypts with SSH key {})",
                    age_path.display(),
                    key.display()
                ),
                false,
            )
        }
        StoreChoice::AgePassphrase => {
            let Some(p) = passphrase.as_ref() else {
                return Err(ClientError::Other("no passphrase".into()));
            };
            age_file::seal_with_passphrase(p, &creds.password, &age_path).map_err(store_err)?;
            (
                PasswordEntry::AgePassphrase {
                    age_file: age_name.clone(),
                },
                format!("{} (opens with your passphrase)", age_path.display()),
                true,
            )
        }
    };
    let text = match std::fs::read_to_string(&config) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => {
            return Err(ClientError::Other(format!(
                "cannot read config file {}: {e}",
                config.display()
            )));
        }
    };
    let homeserver = creds.homeserver.as_str().trim_end_matches('/');
    let new = profile_config::upsert(&text, &config, name, homeserver, &creds.user, &entry)?;
    age_file::write_private_atomically(&config, new.as_bytes()).map_err(|e| {
        ClientError::Other(format!(
            "cannot write config file {}: {e}",
            config.display()
        ))
    })?;
    Ok(Onboarded {
        config,
        stored_in,
        needs_unlock,
    })
}

fn config_path(explicit: Option<&Path>) -> PathBuf {
    let var = |k: &str| std::env::var(k).ok();
    mxtoken_proto::resolve_config_path(&mxtoken_proto::ConfigLookup {
        explicit: explicit.map(Path::to_path_buf),
        env_config: var("MXTOKEN_CONFIG"),
        xdg_config_home: var("XDG_CONFIG_HOME"),
        home: var("HOME"),
    })
}

fn create_private_dir(dir: &Path) -> Result<(), ClientError> {
    use std::os::unix::fs::DirBuilderExt;
    if dir.is_dir() {
        return Ok(());
    }
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| ClientError::Other(format!("cannot create {}: {e}", dir.display())))
}

fn read_passphrase_file(path: &Path) -> Result<SecretString, ClientError> {
    let text = zeroize::Zeroizing::new(std::fs::read_to_string(path).map_err(|e| {
        ClientError::Invalid(format!(
            "cannot read passphrase file {}: {e}",
            path.display()
        ))
    })?);
    let line = text.lines().next().unwrap_or("");
    if line.is_empty() {
        return Err(ClientError::Invalid(format!(
            "passphrase file {} is empty; put the passphrase on its first line",
            path.display()
        )));
    }
    Ok(SecretString::from(line))
}

fn ask_new_passphrase() -> Result<SecretString, ClientError> {
    if !std::io::stdin().is_terminal() {
        return Err(ClientError::Invalid(
            "there is no terminal to ask for the new passphrase on; pass --passphrase-file FILE"
                .into(),
        ));
    }
    let first = prompt_secret("New passphrase for the password file: ")?;
    let second = prompt_secret("Same passphrase again: ")?;
    if *first != *second {
        return Err(ClientError::Invalid(
            "the two passphrases differ; run the command again".into(),
        ));
    }
    Ok(SecretString::from(first.as_str()))
}
