//! `mxtoken audit`: reads the broker's audit log straight from the state
//! directory rather than through the broker, so the record of what happened
//! stays readable when the broker is stopped or broken — which is when one
//! usually wants it. The file is the owner's (0600), as is the broker.

use crate::cli::AuditArgs;
use crate::error::ClientError;
use mxtoken_proto::{AUDIT_LOG_FILE, AuditRecord, StateLookup, Timestamp, resolve_state_dir};
use std::time::SystemTime;

/// `mxtoken audit`: the events since `--since`, as a table or JSON lines.
pub fn show(args: &AuditArgs) -> Result<String, ClientError> {
    let since = args.since.as_deref().map(parse_since).transpose()?;
    let env = |k: &str| std::env::var(k).ok();
    let dir = resolve_state_dir(&StateLookup {
        explicit: args.state_dir.clone(),
        env_state_dir: env("MXTOKEN_STATE_DIR"),
        xdg_state_home: env("XDG_STATE_HOME"),
        home: env("HOME"),
    });
    let path = dir.join(AUDIT_LOG_FILE);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            eprintln!(
                "mxtoken: no audit log at {} yet (the broker writes it from its first lease; --state-dir names another)",
                path.display()
            );
            return Ok(String::new());
        }
        Err(e) => {
            return Err(ClientError::Other(format!(
                "cannot read the audit log {}: {e}",
                path.display()
            )));
        }
    };
    let mut out = String::new();
    let mut damaged = 0;
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let Ok(rec) = serde_json::from_str::<AuditRecord>(line) else {
            damaged += 1;
            continue;
        };
        if since.is_some_and(|s| rec.at < s) {
            continue;
        }
        if args.json {
            out.push_str(line.trim());
            out.push('\n');
        } else {
            out.push_str(&row(&rec));
        }
    }
    if damaged > 0 {
        eprintln!(
            "mxtoken: skipped {damaged} unreadable line(s) of {}",
            path.display()
        );
    }
    Ok(out)
}

fn row(r: &AuditRecord) -> String {
    let mut who = String::new();
    if let Some(uid) = r.peer_uid {
        who.push_str(&format!("uid {uid}"));
    }
    if let Some(pid) = r.peer_pid {
        who.push_str(&format!(" pid {pid}"));
    }
    if let Some(exe) = &r.peer_exe {
        who.push_str(&format!(" {exe}"));
    }
    let mut line = format!(
        "{} {:<14} {:<22} {:<12} {}",
        r.at,
        r.event.to_string(),
        r.lease_id.as_deref().unwrap_or("-"),
        r.profile.as_deref().unwrap_or("-"),
        who.trim_start()
    );
    if let Some(p) = &r.purpose {
        line.push_str(&format!(" purpose={p:?}"));
    }
    if let Some(d) = &r.detail {
        line.push_str(&format!(": {d}"));
    }
    line.push('\n');
    line
}

/// `--since`: a duration back from now (`90m`, `2d`) or an RFC 3339 time.
fn parse_since(text: &str) -> Result<Timestamp, ClientError> {
    if let Ok(d) = humantime::parse_duration(text) {
        let t = SystemTime::now()
            .checked_sub(d)
            .unwrap_or(SystemTime::UNIX_EPOCH);
        return Ok(Timestamp::from_system_time(t));
    }
    humantime::parse_rfc3339_weak(text)
        .map(Timestamp::from_system_time)
        .map_err(|_| {
            ClientError::Usage(format!(
                "--since {text:?} is neither a duration (\"1h\", \"2d\") nor a time (\"2026-12-03T16:00:00Z\")"
            ))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_takes_durations_and_times() {
        assert_eq!(
            parse_since("1970-01-01T00:00:01Z").expect("time"),
            Timestamp::from_unix_ms(1000)
        );
        assert!(parse_since("1h").is_ok());
        let e = parse_since("yesterday").expect_err("bad");
        assert!(matches!(e, ClientError::Usage(_)), "{e}");
    }
}
