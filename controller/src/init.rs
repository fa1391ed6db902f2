//! `reconciler init DIR`: a commented starter repository that validates,
//! so a first cluster starts from files that explain themselves rather than
//! from a copied example.
//!
//! The files are written to a temporary folder next to `DIR`, loaded as a
//! spec (every check `validate` makes), and only then moved into place: bad
//! arguments leave nothing behind, and an existing non-empty `DIR` is never
//! touched.

use std::path::{Path, PathBuf};

/// One board named on the command line: `NAME=ADDRESS`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeArg {
    pub name: String,
    pub address: String,
}

impl std::str::FromStr for NodeArg {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        match text.split_once('=') {
            Some((name, address)) if !name.is_empty() && !address.is_empty() => Ok(Self {
                name: name.to_string(),
                address: address.to_string(),
            }),
            _ => Err(format!(
                "`{text}` is not NAME=ADDRESS (e.g. pi1=192.168.1.21)"
            )),
        }
    }
}

/// Why `init` wrote nothing.
#[derive(Debug, thiserror::Error)]
pub enum InitError {
    /// The folder already holds files: `init` never touches them.
    #[error("{0} exists and is not empty; `init` only writes into a new or empty folder")]
    NotEmpty(String),
    /// Staging or moving the starter files failed (permissions, a full disk).
    #[error("cannot write {path}: {source}")]
    Write {
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// The arguments make a spec that does not validate (a bad node name, ...).
    #[error("these arguments do not make a valid spec; nothing was written:\n{0}")]
    Invalid(String),
}

/// The user the boards are logged in as, and where that name came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginUser {
    pub name: String,
    /// Said to the person: why this name was written.
    pub source: &'static str,
}

impl LoginUser {
    /// `--user` when given; else this computer's user name, which Raspberry
    /// Pi Imager offers when it sets up a card; `pi` only as a last resort
    /// (Raspberry Pi OS has had no `pi` user since April 2022).
    pub fn choose(given: Option<&str>, environment_user: Option<&str>) -> Self {
        match (given, environment_user) {
            (Some(name), _) => Self {
                name: name.to_string(),
                source: "given with --user",
            },
            (None, Some(name)) if !name.is_empty() && name != "root" => Self {
                name: name.to_string(),
                source: "this computer's user name, which Raspberry Pi Imager offers when it sets up a card; if you chose another there, run init again with --user NAME or edit [ssh] user",
            },
            _ => Self {
                name: "pi".to_string(),
                source: "no --user and no user name here; Raspberry Pi OS has had no `pi` user since 2022: set [ssh] user to the one chosen when the card was flashed",
            },
        }
    }
}

/// The starter files: (relative path, content).
pub fn files(cluster: &str, nodes: &[NodeArg], user: &LoginUser) -> Vec<(&'static str, String)> {
    let mut node_text = String::from(
        "# The boards. The first is the swarm's manager; add `role = \"manager\"` to\n\
         # two more for a cluster that survives losing one (3 managers: quorum 2).\n\
         # `reconciler facts .` shows what each board is; `apply --ssh` installs\n\
         # Docker on it and joins it to the swarm.\n",
    );
    if nodes.is_empty() {
        node_text.push_str(
            "\n# [node.pi1]\n# address = \"192.168.1.21\"\n# role = \"manager\"\n# labels = { room = \"office\" }\n",
        );
    }
    for (index, node) in nodes.iter().enumerate() {
        let role = if index == 0 { "manager" } else { "worker" };
        node_text.push_str(&format!(
            "\n[node.{}]\naddress = \"{}\"\nrole = \"{role}\"\n",
            toml_key(&node.name),
            node.address.replace('\\', "\\\\").replace('"', "\\\"")
        ));
    }
    vec![
        (
            "cluster.toml",
            format!(
                "# The cluster: its name marks every Docker object Reconciler owns, so\n\
                 # objects made by hand or by another cluster are never touched.\n\
                 [cluster]\nname = \"{cluster}\"\n\n\
                 # How Reconciler reaches the boards over SSH (`--ssh`, `facts`): as the\n\
                 # user chosen when the card was flashed (Raspberry Pi Imager's \"OS\n\
                 # customisation\"; images since 2022 have no `pi` user), who has\n\
                 # passwordless sudo there, with this key (`ssh-keygen -t ed25519`, then\n\
                 # `ssh-copy-id -i ~/.ssh/id_ed25519.pub USER@BOARD`, or paste the public\n\
                 # key into Imager).\n\
                 [ssh]\nuser = \"{user}\"\nidentity = \"~/.ssh/id_ed25519\"\nknown_hosts = \"~/.ssh/known_hosts\"\n\n\
                 # What the long-running controller (`reconciler run`) does.\n\
                 [controller]\ninterval = \"1m\"          # also re-check this often without a push\n\
                 mode = \"apply\"             # \"observe\" only reports drift\n\
                 max_delete_fraction = 0.5  # refuse a plan that removes more than half the services\n",
                user = user.name.replace('\\', "\\\\").replace('"', "\\\"")
            ),
        ),
        ("nodes.toml", node_text),
        (
            "services.toml",
            "# The services. `reconciler plan .` shows what would change, `apply .`\n\
             # makes it so. Every field: docs/spec-format.md of Reconciler.\n\
             [service.hello]\n\
             image = \"nginx:alpine\"   # multi-arch: runs on Pi and PC alike\n\
             replicas = 2\n\
             ports = [{ target = 80, published = 8080 }]\n\
             resources = { limit_memory = \"64M\" }\n\
             update = { parallelism = 1, delay = \"5s\", failure_action = \"rollback\" }\n"
                .to_string(),
        ),
        (
            "README.md",
            format!(
                "# Cluster `{cluster}`\n\n\
                 Kept by [Reconciler](https://github.com/): the files here are the cluster.\n\n\
                 * `cluster.toml` — the cluster's name, SSH access to the boards, the controller's settings.\n\
                 * `nodes.toml` — the boards and their roles.\n\
                 * `services.toml` — what runs on them.\n\n\
                 ```sh\n\
                 reconciler validate .           # check the files, offline\n\
                 reconciler facts .              # what each board is (over SSH)\n\
                 reconciler plan . --ssh         # what would change\n\
                 reconciler apply . --ssh        # install Docker, form the swarm, deploy\n\
                 reconciler install . --git URL  # then keep it equal to this repository, from a board\n\
                 ```\n"
            ),
        ),
    ]
}

