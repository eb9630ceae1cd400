//! moto's S3 server on 127.0.0.1 (port 0), for the store's unit tests and the remote-state
//! integration tests alike. A missing `moto_server` fails the test that needs it: CI installs
//! it (`pip install 'moto[server]'`).

use std::io::{BufRead as _, BufReader};
use std::process::{Child, Command, Stdio};

/// A moto S3 server on loopback, killed on drop.
pub struct Moto {
    child: Child,
    /// Its base URL, `http://127.0.0.1:PORT`.
    pub endpoint: String,
}

impl Moto {
    /// Starts one and waits until it listens.
    pub fn start() -> Self {
        let mut child = Command::new("moto_server")
            .args(["-H", "127.0.0.1", "-p", "0"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("`moto_server` did not start; install it with `pip install 'moto[server]'`");
        let stderr = child.stderr.take().expect("piped stderr");
        let mut lines = BufReader::new(stderr).lines();
        let endpoint = loop {
            let line = lines
                .next()
                .expect("moto_server exited before listening")
                .expect("reading moto_server's output");
            if let Some(at) = line.find("http://127.0.0.1:") {
                break line[at..].trim().to_owned();
            }
        };
        // Keep draining its log so the server never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        Self { child, endpoint }
    }

    /// Creates `bucket` (blocking HTTP `PUT`, plain `std::net`).
    pub fn create_bucket(&self, bucket: &str) {
        use std::io::{Read as _, Write as _};
        let host = self.endpoint.trim_start_matches("http://");
        let mut conn = std::net::TcpStream::connect(host).expect("connecting to moto");
        write!(
            conn,
            "PUT /{bucket} HTTP/1.1\r\nHost: {host}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        )
        .expect("creating the bucket");
        let mut answer = String::new();
        conn.read_to_string(&mut answer).expect("moto's answer");
        assert!(
            answer.starts_with("HTTP/1.1 200") || answer.starts_with("HTTP/1.1 409"),
            "creating bucket {bucket}: {}",
            answer.lines().next().unwrap_or_default()
        );
    }

    /// The same settings as `object_store` config keys, for a client opened in-process
    /// (tests run in parallel, so they cannot change the process environment).
    pub fn overrides(&self) -> [(&'static str, &str); 5] {
        [
            ("aws_endpoint", self.endpoint.as_str()),
            ("aws_allow_http", "true"),
            ("aws_access_key_id", "testing"),
            ("aws_secret_access_key", "testing"),
            ("aws_region", "us-east-1"),
        ]
    }

    /// The environment that points `object_store`'s S3 client at this server.
    pub fn env(&self) -> [(&'static str, String); 5] {
        [
            ("AWS_ENDPOINT_URL", self.endpoint.clone()),
            ("AWS_ALLOW_HTTP", "true".to_owned()),
            ("AWS_ACCESS_KEY_ID", "testing".to_owned()),
            ("AWS_SECRET_ACCESS_KEY", "testing".to_owned()),
            ("AWS_REGION", "us-east-1".to_owned()),
        ]
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
