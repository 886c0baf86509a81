//! The README's quickstart, runnable on a fresh machine: a throwaway local
//! Synapse, a generated admin password sealed with `age`, `mxtokend`, and a
//! real `mxtoken exec` making an admin API call — then proof the token died.

use mxtoken_tests::{BrokerEnv, Matrix, ProfileSpec, RateLimits, Synapse};
use std::io::Read;
use std::process::ExitCode;

fn step(text: &str) {
    eprintln!("\n==> {text}");
}

fn random_password() -> String {
    let mut bytes = [0u8; 18];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .expect("read /dev/urandom");
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn main() -> ExitCode {
    step("starting a throwaway Synapse on 127.0.0.1 (stock login rate limits)");
    let synapse = Synapse::start(RateLimits::Stock);
    eprintln!("    homeserver: {}", synapse.url);

    step("creating an admin account with a generated password");
    let password = random_password();
    let admin = synapse.register("admin", &password, true);
    eprintln!(
        "    admin: {admin} (the password only ever exists sealed on disk and in mxtokend's memory)"
    );

    step("sealing the password with `age` and starting mxtokend");
    let mut env = BrokerEnv::new(
        &synapse.url,
        &[ProfileSpec::login("admin", &admin, &password)],
    );
    drop(password);
    env.start();
    eprintln!("    config: {}", env.config_path().display());
    eprintln!("    socket: {}", env.socket().display());

    step("mxtoken exec -- sh -c 'curl ... /_synapse/admin/v2/users ...'");
    let script = r#"printf %s "$MATRIX_ADMIN_TOKEN" > "$HOME/.demo-token"
echo "    inside: lease $MXTOKEN_LEASE_ID, acting as $MATRIX_ADMIN_USER"
curl -sf -H "Authorization: Bearer $MATRIX_ADMIN_TOKEN" "$MATRIX_HOMESERVER_URL/_synapse/admin/v2/users?limit=10" \
  | python3 -c 'import json,sys; d=json.load(sys.stdin); print("    admin API lists %d user(s): %s" % (d["total"], ", ".join(u["name"] for u in d["users"])))'"#;
    let status = env
        .mxtoken()
        .args(["exec", "--purpose", "quickstart", "--", "sh", "-c", script])
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .status()
        .expect("run mxtoken exec");
    eprintln!(
        "    mxtoken exec exited with {}",
        status.code().unwrap_or(-1)
    );

    step("asking the homeserver about that token now");
    let token_file = env.home().join(".demo-token");
    let token = std::fs::read_to_string(&token_file).unwrap_or_default();
    let _ = std::fs::remove_file(&token_file);
    let answer = Matrix::new(&synapse.url).whoami(&token);
    eprintln!(
        "    whoami -> HTTP {} {}",
        answer.status,
        answer.errcode().unwrap_or("")
    );
    let dead = answer.status == 401 && answer.errcode() == Some("M_UNKNOWN_TOKEN");
    if status.success() && dead {
        eprintln!(
            "\nOK: the command got a working admin token, and it was revoked the moment the command exited."
        );
        ExitCode::SUCCESS
    } else {
        eprintln!(
            "\nFAILED: exec status {status}, token dead: {dead}. Broker log:\n{}",
            env.log()
        );
        ExitCode::FAILURE
    }
}
