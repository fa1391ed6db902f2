//! A revision is loaded in a child process first, under memory and CPU limits.
//!
//! Whoever can push can make the load itself expensive: a chart template
//! that doubles a string thirty times asks for a gigabyte in thirty steps
//! (minijinja's fuel bounds steps, not bytes), and an allocation that
//! fails aborts the process — with `Restart=always`, a crash loop, and the
//! last good revision no longer in force. No bound inside the process can
//! catch every such path, so `run` loads each new revision once in a child
//! (`reconciler __check-load`, the same code on the same files) whose
//! address space and CPU time are limited. A child that ends normally,
//! whatever the load said, proves the load fits; the controller then loads
//! the revision itself. A child that was stopped refuses the revision with
//! what stopped it, and the last good revision stays in force.
//!
//! The child gets the files and the allowed environment on stdin, never an
//! identity: a sealed secret fails there for want of a key, which costs
//! nothing (decrypting is bounded by the size of the file).

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

/// The argument that makes the binary the child.
pub const CHILD_ARG: &str = "__check-load";

/// The child's address space: a spec of the largest allowed size loads in
/// a fraction of it; a template that outgrows it is stopped there.
pub const MEMORY_LIMIT: u64 = 512 * 1024 * 1024;

/// The child's CPU time (templates are also bounded in steps).
pub const CPU_LIMIT: Duration = Duration::from_secs(30);

/// How long the controller waits for the child in all.
const WALL_LIMIT: Duration = Duration::from_secs(60);

/// What the child says on stdout once limited, and once the load is done:
/// only a child that said the first gives a verdict on the revision.
const LIMITED: &str = "limited\n";
const LOADED: &str = "loaded\n";

/// The most of the child's stderr kept for the reason.
const MAX_REASON_BYTES: u64 = 4096;

/// Why a revision's load was not allowed to run in the controller.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    /// The child was stopped: it outgrew its memory or CPU time, or crashed.
    #[error("loading this revision was stopped ({reason}); a spec loads in far less than {} MiB and {} s, so the revision is refused and the last good one stays in force", MEMORY_LIMIT / (1024 * 1024), CPU_LIMIT.as_secs())]
    Exceeded {
        /// What the child said or how it ended (`memory allocation of ... failed`).
        reason: String,
    },
    /// The child could not be started or talked to.
    #[error("cannot start the process that checks a revision: {0}")]
    Spawn(#[source] std::io::Error),
    /// The child ended before it had limited itself: no verdict on the
    /// revision (an emulator that cannot run the binary again, say).
    #[error(
        "the process that checks a revision did not start ({0}); revisions are loaded without it"
    )]
    NoChild(String),
}

/// Whether loading `files` can take more than a bounded multiple of their
/// size: only a chart release renders templates (everything else is
/// bounded by the file limits: YAML aliases, interpolation, TOML), and a
/// release needs a key spelled `release`. A key can hide its letters only
/// behind a TOML `\u`/`\U` escape, so a file with one counts too. A spec
/// without either is loaded without the child (which cost a second load:
/// a no-op `apply` of 1000 services went from ~0.13 to ~0.24 s).
pub fn can_outgrow(files: &[(PathBuf, Vec<u8>)]) -> bool {
    let contains = |bytes: &[u8], needle: &[u8]| bytes.windows(needle.len()).any(|w| w == needle);
    files
        .iter()
        .filter(|(path, _)| path.extension().is_some_and(|e| e == "toml"))
        .any(|(_, bytes)| {
            contains(bytes, b"release") || contains(bytes, b"\\u") || contains(bytes, b"\\U")
        })
}

