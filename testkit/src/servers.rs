//! Servers that tests start on 127.0.0.1: moto_server and the fault proxy.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A port that was free a moment ago and that no other test of this process was given: the
/// tests of a binary run in parallel, and the kernel may hand a just-released port out again.
pub fn free_port() -> u16 {
    static GIVEN: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    let mut given = GIVEN.lock().unwrap_or_else(|e| e.into_inner());
    loop {
        let port = TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("a free port").port();
        if !given.contains(&port) {
            given.push(port);
            return port;
        }
    }
}

/// Waits until the child listens on the port. `false` if it exited first (the port was taken
/// by another process in the meantime): the caller tries another port.
fn wait_for_port(port: u16, child: &mut Child, what: &str) -> bool {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return false;
        }
        if answers_http(port) {
            // Still ours after it answered: not another process that holds the port.
            return child.try_wait().ok().flatten().is_none();
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("{what} did not listen on 127.0.0.1:{port} within 30 s");
}

/// Whether an HTTP server answers on the port. A bare connect is not proof: connecting to an
/// unused port of the ephemeral range can connect the socket to itself.
fn answers_http(port: u16) -> bool {
    let Ok(mut conn) = TcpStream::connect(("127.0.0.1", port)) else { return false };
    if conn.local_addr().ok() == conn.peer_addr().ok() {
        return false;
    }
    let _ = conn.set_read_timeout(Some(Duration::from_secs(5)));
    let mut head = [0u8; 5];
    conn.write_all(b"GET / HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").is_ok()
        && conn.read_exact(&mut head).is_ok()
        && &head == b"HTTP/"
}

/// Starts a server on a fresh port, up to 3 times.
fn start_server(what: &str, spawn: impl Fn(u16) -> std::io::Result<Child>) -> Server {
    for _ in 0..3 {
        let port = free_port();
        let mut child = spawn(port).unwrap_or_else(|e| panic!("cannot start {what} ({e}): {INSTALL_HINT}"));
        if wait_for_port(port, &mut child, what) {
            return Server { child, port };
        }
        let _ = child.kill();
        let _ = child.wait();
    }
    panic!("{what} exited at start three times: {INSTALL_HINT}");
}

/// A process killed when dropped.
pub struct Server {
    child: Child,
    pub port: u16,
}

impl Server {
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub const INSTALL_HINT: &str = "install the test tools: python3 -m pip install -r tests/requirements.txt";

/// moto_server (PyPI `moto[server]`) on a free port of 127.0.0.1.
pub fn start_moto() -> Server {
    start_server("moto_server", |port| {
        Command::new("moto_server")
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
    })
}

/// The fault proxy (testkit/scripts/fault_proxy.py, at `script`) in front of a server.
pub fn start_fault_proxy(script: &Path, upstream: &Server) -> Server {
    start_server("the fault proxy", |port| {
        Command::new("python3")
            .arg(script)
            .args([port.to_string(), upstream.port.to_string()])
            .stdout(Stdio::null())
            .spawn()
    })
}
