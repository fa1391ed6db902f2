use super::*;

#[test]
fn the_look_scripts_lines_are_read_back() {
    let output = "hostname=pi1\n\
        cfg\towned\tpackage\thtop\n\
        cfg\towned\tfile\t/etc/motd\treplaced\n\
        cfg\towned\tfile\t/etc/x\tcreated\n\
        cfg\tpackage\thtop\tinstalled\n\
        cfg\tpackage\tjq\tabsent\n\
        cfg\tfile\t/etc/motd\t644\troot\troot\tabc\n\
        cfg\tfile\t/etc/x\tmissing\n\
        cfg\tfile\t/srv\tdirectory\n\
        cfg\tcontent\t/etc/motd\taGVsbG8K\n\
        cfg\towned\tcmdline\tcgroup_enable=memory\n\
        cfg\tboot\tcmdline\t/boot/firmware/cmdline.txt\tcXVpZXQK\n";
    let state = BoardState::parse(output);
    assert_eq!(state.owned_packages, ["htop".to_string()].into());
    assert_eq!(state.owned_files["/etc/motd"], FileOrigin::Replaced);
    assert_eq!(state.owned_files["/etc/x"], FileOrigin::Created);
    assert!(state.packages["htop"]);
    assert!(!state.packages["jq"]);
    assert_eq!(
        state.files["/etc/motd"],
        BoardFileState::File {
            mode: 0o644,
            owner: "root".into(),
            group: "root".into(),
            digest: "abc".into()
        }
    );
    assert_eq!(state.files["/etc/x"], BoardFileState::Missing);
    assert_eq!(state.files["/srv"], BoardFileState::NotAFile);
    assert_eq!(state.contents["/etc/motd"], b"hello\n");
    assert_eq!(
        state.owned_boot[&crate::observed::BootFile::Cmdline],
        ["cgroup_enable=memory".to_string()].into()
    );
    let cmdline = &state.boot[&crate::observed::BootFile::Cmdline];
    assert_eq!(
        (cmdline.path.as_str(), cmdline.text.as_str()),
        ("/boot/firmware/cmdline.txt", "quiet\n")
    );
}

/// The look script runs for real in `sh` against a scratch folder: a path
/// with a quote and a space is one word, and nothing is written.
#[test]
fn the_look_script_reads_hostile_paths_as_one_word() {
    let dir = tempfile::tempdir().expect("temporary folder");
    let path = dir.path().join("it's a file");
    std::fs::write(&path, "old\n").expect("written");
    let config = BoardConfig {
        files: [(
            path.display().to_string(),
            BoardFile {
                content: BoardFileContent::Plain(b"new\n".to_vec()),
                mode: 0o644,
                owner: "root".into(),
                group: "root".into(),
                then: None,
            },
        )]
        .into(),
        ..BoardConfig::default()
    };
    let output = std::process::Command::new("sh")
        .arg("-c")
        .arg(look_script(&config))
        .output()
        .expect("sh runs");
    let state = BoardState::parse(&String::from_utf8_lossy(&output.stdout));
    let key = path.display().to_string();
    assert!(
        matches!(state.files.get(&key), Some(BoardFileState::File { digest, .. }) if *digest == digest_of(b"old\n")),
        "{state:?}\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(state.contents[&key], b"old\n");
    assert_eq!(std::fs::read(&path).expect("read"), b"old\n");
}

fn digest_of(bytes: &[u8]) -> String {
    crate::digest::sha256_hex(bytes)
}

#[test]
fn a_secret_file_is_never_read_back() {
    let config = BoardConfig {
        files: [(
            "/etc/wireguard/wg0.conf".to_string(),
            BoardFile {
                content: BoardFileContent::Secret {
                    secret: "wg".into(),
                    value: reconciler_spec::SecretValue::new(b"key".to_vec()),
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
    let script = look_script(&config);
    assert!(script.contains("cfg_file '/etc/wireguard/wg0.conf'"));
    assert!(!script.contains("base64 -w0 < '/etc/wireguard/wg0.conf'"));
}

/// An fstab edit unmounts what leaves before the file changes and mounts
/// what arrives after; it asks for no reboot.
#[test]
fn an_fstab_edit_unmounts_first_and_mounts_last() {
    let script = edit_boot_file(
        crate::observed::BootFile::Fstab,
        "/etc/fstab",
        "new\n",
        &["srv:/a /mnt/a nfs rw 0 0".to_string()],
        &["LABEL=b /mnt/b auto defaults 0 0".to_string()],
    );
    let unmount = script.find("umount '/mnt/b'").expect("unmounts /mnt/b");
    let replace = script.find("mv -f").expect("replaces the file");
    let mount = script.find("mount '/mnt/a'").expect("mounts /mnt/a");
    assert!(unmount < replace && replace < mount, "{script}");
    assert!(!script.contains("reboot-required"), "{script}");
}
