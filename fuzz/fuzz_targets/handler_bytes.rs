//! The real socket server (in-process, homeserver on a closed port) fed the
//! fuzzer's bytes on a real Unix socket; after each input a well-formed
//! `GET /v1/status` must still get 200. Same set-up as the proptest in
//! `broker/tests/handler_props.rs`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mxtoken_broker::broker::{Broker, BrokerOptions};
use mxtoken_broker::homeserver::Homeserver;
use mxtoken_broker::journal::Journal;
use mxtoken_broker::mint::Minter;
use mxtoken_broker::server::{self, ServerLimits};
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

const CONFIG: &str = r#"
[profiles.admin]
homeserver = "http://127.0.0.1:9"
user = "@admin:localhost"
password = { age_file = "p.age", identity = "i.txt" }
"#;

struct Server {
    socket: PathBuf,
    _dir: tempfile::TempDir,
    _rt: tokio::runtime::Runtime,
}

fn server() -> &'static Server {
    static S: OnceLock<Server> = OnceLock::new();
    S.get_or_init(|| {
        let dir = tempfile::tempdir().expect("tempdir");
        let cfg =
            mxtoken_broker::config::parse(&dir.path().join("config.toml"), CONFIG).expect("config");
        let profile = cfg.profiles["admin"].clone();
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        let socket = dir.path().join("s/broker.sock");
        let journal = Journal::rewrite(&dir.path().join("journal.jsonl"), []).expect("journal");
        let listener = {
            let _guard = rt.enter();
            mxtoken_broker::socket::bind(&socket, false).expect("bind")
        };
        let hs = Homeserver::new(
            profile.homeserver.clone(),
            Duration::from_secs(1),
            Duration::from_secs(2),
        )
        .expect("hs");
        let minter = Minter::new(profile, hs, "not-a-real-password".to_owned().into());
        let broker = Broker::with_options(
            "admin".into(),
            vec![minter],
            journal,
            BrokerOptions::default(),
        );
        let limits = ServerLimits {
            client_timeout: Duration::from_secs(1),
            ..ServerLimits::default()
        };
        rt.spawn(server::run(
            listener,
            broker,
            limits,
            std::future::pending(),
        ));
        Server {
            socket,
            _dir: dir,
            _rt: rt,
        }
    })
}

fn exchange(s: &Server, bytes: &[u8], half_close: bool) -> Vec<u8> {
    let mut c = UnixStream::connect(&s.socket).expect("connect");
    let _ = c.write_all(bytes);
    if half_close {
        let _ = c.shutdown(std::net::Shutdown::Write);
    }
    c.set_read_timeout(Some(Duration::from_millis(100)))
        .expect("timeout");
    let end = Instant::now() + Duration::from_secs(2);
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    while Instant::now() < end {
        match c.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(_) => break,
        }
    }
    out
}

fuzz_target!(|data: &[u8]| {
    let s = server();
    let answer = exchange(s, data, true);
    assert!(!answer.starts_with(b"HTTP/1.1 500"), "500 for {data:?}");
    let ok = exchange(
        s,
        b"GET /v1/status HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        false,
    );
    assert!(
        ok.starts_with(b"HTTP/1.1 200"),
        "broker stopped serving after {data:?}"
    );
});
