//! Real git repositories for the source tests: a bare "remote" and a work
//! clone the test commits to, driven by the git CLI.

use std::path::{Path, PathBuf};
use std::process::Command;

#[derive(Debug)]
pub struct GitRepo {
    dir: tempfile::TempDir,
}

fn git(cwd: &Path, args: &[&str]) -> String {
    let output = Command::new("git")
        .args(args)
        .current_dir(cwd)
        .env("GIT_AUTHOR_NAME", "test")
        .env("GIT_AUTHOR_EMAIL", "test@example.invalid")
        .env("GIT_COMMITTER_NAME", "test")
        .env("GIT_COMMITTER_EMAIL", "test@example.invalid")
        .output()
        .expect("cannot run git");
    assert!(
        output.status.success(),
        "git {} failed: {}",
        args.join(" "),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).trim().to_string()
}

impl GitRepo {
    /// An empty bare remote on branch `main`, and a work clone of it.
    pub fn new() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        git(
            dir.path(),
            &[
                "init",
                "--quiet",
                "--bare",
                "--initial-branch=main",
                "remote.git",
            ],
        );
        git(
            dir.path(),
            &["init", "--quiet", "--initial-branch=main", "work"],
        );
        let repo = Self { dir };
        let remote = repo.remote_path().display().to_string();
        git(&repo.work(), &["remote", "add", "origin", &remote]);
        repo
    }

    /// `file://` URL of the bare remote.
    pub fn url(&self) -> String {
        format!("file://{}", self.remote_path().display())
    }

    /// The folder holding the bare remote (`remote.git`).
    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    /// The bare remote's path on this machine (for ssh:// URLs to it).
    pub fn remote_path(&self) -> PathBuf {
        self.dir.path().join("remote.git")
    }

    /// `git config NAME VALUE` in the work clone (signing, for one).
    pub fn configure(&self, name: &str, value: &str) {
        git(&self.work(), &["config", name, value]);
    }

    fn work(&self) -> PathBuf {
        self.dir.path().join("work")
    }

    /// Writes the files, commits them on `branch` (created from `main` when
    /// new) and pushes it; returns the commit id. The work clone goes back to `main`.
    pub fn commit_on(&self, branch: &str, files: &[(&str, &str)], message: &str) -> String {
        let exists = Command::new("git")
            .args(["rev-parse", "--verify", "--quiet", branch])
            .current_dir(self.work())
            .output()
            .is_ok_and(|o| o.status.success());
        if exists {
            git(&self.work(), &["checkout", "--quiet", branch]);
        } else {
            git(&self.work(), &["checkout", "--quiet", "-b", branch]);
        }
        let id = self.commit_and_push(branch, files, message);
        git(&self.work(), &["checkout", "--quiet", "main"]);
        id
    }

    /// Deletes `branch` on the remote (as a person removing it on the forge).
    pub fn delete_branch(&self, branch: &str) {
        git(
            &self.work(),
            &["push", "--quiet", "origin", "--delete", branch],
        );
    }

    /// Writes the files, commits them on `main` and pushes; returns the commit id.
    pub fn commit(&self, files: &[(&str, &str)], message: &str) -> String {
        self.commit_and_push("main", files, message)
    }

    /// Commits a symbolic link `name` pointing at `target` (as written).
    pub fn commit_symlink(&self, name: &str, target: &str, message: &str) -> String {
        let path = self.work().join(name);
        let _ = std::fs::remove_file(&path);
        std::os::unix::fs::symlink(target, &path).unwrap_or_else(|e| panic!("symlink {name}: {e}"));
        self.commit_and_push::<&[u8]>("main", &[], message)
    }

    /// Removes the files, commits on `main` and pushes; returns the commit id.
    pub fn commit_removing(&self, names: &[&str], message: &str) -> String {
        for name in names {
            let path = self.work().join(name);
            std::fs::remove_file(&path).unwrap_or_else(|e| panic!("remove {name}: {e}"));
        }
        self.commit_and_push::<&[u8]>("main", &[], message)
    }

    /// [`GitRepo::commit`] for files that are not text (encrypted secrets).
    pub fn commit_bytes(&self, files: &[(&str, &[u8])], message: &str) -> String {
        self.commit_and_push("main", files, message)
    }

    fn commit_and_push<B: AsRef<[u8]>>(
        &self,
        branch: &str,
        files: &[(&str, B)],
        message: &str,
    ) -> String {
        for (name, body) in files {
            let path = self.work().join(name);
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent).expect("mkdir");
            }
            std::fs::write(&path, body).unwrap_or_else(|e| panic!("write {name}: {e}"));
        }
        git(&self.work(), &["add", "--all"]);
        git(
            &self.work(),
            &["commit", "--quiet", "--allow-empty", "-m", message],
        );
        git(&self.work(), &["push", "--quiet", "origin", branch]);
        git(&self.work(), &["rev-parse", "HEAD"])
    }
}

impl Default for GitRepo {
    fn default() -> Self {
        Self::new()
    }
}

/// A git smart-HTTP server on loopback that wants a user and password
/// (`git http-backend` behind Basic authentication, see `git_http.py`).
#[derive(Debug)]
pub struct GitHttp {
    child: std::process::Child,
    pub port: u16,
}

impl GitHttp {
    /// Serves the bare repositories under `root` on loopback.
    pub fn start(root: &Path, user: &str, password: &str) -> Self {
        Self::start_on(root, user, password, "127.0.0.1")
    }

    /// Serves them on `address` (the boards' gateway, for a controller on a board).
    pub fn start_on(root: &Path, user: &str, password: &str, address: &str) -> Self {
        Self::spawn(root, &[user, password, address])
    }

    /// Serves them over HTTPS on loopback with the PEM certificate and key.
    pub fn start_tls(root: &Path, user: &str, password: &str, cert: &Path, key: &Path) -> Self {
        let (cert, key) = (cert.display().to_string(), key.display().to_string());
        Self::spawn(root, &[user, password, "127.0.0.1", &cert, &key])
    }

    fn spawn(root: &Path, args: &[&str]) -> Self {
        use std::io::BufRead;
        let mut child = Command::new("python3")
            .arg("-c")
            .arg(include_str!("git_http.py"))
            .arg(root)
            .args(args)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("cannot run python3 (scripts/setup installs it)");
        let mut line = String::new();
        if let Some(stdout) = child.stdout.take() {
            let _ = std::io::BufReader::new(stdout).read_line(&mut line);
        }
        let port = line
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("the git HTTP server did not say its port: {line:?}"));
        Self { child, port }
    }
}

impl Drop for GitHttp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
