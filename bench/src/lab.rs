//! The rig: real Synapses on loopback, real brokers, and direct clients.
//!
//! Two homeservers, because bcrypt's cost is fixed into each password hash
//! when the account is registered: `main` hashes cheaply (cost 4, as the
//! tests do) so the broker's own overhead on a `login` lease stands out from
//! the hash, and `stock` keeps Synapse's default cost (12), which is what a
//! real server's `/login` costs.

use crate::direct::Direct;
use anyhow::Result;
use mxtoken_client::api::BrokerClient;
use mxtoken_proto::AccessToken;
use mxtoken_tests::{BrokerEnv, ProfileSpec, RateLimits, Synapse};

/// The `admin-api` profile on `main`.
pub const API: &str = "api";
/// The `login` profile (on `main` and on `stock`).
pub const LOGIN: &str = "login";

/// An account and its password (kept in memory only).
#[derive(Debug, Clone)]
pub struct Account {
    /// Matrix user id.
    pub user: String,
    /// Password.
    pub password: String,
}

/// One homeserver with its broker.
#[derive(Debug)]
pub struct Site {
    /// The homeserver.
    pub synapse: Synapse,
    /// The broker's home, config and process.
    pub env: BrokerEnv,
    /// Direct keep-alive client to the homeserver (the baseline).
    pub direct: Direct,
    /// In-process client of the broker's socket.
    pub client: BrokerClient,
}

impl Site {
    /// The broker's pid.
    pub fn broker_pid(&self) -> u32 {
        self.env.pid()
    }
}

/// Everything a run measures against.
#[derive(Debug)]
pub struct Lab {
    /// Cheap-bcrypt homeserver; broker profiles [`API`] and [`LOGIN`].
    pub main: Site,
    /// Stock-bcrypt homeserver; broker profile [`LOGIN`].
    pub stock: Site,
    /// The admin-api minter (its password is the broker's).
    pub minter: Account,
    /// The account admin-api leases act as.
    pub lease_user: String,
    /// The `login` profile's account on `main`.
    pub login_user: Account,
    /// The `login` profile's account on `stock`.
    pub stock_user: Account,
}

fn account(s: &Synapse, prefix: &str) -> Account {
    let (user, password) = s.new_user(prefix, true);
    Account { user, password }
}

fn site(synapse: Synapse, profiles: &[ProfileSpec]) -> Result<Site> {
    let mut env = BrokerEnv::new(&synapse.url, profiles);
    // One uid holds up to 1,000 leases at once here: lift the per-uid cap
    // (default 64) and the connection cap for the concurrency rounds.
    env.prepend_config("max_leases_per_uid = 5000\nmax_connections = 4096");
    // The shipped default: benchmarks must not time debug logging.
    env.with_log_filter("info").start();
    let client = BrokerClient::new(env.socket());
    Ok(Site {
        direct: Direct::new(&synapse.url)?,
        synapse,
        env,
        client,
    })
}

impl Lab {
    /// Starts both homeservers (in parallel), registers the accounts and
    /// starts one broker per homeserver.
    pub fn start() -> Result<Lab> {
        // Every test limit out of the way: these numbers are not about 429s.
        let (main, stock) = std::thread::scope(|s| {
            let stock = s.spawn(|| Synapse::start_with(RateLimits::Raised, None));
            let main = Synapse::start(RateLimits::Raised);
            (main, stock.join())
        });
        let stock = stock.map_err(|_| anyhow::anyhow!("starting the stock Synapse panicked"))?;
        let minter = account(&main, "minter");
        let lease_user = account(&main, "ops").user;
        let login_user = account(&main, "loginer");
        let stock_user = account(&stock, "stock");
        // Registered now, not in the middle of the measurements.
        main.auditor_token();
        let main = site(
            main,
            &[
                ProfileSpec::admin_api(API, &minter.user, &minter.password, &lease_user),
                ProfileSpec::login(LOGIN, &login_user.user, &login_user.password),
            ],
        )?;
        let stock = site(
            stock,
            &[ProfileSpec::login(
                LOGIN,
                &stock_user.user,
                &stock_user.password,
            )],
        )?;
        Ok(Lab {
            main,
            stock,
            minter,
            lease_user,
            login_user,
            stock_user,
        })
    }

    /// A root session of the minter for the direct admin-API baseline, like
    /// the broker's own (one password login).
    pub async fn direct_root(&self) -> Result<AccessToken> {
        self.main
            .direct
            .login(&self.minter.user, &self.minter.password, "BENCH_ROOT")
            .await
    }
}
