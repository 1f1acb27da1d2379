//! A real S3-compatible server for object-storage tests: moto's server (PyPI
//! `moto[server]`), on 127.0.0.1 at a free port, started by the test and killed with it.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// A running S3 server.
pub struct S3Server {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    pub endpoint: String,
}

/// The credentials the tests use (moto accepts any).
pub const ACCESS_KEY: &str = "test-access-key";
/// The secret key the tests use; tests check it never reaches logs.
pub const SECRET_KEY: &str = "test-secret-key-do-not-log";

impl S3Server {
    /// Starts moto from the virtualenv `venv` and waits until it answers.
    pub fn start(venv: &Path) -> S3Server {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let child = Command::new(venv.join("bin/moto_server"))
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("moto_server starts");
        let server = S3Server {
            child,
            endpoint: format!("http://127.0.0.1:{port}"),
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while server.request("GET", "/").is_none() {
            assert!(
                Instant::now() < deadline,
                "moto_server did not answer in 30 s"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        server
    }

    /// A raw HTTP/1.1 request; the status code, or `None` if the server is not up.
    fn request(&self, method: &str, path: &str) -> Option<u16> {
        self.exchange(method, path).map(|(status, _)| status)
    }

    /// A raw HTTP/1.1 request (moto takes unsigned ones); the status code and the body.
    fn exchange(&self, method: &str, path: &str) -> Option<(u16, String)> {
        let addr = self.endpoint.trim_start_matches("http://");
        let mut stream = TcpStream::connect(addr).ok()?;
        stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
        let req = format!(
            "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        );
        stream.write_all(req.as_bytes()).ok()?;
        let mut response = String::new();
        stream.read_to_string(&mut response).ok()?;
        let status = response.split(' ').nth(1)?.parse().ok()?;
        let body = response.split_once("\r\n\r\n").map(|(_, b)| b.to_string());
        Some((status, body.unwrap_or_default()))
    }

    /// The multipart uploads in progress in `bucket` (started, neither completed nor
    /// aborted).
    pub fn multipart_uploads(&self, bucket: &str) -> usize {
        self.exchange("GET", &format!("/{bucket}?uploads"))
            .map_or(0, |(_, body)| body.matches("<Upload>").count())
    }

    /// Creates `bucket`.
    pub fn create_bucket(&self, bucket: &str) {
        let status = self.request("PUT", &format!("/{bucket}"));
        assert_eq!(status, Some(200), "creating bucket {bucket}");
    }

    /// The target's `storage_options` for this server.
    pub fn storage_options(&self) -> Value {
        json!({
            "aws_endpoint": self.endpoint,
            "aws_allow_http": true,
            "aws_region": "us-east-1",
            "aws_access_key_id": ACCESS_KEY,
            "aws_secret_access_key": SECRET_KEY,
        })
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
