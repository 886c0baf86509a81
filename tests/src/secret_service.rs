//! A real Secret Service for tests: a private D-Bus session bus started with
//! `dbus-run-session`, and `gnome-keyring-daemon` on it, unlocked with a
//! throwaway password. Everything dies when this value is dropped.

use std::io::Write;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A session bus with GNOME Keyring's secrets component on it.
#[derive(Debug)]
pub struct SecretService {
    bus: Child,
    /// `DBUS_SESSION_BUS_ADDRESS` of the bus.
    pub address: String,
}

impl SecretService {
    /// Starts the bus and the keyring daemon with `home` as HOME (the keyring
    /// files go under it).
    pub fn start(home: &Path) -> Self {
        let addr_file = home.join("dbus-address");
        // dbus-run-session keeps the bus alive as long as its child runs; the
        // child writes the address down and waits for stdin to close.
        let bus = Command::new("dbus-run-session")
            .arg("--")
            .arg("sh")
            .arg("-c")
            .arg("printf '%s' \"$DBUS_SESSION_BUS_ADDRESS\" > \"$1.tmp\" && mv \"$1.tmp\" \"$1\" && exec cat >/dev/null")
            .arg("sh")
            .arg(&addr_file)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", home)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .expect("spawn dbus-run-session (install dbus)");
        let address = crate::poll::until("the D-Bus session bus", Duration::from_secs(20), || {
            std::fs::read_to_string(&addr_file)
                .ok()
                .filter(|a| !a.is_empty())
        });
        let mut keyring = Command::new("gnome-keyring-daemon")
            .args(["--unlock", "--components=secrets", "--daemonize"])
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", home)
            .env("XDG_DATA_HOME", home.join(".local/share"))
            .env("XDG_RUNTIME_DIR", home.join("run"))
            .env("DBUS_SESSION_BUS_ADDRESS", &address)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn gnome-keyring-daemon (install gnome-keyring)");
        keyring
            .stdin
            .take()
            .expect("stdin")
            .write_all(b"throwaway-keyring-password")
            .expect("unlock password");
        let _ = keyring.wait();
        let svc = Self { bus, address };
        crate::poll::until(
            "org.freedesktop.secrets on the bus",
            Duration::from_secs(20),
            || {
                Command::new("dbus-send")
                    .args([
                        "--session",
                        "--print-reply",
                        "--dest=org.freedesktop.DBus",
                        "/org/freedesktop/DBus",
                        "org.freedesktop.DBus.NameHasOwner",
                        "string:org.freedesktop.secrets",
                    ])
                    .env("DBUS_SESSION_BUS_ADDRESS", &svc.address)
                    .output()
                    .ok()
                    .filter(|o| String::from_utf8_lossy(&o.stdout).contains("boolean true"))
                    .map(|_| ())
            },
        );
        svc
    }
}

impl Drop for SecretService {
    fn drop(&mut self) {
        // Closing stdin ends the session child; dbus-run-session then stops
        // the bus, and gnome-keyring-daemon exits with its bus.
        drop(self.bus.stdin.take());
        let _ = self.bus.wait();
    }
}
