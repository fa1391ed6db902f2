//! A git repository followed at a branch, tag or commit.
//!
//! The controller keeps its own bare clone as a cache and reads the spec from
//! the tree of the exact commit: there is no working tree to corrupt, and a
//! restart with an empty cache simply clones again. Credentials come from files
//! named by environment variables and are never logged.

use std::path::{Path, PathBuf};

use git2::{FetchOptions, ObjectType, Oid, RemoteCallbacks, Repository, Tree};

use super::{Snapshot, SourceError};

/// What to follow in the repository.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GitRef {
    Branch(String),
    Tag(String),
    /// A full commit id; fetched once, never moves.
    Commit(String),
}

#[derive(Debug)]
pub struct GitSource {
    url: String,
    reference: GitRef,
    /// Folder of the spec inside the repository ("" for the root).
    path: String,
    cache: PathBuf,
    /// With `--verify-signatures`: whose signature a commit must carry.
    signers: Option<super::signature::AllowedSigners>,
}

impl GitSource {
    /// `cache_root` holds one bare repository per URL.
    pub fn new(url: String, reference: GitRef, path: &str, cache_root: &Path) -> Self {
        let name = crate::digest::sha256_prefix(url.as_bytes(), 8);
        Self {
            url,
            reference,
            path: path.trim_matches('/').to_string(),
            cache: cache_root.join(format!("{name}.git")),
            signers: None,
        }
    }

    /// Accepts only commits signed by one of `signers` (as `git
    /// verify-commit` accepts them).
    #[must_use]
    pub fn verifying(mut self, signers: super::signature::AllowedSigners) -> Self {
        self.signers = Some(signers);
        self
    }

    /// Checks the followed commit's signature when signatures are verified.
    fn verify(&self, repo: &Repository, commit: &git2::Commit<'_>) -> Result<(), SourceError> {
        let Some(signers) = &self.signers else {
            return Ok(());
        };
        let unverified = |reason| SourceError::Unverified {
            url: redact_url(&self.url),
            revision: commit.id().to_string(),
            reason,
        };
        let principals =
            super::signature::verify_commit(repo, commit.id(), signers).map_err(unverified)?;
        tracing::debug!(revision = %commit.id(), %principals, "commit signature verified");
        Ok(())
    }

    pub fn describe(&self) -> String {
        let reference = self.reference_name();
        let path = if self.path.is_empty() {
            String::new()
        } else {
            format!(", path {}", self.path)
        };
        format!("git {} ({reference}{path})", redact_url(&self.url))
    }

