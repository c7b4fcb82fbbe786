//! A throwaway S3-compatible server for tests: moto's `moto_server` on a free loopback port,
//! killed on drop, with one empty bucket. `scripts/test.sh` installs it under `.tools/moto`;
//! `MOTO_SERVER` names another binary.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A moto server and the bucket made in it.
#[derive(Debug)]
pub struct S3Server {
    endpoint: String,
    bucket: String,
    child: Child,
}

fn moto_server() -> PathBuf {
    if let Some(path) = std::env::var_os("MOTO_SERVER") {
        return path.into();
    }
    let installed =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.tools/moto/bin/moto_server");
    if installed.exists() {
        installed
    } else {
        PathBuf::from("moto_server")
    }
}

impl S3Server {
    /// Starts the server and makes `bucket` in it.
    pub fn start(bucket: &str) -> Self {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("the loopback interface has a free port")
            .port();
        let binary = moto_server();
        let child = Command::new(&binary)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot start {} ({e}); scripts/test.sh installs it under .tools/moto, \
                     or set MOTO_SERVER to a moto_server binary",
                    binary.display()
                )
            });
        let server = Self {
            endpoint: format!("http://127.0.0.1:{port}"),
            bucket: bucket.to_owned(),
            child,
        };
        // moto needs no signature to make a bucket: one plain HTTP request does it.
        let started = Instant::now();
        loop {
            match server.create_bucket(port) {
                Ok(status) if status.contains(" 200 ") => break,
                Ok(status) => panic!("moto refused to make bucket {bucket}: {status}"),
                Err(e) => assert!(
                    started.elapsed() < Duration::from_secs(30),
                    "moto_server did not start: {e}"
                ),
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        server
    }

    fn create_bucket(&self, port: u16) -> std::io::Result<String> {
        let mut stream = TcpStream::connect(("127.0.0.1", port))?;
        write!(
            stream,
            "PUT /{} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            self.bucket
        )?;
        let mut response = String::new();
        stream.read_to_string(&mut response)?;
        Ok(response.lines().next().unwrap_or_default().to_owned())
    }

    /// Options for `object_store`'s S3 client: this endpoint, plain HTTP, dummy credentials.
    pub fn options(&self) -> Vec<(&'static str, String)> {
        vec![
            ("aws_endpoint", self.endpoint.clone()),
            ("aws_allow_http", "true".into()),
            ("aws_region", "us-east-1".into()),
            ("aws_access_key_id", "test".into()),
            ("aws_secret_access_key", "test".into()),
        ]
    }

    /// Returns `s3://<bucket>/<prefix>`.
    pub fn url(&self, prefix: &str) -> String {
        format!("s3://{}/{prefix}", self.bucket)
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
