//! Secrets encrypted in git, against the reference tools: every file here is
//! encrypted by the real `age` and `sops` command line tools (installed by
//! `scripts/setup`), and what reconciler decrypts is compared with what
//! `age --decrypt` and `sops decrypt` print for the same file. Then a
//! controller following a git repository deploys such secrets to the local
//! swarm, and refuses a revision whose file it cannot decrypt.

#![allow(
    clippy::too_many_lines,
    reason = "an end-to-end scenario reads best top to bottom, as one story"
)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use reconciler_spec::sealed::{AgeError, Encryption, Keyring, SopsError, UnsealError};
use reconciler_tests::controller::{Controller, SecretFrom};
use reconciler_tests::git::GitRepo;
use reconciler_tests::*;

/// Runs a reference tool; its exit code, stdout bytes and stderr.
fn tool(program: &str, args: &[&str], env: &[(&str, &Path)]) -> (i32, Vec<u8>, String) {
    let mut command = Command::new(program);
    command.args(args);
    // No update check against the network (there is none here).
    command.env("SOPS_DISABLE_VERSION_CHECK", "1");
    for (name, value) in env {
        command.env(name, value);
    }
    let output = command
        .output()
        .unwrap_or_else(|e| panic!("{program} did not start ({e}); run scripts/setup"));
    (
        output.status.code().unwrap_or(-1),
        output.stdout,
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

fn tool_ok(program: &str, args: &[&str], env: &[(&str, &Path)]) -> Vec<u8> {
    let (code, stdout, stderr) = tool(program, args, env);
    assert_eq!(code, 0, "{program} {args:?} failed: {stderr}");
    stdout
}

/// An age identity made by `age-keygen`: its file and its recipient.
struct Key {
    file: PathBuf,
    recipient: String,
}

impl Key {
    fn new(dir: &Path, name: &str) -> Self {
        let file = dir.join(name);
        let path = file.display().to_string();
        tool_ok("age-keygen", &["-o", &path], &[]);
        let recipient = String::from_utf8_lossy(&tool_ok("age-keygen", &["-y", &path], &[]))
            .trim()
            .to_string();
        Self { file, recipient }
    }

    fn keyring(&self) -> Keyring {
        Keyring::from_file(&self.file).unwrap_or_else(|e| panic!("{e}"))
    }
}

/// Bytes that are not text and repeat nothing: a small xorshift stream.
fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed | 1;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 24).to_le_bytes()[0]
        })
        .collect()
}

#[test]
fn age_files_decrypt_exactly_as_the_age_tool_does() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mine = Key::new(dir.path(), "mine.txt");
    let other = Key::new(dir.path(), "other.txt");
    assert_eq!(mine.keyring().recipients(), vec![mine.recipient.clone()]);
    let plaintexts: Vec<(&str, Vec<u8>)> = vec![
        ("empty", Vec::new()),
        ("password", b"hunter2\n".to_vec()),
        ("binary", noise(1000, 7)),
        // The payload is sealed in 64 KiB chunks: the edges of a chunk.
        ("one-chunk", noise(64 * 1024, 11)),
        ("chunk-and-a-byte", noise(64 * 1024 + 1, 13)),
        ("several-chunks", noise(300 * 1024, 17)),
    ];
    let mut compared = 0;
    for (name, plain) in &plaintexts {
        let plain_path = dir.path().join(name);
        std::fs::write(&plain_path, plain).expect("write plaintext");
        for armor in [false, true] {
            let sealed = dir.path().join(format!("{name}-{armor}.age"));
            let mut args = vec!["-r", &other.recipient, "-r", &mine.recipient];
            if armor {
                args.push("--armor");
            }
            let sealed_arg = sealed.display().to_string();
            let plain_arg = plain_path.display().to_string();
            args.extend_from_slice(&["-o", &sealed_arg, &plain_arg]);
            tool_ok("age", &args, &[]);
            let bytes = std::fs::read(&sealed).expect("read sealed");
            let reference = tool_ok(
                "age",
                &[
                    "--decrypt",
                    "-i",
                    &mine.file.display().to_string(),
                    &sealed_arg,
                ],
                &[],
            );
            let ours = mine
                .keyring()
                .decrypt(Encryption::Age, &sealed, &bytes)
                .unwrap_or_else(|e| panic!("{name} (armor {armor}): {e}"));
            assert_eq!(ours, reference, "{name} (armor {armor}) differs from age");
            assert_eq!(&ours, plain, "{name} (armor {armor})");
            assert_eq!(Encryption::detect(&bytes), Some(Encryption::Age));
            compared += 1;
        }
    }
    assert_eq!(compared, 12);
}

