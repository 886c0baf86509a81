//! Shared set-up for the e2e tests.

pub use mxtoken_tests::poll;
pub use mxtoken_tests::{BrokerEnv, Matrix, ProfileSpec, Synapse};
use std::process::Output;

/// A started broker with one `login` profile for a fresh admin account.
pub struct Fixture {
    pub env: BrokerEnv,
    pub hs: Matrix,
    pub user: String,
    pub password: String,
    pub synapse: &'static Synapse,
}

impl Fixture {
    /// A fresh admin on the shared homeserver, and a broker for it.
    pub fn login() -> Self {
        Self::with(|user, pw| vec![ProfileSpec::login("admin", user, pw)])
    }

    /// A fresh admin on the shared homeserver and a broker with `profiles`.
    pub fn with(profiles: impl FnOnce(&str, &str) -> Vec<ProfileSpec>) -> Self {
        let synapse = Synapse::shared();
        let (user, password) = synapse.new_user("admin", true);
        let mut env = BrokerEnv::new(&synapse.url, &profiles(&user, &password));
        env.start();
        Self {
            env,
            hs: Matrix::new(&synapse.url),
            user,
            password,
            synapse,
        }
    }

    /// Device ids of the fixture's admin account.
    pub fn devices(&self) -> Vec<String> {
        self.hs.device_ids(self.synapse.auditor_token(), &self.user)
    }

    /// `mxtoken get ARGS` → the token; panics with stderr on failure.
    pub fn get(&self, args: &[&str]) -> String {
        let mut all = vec!["get"];
        all.extend_from_slice(args);
        let out = self.env.run(&all);
        assert_success(&out);
        let token = stdout(&out);
        assert!(
            token.ends_with('\n') && token.lines().count() == 1,
            "get printed {token:?}"
        );
        token.trim_end().to_owned()
    }

    /// Asserts the broker's log holds neither the password nor `tokens`.
    pub fn assert_log_clean(&self, tokens: &[&str]) {
        let log = self.env.log();
        assert!(!log.contains(&self.password), "password in broker log");
        for t in tokens {
            assert!(!log.contains(t), "token in broker log");
        }
    }
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

pub fn assert_success(o: &Output) {
    assert!(
        o.status.success(),
        "exit {:?}; stderr: {}",
        o.status.code(),
        stderr(o)
    );
}
