use std::collections::BTreeMap;

use reconciler_spec::{BoardFile, SecretValue};

use super::*;
use crate::observed::FileOrigin;

fn plain(text: &str) -> BoardFile {
    BoardFile {
        content: BoardFileContent::Plain(text.as_bytes().to_vec()),
        mode: 0o644,
        owner: "root".into(),
        group: "root".into(),
        then: None,
    }
}

fn on_board(text: &str, mode: u32, owner: &str) -> BoardFileState {
    BoardFileState::File {
        mode,
        owner: owner.into(),
        group: "root".into(),
        digest: digest(text.as_bytes()),
    }
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| (*s).to_string()).collect()
}

#[test]
fn a_board_that_matches_gets_no_step() {
    let config = BoardConfig {
        packages: set(&["htop"]),
        absent_packages: set(&["triggerhappy"]),
        files: [("/etc/motd".to_string(), plain("hi\n"))].into(),
        ..BoardConfig::default()
    };
    let state = BoardState {
        packages: [
            ("htop".to_string(), true),
            ("triggerhappy".to_string(), false),
        ]
        .into(),
        files: [("/etc/motd".to_string(), on_board("hi\n", 0o644, "root"))].into(),
        ..BoardState::default()
    };
    assert_eq!(steps(&config, &state, true), vec![]);
}

#[test]
fn missing_and_different_things_are_planned_with_a_diff() {
    let config = BoardConfig {
        packages: set(&["htop", "jq"]),
        absent_packages: set(&["triggerhappy"]),
        files: [
            ("/etc/motd".to_string(), plain("one\ntwo\n")),
            ("/etc/new".to_string(), plain("x")),
        ]
        .into(),
        ..BoardConfig::default()
    };
    let state = BoardState {
        packages: [
            ("htop".to_string(), true),
            ("jq".to_string(), false),
            ("triggerhappy".to_string(), true),
        ]
        .into(),
        files: [
            ("/etc/motd".to_string(), on_board("one\n2\n", 0o600, "pi")),
            ("/etc/new".to_string(), BoardFileState::Missing),
        ]
        .into(),
        contents: [("/etc/motd".to_string(), b"one\n2\n".to_vec())].into(),
        ..BoardState::default()
    };
    let planned = steps(&config, &state, true);
    assert_eq!(
        planned,
        vec![
            Step::InstallPackages {
                packages: set(&["jq"])
            },
            Step::RemovePackages {
                packages: set(&["triggerhappy"])
            },
            Step::WriteFile {
                path: "/etc/motd".into(),
                change: FileChange::Update {
                    content: Some(ContentDiff::Lines(vec![
                        "  one".into(),
                        "- 2".into(),
                        "+ two".into()
                    ])),
                    mode: Some((0o600, 0o644)),
                    owner: Some(("pi:root".into(), "root:root".into())),
                },
                origin: None,
            },
            Step::WriteFile {
                path: "/etc/new".into(),
                change: FileChange::Create {
                    mode: 0o644,
                    owner: "root:root".into()
                },
                origin: None,
            },
        ]
    );
    assert_eq!(
        planned[2].describe(),
        "update /etc/motd: content, mode 0600 → 0644, owner pi:root → root:root"
    );
    assert_eq!(planned[2].detail(), vec!["  one", "- 2", "+ two"]);
}

/// Only what the cluster put there leaves, and only with prune on; a
/// replaced file gets the board's own back.
#[test]
fn what_the_spec_dropped_leaves_only_if_the_cluster_put_it_there() {
    let config = BoardConfig::default();
    let state = BoardState {
        packages: [("htop".to_string(), true), ("vim".to_string(), true)].into(),
        owned_packages: set(&["htop"]),
        owned_files: BTreeMap::from([
            ("/etc/motd".to_string(), FileOrigin::Replaced),
            ("/etc/x".to_string(), FileOrigin::Created),
        ]),
        ..BoardState::default()
    };
    assert_eq!(
        steps(&config, &state, true),
        vec![
            Step::RemovePackages {
                packages: set(&["htop"])
            },
            Step::RemoveFile {
                path: "/etc/motd".into(),
                origin: FileOrigin::Replaced
            },
            Step::RemoveFile {
                path: "/etc/x".into(),
                origin: FileOrigin::Created
            },
        ]
    );
    assert_eq!(steps(&config, &state, false), vec![]);
}