#[test]
fn age_files_for_other_keys_or_altered_are_refused_like_the_age_tool_does() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mine = Key::new(dir.path(), "mine.txt");
    let other = Key::new(dir.path(), "other.txt");
    let password = dir.path().join("password");
    std::fs::write(&password, "hunter2\n").expect("write");
    let password = password.display().to_string();
    // A file for another key: both refuse; ours says no identity matches.
    let for_other = dir.path().join("for-other.age");
    let for_other_arg = for_other.display().to_string();
    tool_ok(
        "age",
        &["-r", &other.recipient, "-o", &for_other_arg, &password],
        &[],
    );
    let bytes = std::fs::read(&for_other).expect("read");
    let (code, _, _) = tool(
        "age",
        &[
            "--decrypt",
            "-i",
            &mine.file.display().to_string(),
            &for_other_arg,
        ],
        &[],
    );
    assert_ne!(code, 0, "age decrypted a file that is not for this key");
    match mine.keyring().decrypt(Encryption::Age, &for_other, &bytes) {
        Err(UnsealError::Age(AgeError::NoMatchingIdentity { stanzas: 1, .. })) => {}
        other => panic!("expected no matching identity, got {other:?}"),
    }

    // Altered files: a payload byte, then the header's MAC. Both refuse.
    let sealed = dir.path().join("password.age");
    let sealed_arg = sealed.display().to_string();
    tool_ok(
        "age",
        &["-r", &mine.recipient, "-o", &sealed_arg, &password],
        &[],
    );
    let original = std::fs::read(&sealed).expect("read");
    let altered_path = dir.path().join("altered.age");
    let altered_arg = altered_path.display().to_string();
    let mut payload_changed = original.clone();
    if let Some(last) = payload_changed.last_mut() {
        *last ^= 1;
    }
    let mac_at = original
        .windows(4)
        .position(|w| w == b"--- ")
        .expect("a MAC line")
        + 4;
    let mut mac_changed = original.clone();
    mac_changed[mac_at] = if mac_changed[mac_at] == b'A' {
        b'B'
    } else {
        b'A'
    };
    for (altered, expected) in [
        (payload_changed, AgeError::Payload),
        (mac_changed, AgeError::HeaderMac),
    ] {
        std::fs::write(&altered_path, &altered).expect("write");
        let (code, _, _) = tool(
            "age",
            &[
                "--decrypt",
                "-i",
                &mine.file.display().to_string(),
                &altered_arg,
            ],
            &[],
        );
        assert_ne!(code, 0, "age accepted an altered file");
        match mine
            .keyring()
            .decrypt(Encryption::Age, &altered_path, &altered)
        {
            Err(UnsealError::Age(found)) => assert_eq!(found, expected),
            other => panic!("expected {expected:?}, got {other:?}"),
        }
    }
}

/// `sops encrypt` of `name` with `contents` (its name picks the format),
/// extra flags and an optional `.sops.yaml`; returns the encrypted file.
fn sops_encrypt(
    dir: &Path,
    name: &str,
    contents: &[u8],
    recipient: &str,
    flags: &[&str],
    config: Option<&str>,
) -> PathBuf {
    std::fs::create_dir_all(dir).expect("mkdir");
    let plain = dir.join(name);
    std::fs::write(&plain, contents).expect("write plaintext");
    let mut args: Vec<String> = Vec::new();
    if let Some(config) = config {
        let path = dir.join(format!("{name}.sops.yaml"));
        std::fs::write(&path, config.replace("RECIPIENT", recipient)).expect("write config");
        args.extend([
            "--config".into(),
            path.display().to_string(),
            "encrypt".into(),
        ]);
    } else {
        args.extend(["encrypt".into(), "--age".into(), recipient.to_string()]);
    }
    args.extend(flags.iter().map(|f| f.to_string()));
    args.push(plain.display().to_string());
    let arg_refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let sealed_bytes = tool_ok("sops", &arg_refs, &[]);
    let sealed = dir.join("sealed").join(name);
    std::fs::create_dir_all(sealed.parent().expect("parent")).expect("mkdir");
    std::fs::write(&sealed, sealed_bytes).expect("write sealed");
    sealed
}

