//! Real sshd servers on loopback, for fast SSH tests: each has its own host
//! key, port and authorized client key, in a temp dir removed on drop.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use reconciler::node::Target;

/// A new ed25519 key pair at `path` (and `path.pub`), without a passphrase.
pub fn keygen(path: &Path) {
    let status = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(path)
        .status()
        .expect("cannot run ssh-keygen (scripts/setup installs it)");
    assert!(status.success(), "ssh-keygen failed");
}

/// A running sshd accepting the test's client key as root.
#[derive(Debug)]
pub struct Sshd {
    dir: tempfile::TempDir,
    pub port: u16,
    child: Child,
}

impl Sshd {
    pub fn start() -> Self {
        Self::start_with("")
    }

    /// [`Sshd::start`] with more `sshd_config` lines (`MaxSessions 1\n`).
    pub fn start_with(extra_config: &str) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path();
        keygen(&path.join("host_ed25519"));
        keygen(&path.join("id_ed25519"));
        std::fs::copy(path.join("id_ed25519.pub"), path.join("authorized_keys"))
            .expect("authorized_keys");
        std::fs::create_dir_all("/run/sshd").expect("/run/sshd");
        // sshd cannot report a port it picked itself: take a free one, and if
        // another test took it in between (sshd then exits), try another.
        for _ in 0..5 {
            let port = crate::http::free_port();
            if let Some(sshd) = Self::start_on(dir.path(), port, extra_config) {
                return Self {
                    dir,
                    port,
                    child: sshd,
                };
            }
        }
        panic!("sshd did not start on any of 5 free ports");
    }

    /// Starts sshd on `port`; `None` when it exits (the port was taken).
    fn start_on(path: &Path, port: u16, extra_config: &str) -> Option<Child> {
        let config = format!(
            "Port {port}\nListenAddress 127.0.0.1\nHostKey {dir}/host_ed25519\nAuthorizedKeysFile {dir}/authorized_keys\nPermitRootLogin prohibit-password\nPasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM no\nStrictModes no\nPidFile {dir}/sshd.pid\nLogLevel ERROR\n{extra_config}",
            dir = path.display()
        );
        std::fs::write(path.join("sshd_config"), config).expect("sshd_config");
        let mut child = Command::new("/usr/sbin/sshd")
            .args(["-D", "-e", "-f"])
            .arg(path.join("sshd_config"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot start sshd (scripts/setup installs openssh-server): {e}")
            });
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(Some(_exited)) = child.try_wait() {
                return None;
            }
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                // Ours only if it is still running a moment later: an sshd that
                // lost the port exits right after failing to bind.
                std::thread::sleep(Duration::from_millis(200));
                return match child.try_wait() {
                    Ok(None) => Some(child),
                    _ => None,
                };
            }
            assert!(
                Instant::now() < deadline,
                "sshd on port {port} did not start"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// `count` servers that trust one key and one known_hosts file, and a
    /// target for each (`{prefix}000`, ...): cheap boards for benchmarks.
    pub fn fleet(count: usize, prefix: &str) -> (Vec<Sshd>, Vec<Target>) {
        let servers: Vec<Sshd> = (0..count).map(|_| Sshd::start()).collect();
        let Some(first) = servers.first() else {
            return (servers, Vec::new());
        };
        let known = first.dir().join("fleet_known_hosts");
        let lines: String = servers.iter().map(Sshd::known_hosts_line).collect();
        std::fs::write(&known, lines).expect("write known_hosts");
        let authorized =
            std::fs::read_to_string(first.dir().join("authorized_keys")).unwrap_or_default();
        for server in &servers {
            std::fs::write(server.dir().join("authorized_keys"), &authorized)
                .expect("write authorized_keys");
        }
        let targets = servers
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let mut target = s.target(&format!("{prefix}{i:03}"), &known);
                target.identity = first.identity();
                target
            })
            .collect();
        (servers, targets)
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The client's private key.
    pub fn identity(&self) -> PathBuf {
        self.dir.path().join("id_ed25519")
    }

    /// `ssh-ed25519 AAAA...` of the server.
    pub fn host_key(&self) -> String {
        let text =
            std::fs::read_to_string(self.dir.path().join("host_ed25519.pub")).unwrap_or_default();
        text.split_whitespace()
            .take(2)
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// The known_hosts line for this server, as ssh-keyscan would write it.
    pub fn known_hosts_line(&self) -> String {
        format!("[127.0.0.1]:{} {}\n", self.port, self.host_key())
    }

    /// A target for this server with the given known_hosts file.
    pub fn target(&self, node: &str, known_hosts: &Path) -> Target {
        Target {
            node: node.to_string(),
            host: "127.0.0.1".into(),
            port: self.port,
            user: "root".into(),
            identity: self.identity(),
            known_hosts: known_hosts.to_path_buf(),
            pinned_key: None,
        }
    }

    /// Stops the server (for "board is down" tests); `Drop` does too.
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        self.stop();
    }
}
