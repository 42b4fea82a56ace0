//! The SDK clients' HTTPS (awsenv::https_client: hyper 1, rustls with ring, the system's roots)
//! against moto_server serving TLS on 127.0.0.1 with a certificate of a test CA made here with
//! openssl: trusted through SSL_CERT_FILE, the datasets are written; without it, the CLI says
//! in one line that the certificate is not trusted.

use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| panic!("cannot run openssl ({e}): install it (Debian: apt-get install openssl)"));
    assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

/// A self-signed CA `name`.pem (its key `name`.key) in `dir`.
fn ca(dir: &Path, name: &str) {
    let (key, pem, subject) = (format!("{name}.key"), format!("{name}.pem"), format!("/CN=orderstream test {name}"));
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            &key,
            "-out",
            &pem,
            "-days",
            "2",
            "-subj",
            &subject,
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ],
    );
}

/// A CA and a server certificate for 127.0.0.1 signed by it, in `dir`.
fn certificates(dir: &Path) {
    ca(dir, "ca");
    openssl(
        dir,
        &[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
            "-subj",
            "/CN=127.0.0.1",
        ],
    );
    std::fs::write(
        dir.join("server.ext"),
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "server.pem",
            "-days",
            "2",
            "-extfile",
            "server.ext",
        ],
    );
}

struct Tls(Child, u16);

impl Drop for Tls {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_moto_tls(dir: &Path) -> Tls {
    let port = testkit::servers::free_port();
    let mut child = Command::new("moto_server")
        .args(["-H", "127.0.0.1", "-p", &port.to_string(), "--ssl-cert", "server.pem", "--ssl-key", "server.key"])
        .current_dir(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start moto_server ({e}): {}", testkit::servers::INSTALL_HINT));
    let deadline = Instant::now() + Duration::from_secs(30);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(child.try_wait().unwrap().is_none(), "moto_server with TLS exited at start");
        assert!(Instant::now() < deadline, "moto_server with TLS did not listen within 30 s");
        std::thread::sleep(Duration::from_millis(100));
    }
    Tls(child, port)
}

#[test]
fn the_sdk_clients_speak_tls_with_ring_and_trust_only_known_roots() {
    let dir = tempfile::tempdir().unwrap();
    certificates(dir.path());
    let server = start_moto_tls(dir.path());
    let endpoint = format!("https://127.0.0.1:{}", server.1);
    let orderstream = |trust: bool, args: &[&str]| {
        let mut cmd = testkit::aws_command(env!("CARGO_BIN_EXE_orderstream"), &endpoint);
        // The roots are SSL_CERT_FILE's alone (a machine may name a directory of its own).
        cmd.env_remove("SSL_CERT_DIR");
        if trust {
            cmd.env("SSL_CERT_FILE", dir.path().join("ca.pem"));
        } else {
            cmd.env("SSL_CERT_FILE", dir.path().join("other.pem"));
        }
        cmd.args(args).output().unwrap()
    };

    // The scaler's clients (Kinesis, CloudWatch) over TLS: a stream that does not exist is
    // Kinesis's answer, which needs the handshake first.
    let out = orderstream(true, &["scale", "--stream", "nowhere", "--dry-run"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("cannot describe the stream nowhere") && err.contains("ResourceNotFound"), "{err}");

    // The processor's S3 client over TLS: the bundled samples into a bucket made over TLS.
    let runtime = tokio::runtime::Runtime::new().unwrap();
    // SAFETY: set before any thread of this test binary reads the environment for TLS roots.
    std::env::set_var("SSL_CERT_FILE", dir.path().join("ca.pem"));
    let s3 = testkit::s3_client(&endpoint);
    runtime.block_on(testkit::create_bucket(&s3, "lake"));
    let out = orderstream(true, &["samples", "--bucket", "lake"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let listed = runtime.block_on(s3.list_objects_v2().bucket("lake").send()).unwrap();
    assert!(listed.contents().iter().any(|o| o.key().unwrap_or("").starts_with("events/")), "{listed:?}");

    // Trusting another CA only, the handshake is refused.
    ca(dir.path(), "other");
    let out = orderstream(false, &["samples", "--bucket", "lake"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "an untrusted certificate was accepted");
    assert!(err.contains("UnknownIssuer") || err.to_lowercase().contains("certificate"), "{err}");
    assert!(!err.contains("panicked"), "{err}");

    // Roots that hold no certificate: one line, not the TLS client's panic.
    let out = testkit::aws_command(env!("CARGO_BIN_EXE_orderstream"), &endpoint)
        .env("SSL_CERT_FILE", dir.path().join("server.csr"))
        .env_remove("SSL_CERT_DIR")
        .args(["samples", "--bucket", "lake"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("no root certificate could be read from SSL_CERT_FILE="), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}