/// `sops decrypt` (exit code, stderr) and ours on the same altered text.
fn both_decrypt(
    dir: &Path,
    name: &str,
    text: &str,
    key: &Key,
) -> (i32, String, Result<Vec<u8>, UnsealError>) {
    let path = dir.join("altered").join(name);
    std::fs::create_dir_all(dir.join("altered")).expect("mkdir");
    std::fs::write(&path, text).expect("write");
    let (code, _, stderr) = tool(
        "sops",
        &["decrypt", &path.display().to_string()],
        &[("SOPS_AGE_KEY_FILE", key.file.as_path())],
    );
    let ours = key
        .keyring()
        .decrypt(Encryption::Sops, &path, text.as_bytes());
    (code, stderr, ours)
}

/// A `.sops.yaml` that MACs only the encrypted values and leaves `*_plain` clear.
const MAC_ONLY_CONFIG: &str =
    "creation_rules:\n  - age: RECIPIENT\n    mac_only_encrypted: true\n    unencrypted_suffix: _plain\n";

#[test]
fn sops_files_decrypt_exactly_as_sops_does() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mine = Key::new(dir.path(), "mine.txt");
    let yaml = "# database settings\nuser: admin\nport: 5432\nratio: 0.25\nenabled: true\n\"on\": false\nhosts:\n  - db1\n  - 42\nnested:\n  deep:\n    password: \"p@ss: word\"\n    empty: \"\"\n  nothing: null\n";
    let json = r#"{"user": "admin", "port": 5432, "ratio": 1.5, "big": 1e21, "ok": true, "tags": ["a", 2, {"x": null}], "html": "<a href='x'>&</a>", "uni": "é ✓", "empty": {}, "none": []}"#;
    let dotenv = "DB_USER=admin\n# the password\nDB_PASSWORD=s3cr<e>t&\\nline\nEMPTY=\n";
    let binary =
        "-----BEGIN PRIVATE KEY-----\nMIIB...\n-----END PRIVATE KEY-----\n\ttabs and ünïcode\n";
    let cases: Vec<(&str, &str, Vec<&str>, Option<&str>)> = vec![
        ("app.yaml", yaml, vec![], None),
        ("app.yml", yaml, vec!["--unencrypted-suffix", "word"], None),
        ("app.json", json, vec![], None),
        ("prod.env", dotenv, vec![], None),
        ("tls.key", binary, vec![], None),
        (
            "suffix.yaml",
            "user_secret: admin\nport: 5432\nnested:\n  pw_secret: x\n  plain: y\n",
            vec!["--encrypted-suffix", "_secret"],
            None,
        ),
        (
            "mac-only.json",
            r#"{"token": "abc", "note_plain": "kept as it is", "n_plain": 3}"#,
            vec![],
            Some(MAC_ONLY_CONFIG),
        ),
    ];
    let key_env = [("SOPS_AGE_KEY_FILE", mine.file.as_path())];
    for (name, contents, flags, config) in &cases {
        let sealed = sops_encrypt(
            dir.path(),
            name,
            contents.as_bytes(),
            &mine.recipient,
            flags,
            *config,
        );
        let bytes = std::fs::read(&sealed).expect("read sealed");
        assert_eq!(
            Encryption::detect(&bytes),
            Some(Encryption::Sops),
            "{name} is not recognised as SOPS"
        );
        let reference = tool_ok(
            "sops",
            &["decrypt", &sealed.display().to_string()],
            &key_env,
        );
        let ours = mine
            .keyring()
            .decrypt(Encryption::Sops, &sealed, &bytes)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        if name.ends_with(".yaml") || name.ends_with(".yml") {
            // The same document; our YAML emitter spaces it its own way.
            let parse = |b: &[u8]| {
                serde_yaml::from_slice::<serde_yaml::Value>(b)
                    .unwrap_or_else(|e| panic!("{name}: not YAML: {e}"))
            };
            assert_eq!(parse(&ours), parse(&reference), "{name} differs from sops");
        } else {
            assert_eq!(
                String::from_utf8_lossy(&ours),
                String::from_utf8_lossy(&reference),
                "{name} differs from sops"
            );
        }
    }
}

