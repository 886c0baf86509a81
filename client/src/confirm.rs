//! `mxtoken confirm`: shows each lease of a `confirm = true` profile as it is
//! asked for and sends the user's answer. Prompts go to stderr, answers come
//! from stdin (a line starting with `y` approves; anything else denies).

use crate::api::BrokerClient;
use crate::error::ClientError;
use mxtoken_proto::ConfirmRequest;
use tokio::io::{AsyncBufReadExt, BufReader};

/// Runs until the broker goes away or stdin ends.
pub async fn run(client: &BrokerClient) -> Result<String, ClientError> {
    let mut stream = client.confirm_stream().await?;
    let mut answers = BufReader::new(tokio::io::stdin()).lines();
    eprintln!(
        "mxtoken: waiting for leases to confirm on {} (Ctrl-C to stop)",
        client.socket().display()
    );
    while let Some(req) = stream.next().await? {
        eprint!("{}", prompt(&req));
        let Ok(Some(answer)) = answers.next_line().await else {
            client.decide(&req.id, false).await.ok();
            eprintln!("\nmxtoken: stdin closed; denied the pending lease and stopped");
            return Ok(String::new());
        };
        let approve = answer.trim_start().starts_with(['y', 'Y']);
        match client.decide(&req.id, approve).await {
            Ok(_) => eprintln!(
                "mxtoken: {} lease request {}",
                if approve { "approved" } else { "denied" },
                req.id
            ),
            Err(e) => eprintln!("mxtoken: {e}"),
        }
    }
    Err(ClientError::Protocol(format!(
        "the broker at {} stopped sending confirmation requests (did it stop?)",
        client.socket().display()
    )))
}

fn prompt(r: &ConfirmRequest) -> String {
    let kind = if r.bound_to_client { "exec" } else { "get/env" };
    let mut who = format!("uid {}", r.peer_uid);
    if let Some(pid) = r.peer_pid {
        who.push_str(&format!(" pid {pid}"));
    }
    if let Some(exe) = &r.peer_exe {
        who.push_str(&format!(" ({exe})"));
    }
    format!(
        "mxtoken: lease request {id}: {kind} token for profile {profile:?}, {ttl}s, purpose {purpose:?}, asked by {who}\nApprove? [y/N] ",
        id = r.id,
        profile = r.profile,
        ttl = r.ttl_secs,
        purpose = r.purpose.as_deref().unwrap_or(""),
    )
}