/// A TOML key: bare when it can be, quoted otherwise.
fn toml_key(name: &str) -> String {
    if !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        name.to_string()
    } else {
        format!("\"{}\"", name.replace('\\', "\\\\").replace('"', "\\\""))
    }
}

fn write_error(path: &Path) -> impl FnOnce(std::io::Error) -> InitError + '_ {
    move |source| InitError::Write {
        path: path.display().to_string(),
        source,
    }
}

/// Writes the starter files into `dir` (created if missing) once they
/// validate; the paths written.
pub fn init(
    dir: &Path,
    cluster: &str,
    nodes: &[NodeArg],
    user: &LoginUser,
) -> Result<Vec<PathBuf>, InitError> {
    if dir.exists() {
        let mut entries = std::fs::read_dir(dir).map_err(write_error(dir))?;
        if entries.next().is_some() {
            return Err(InitError::NotEmpty(dir.display().to_string()));
        }
    }
    let parent = match dir.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    std::fs::create_dir_all(&parent).map_err(write_error(&parent))?;
    let staging = tempfile::Builder::new()
        .prefix(".reconciler-init-")
        .tempdir_in(&parent)
        .map_err(write_error(&parent))?;
    let files = files(cluster, nodes, user);
    for (name, content) in &files {
        let path = staging.path().join(name);
        std::fs::write(&path, content).map_err(write_error(&path))?;
    }
    if let Err(error) = reconciler_spec::load_dir(staging.path()) {
        let text = match error {
            reconciler_spec::LoadError::Invalid(diagnostics) => diagnostics.to_string(),
            other => other.to_string(),
        };
        return Err(InitError::Invalid(text));
    }
    if dir.exists() {
        std::fs::remove_dir(dir).map_err(write_error(dir))?;
    }
    let staged = staging.keep();
    std::fs::rename(&staged, dir).map_err(write_error(dir))?;
    Ok(files.iter().map(|(name, _)| dir.join(name)).collect())
}

#[cfg(test)]
mod tests {
    use super::LoginUser;

    /// Issue 23: `init` wrote `user = "pi"`, a user today's Raspberry Pi OS
    /// does not have. The name comes from --user, else this computer's user
    /// (what Imager offers), and `pi` only with a word about it.
    #[test]
    fn the_login_user_is_given_or_this_computers_and_says_where_it_came_from() {
        assert_eq!(LoginUser::choose(Some("bob"), Some("anna")).name, "bob");
        let here = LoginUser::choose(None, Some("anna"));
        assert_eq!(here.name, "anna");
        assert!(here.source.contains("Raspberry Pi Imager"));
        for nobody in [None, Some(""), Some("root")] {
            let fallback = LoginUser::choose(None, nobody);
            assert_eq!(fallback.name, "pi");
            assert!(fallback.source.contains("no `pi` user since 2022"));
        }
    }
}