#[test]
fn a_secret_file_is_compared_but_never_shown() {
    let config = BoardConfig {
        files: [(
            "/etc/wg0.conf".to_string(),
            BoardFile {
                content: BoardFileContent::Secret {
                    secret: "wg".into(),
                    value: SecretValue::new(b"new-key".to_vec()),
                },
                mode: 0o600,
                owner: "root".into(),
                group: "root".into(),
                then: None,
            },
        )]
        .into(),
        ..BoardConfig::default()
    };
    let state = BoardState {
        files: [(
            "/etc/wg0.conf".to_string(),
            on_board("old-key", 0o600, "root"),
        )]
        .into(),
        ..BoardState::default()
    };
    let planned = steps(&config, &state, true);
    assert_eq!(planned.len(), 1);
    assert_eq!(
        planned[0].detail(),
        vec!["(content not shown: it holds secret `wg`)"]
    );
    let text = format!("{planned:?}");
    assert!(!text.contains("new-key") && !text.contains("old-key"));
}

#[test]
fn sysctls_and_modules_are_files_that_apply_themselves() {
    let config = BoardConfig {
        sysctl: [("net.ipv4.ip_forward".to_string(), "1".to_string())].into(),
        modules: set(&["br_netfilter"]),
        ..BoardConfig::default()
    };
    let files = config.all_files();
    let sysctl = &files[reconciler_spec::SYSCTL_FILE];
    assert_eq!(sysctl.content.bytes(), b"net.ipv4.ip_forward = 1\n");
    assert_eq!(
        sysctl.then.as_deref(),
        Some("sysctl -p /etc/sysctl.d/90-reconciler.conf >/dev/null")
    );
    assert_eq!(
        files[reconciler_spec::MODULES_FILE].then.as_deref(),
        Some("modprobe -a br_netfilter")
    );
}

/// The kernel's one line and config.txt: declared options added, those the
/// cluster added and the spec dropped taken out, the board's own kept.
#[test]
fn boot_settings_are_added_and_taken_back_without_touching_the_boards_own() {
    use crate::observed::{BootFile, BootFileText};
    let config = BoardConfig {
        cmdline: set(&["cgroup_enable=memory", "cgroup_memory=1"]),
        config_txt: set(&["dtoverlay=disable-bt"]),
        ..BoardConfig::default()
    };
    let mut state = BoardState {
        boot: BTreeMap::from([
            (
                BootFile::Cmdline,
                BootFileText {
                    path: "/boot/firmware/cmdline.txt".into(),
                    text: "console=tty1 root=PARTUUID=1-02 rootwait quiet cgroup_memory=1\n".into(),
                },
            ),
            (
                BootFile::ConfigTxt,
                BootFileText {
                    path: "/boot/firmware/config.txt".into(),
                    text: "[all]\narm_boost=1\nenable_uart=1\n".into(),
                },
            ),
        ]),
        owned_boot: BTreeMap::from([(BootFile::ConfigTxt, set(&["enable_uart=1"]))]),
        ..BoardState::default()
    };
    let planned = steps(&config, &state, true);
    assert_eq!(planned.len(), 2, "{planned:?}");
    let Step::EditBootFile {
        text,
        added,
        removed,
        ..
    } = &planned[0]
    else {
        panic!("{planned:?}")
    };
    assert_eq!(
        text,
        "console=tty1 root=PARTUUID=1-02 rootwait quiet cgroup_memory=1 cgroup_enable=memory\n"
    );
    assert_eq!(added, &vec!["cgroup_enable=memory".to_string()]);
    assert!(removed.is_empty());
    assert_eq!(
        planned[0].describe(),
        "cmdline.txt: add cgroup_enable=memory (applied at the next reboot: `reconciler upgrade` takes the board)"
    );
    let Step::EditBootFile { text, removed, .. } = &planned[1] else {
        panic!("{planned:?}")
    };
    assert_eq!(text, "[all]\narm_boost=1\ndtoverlay=disable-bt\n");
    assert_eq!(removed, &vec!["enable_uart=1".to_string()]);
    // Once on the board, nothing more; and the board's own `quiet` and
    // `cgroup_memory=1` (there before) never leave with the spec.
    state
        .boot
        .get_mut(&BootFile::Cmdline)
        .expect("cmdline")
        .text = "console=tty1 quiet cgroup_memory=1 cgroup_enable=memory\n".into();
    state
        .boot
        .get_mut(&BootFile::ConfigTxt)
        .expect("config")
        .text = "[all]\narm_boost=1\ndtoverlay=disable-bt\n".into();
    assert_eq!(steps(&config, &state, true), vec![]);
    state.owned_boot = BTreeMap::from([(BootFile::Cmdline, set(&["cgroup_enable=memory"]))]);
    let dropped = steps(&BoardConfig::default(), &state, true);
    let Step::EditBootFile { text, removed, .. } = &dropped[0] else {
        panic!("{dropped:?}")
    };
    assert_eq!(text, "console=tty1 quiet cgroup_memory=1\n");
    assert_eq!(removed, &vec!["cgroup_enable=memory".to_string()]);
}

