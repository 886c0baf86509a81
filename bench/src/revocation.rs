//! Issue 8 §3: how soon a token dies after its lease ends — after the
//! wrapped command exits, after the client is killed with SIGKILL, and after
//! the TTL — judged by the homeserver itself (a tight `whoami` loop).
//!
//! The wrapped command is this benchmark's own binary in child mode
//! ([`stamp_child`]): it hands the token back over a pipe (never a file),
//! waits for "go", writes the wall-clock time as its last act and exits.

use crate::latency::Subject;
use crate::report::Report;
use crate::stats::summarize_ms;
use anyhow::{Context, Result, bail, ensure};
use mxtoken_proto::{AccessToken, CreateLease};
use std::io::{BufRead, Write};
use std::process::Stdio;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

/// The argument that makes this binary the wrapped command.
pub const CHILD_ARG: &str = "__stamp-child";

/// The longest a token may outlive its lease before we call it a failure.
const GIVE_UP: Duration = Duration::from_secs(10);

/// Child mode: prints `$MATRIX_ADMIN_TOKEN`, waits for a line on stdin, then
/// prints the time (Unix ns) and exits at once. EOF instead of a line exits
/// without a stamp (the SIGKILL runs).
pub fn stamp_child() -> std::process::ExitCode {
    let token = std::env::var("MATRIX_ADMIN_TOKEN").unwrap_or_default();
    let mut out = std::io::stdout().lock();
    if writeln!(out, "{token}").and_then(|()| out.flush()).is_err() {
        return std::process::ExitCode::FAILURE;
    }
    drop(token);
    let mut line = String::new();
    if std::io::stdin().lock().read_line(&mut line).unwrap_or(0) == 0 {
        return std::process::ExitCode::SUCCESS;
    }
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let _ = writeln!(out, "{}", now.as_nanos());
    let _ = out.flush();
    std::process::ExitCode::SUCCESS
}

fn since(later: SystemTime, earlier: SystemTime) -> f64 {
    match later.duration_since(earlier) {
        Ok(d) => d.as_secs_f64() * 1e3,
        Err(e) => -e.duration().as_secs_f64() * 1e3,
    }
}

/// How a lease ends in [`end_sample`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    /// The wrapped command exits normally.
    Exit,
    /// `mxtoken exec` is killed with SIGKILL.
    Kill,
}

/// One `mxtoken exec` run ended by `how`: ms from the end to the refusal.
async fn end_sample(s: &Subject<'_>, how: End) -> Result<f64> {
    let exe = std::env::current_exe()?;
    let exe = exe.to_str().context("non-UTF-8 benchmark path")?;
    let mut child = s
        .mxtoken(&["exec", "--profile", s.profile, "--", exe, CHILD_ARG])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()?;
    let mut stdin = child.stdin.take().context("stdin")?;
    let mut lines = BufReader::new(child.stdout.take().context("stdout")?).lines();
    let token = AccessToken::new(
        lines
            .next_line()
            .await?
            .context("the child sent no token")?,
    );
    ensure!(
        s.site.direct.alive(&token).await?,
        "the token was dead before the lease ended"
    );
    let latency = match how {
        End::Exit => {
            stdin.write_all(b"go\n").await?;
            stdin.flush().await?;
            let (dead_at, _) = s.site.direct.wait_dead(&token, GIVE_UP).await?;
            let ns: u64 = lines
                .next_line()
                .await?
                .context("the child sent no exit stamp")?
                .parse()?;
            let status = child.wait().await?;
            ensure!(status.success(), "mxtoken exec failed: {status}");
            since(dead_at, UNIX_EPOCH + Duration::from_nanos(ns))
        }
        End::Kill => {
            let pid = child
                .id()
                .and_then(|p| i32::try_from(p).ok())
                .and_then(rustix::process::Pid::from_raw)
                .context("no pid")?;
            let killed_at = SystemTime::now();
            rustix::process::kill_process(pid, rustix::process::Signal::KILL)?;
            let (dead_at, _) = s.site.direct.wait_dead(&token, GIVE_UP).await?;
            // EOF ends the orphaned child.
            drop(stdin);
            let _ = child.wait().await;
            since(dead_at, killed_at)
        }
    };
    Ok(latency)
}

/// One lease ended by its TTL: ms from `expires_at` to the refusal
/// (negative if the token died early).
async fn ttl_sample(s: &Subject<'_>, ttl: Duration) -> Result<f64> {
    let req = CreateLease {
        profile: Some(s.profile.to_owned()),
        ttl: Some(format!("{}ms", ttl.as_millis())),
        purpose: Some("benchmark ttl".to_owned()),
        ..CreateLease::default()
    };
    let g = s.site.client.create_lease(&req).await?;
    let expires = g.lease.expires_at.to_system_time();
    ensure!(
        s.site.direct.alive(&g.token).await?,
        "the token was dead at once"
    );
    // Start probing shortly before the deadline so an early death shows.
    if let Ok(wait) = expires.duration_since(SystemTime::now()) {
        tokio::time::sleep(wait.saturating_sub(Duration::from_millis(50))).await;
    }
    let (dead_at, _) = s.site.direct.wait_dead(&g.token, GIVE_UP).await?;
    Ok(since(dead_at, expires))
}

/// §3 for one subject: `exits` normal exits, `kills` SIGKILLs, `ttls` TTL ends.
pub async fn revocation(
    rep: &mut Report,
    s: &Subject<'_>,
    exits: usize,
    kills: usize,
    ttls: usize,
) -> Result<()> {
    let (id, label) = (s.id, s.label);
    // The probe's own round trip bounds the resolution of every figure here.
    let mut probe = Vec::new();
    let token = s.direct_mint(usize::MAX).await?;
    for _ in 0..exits.clamp(20, 200) {
        let t = std::time::Instant::now();
        if !s.site.direct.alive(&token).await? {
            bail!("the probe token died");
        }
        probe.push(t.elapsed().as_secs_f64() * 1e3);
    }
    s.site.direct.logout(&token).await?;
    // Not a baseline: the time resolution of the figures below.
    rep.info(
        &format!("revoke.{id}.probe"),
        &format!("{label}: one whoami probe (resolution)"),
        summarize_ms(probe),
    );
    // The baseline: the fastest a token can die is one direct /logout (§1).
    let base = format!("release.{id}.direct_logout");
    let run = |n: usize, how: Option<End>| async move {
        let mut v = Vec::with_capacity(n);
        for _ in 0..n {
            v.push(match how {
                Some(e) => end_sample(s, e).await?,
                None => ttl_sample(s, Duration::from_secs(1)).await?,
            });
        }
        anyhow::Ok(v)
    };
    if exits > 0 {
        let v = run(exits, Some(End::Exit)).await?;
        rep.measured(
            &format!("revoke.{id}.after_exit"),
            &format!("{label}: command exit -> token refused"),
            &base,
            summarize_ms(v),
            None,
        );
    }
    if kills > 0 {
        let v = run(kills, Some(End::Kill)).await?;
        rep.measured(
            &format!("revoke.{id}.after_sigkill"),
            &format!("{label}: SIGKILL of mxtoken exec -> token refused"),
            &base,
            summarize_ms(v),
            None,
        );
    }
    if ttls > 0 {
        let v = run(ttls, None).await?;
        rep.measured(
            &format!("revoke.{id}.ttl_lateness"),
            &format!("{label}: refused after expires_at (1 s TTL), lateness"),
            &base,
            summarize_ms(v),
            None,
        );
    }
    Ok(())
}