#[test]
fn sops_files_for_other_keys_or_altered_are_refused_like_sops_does() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mine = Key::new(dir.path(), "mine.txt");
    let other = Key::new(dir.path(), "other.txt");
    let key_env = [("SOPS_AGE_KEY_FILE", mine.file.as_path())];
    let sealed = sops_encrypt(
        dir.path(),
        "app.json",
        br#"{"user": "admin", "html": "<b>", "n": 1}"#,
        &mine.recipient,
        &[],
        None,
    );
    sops_encrypt(
        dir.path(),
        "mac-only.json",
        br#"{"token": "abc", "note_plain": "kept as it is", "n_plain": 3}"#,
        &mine.recipient,
        &[],
        Some(MAC_ONLY_CONFIG),
    );
    sops_encrypt(
        dir.path(),
        "suffix.yaml",
        b"user_secret: admin\nport: 5432\n",
        &mine.recipient,
        &["--encrypted-suffix", "_secret"],
        None,
    );
    // For another key only: both refuse; ours names the data key.
    let for_other = sops_encrypt(
        &dir.path().join("other"),
        "x.yaml",
        b"a: b\n",
        &other.recipient,
        &[],
        None,
    );
    let (code, _, _) = tool(
        "sops",
        &["decrypt", &for_other.display().to_string()],
        &key_env,
    );
    assert_ne!(code, 0);
    let bytes = std::fs::read(&for_other).expect("read");
    assert!(matches!(
        mine.keyring().decrypt(Encryption::Sops, &for_other, &bytes),
        Err(UnsealError::Sops(SopsError::DataKey(
            AgeError::NoMatchingIdentity { .. }
        )))
    ));

    // Altered: two encrypted values swapped (each is bound to its key path).
    let text = std::fs::read_to_string(&sealed).expect("read");
    let value_of = |key: &str| {
        let start = text.find(&format!("\"{key}\": \"ENC[")).expect(key) + key.len() + 5;
        let end = start + text[start..].find('"').expect("end of value");
        text[start..end].to_string()
    };
    let (user, html) = (value_of("user"), value_of("html"));
    let swapped = text
        .replace(&user, "SWAP")
        .replace(&html, &user)
        .replace("SWAP", &html);
    let (code, _, ours) = both_decrypt(dir.path(), "swapped.json", &swapped, &mine);
    assert_ne!(code, 0, "sops accepted swapped values");
    assert!(
        matches!(ours, Err(UnsealError::Sops(SopsError::Value { .. }))),
        "{ours:?}"
    );
    // A clear value changed: with mac_only_encrypted neither tool notices
    // (both print it); otherwise the MAC breaks for both.
    let unmarked = std::fs::read_to_string(dir.path().join("sealed/mac-only.json"))
        .expect("read")
        .replace("kept as it is", "changed")
        .replace("\"n_plain\": 3", "\"n_plain\": 4");
    let (code, _, ours) = both_decrypt(dir.path(), "unmarked.json", &unmarked, &mine);
    assert_eq!(
        code, 0,
        "sops refused a changed clear value with mac_only_encrypted"
    );
    assert!(ours.is_ok(), "{ours:?}");
    let suffixed = std::fs::read_to_string(dir.path().join("sealed/suffix.yaml"))
        .expect("read")
        .replace("port: 5432", "port: 5433");
    let (code, stderr, ours) = both_decrypt(dir.path(), "suffixed.yaml", &suffixed, &mine);
    assert_ne!(code, 0, "sops accepted a changed clear value");
    assert!(stderr.contains("MAC mismatch"), "{stderr}");
    assert!(
        matches!(ours, Err(UnsealError::Sops(SopsError::Mac))),
        "{ours:?}"
    );
}