/// `[board.mount]`: an /etc/fstab line added and mounted, the board's own
/// lines kept, a line the spec dropped taken out, and a declared mount
/// that is not mounted mounted again.
#[test]
fn mounts_are_fstab_lines_the_cluster_owns_and_keeps_mounted() {
    use crate::observed::{BootFile, BootFileText};
    use reconciler_spec::BoardMount;
    let mut config = BoardConfig::default();
    config.mounts.insert(
        "/mnt/media".into(),
        BoardMount {
            what: "10.0.0.1:/srv/media".into(),
            fstype: "nfs".into(),
            options: "rw,_netdev,nofail".into(),
        },
    );
    let own = "PARTUUID=1-02 / ext4 defaults,noatime 0 1\n";
    let mut state = BoardState {
        boot: BTreeMap::from([(
            BootFile::Fstab,
            BootFileText {
                path: "/etc/fstab".into(),
                text: format!("{own}LABEL=old /mnt/old auto defaults,nofail 0 0\n"),
            },
        )]),
        owned_boot: BTreeMap::from([(
            BootFile::Fstab,
            set(&["LABEL=old /mnt/old auto defaults,nofail 0 0"]),
        )]),
        ..BoardState::default()
    };
    let planned = steps(&config, &state, true);
    let [Step::EditBootFile {
        file: BootFile::Fstab,
        text,
        added,
        removed,
        ..
    }] = planned.as_slice()
    else {
        panic!("{planned:?}")
    };
    let line = "10.0.0.1:/srv/media /mnt/media nfs rw,_netdev,nofail 0 0";
    assert_eq!(text, &format!("{own}{line}\n"));
    assert_eq!(added, &vec![line.to_string()]);
    assert_eq!(
        removed,
        &vec!["LABEL=old /mnt/old auto defaults,nofail 0 0".to_string()]
    );
    assert_eq!(
        planned[0].describe(),
        format!("fstab: add {line}; take out LABEL=old /mnt/old auto defaults,nofail 0 0 (mounted now and at every boot)")
    );
    // On the board and mounted: nothing; unmounted by hand: mounted again.
    state.boot.get_mut(&BootFile::Fstab).expect("fstab").text = format!("{own}{line}\n");
    state.owned_boot = BTreeMap::from([(BootFile::Fstab, set(&[line]))]);
    assert_eq!(steps(&config, &state, true), vec![]);
    state.unmounted = set(&["/mnt/media"]);
    assert_eq!(
        steps(&config, &state, true),
        vec![Step::Mount {
            points: vec!["/mnt/media".into()]
        }]
    );
}