    /// The error of a git operation, kept whole; an authentication failure
    /// is told apart (it waits for a person instead of being retried).
    fn git_error(&self, operation: &'static str) -> impl Fn(git2::Error) -> SourceError + '_ {
        move |source| {
            let url = redact_url(&self.url);
            if source.code() == git2::ErrorCode::Auth {
                SourceError::Auth { url, source }
            } else {
                SourceError::Git {
                    operation,
                    url,
                    source,
                }
            }
        }
    }

    /// `branch main`, `tag v1`, as the user named it.
    fn reference_name(&self) -> String {
        match &self.reference {
            GitRef::Branch(b) => format!("branch {b}"),
            GitRef::Tag(t) => format!("tag {t}"),
            GitRef::Commit(c) => format!("commit {c}"),
        }
    }

    fn open_cache(&self) -> Result<Repository, SourceError> {
        if self.cache.exists() {
            if let Ok(repo) = Repository::open_bare(&self.cache) {
                return Ok(repo);
            }
            // A cache we cannot open is only a cache: start over.
            std::fs::remove_dir_all(&self.cache).map_err(|e| SourceError::Cache {
                path: self.cache.clone(),
                message: e.to_string(),
            })?;
        }
        if let Some(parent) = self.cache.parent() {
            std::fs::create_dir_all(parent).map_err(|e| SourceError::Cache {
                path: parent.to_path_buf(),
                message: e.to_string(),
            })?;
        }
        Repository::init_bare(&self.cache).map_err(|e| SourceError::Cache {
            path: self.cache.clone(),
            message: e.message().to_string(),
        })
    }

    /// Fetches the followed reference and reads the spec files of its commit.
    pub fn snapshot(&mut self) -> Result<Snapshot, SourceError> {
        let repo = self.open_cache()?;
        let commit = self.fetch(&repo)?;
        let commit = repo
            .find_commit(commit)
            .map_err(self.git_error("read commit"))?;
        self.verify(&repo, &commit)?;
        let root = commit.tree().map_err(self.git_error("read tree"))?;
        let revision = commit.id().to_string();
        let tree = if self.path.is_empty() {
            root
        } else {
            let entry =
                root.get_path(Path::new(&self.path))
                    .map_err(|_| SourceError::MissingPath {
                        url: redact_url(&self.url),
                        path: self.path.clone(),
                        revision: revision.clone(),
                    })?;
            repo.find_tree(entry.id())
                .map_err(|_| SourceError::MissingPath {
                    url: redact_url(&self.url),
                    path: self.path.clone(),
                    revision: revision.clone(),
                })?
        };
        let mut files = Vec::new();
        let mut links = Vec::new();
        self.collect(&repo, &tree, &mut files, &mut links)?;
        resolve_links(links, &mut files)?;
        files.sort();
        Ok(Snapshot { revision, files })
    }

    fn fetch(&self, repo: &Repository) -> Result<Oid, SourceError> {
        let (refspec, local, remote_ref) = match &self.reference {
            GitRef::Branch(branch) => (
                format!("+refs/heads/{branch}:refs/reconciler/head"),
                "refs/reconciler/head".to_string(),
                format!("refs/heads/{branch}"),
            ),
            GitRef::Tag(tag) => (
                format!("+refs/tags/{tag}:refs/reconciler/head"),
                "refs/reconciler/head".to_string(),
                format!("refs/tags/{tag}"),
            ),
            GitRef::Commit(id) => {
                let oid = Oid::from_str(id).map_err(self.git_error("parse commit id"))?;
                if repo.find_commit(oid).is_ok() {
                    return Ok(oid);
                }
                (id.clone(), String::new(), String::new())
            }
        };
        let mut remote = repo
            .remote_anonymous(&self.url)
            .map_err(self.git_error("configure remote"))?;
        // Only the followed commit (no history: a large file deleted long
        // ago costs nothing), and no more than MAX_FETCH_BYTES of it.
        let too_large = std::rc::Rc::new(std::cell::Cell::new(false));
        let mut callbacks = credential_callbacks();
        let stopped = std::rc::Rc::clone(&too_large);
        callbacks.transfer_progress(move |progress| {
            let within = progress.received_bytes() <= MAX_FETCH_BYTES;
            stopped.set(!within);
            within
        });
        let mut options = FetchOptions::new();
        options.remote_callbacks(callbacks);
        // libgit2's local transport has no shallow fetch; a local
        // repository's history costs no transfer either.
        if !is_local(&self.url) {
            options.depth(1);
        }
        let fetched = remote.fetch(&[refspec.as_str()], Some(&mut options), None);
        if too_large.get() {
            return Err(SourceError::TooLarge {
                url: redact_url(&self.url),
            });
        }
        fetched.map_err(self.git_error("fetch"))?;
        // A refspec naming a ref the remote does not have fetches nothing
        // without an error, and the ref kept from an earlier fetch would
        // stay in force silently: ask what the remote advertised.
        if !remote_ref.is_empty() {
            let advertised = remote
                .list()
                .map_err(self.git_error("list remote references"))?
                .iter()
                .any(|head| head.name() == remote_ref);
            if !advertised {
                return Err(SourceError::MissingRef {
                    url: redact_url(&self.url),
                    reference: self.reference_name(),
                });
            }
        }
        if local.is_empty() {
            let oid = Oid::from_str(&refspec).map_err(self.git_error("parse commit id"))?;
            repo.find_commit(oid)
                .map_err(self.git_error("find commit"))?;
            return Ok(oid);
        }
        let reference = repo
            .find_reference(&local)
            .map_err(self.git_error("resolve reference"))?;
        let commit = reference
            .peel_to_commit()
            .map_err(self.git_error("resolve reference"))?;
        Ok(commit.id())
    }

    /// The files of `tree`, and its symbolic links as `(path, target)` for
    /// [`resolve_links`]. The walk keeps its own stack (a commit's folders
    /// may nest thousands deep) within the spec's [`WalkLimits`], and reads
    /// a blob's size from its header before its content.
    fn collect(
        &self,
        repo: &Repository,
        tree: &Tree<'_>,
        files: &mut Vec<(PathBuf, Vec<u8>)>,
        links: &mut Vec<(PathBuf, String)>,
    ) -> Result<(), SourceError> {
        let odb = repo.odb().map_err(self.git_error("open object database"))?;
        let mut limits = reconciler_spec::WalkLimits::default();
        let mut total = 0;
        let mut folders = vec![(tree.id(), PathBuf::new(), 0usize)];
        while let Some((id, prefix, depth)) = folders.pop() {
            let tree = repo.find_tree(id).map_err(self.git_error("read tree"))?;
            for entry in &tree {
                let Ok(name) = entry.name() else { continue };
                if name.starts_with('.') && !name.starts_with(".env") {
                    continue;
                }
                let path = prefix.join(name);
                limits.enter(&path, depth + 1)?;
                match entry.kind() {
                    Some(ObjectType::Tree) => folders.push((entry.id(), path, depth + 1)),
                    Some(ObjectType::Blob) => {
                        let (size, _) = odb
                            .read_header(entry.id())
                            .map_err(self.git_error("read file"))?;
                        if entry.filemode() == SYMLINK_MODE {
                            if size > MAX_LINK_BYTES {
                                continue;
                            }
                            let blob = repo
                                .find_blob(entry.id())
                                .map_err(self.git_error("read file"))?;
                            let target = String::from_utf8_lossy(blob.content()).into_owned();
                            links.push((path, target));
                            continue;
                        }
                        reconciler_spec::check_size(&path, size, &mut total)?;
                        if !reconciler_spec::is_spec_file(&path)
                            && size > reconciler_spec::MAX_KEPT_FILE_BYTES
                        {
                            continue;
                        }
                        // Spec files are kept whole (a broken byte shows up as a
                        // parse error); other files for configs and secrets
                        // when they are small enough.
                        let blob = repo
                            .find_blob(entry.id())
                            .map_err(self.git_error("read file"))?;
                        let bytes = blob.content().to_vec();
                        let kept = if reconciler_spec::is_spec_file(&path) {
                            Some(bytes)
                        } else {
                            reconciler_spec::spec_file_kept(&path, bytes).unwrap_or(None)
                        };
                        if let Some(kept) = kept {
                            files.push((path, kept));
                        }
                    }
                    _ => {}
                }
            }
        }
        Ok(())
    }
}

/// The most one fetch may bring: a spec is at most
/// [`reconciler_spec::MAX_SPEC_BYTES`], and libgit2 holds about twice a
/// large object in memory while it indexes it.
pub(crate) const MAX_FETCH_BYTES: usize = 128 * 1024 * 1024;

/// An `http://` or `git://` URL of another machine: fetched without
/// encryption or server authentication. Loopback is not "another machine".
pub fn is_plaintext_remote(url: &str) -> bool {
    let Some(rest) = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("git://"))
    else {
        return false;
    };
    let authority = rest.split('/').next().unwrap_or_default();
    let host_port = authority.rsplit('@').next().unwrap_or_default();
    let host = match host_port.strip_prefix('[') {
        Some(bracketed) => bracketed.split(']').next().unwrap_or_default(),
        None => host_port.split(':').next().unwrap_or_default(),
    };
    let loopback = host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    !loopback
}