#[test]
fn a_controller_deploys_encrypted_secrets_decrypted_and_refuses_a_file_it_cannot_decrypt() {
    require_swarm();
    let _node = shared_node();
    let _cleanup = Cleanup::new("sealed", "sl");
    let dir = tempfile::tempdir().expect("temp dir");
    let mine = Key::new(dir.path(), "controller.txt");
    let other = Key::new(dir.path(), "someone-else.txt");
    let token = "tok-5b1e-not-a-real-secret";
    let token_path = dir.path().join("token");
    std::fs::write(&token_path, format!("{token}\n")).expect("write");
    let seal_token = |key: &Key| {
        let out = dir.path().join("token.age");
        tool_ok(
            "age",
            &[
                "-r",
                &key.recipient,
                "-o",
                &out.display().to_string(),
                &token_path.display().to_string(),
            ],
            &[],
        );
        std::fs::read(out).expect("read")
    };
    let db_env = "DB_USER=admin\nDB_PASSWORD=pw-93c1-not-a-real-secret\n";
    let db = sops_encrypt(
        dir.path(),
        "db.env",
        db_env.as_bytes(),
        &mine.recipient,
        &[],
        None,
    );
    let api_json = r#"{"key": "api-4e0d-not-a-real-secret"}"#;
    let api = sops_encrypt(
        dir.path(),
        "api.enc.json",
        api_json.as_bytes(),
        &mine.recipient,
        &[],
        None,
    );
    let key_env = [("SOPS_AGE_KEY_FILE", mine.file.as_path())];
    let db_plain = tool_ok("sops", &["decrypt", &db.display().to_string()], &key_env);
    let api_plain = tool_ok("sops", &["decrypt", &api.display().to_string()], &key_env);
    let plaintexts = [
        token,
        "pw-93c1-not-a-real-secret",
        "api-4e0d-not-a-real-secret",
    ];

    let spec = format!(
        r#"[cluster]
name = "sealed"

[secret.sl-token]
file = "secrets/token.age"
encryption = "age"

[secret.sl-env]
file = "secrets/db.env"
encryption = "sops"

[service.sl-app]
image = "{IMAGE}"
command = ["sleep", "3600"]
secrets = [{{ source = "sl-token" }}, {{ source = "sl-env" }}]

[stack.slstk]
compose = "stack/docker-stack.yml"
"#
    );
    // A stack file as SwarmCD users have it: its secret a SOPS file.
    let stack = format!(
        "version: \"3.8\"\nservices:\n  web:\n    image: {IMAGE}\n    command: [\"sleep\", \"3600\"]\n    secrets: [api]\nsecrets:\n  api:\n    file: ./api.enc.json\n"
    );
    let repo = GitRepo::new();
    let good = repo.commit_bytes(
        &[
            ("spec.toml", spec.as_bytes()),
            ("secrets/token.age", &seal_token(&mine)),
            ("secrets/db.env", &std::fs::read(&db).expect("read")),
            ("stack/docker-stack.yml", stack.as_bytes()),
            ("stack/api.enc.json", &std::fs::read(&api).expect("read")),
        ],
        "encrypted secrets",
    );
    let url = repo.url();
    let identity = mine.file.clone();
    let controller = Controller::start_with(
        &["--git", &url],
        &["--interval", "1s"],
        SecretFrom::File,
        &[(
            "RECONCILER_AGE_IDENTITY_FILE",
            identity.as_path().to_str().unwrap_or_default(),
        )],
    );
    let app = running_container("sl-app");
    assert_eq!(
        docker(&["exec", &app, "cat", "/run/secrets/sl-token"]).trim(),
        token
    );
    let env_seen = docker_unchecked(&["exec", &app, "cat", "/run/secrets/sl-env"]);
    assert_eq!(
        env_seen.stdout.as_bytes(),
        db_plain.as_slice(),
        "sl-env is not what sops decrypts"
    );
    let web = running_container("slstk_web");
    let api_seen = docker_unchecked(&["exec", &web, "cat", "/run/secrets/api"]);
    assert_eq!(
        api_seen.stdout.as_bytes(),
        api_plain.as_slice(),
        "the stack's secret is not what sops decrypts"
    );

    // Nothing the controller shows carries a value.
    let shown = format!(
        "{}\n{}\n{}",
        controller.process.log(),
        controller.status(),
        controller.metrics()
    );
    for plain in plaintexts {
        assert!(!shown.contains(plain), "a decrypted value was shown");
    }

    // The token re-encrypted for someone else only: the revision is refused,
    // naming the file, and the deployed secret stays.
    let version = service_version("sl-app");
    let bad = repo.commit_bytes(
        &[("secrets/token.age", &seal_token(&other))],
        "token for another key",
    );
    wait_until(
        "the revision to be refused",
        Duration::from_secs(60),
        || {
            let status = controller.status();
            (status["fetched_revision"].as_str() == Some(bad.as_str())
                && status["spec_valid"] == false)
                .then_some(())
                .ok_or(format!("{status:#}"))
        },
    );
    let status = controller.status();
    let error = status["spec_error"].as_str().unwrap_or_default();
    assert!(
        error.contains("cannot decrypt `secrets/token.age`")
            && error.contains("none of the 1 identities matches"),
        "{error}"
    );
    assert_eq!(status["revision"].as_str(), Some(good.as_str()));
    controller.wait_for_reconciles(2);
    assert_eq!(
        service_version("sl-app"),
        version,
        "a refused revision changed the service"
    );
    assert_eq!(
        docker(&["exec", &app, "cat", "/run/secrets/sl-token"]).trim(),
        token
    );
}

