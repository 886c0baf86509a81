//! `mxtoken stop`: shut the broker down cleanly, every lease revoked.

use crate::api::BrokerClient;
use crate::error::ClientError;

/// Asks the broker to end every lease and exit; reports on stderr and prints
/// nothing. No broker running counts as stopped. A broker of another protocol
/// version (the upgrade case) cannot be asked, so it gets SIGTERM, which ends
/// its leases the same way.
pub async fn stop(client: &BrokerClient) -> Result<String, ClientError> {
    match client.shutdown().await {
        Ok(s) => {
            let leases = match s.leases_ended {
                1 => "1 lease ended".to_owned(),
                n => format!("{n} leases ended"),
            };
            if s.pending_revocations == 0 {
                eprintln!("mxtoken: broker (pid {}) stopped; {leases}", s.pid);
            } else {
                eprintln!(
                    "mxtoken: broker (pid {}) stopped; {leases}, but the homeserver did not confirm {} revocations: those tokens may still work, check with the admin API",
                    s.pid, s.pending_revocations
                );
            }
            Ok(String::new())
        }
        Err(ClientError::NoBroker { socket }) => {
            eprintln!(
                "mxtoken: no broker is running on {}; nothing to stop",
                socket.display()
            );
            Ok(String::new())
        }
        Err(ClientError::OtherVersion { socket, broker }) => {
            let pid = client.listener_pid().await?.ok_or_else(|| {
                ClientError::Other(format!(
                    "the broker at {} speaks protocol {broker} and its pid is unknown; stop it with `kill` or your service manager",
                    socket.display()
                ))
            })?;
            let target = i32::try_from(pid)
                .ok()
                .and_then(rustix::process::Pid::from_raw)
                .ok_or_else(|| ClientError::Other(format!("pid {pid} is not valid")))?;
            rustix::process::kill_process(target, rustix::process::Signal::TERM).map_err(|e| {
                ClientError::Other(format!(
                    "cannot send SIGTERM to the broker (pid {pid}): {e}; stop it with your service manager"
                ))
            })?;
            eprintln!(
                "mxtoken: sent SIGTERM to the broker of protocol {broker} (pid {pid}); it revokes its leases as it exits"
            );
            Ok(String::new())
        }
        Err(e) => Err(e),
    }
}
