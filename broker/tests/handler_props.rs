//! Property test: the real socket server, driven in-process, fed arbitrary
//! bytes on a real Unix socket. Whatever arrives, the broker answers a
//! well-formed request afterwards, never panics, and never answers 500.
//!
//! The profile's homeserver is a closed port, so a request that happens to
//! be a valid lease request fails fast at the mint, like any other.

use mxtoken_broker::broker::{Broker, BrokerOptions};
use mxtoken_broker::homeserver::Homeserver;
use mxtoken_broker::journal::Journal;
use mxtoken_broker::mint::Minter;
use mxtoken_broker::server::{self, ServerLimits};
use proptest::prelude::*;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

struct Server {
    socket: PathBuf,
    _dir: tempfile::TempDir,
    _rt: tokio::runtime::Runtime,
}

const CONFIG: &str = r#"
[profiles.admin]
homeserver = "http://127.0.0.1:9"
user = "@admin:localhost"
password = { age_file = "p.age", identity = "i.txt" }
"#;

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
            mxtoken_broker::socket::bind(&socket, false)
                .expect("bind")
                .listener
        };
        let hs = Homeserver::new(
            profile.homeserver.clone(),
            Duration::from_secs(1),
            Duration::from_secs(2),
        )
        .expect("hs");
        // A locked password: the handler is what is under test, not minting.
        let password = std::sync::Arc::new(mxtoken_broker::password::PasswordHolder::new(&profile));
        let minter = Minter::new(profile, hs, password);
        let broker = Broker::with_options(
            "admin".into(),
            vec![minter],
            journal,
            BrokerOptions::default(),
        );
        let limits = ServerLimits {
            client_timeout: Duration::from_secs(2),
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

/// Writes `bytes`, half-closes if asked (so a truncated request ends at
/// once instead of at the client timeout), and reads whatever comes back.
/// (A half-closed request may get no answer: hyper drops a connection whose
/// reading side ends.)
fn exchange(socket: &Path, bytes: &[u8], half_close: bool) -> Vec<u8> {
    let mut s = UnixStream::connect(socket).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    let _ = s.write_all(bytes);
    if half_close {
        let _ = s.shutdown(std::net::Shutdown::Write);
    }
    // A `GET /v1/confirm` answer streams heartbeats forever: stop reading
    // at a deadline rather than at the end of the stream.
    s.set_read_timeout(Some(Duration::from_millis(200)))
        .expect("timeout");
    let end = std::time::Instant::now() + Duration::from_secs(5);
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    while std::time::Instant::now() < end {
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(_) => break,
        }
    }
    out
}

fn status_line(answer: &[u8]) -> Option<u16> {
    let text = String::from_utf8_lossy(answer);
    text.strip_prefix("HTTP/1.1 ")?
        .get(..3)
        .and_then(|c| c.parse().ok())
}

fn assert_still_serving(socket: &Path) {
    let answer = exchange(
        socket,
        b"GET /v1/status HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        false,
    );
    assert_eq!(
        status_line(&answer),
        Some(200),
        "{}",
        String::from_utf8_lossy(&answer)
    );
}

/// Requests that look like HTTP, with odd methods, paths, headers and bodies.
fn httpish() -> impl Strategy<Value = Vec<u8>> {
    let method = prop::sample::select(vec!["GET", "POST", "DELETE", "PUT", "G\0T", ""]);
    let path = prop::sample::select(vec![
        "/v1/status",
        "/v1/leases",
        "/v1/leases/mxt-x",
        "/v1/sweep",
        "/v1/confirm",
        "/v1/confirm/c1",
        "/v2/leases",
        "/",
        "*",
        "/v1/leases/../../etc",
    ]);
    let body = prop_oneof![
        Just(Vec::new()),
        Just(b"{}".to_vec()),
        Just(br#"{"ttl":"0s"}"#.to_vec()),
        Just(br#"{"profile":"../x"}"#.to_vec()),
        Just(br#"{"approve":true}"#.to_vec()),
        prop::collection::vec(any::<u8>(), 0..256),
    ];
    let declared = prop_oneof![Just(None), (0usize..100_000).prop_map(Some)];
    let chunked = any::<bool>();
    (method, path, body, declared, chunked).prop_map(|(m, p, b, declared, chunked)| {
        let mut out = format!("{m} {p} HTTP/1.1\r\nHost: x\r\n").into_bytes();
        if chunked {
            out.extend_from_slice(b"Transfer-Encoding: chunked\r\n\r\n");
            out.extend_from_slice(format!("{:x}\r\n", b.len()).as_bytes());
            out.extend_from_slice(&b);
            out.extend_from_slice(b"\r\n0\r\n\r\n");
        } else {
            let len = declared.unwrap_or(b.len());
            out.extend_from_slice(format!("Content-Length: {len}\r\n\r\n").as_bytes());
            out.extend_from_slice(&b);
        }
        out
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_stop_the_server(bytes in prop::collection::vec(any::<u8>(), 0..2048)) {
        let s = server();
        let answer = exchange(&s.socket, &bytes, true);
        prop_assert_ne!(status_line(&answer), Some(500));
        assert_still_serving(&s.socket);
    }

    #[test]
    fn odd_http_requests_get_an_answer_not_a_crash(req in httpish()) {
        let s = server();
        let answer = exchange(&s.socket, &req, true);
        prop_assert_ne!(status_line(&answer), Some(500));
        assert_still_serving(&s.socket);
    }
}
