//! The first mile at scale (issue 23): a hundred boards given their cards
//! by `reconciler firstboot`, then reached with what it made, with no host
//! key ever scanned or accepted:
//!
//! * `firstboot --out` for 100 nodes: a host key made for each board and
//!   recorded in known_hosts, the three cloud-init files per board;
//! * cloud-init's own schema check (Debian's cloud-init, in the first-boot
//!   board image) of all 100 user-data files;
//! * a rack of 100 boards (one container, an address and an sshd per board)
//!   serving exactly the host keys the user-data files carry, with the user
//!   they create; then `reconciler facts` over all of them: every login as
//!   that user, every host key checked against what firstboot recorded.
//!   known_hosts is the same before and after.
//!
//! The rack's sshds share this machine's two cores with the client, so the
//! facts pass is pessimistic. Run by hand:
//! `cargo bench -p reconciler-tests --bench hundred_first_boots`.

use std::path::Path;
use std::time::Instant;

use reconciler_tests::boards::{ensure_first_boot_image, FIRST_BOOT_IMAGE};
use reconciler_tests::rack::{FirstBooted, Rack};
use reconciler_tests::{docker, reconciler};

const BOARDS: usize = 100;
const USER: &str = "anna";
const HOST_KEY_PATH: &str = "/etc/ssh/reconciler_host_ed25519_key";

/// The user and host key a user-data file gives its board.
fn read_user_data(path: &Path) -> (String, String) {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let data: serde_yaml::Value =
        serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let user = data["users"][0]["name"]
        .as_str()
        .unwrap_or_else(|| panic!("{}: no user", path.display()))
        .to_string();
    let host_key = data["write_files"]
        .as_sequence()
        .and_then(|files| {
            files
                .iter()
                .find(|f| f["path"].as_str() == Some(HOST_KEY_PATH))
        })
        .and_then(|f| f["content"].as_str())
        .unwrap_or_else(|| panic!("{}: no host key", path.display()))
        .to_string();
    (user, host_key)
}

fn main() {
    let dir = tempfile::tempdir().expect("temp dir");
    let identity = dir.path().join("id_ed25519");
    reconciler_tests::sshd::keygen(&identity);
    let known_hosts = dir.path().join("known_hosts");
    let addresses: Vec<String> = (1..=BOARDS).map(|i| format!("10.78.10.{i}")).collect();
    let mut spec = format!(
        "[cluster]\nname = \"first-boots\"\n[ssh]\nuser = \"{USER}\"\nidentity = \"{}\"\nknown_hosts = \"{}\"\n",
        identity.display(),
        known_hosts.display()
    );
    for (i, address) in addresses.iter().enumerate() {
        let role = if i == 0 { "manager" } else { "worker" };
        spec.push_str(&format!(
            "[node.pi{:03}]\naddress = \"{address}\"\nrole = \"{role}\"\n",
            i + 1
        ));
    }
    let spec_dir = dir.path().join("spec");
    std::fs::create_dir_all(&spec_dir).expect("spec folder");
    std::fs::write(spec_dir.join("cluster.toml"), spec).expect("the spec");
    let spec_arg = spec_dir.display().to_string();
    let cards = dir.path().join("cards");
    let cards_arg = cards.display().to_string();

    let started = Instant::now();
    reconciler(&[
        "firstboot",
        &spec_arg,
        "--out",
        &cards_arg,
        "--timezone",
        "Etc/UTC",
    ])
    .expect_code(0);
    println!(
        "firstboot --out for {BOARDS} boards (host keys made and recorded): {:.2?}",
        started.elapsed()
    );
    let recorded = std::fs::read_to_string(&known_hosts).expect("known_hosts written");
    assert_eq!(
        recorded
            .lines()
            .filter(|l| l.contains("ssh-ed25519"))
            .count(),
        BOARDS,
        "{recorded}"
    );

    ensure_first_boot_image();
    let started = Instant::now();
    let checked = docker(&[
        "run",
        "--rm",
        "-v",
        &format!("{cards_arg}:/cards:ro"),
        FIRST_BOOT_IMAGE,
        "sh",
        "-c",
        "n=0; for f in /cards/*/user-data; do cloud-init schema --config-file \"$f\" >/dev/null 2>&1 || echo \"invalid: $f\"; n=$((n + 1)); done; echo checked $n",
    ]);
    println!(
        "cloud-init schema check of {BOARDS} user-data files: {:.1?}",
        started.elapsed()
    );
    assert_eq!(checked.trim(), format!("checked {BOARDS}"), "{checked}");

    let mut boards = Vec::new();
    for (i, address) in addresses.iter().enumerate() {
        let (user, host_key) = read_user_data(&cards.join(format!("pi{:03}/user-data", i + 1)));
        assert_eq!(user, USER);
        boards.push(FirstBooted {
            address: address.clone(),
            host_key,
        });
    }
    let public = std::fs::read_to_string(identity.with_extension("pub")).expect("the public key");
    let started = Instant::now();
    let _rack = Rack::start_first_booted("rc-rack-first-boots", USER, &public, &boards);
    println!(
        "{BOARDS} first-booted boards started in {:.1?}",
        started.elapsed()
    );

    let started = Instant::now();
    let facts = reconciler(&["facts", &spec_arg]).expect_code(0);
    println!(
        "facts from {BOARDS} boards as {USER}, host keys pinned by firstboot: {:.2?}",
        started.elapsed()
    );
    for i in 1..=BOARDS {
        assert!(
            facts.stdout.contains(&format!("pi{i:03}")),
            "pi{i:03} not in:\n{}",
            facts.stdout
        );
    }
    assert_eq!(
        std::fs::read_to_string(&known_hosts).expect("known_hosts"),
        recorded,
        "known_hosts changed"
    );
}