/// Loads `files` in a child process under the limits; `Ok` when the load
/// ran to its end there (valid or not), or when it cannot outgrow them
/// ([`can_outgrow`]).
pub fn check(
    files: &[(PathBuf, Vec<u8>)],
    environment: &BTreeMap<String, String>,
) -> Result<(), SandboxError> {
    if !can_outgrow(files) {
        return Ok(());
    }
    let exe = std::env::current_exe().map_err(SandboxError::Spawn)?;
    let mut child = Command::new(exe)
        .arg(CHILD_ARG)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .env_clear()
        .spawn()
        .map_err(SandboxError::Spawn)?;
    let input = encode(files, environment);
    let mut stdin = child
        .stdin
        .take()
        .ok_or_else(|| SandboxError::Spawn(std::io::Error::other("no stdin")))?;
    // Written from a thread: a child that stops reading must not block us.
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(&input);
    });
    let mut stderr = child
        .stderr
        .take()
        .ok_or_else(|| SandboxError::Spawn(std::io::Error::other("no stderr")))?;
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = (&mut stderr)
            .take(MAX_REASON_BYTES)
            .read_to_string(&mut text);
        text
    });
    let mut stdout = child
        .stdout
        .take()
        .ok_or_else(|| SandboxError::Spawn(std::io::Error::other("no stdout")))?;
    let progress = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = (&mut stdout).take(64).read_to_string(&mut text);
        text
    });
    let started = Instant::now();
    let status = loop {
        match child.try_wait().map_err(SandboxError::Spawn)? {
            Some(status) => break Some(status),
            None if started.elapsed() > WALL_LIMIT => {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            None => std::thread::sleep(Duration::from_millis(5)),
        }
    };
    let _ = writer.join();
    let said = reader.join().unwrap_or_default();
    let reached = progress.join().unwrap_or_default();
    match status {
        Some(status) if status.success() && reached.contains(LOADED) => Ok(()),
        Some(status) if !reached.contains(LIMITED) => {
            let first = said.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
            Err(SandboxError::NoChild(format!("{status}; {first}")))
        }
        Some(status) => {
            use std::os::unix::process::ExitStatusExt;
            let how = match status.signal() {
                Some(signal) => format!("signal {signal}"),
                None => format!("exit code {}", status.code().unwrap_or(-1)),
            };
            let first = said.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
            Err(SandboxError::Exceeded {
                reason: if first.is_empty() {
                    how
                } else {
                    format!("{first}; {how}")
                },
            })
        }
        None => Err(SandboxError::Exceeded {
            reason: format!("still loading after {} s", WALL_LIMIT.as_secs()),
        }),
    }
}

/// The child: limits itself, reads the files, loads them, exits 0.
pub fn child() -> ExitCode {
    use rustix::process::{setrlimit, Resource, Rlimit};
    let limit = |resource, value: u64| {
        setrlimit(
            resource,
            Rlimit {
                current: Some(value),
                maximum: Some(value),
            },
        )
    };
    let limited = limit(Resource::As, MEMORY_LIMIT)
        .and_then(|()| limit(Resource::Cpu, CPU_LIMIT.as_secs()))
        .and_then(|()| limit(Resource::Core, 0));
    if let Err(error) = limited {
        eprintln!("cannot limit the checking process: {error}");
        return ExitCode::from(3);
    }
    print!("{LIMITED}");
    let _ = std::io::stdout().flush();
    let mut input = Vec::new();
    let bound = u64::try_from(reconciler_spec::MAX_SPEC_BYTES * 2).unwrap_or(u64::MAX);
    if std::io::stdin()
        .take(bound)
        .read_to_end(&mut input)
        .is_err()
    {
        eprintln!("cannot read the revision");
        return ExitCode::from(3);
    }
    let Some((files, environment)) = decode(&input) else {
        eprintln!("cannot read the revision");
        return ExitCode::from(3);
    };
    drop(input);
    let options = reconciler_spec::LoadOptions {
        keyring: reconciler_spec::Keyring::default(),
        environment: reconciler_spec::Environment::Only(environment),
    };
    // Valid or not, the load ran to its end within the limits.
    let _ = reconciler_spec::load_files_with(files, &options);
    print!("{LOADED}");
    let _ = std::io::stdout().flush();
    ExitCode::SUCCESS
}

