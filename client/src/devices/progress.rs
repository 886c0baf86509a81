//! Revocation progress on stderr: a bar on a terminal, a line per batch
//! otherwise (cron mails and CI logs stay readable).

use std::io::{IsTerminal, Write};

/// Reports how many of `total` devices are revoked so far.
#[derive(Debug)]
pub struct Progress {
    total: usize,
    terminal: bool,
    quiet: bool,
}

impl Progress {
    /// Progress for `total` devices sent in batches of `batch`; silent when
    /// one batch does it all.
    pub fn new(total: usize, batch: usize) -> Self {
        Self {
            total,
            terminal: std::io::stderr().is_terminal(),
            quiet: total <= batch,
        }
    }

    /// `done` devices are revoked.
    pub fn update(&self, done: usize) {
        if self.quiet {
            return;
        }
        let mut err = std::io::stderr().lock();
        if self.terminal {
            let _ = write!(err, "\r\x1b[K{}", bar(done, self.total, 30));
            let _ = err.flush();
        } else {
            let _ = writeln!(err, "mxtoken: revoked {done} of {} devices", self.total);
        }
    }

    /// Clears the bar.
    pub fn finish(&self) {
        if self.terminal && !self.quiet {
            let _ = write!(std::io::stderr(), "\r\x1b[K");
        }
    }
}

fn bar(done: usize, total: usize, width: usize) -> String {
    let filled = (done * width)
        .checked_div(total)
        .unwrap_or(width)
        .min(width);
    format!(
        "mxtoken: revoking [{}{}] {done}/{total}",
        "#".repeat(filled),
        "-".repeat(width - filled)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bar_fills_in_proportion() {
        assert_eq!(bar(0, 10, 10), "mxtoken: revoking [----------] 0/10");
        assert_eq!(bar(5, 10, 10), "mxtoken: revoking [#####-----] 5/10");
        assert_eq!(bar(10, 10, 10), "mxtoken: revoking [##########] 10/10");
        assert_eq!(bar(0, 0, 4), "mxtoken: revoking [####] 0/0");
    }
}
