//! A running `reconciler run` process and its HTTP endpoints, for tests and benchmarks.

use std::net::SocketAddr;
use std::time::Duration;

use reconciler::source::webhook::sign;
use serde_json::Value;

use crate::http::{self, metric};
use crate::process::Process;
use crate::wait_until;

/// The webhook secret every test controller is started with (unless told otherwise).
pub const SECRET: &str = "webhook-secret-for-tests";

/// Where a test controller gets its webhook secret from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecretFrom {
    /// `--webhook-secret-file` holding [`SECRET`].
    File,
    /// `RECONCILER_WEBHOOK_SECRET=`[`SECRET`] in its environment.
    Environment,
    /// Nowhere: every hook must be refused.
    Nowhere,
}

/// A running controller and where it listens; killed when dropped.
#[derive(Debug)]
pub struct Controller {
    pub process: Process,
    pub address: SocketAddr,
    _cache: tempfile::TempDir,
    _secret: tempfile::NamedTempFile,
}

impl Controller {
    /// `reconciler run SOURCE... EXTRA...` with the webhook secret in a file.
    pub fn start(source: &[&str], extra: &[&str]) -> Self {
        Self::start_with(source, extra, SecretFrom::File, &[])
    }

    /// Listens on a port the system picks (`--listen 127.0.0.1:0`) and reads
    /// the address it reports, so two tests never race for a port.
    pub fn start_with(
        source: &[&str],
        extra: &[&str],
        secret_from: SecretFrom,
        env: &[(&str, &str)],
    ) -> Self {
        let cache = tempfile::tempdir().expect("temp dir");
        let secret = tempfile::NamedTempFile::new().expect("temp file");
        std::fs::write(secret.path(), SECRET).expect("write secret");
        let cache_dir = cache.path().display().to_string();
        let secret_file = secret.path().display().to_string();
        let mut args = vec!["run"];
        args.extend_from_slice(source);
        args.extend_from_slice(&["--listen", "127.0.0.1:0", "--cache-dir", &cache_dir]);
        if secret_from == SecretFrom::File {
            args.extend_from_slice(&["--webhook-secret-file", &secret_file]);
        }
        args.extend_from_slice(extra);
        let mut env = env.to_vec();
        if secret_from == SecretFrom::Environment {
            env.push(("RECONCILER_WEBHOOK_SECRET", SECRET));
        }
        let process = Process::start(&args, &env);
        let address = wait_until(
            "the controller to say where it listens",
            Duration::from_secs(30),
            || {
                let log = process.log();
                log.lines()
                    .find_map(|l| l.split("reconciler run: listening on ").nth(1))
                    // The address ends at a space (text logs) or a quote (JSON logs).
                    .map(|rest| {
                        rest.chars()
                            .take_while(|c| {
                                c.is_ascii_hexdigit() || matches!(c, '.' | ':' | '[' | ']')
                            })
                            .collect::<String>()
                    })
                    .and_then(|a| a.parse::<SocketAddr>().ok())
                    .ok_or(format!("not yet; log:\n{log}"))
            },
        );
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
        let response = http::get(self.address, "/api/status").expect("GET /api/status");
        serde_json::from_str(&response.body)
            .unwrap_or_else(|e| panic!("/api/status is not JSON ({e}): {}", response.body))
    }

    pub fn metrics(&self) -> String {
        http::get(self.address, "/metrics")
            .expect("GET /metrics")
            .body
    }

    /// The value of one sample; a sample missing from /metrics fails the test
    /// (every series the tests read exists from the start, at zero).
    pub fn metric(&self, sample: &str) -> f64 {
        let text = self.metrics();
        metric(&text, sample).unwrap_or_else(|| panic!("{sample} is not exported:\n{text}"))
    }

    /// Successful reconciles so far.
    pub fn successes(&self) -> f64 {
        self.metric("reconciler_reconciles_total{result=\"success\"}")
    }

    /// Waits until `count` more reconciles than now have finished (any
    /// result): the observable stand-in for "time passed and nothing happened".
    pub fn wait_for_reconciles(&self, count: u32) {
        let total = |c: &Self| -> f64 {
            reconciler::reconcile::ReconcileResult::ALL
                .iter()
                .map(|r| {
                    c.metric(&format!(
                        "reconciler_reconciles_total{{result=\"{}\"}}",
                        r.as_str()
                    ))
                })
                .sum()
        };
        let target = total(self) + f64::from(count);
        wait_until(
            &format!("{count} more reconciles"),
            Duration::from_secs(60),
            || {
                let now = total(self);
                (now >= target)
                    .then_some(())
                    .ok_or(format!("{now} of {target}\n{}", self.process.log()))
            },
        );
    }

    pub fn hook(&self, headers: &[(&str, &str)], body: &[u8]) -> u16 {
        self.hook_response(headers, body).status
    }

    pub fn hook_response(&self, headers: &[(&str, &str)], body: &[u8]) -> http::Response {
        http::request(self.address, "POST", "/hooks/git", headers, body).expect("POST /hooks/git")
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
