//! Hand-written HTTP on the broker's socket, for requests the real client
//! would never send (oversized, unknown fields, other versions, garbage).

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

/// A parsed answer: status code and JSON body (`Null` if the body is not JSON).
#[derive(Debug)]
pub struct Answer {
    /// HTTP status.
    pub status: u16,
    /// The body as JSON.
    pub body: serde_json::Value,
}

impl Answer {
    /// The `message` of an error body.
    pub fn message(&self) -> &str {
        self.body["message"].as_str().unwrap_or("")
    }
}

/// Sends one request with `Connection: close` and reads the whole answer.
/// Write errors are ignored: the broker may answer (413) and close before
/// it has read everything.
pub fn request(socket: &Path, method: &str, path: &str, body: &[u8]) -> Answer {
    let mut s = UnixStream::connect(socket).expect("connect to the broker");
    s.set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: mxtokend\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let _ = s
        .write_all(head.as_bytes())
        .and_then(|()| s.write_all(body));
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    parse(&raw)
}

/// Splits a raw HTTP/1.1 answer with a `Content-Length` body.
pub fn parse(raw: &[u8]) -> Answer {
    let text = String::from_utf8_lossy(raw);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("not an HTTP answer: {text:?}"));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status in {head:?}"));
    Answer {
        status,
        body: serde_json::from_str(body).unwrap_or(serde_json::Value::Null),
    }
}

/// A small deterministic generator for garbage bytes (xorshift64).
#[derive(Debug)]
pub struct Garbage(u64);

impl Garbage {
    /// A generator from `seed` (not zero).
    pub fn new(seed: u64) -> Self {
        Self(seed.max(1))
    }

    /// The next `len` bytes.
    pub fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len)
            .map(|_| {
                self.0 ^= self.0 << 13;
                self.0 ^= self.0 >> 7;
                self.0 ^= self.0 << 17;
                self.0.to_le_bytes()[0]
            })
            .collect()
    }

    /// A number below `n`.
    pub fn below(&mut self, n: usize) -> usize {
        let b = self.bytes(4);
        u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize % n.max(1)
    }
}
