//! `cmdline.txt` on a Raspberry Pi's boot partition: the kernel's command
//! line, one line. Raspberry Pi kernels leave the memory cgroup off unless
//! it asks for it, and without it Docker accepts memory limits and
//! enforces none.

/// What turns the memory cgroup on: `cgroup_enable=memory` for the kernel,
/// `cgroup_memory=1` for the older Raspberry Pi kernels that read that one.
pub const MEMORY_CGROUP: [&str; 2] = ["cgroup_enable=memory", "cgroup_memory=1"];

/// The most a kernel command line file may hold here (the Pi firmware
/// reads a few kilobytes at most).
pub const MAX_BYTES: u64 = 8192;

/// Why `cmdline.txt` was left as it was.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CmdlineError {
    /// The file has more than one non-empty line.
    #[error("it has {0} lines; the firmware reads the kernel's options from one line only, so it was not changed: join them into one")]
    SeveralLines(usize),
    /// The file holds nothing but blank space.
    #[error("it is empty: this is not the boot partition of a Raspberry Pi OS card")]
    Empty,
}

/// The file with the memory cgroup turned on, or `None` when it already
/// is. `cgroup_disable=memory` is taken out; everything else stays as it
/// was, in its order, with the file's own line ending.
pub fn enable_memory_cgroup(text: &str) -> Result<Option<String>, CmdlineError> {
    edit(
        text,
        |option| option == "cgroup_disable=memory",
        &MEMORY_CGROUP,
        false,
    )
}

/// The file with `options` (a first-boot script's `systemd.run=...`) at its
/// end, replacing any earlier first-boot script's, or `None` when it
/// already ends so. Last, because the script takes out everything from
/// ` systemd.run` on when it is done.
pub fn run_once(text: &str, options: &[&str]) -> Result<Option<String>, CmdlineError> {
    edit(
        text,
        |option| {
            option.starts_with("systemd.run=")
                || option.starts_with("systemd.run_success_action=")
                || option.starts_with("systemd.run_failure_action=")
                || option == "systemd.unit=kernel-command-line.target"
        },
        options,
        true,
    )
}

/// The one line without the options `drop` names and with `add` at its end
/// (those missing, or all of them again when `in_order`), or `None` when
/// nothing changes.
fn edit(
    text: &str,
    drop: impl Fn(&str) -> bool,
    add: &[&str],
    in_order: bool,
) -> Result<Option<String>, CmdlineError> {
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    let line = match lines.as_slice() {
        [] => return Err(CmdlineError::Empty),
        [line] => *line,
        several => return Err(CmdlineError::SeveralLines(several.len())),
    };
    let before: Vec<&str> = line.split_whitespace().collect();
    let mut options: Vec<&str> = before.iter().copied().filter(|o| !drop(o)).collect();
    if in_order {
        options.extend(add);
    } else {
        let missing: Vec<&str> = add
            .iter()
            .copied()
            .filter(|wanted| !options.contains(wanted))
            .collect();
        options.extend(missing);
    }
    if options == before {
        return Ok(None);
    }
    let ending = if text.ends_with("\r\n") {
        "\r\n"
    } else if text.ends_with('\n') {
        "\n"
    } else {
        ""
    };
    Ok(Some(format!("{}{ending}", options.join(" "))))
}

#[cfg(test)]
mod tests {
    use super::*;

    const TRIXIE: &str = "console=serial0,115200 console=tty1 root=PARTUUID=7a3f1d2c-02 rootfstype=ext4 fsck.repair=yes rootwait cfg80211.ieee80211_regdom=GB\n";

    #[test]
    fn the_options_are_added_once_and_the_rest_kept() {
        let changed = enable_memory_cgroup(TRIXIE)
            .expect("one line")
            .expect("changed");
        assert_eq!(
            changed,
            format!(
                "{} cgroup_enable=memory cgroup_memory=1\n",
                TRIXIE.trim_end()
            )
        );
        assert_eq!(enable_memory_cgroup(&changed), Ok(None));
    }

    #[test]
    fn a_disabling_option_is_taken_out_and_line_endings_kept() {
        let changed =
            enable_memory_cgroup("root=/dev/mmcblk0p2 cgroup_disable=memory rootwait\r\n")
                .expect("one line")
                .expect("changed");
        assert_eq!(
            changed,
            "root=/dev/mmcblk0p2 rootwait cgroup_enable=memory cgroup_memory=1\r\n"
        );
        assert_eq!(
            enable_memory_cgroup("root=/dev/sda2"),
            Ok(Some(
                "root=/dev/sda2 cgroup_enable=memory cgroup_memory=1".into()
            ))
        );
    }

    #[test]
    fn a_first_boot_script_runs_last_and_once() {
        let run = [
            "systemd.run=/boot/firmware/firstrun.sh",
            "systemd.unit=kernel-command-line.target",
        ];
        let with_memory = enable_memory_cgroup(TRIXIE)
            .expect("one line")
            .expect("changed");
        let changed = run_once(&with_memory, &run)
            .expect("one line")
            .expect("changed");
        assert_eq!(
            changed,
            format!("{} {}\n", with_memory.trim_end(), run.join(" "))
        );
        assert_eq!(run_once(&changed, &run), Ok(None));
        // Imager's own script, or another: replaced, the rest kept.
        let imager = "root=/dev/sda2 systemd.run=/boot/firstrun.sh systemd.run_success_action=reboot systemd.unit=kernel-command-line.target quiet\n";
        assert_eq!(
            run_once(imager, &run),
            Ok(Some(format!("root=/dev/sda2 quiet {}\n", run.join(" "))))
        );
    }

    #[test]
    fn several_lines_or_none_are_refused() {
        assert_eq!(
            enable_memory_cgroup("root=/dev/sda2\nquiet\n"),
            Err(CmdlineError::SeveralLines(2))
        );
        assert_eq!(enable_memory_cgroup("\n"), Err(CmdlineError::Empty));
    }
}