/// An `http(s)://` URL that carries credentials (`https://user:token@...`,
/// `https://token@...`): they would be in the command line (`ps`) and in
/// files that hold it.
pub fn url_has_credentials(url: &str) -> bool {
    let Some(rest) = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
    else {
        return false;
    };
    rest.split('/').next().unwrap_or_default().contains('@')
}

/// A repository on this machine (`file://` or a path), fetched by
/// libgit2's local transport.
fn is_local(url: &str) -> bool {
    url.starts_with("file://") || url.starts_with('/') || url.starts_with('.')
}

/// A link's target is a path: longer ones are not links a spec uses.
const MAX_LINK_BYTES: usize = 4096;

/// Git's file mode of a symbolic link.
const SYMLINK_MODE: i32 = 0o120_000;

/// A link to a file of the same commit reads as that file; a link that
/// leaves the spec (`/proc/self/environ`, `../../etc`) or points at nothing
/// in it refuses the revision.
fn resolve_links(
    links: Vec<(PathBuf, String)>,
    files: &mut Vec<(PathBuf, Vec<u8>)>,
) -> Result<(), SourceError> {
    for (path, target) in links {
        let refused = |why: String| {
            SourceError::Dir(reconciler_spec::LoadError::Refused {
                path: path.clone(),
                why,
            })
        };
        let mut resolved = path.parent().map(Path::to_path_buf).unwrap_or_default();
        for part in Path::new(&target).components() {
            match part {
                std::path::Component::Normal(name) => resolved.push(name),
                std::path::Component::CurDir => {}
                std::path::Component::ParentDir if resolved.pop() => {}
                _ => {
                    return Err(refused(format!(
                        "a link to {target}, outside the spec; commit the file itself instead"
                    )))
                }
            }
        }
        let Some(bytes) = files
            .iter()
            .find(|(p, _)| *p == resolved)
            .map(|(_, b)| b.clone())
        else {
            return Err(refused(format!(
                "a link to {target}, which is not a file of the spec (links to links or directories are not followed)"
            )));
        };
        files.push((path, bytes));
    }
    Ok(())
}

