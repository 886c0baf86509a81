//! A small TCP proxy between the broker and Synapse that injects faults:
//! refuse, stall, or answer 502 with an HTML page like a failing reverse proxy.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};

/// What the proxy does with connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Forward to the homeserver.
    Pass,
    /// Close each connection at once, before any answer.
    Refuse,
    /// Accept and read, never answer.
    Stall,
    /// Answer every request with `502 Bad Gateway` and an HTML page.
    BadGateway,
}

/// A running proxy on 127.0.0.1.
#[derive(Debug)]
pub struct FaultProxy {
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    fault: Arc<Mutex<Fault>>,
    open: Arc<Mutex<Vec<TcpStream>>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl FaultProxy {
    /// Starts a proxy to `127.0.0.1:target_port`, passing traffic through.
    pub fn start(target_port: u16) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind proxy");
        let url = format!(
            "http://127.0.0.1:{}",
            listener.local_addr().expect("addr").port()
        );
        let fault = Arc::new(Mutex::new(Fault::Pass));
        let open: Arc<Mutex<Vec<TcpStream>>> = Arc::default();
        let (f, o) = (fault.clone(), open.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let mode = *lock(&f);
                let o = o.clone();
                std::thread::spawn(move || serve(stream, mode, target_port, &o));
            }
        });
        Self { url, fault, open }
    }

    /// Switches the fault and cuts every open connection, so pooled
    /// keep-alive connections cannot bypass it.
    pub fn set(&self, fault: Fault) {
        *lock(&self.fault) = fault;
        for s in lock(&self.open).drain(..) {
            let _ = s.shutdown(Shutdown::Both);
        }
    }
}

fn serve(mut client: TcpStream, mode: Fault, target_port: u16, open: &Mutex<Vec<TcpStream>>) {
    match mode {
        Fault::Refuse => drop(client),
        Fault::Stall => {
            if let Ok(c) = client.try_clone() {
                lock(open).push(c);
            }
            let mut buf = [0u8; 4096];
            while matches!(client.read(&mut buf), Ok(n) if n > 0) {}
        }
        Fault::BadGateway => {
            let mut buf = Vec::new();
            let mut chunk = [0u8; 4096];
            while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                match client.read(&mut chunk) {
                    Ok(n) if n > 0 => buf.extend_from_slice(&chunk[..n]),
                    _ => return,
                }
            }
            let body = "<html><head><title>502 Bad Gateway</title></head><body><center><h1>502 Bad Gateway</h1></center><hr><center>nginx</center></body></html>";
            let resp = format!(
                "HTTP/1.1 502 Bad Gateway\r\nContent-Type: text/html\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = client.write_all(resp.as_bytes());
        }
        Fault::Pass => {
            let Ok(upstream) = TcpStream::connect(("127.0.0.1", target_port)) else {
                return;
            };
            let (Ok(c2), Ok(u2)) = (client.try_clone(), upstream.try_clone()) else {
                return;
            };
            {
                let mut o = lock(open);
                o.extend(client.try_clone().ok());
                o.extend(upstream.try_clone().ok());
            }
            let t = std::thread::spawn(move || pipe(c2, u2));
            pipe(upstream, client);
            let _ = t.join();
        }
    }
}

fn pipe(mut from: TcpStream, mut to: TcpStream) {
    let _ = std::io::copy(&mut from, &mut to);
    let _ = to.shutdown(Shutdown::Write);
}