/// `count, (path, bytes)*, count, (name, value)*`, each length a `u64`.
fn encode(files: &[(PathBuf, Vec<u8>)], environment: &BTreeMap<String, String>) -> Vec<u8> {
    fn put(out: &mut Vec<u8>, bytes: &[u8]) {
        out.extend_from_slice(&u64::try_from(bytes.len()).unwrap_or(u64::MAX).to_le_bytes());
        out.extend_from_slice(bytes);
    }
    let mut out = Vec::new();
    out.extend_from_slice(&u64::try_from(files.len()).unwrap_or(u64::MAX).to_le_bytes());
    for (path, bytes) in files {
        put(&mut out, path.to_string_lossy().as_bytes());
        put(&mut out, bytes);
    }
    out.extend_from_slice(
        &u64::try_from(environment.len())
            .unwrap_or(u64::MAX)
            .to_le_bytes(),
    );
    for (name, value) in environment {
        put(&mut out, name.as_bytes());
        put(&mut out, value.as_bytes());
    }
    out
}

type Decoded = (Vec<(PathBuf, Vec<u8>)>, BTreeMap<String, String>);

fn decode(input: &[u8]) -> Option<Decoded> {
    let mut cursor = Cursor { rest: input };
    let files_count = cursor.number()?;
    let mut files = Vec::new();
    for _ in 0..files_count {
        let path = String::from_utf8(cursor.bytes()?.to_vec()).ok()?;
        files.push((PathBuf::from(path), cursor.bytes()?.to_vec()));
    }
    let mut environment = BTreeMap::new();
    for _ in 0..cursor.number()? {
        let name = String::from_utf8(cursor.bytes()?.to_vec()).ok()?;
        let value = String::from_utf8(cursor.bytes()?.to_vec()).ok()?;
        environment.insert(name, value);
    }
    Some((files, environment))
}

/// Reads `decode`'s lengths and byte strings.
struct Cursor<'a> {
    rest: &'a [u8],
}

impl<'a> Cursor<'a> {
    fn number(&mut self) -> Option<usize> {
        let (head, tail) = self.rest.split_first_chunk::<8>()?;
        self.rest = tail;
        usize::try_from(u64::from_le_bytes(*head)).ok()
    }

    fn bytes(&mut self) -> Option<&'a [u8]> {
        let len = self.number()?;
        if len > self.rest.len() {
            return None;
        }
        let (bytes, tail) = self.rest.split_at(len);
        self.rest = tail;
        Some(bytes)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn only_a_spec_that_may_hold_a_release_is_loaded_in_the_child() {
        let spec = |text: &str| vec![(PathBuf::from("a.toml"), text.as_bytes().to_vec())];
        assert!(!super::can_outgrow(&spec(
            "[cluster]\nname = \"x\"\n[service.web]\nimage = \"nginx\"\n"
        )));
        assert!(super::can_outgrow(&spec(
            "[release.web]\nchart = \"charts/web\"\n"
        )));
        assert!(super::can_outgrow(&spec("release.web.chart = \"c\"\n")));
        // The key spelled with an escape in a quoted key.
        assert!(super::can_outgrow(&spec(
            "[\"\\u0072elease\".web]\nchart = \"c\"\n"
        )));
        // Not a spec file: a data file's words do not count.
        assert!(!super::can_outgrow(&[(
            PathBuf::from("notes.txt"),
            b"release".to_vec()
        )]));
    }

    use super::*;

    #[test]
    fn the_files_and_environment_cross_unchanged() {
        let files = vec![
            (PathBuf::from("a.toml"), b"[cluster]\n".to_vec()),
            (PathBuf::from("dir/b.bin"), vec![0, 255, 7]),
        ];
        let environment = BTreeMap::from([("TAG".to_string(), "v1".to_string())]);
        let (back, env) = decode(&encode(&files, &environment)).expect("decodes");
        assert_eq!(back, files);
        assert_eq!(env, environment);
        assert!(decode(&encode(&files, &environment)[..20]).is_none());
    }
}
