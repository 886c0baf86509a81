//! Issue 8 §6: device audit scale. The devices benchmark owns the method
//! (`mxtoken_tests::devices::device_audit_scale`, see BENCHMARKS.md); this
//! runs it on a private homeserver (it pauses the server to write the
//! devices) so the figure lands in the same table and JSON.

use crate::report::Report;
use mxtoken_tests::devices::{Creation, device_audit_scale};
use mxtoken_tests::{RateLimits, Synapse};

/// `mxtoken devices` listing, then revoking, `n` never-used devices.
pub fn device_audit(rep: &mut Report, n: usize) {
    let hs = Synapse::start(RateLimits::Raised);
    // Panics (with the reason) if the outcome is wrong; times are not judged there.
    let t = device_audit_scale(&hs, n, Creation::Database);
    let s = |d: std::time::Duration| d.as_secs_f64();
    rep.scalar("devices.n", "devices of one user", n as f64, "");
    rep.scalar(
        "devices.list",
        "`mxtoken devices --json`: lease, list all, release",
        s(t.list),
        "s",
    );
    rep.scalar(
        "devices.revoke",
        "`mxtoken devices --never-used --revoke`: lease, list, revoke, release",
        s(t.revoke),
        "s",
    );
    rep.scalar("devices.total", "list + revoke", s(t.list + t.revoke), "s");
    rep.target(
        &format!("device audit: list + revoke of {n} devices <= 15 s (issue 6)"),
        s(t.list + t.revoke),
        15.0,
        "s",
    );
}