/// Credentials for private repositories, from files named by environment
/// variables (the values themselves never pass through logs or arguments):
/// `RECONCILER_GIT_SSH_KEY` (a private key file, for ssh URLs) and
/// `RECONCILER_GIT_USERNAME` + `RECONCILER_GIT_PASSWORD_FILE` (for https).
fn credential_callbacks() -> RemoteCallbacks<'static> {
    let mut callbacks = RemoteCallbacks::new();
    let mut attempts = 0;
    callbacks.credentials(move |_url, username, allowed| {
        attempts += 1;
        // An authentication error, told apart from the network's: it waits
        // for a person instead of being retried with backoff.
        let refused = |message: &str| {
            git2::Error::new(git2::ErrorCode::Auth, git2::ErrorClass::Callback, message)
        };
        if attempts > 3 {
            return Err(refused("authentication failed (credentials refused)"));
        }
        if allowed.contains(git2::CredentialType::SSH_KEY) {
            if let Ok(key) = std::env::var("RECONCILER_GIT_SSH_KEY") {
                return git2::Cred::ssh_key(username.unwrap_or("git"), None, Path::new(&key), None);
            }
        }
        if allowed.contains(git2::CredentialType::USER_PASS_PLAINTEXT) {
            if let (Ok(user), Ok(file)) = (
                std::env::var("RECONCILER_GIT_USERNAME"),
                std::env::var("RECONCILER_GIT_PASSWORD_FILE"),
            ) {
                let password = std::fs::read_to_string(&file).map_err(|e| {
                    git2::Error::from_str(&format!("cannot read RECONCILER_GIT_PASSWORD_FILE: {e}"))
                })?;
                return git2::Cred::userpass_plaintext(&user, password.trim());
            }
        }
        Err(refused(
            "the remote asks for credentials and none are configured",
        ))
    });
    callbacks
}

/// Removes `user:password@` from a URL before it is shown anywhere.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            format!("{}://***@{}", &url[..scheme], &url[at + 1..])
        }
        _ => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::{is_plaintext_remote, redact_url, url_has_credentials};

    #[test]
    fn credentials_in_http_urls_are_told_apart() {
        assert!(url_has_credentials(
            "https://deploy:tok@git.example.org/a.git"
        ));
        assert!(url_has_credentials("https://tok@github.com/me/a.git"));
        assert!(!url_has_credentials("https://github.com/me/a.git"));
        assert!(!url_has_credentials("ssh://git@github.com/me/a.git"));
        assert!(!url_has_credentials("https://github.com/me/a@b.git"));
    }

    #[test]
    fn plaintext_remotes_are_told_from_encrypted_and_local_ones() {
        for url in [
            "http://git.lan/spec.git",
            "git://192.168.1.5/spec",
            "http://user:token@git.example.com:8080/spec.git",
            "http://[fd00::5]/spec.git",
        ] {
            assert!(is_plaintext_remote(url), "{url}");
        }
        for url in [
            "https://github.com/me/spec.git",
            "ssh://git@host/spec.git",
            "git@github.com:me/spec.git",
            "file:///srv/spec.git",
            "/srv/spec.git",
            "http://127.0.0.1:8080/spec.git",
            "http://localhost/spec.git",
            "http://[::1]:9000/spec.git",
        ] {
            assert!(!is_plaintext_remote(url), "{url}");
        }
    }

    #[test]
    fn credentials_in_urls_are_redacted() {
        assert_eq!(
            redact_url("https://bob:hunter2@example.org/x.git"),
            "https://***@example.org/x.git"
        );
        assert_eq!(redact_url("file:///srv/git/x.git"), "file:///srv/git/x.git");
    }
}