/// Encrypted files come from whoever can push: mutated age and SOPS files
/// (made by the real tools, then bit-flipped, cut and spliced) decrypt or
/// are refused, never panic. Bounded by `FUZZ_ITERATIONS` (default 3000).
#[test]
fn mutated_encrypted_files_are_refused_and_never_panic() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mine = Key::new(dir.path(), "mine.txt");
    let plain = dir.path().join("plain");
    std::fs::write(&plain, noise(70 * 1024, 3)).expect("write");
    let mut seeds: Vec<(PathBuf, Vec<u8>, Encryption)> = Vec::new();
    for armor in [false, true] {
        let out = dir.path().join(format!("x-{armor}.age"));
        let (out_arg, plain_arg) = (out.display().to_string(), plain.display().to_string());
        let mut args = vec!["-r", mine.recipient.as_str(), "-o", &out_arg];
        if armor {
            args.push("--armor");
        }
        args.push(&plain_arg);
        tool_ok("age", &args, &[]);
        seeds.push((
            out.clone(),
            std::fs::read(&out).expect("read"),
            Encryption::Age,
        ));
    }
    for (name, text) in [
        (
            "a.yaml",
            "user: admin\nlist: [1, 2.5, true]\nnested: {k: v}\n",
        ),
        ("a.json", r#"{"a": "b", "n": [1, {"x": null}]}"#),
        ("a.env", "A=1\n# c\nB=two\n"),
        ("a.bin", "binary\n"),
    ] {
        let sealed = sops_encrypt(
            dir.path(),
            name,
            text.as_bytes(),
            &mine.recipient,
            &[],
            None,
        );
        let bytes = std::fs::read(&sealed).expect("read");
        seeds.push((sealed, bytes, Encryption::Sops));
    }
    let keyring = mine.keyring();
    let iterations: usize = std::env::var("FUZZ_ITERATIONS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(3000);
    let mut state = 0x9e37_79b9_7f4a_7c15_u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        usize::try_from(state % 1_000_003).unwrap_or(0)
    };
    let mut refused = 0;
    for iteration in 0..iterations {
        let (path, original, encryption) = &seeds[next() % seeds.len()];
        let mut bytes = original.clone();
        for _ in 0..=next() % 3 {
            let at = next() % (bytes.len() + 1);
            match next() % 4 {
                0 if at < bytes.len() => bytes[at] ^= 1 << (next() % 8),
                1 => bytes.truncate(at),
                2 => {
                    bytes.splice(at..at, *b"ENC[AES256_GCM,data:,iv:,tag:,type:int]");
                }
                _ => {
                    let end = (at + next() % 32).min(bytes.len());
                    bytes.drain(at..end);
                }
            }
        }
        let result = std::panic::catch_unwind(|| keyring.decrypt(*encryption, path, &bytes));
        match result {
            Ok(Ok(_)) => {}
            Ok(Err(_)) => refused += 1,
            Err(_) => panic!(
                "decrypting a mutation of {} panicked (input {iteration})",
                path.display()
            ),
        }
    }
    println!("fuzz: {iterations} mutated encrypted files, {refused} refused");
    assert!(
        refused > 0,
        "no mutation was refused: the mutator does nothing"
    );
}
