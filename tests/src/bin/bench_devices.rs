//! `mxtoken-bench-devices [N] [--via-api]`: the "Device audit scale"
//! benchmark of BENCHMARKS.md. Starts a private Synapse, gives a user N
//! never-used devices (default 10,000; written to the database, or made
//! through the admin API with `--via-api`, which is much slower), and times
//! `mxtoken devices` listing them and revoking them through a real broker.
//! Build the binaries first (`cargo build --workspace --bins`).

use mxtoken_tests::devices::{Creation, device_audit_scale};

fn main() {
    let mut n = 10_000;
    let mut creation = Creation::Database;
    for arg in std::env::args().skip(1) {
        match (arg.as_str(), arg.parse::<usize>()) {
            ("--via-api", _) => creation = Creation::AdminApi,
            (_, Ok(count)) => n = count,
            _ => {
                eprintln!("usage: mxtoken-bench-devices [N] [--via-api]");
                std::process::exit(2);
            }
        }
    }
    let hs = mxtoken_tests::Synapse::start(mxtoken_tests::RateLimits::Raised);
    let t = device_audit_scale(&hs, n, creation);
    println!(
        "devices={n} creation={creation:?} create_s={:.2} list_s={:.2} revoke_s={:.2} list_plus_revoke_s={:.2}",
        t.create.as_secs_f64(),
        t.list.as_secs_f64(),
        t.revoke.as_secs_f64(),
        (t.list + t.revoke).as_secs_f64()
    );
}
