//! A running `reconciler run` process and its HTTP endpoints, for tests and benchmarks.

use std::net::SocketAddr;
use std::time::Duration;

use reconciler::source::webhook::sign;
use serde_json::Value;

use crate::http::{self, free_port, metric};
use crate::process::Process;
use crate::wait_until;

/// The webhook secret every test controller is started with.
pub const SECRET: &str = "webhook-secret-for-tests";

/// A running controller and where it listens; killed when dropped.
#[derive(Debug)]
pub struct Controller {
    pub process: Process,
    pub address: SocketAddr,
    _cache: tempfile::TempDir,
    _secret: tempfile::NamedTempFile,
}

impl Controller {
    pub fn start(source: &[&str], extra: &[&str]) -> Self {
        let port = free_port();
        let address: SocketAddr = ([127, 0, 0, 1], port).into();
        let cache = tempfile::tempdir().unwrap_or_else(|e| panic!("temp dir: {e}"));
        let secret = tempfile::NamedTempFile::new().unwrap_or_else(|e| panic!("temp file: {e}"));
        std::fs::write(secret.path(), SECRET).unwrap_or_else(|e| panic!("write secret: {e}"));
        let listen = address.to_string();
        let cache_dir = cache.path().display().to_string();
        let secret_file = secret.path().display().to_string();
        let mut args = vec!["run"];
        args.extend_from_slice(source);
        args.extend_from_slice(&[
            "--listen",
            &listen,
            "--cache-dir",
            &cache_dir,
            "--webhook-secret-file",
            &secret_file,
        ]);
        args.extend_from_slice(extra);
        let process = Process::start(&args, &[]);
        let controller = Self {
            process,
            address,
            _cache: cache,
            _secret: secret,
        };
        wait_until(
            "the controller to answer /healthz",
            Duration::from_secs(20),
            || {
                http::get(controller.address, "/healthz")
                    .map(|_| ())
                    .map_err(|e| format!("{e}\n{}", controller.process.log()))
            },
        );
        controller
    }

    pub fn status(&self) -> Value {
        let response = http::get(self.address, "/api/status").unwrap_or_else(|e| panic!("{e}"));
        serde_json::from_str(&response.body)
            .unwrap_or_else(|e| panic!("/api/status is not JSON ({e}): {}", response.body))
    }

    pub fn metrics(&self) -> String {
        http::get(self.address, "/metrics")
            .unwrap_or_else(|e| panic!("{e}"))
            .body
    }

    pub fn metric(&self, sample: &str) -> f64 {
        metric(&self.metrics(), sample).unwrap_or(0.0)
    }

    pub fn hook(&self, headers: &[(&str, &str)], body: &[u8]) -> u16 {
        http::request(self.address, "POST", "/hooks/git", headers, body)
            .unwrap_or_else(|e| panic!("{e}"))
            .status
    }

    pub fn github_push(&self, body: &[u8]) -> u16 {
        let signature = format!("sha256={}", sign(SECRET.as_bytes(), body));
        self.hook(
            &[
                ("X-GitHub-Event", "push"),
                ("X-Hub-Signature-256", &signature),
            ],
            body,
        )
    }
}
