//! The boards kept between reconciles: what lets `run --ssh` look at a
//! hundred boards in a second or two instead of logging in to each again.
//!
//! A [`Fleet`] keeps one SSH session per board, the facts last learned on it
//! (and when), and the tunnel to a manager's Docker API. Looking at a board
//! whose session is kept costs one keepalive round trip, which sshd answers
//! itself (nothing starts on the board); its facts come from the cache while
//! they are younger than the fleet's maximum age.
//!
//! Facts are learned again on a new connection (after any failure), when
//! they are older than the maximum age, after steps ran on the board, when
//! the swarm no longer reports the board's node as ready
//! ([`Fleet::forget_unready`]), and — the safety rule — before any step is
//! planned from them: [`super::provision`] plans steps only from facts
//! learned in the same pass, so a cached fact never decides a `swarm init`.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use reconciler_spec::Spec;

use super::fanout::for_each;
use super::tunnel::Tunnel;
use super::{facts, target_for, NodeError, Session, SshOptions, Target};
use crate::observed::Facts;

/// How long a board's facts are used without asking it again, unless
/// something says they changed; `run --facts-max-age` sets it.
pub const DEFAULT_FACTS_MAX_AGE: Duration = Duration::from_secs(300);

/// Sessions, facts and the Docker tunnel kept across reconciles.
#[derive(Debug)]
pub struct Fleet {
    boards: BTreeMap<String, Kept>,
    tunnel: Option<KeptTunnel>,
    facts_max_age: Duration,
    /// Count each board's upgradable packages with its facts.
    count_updates: bool,
}

#[derive(Debug)]
struct Kept {
    session: Arc<Session>,
    learned: Option<Learned>,
}

#[derive(Debug, Clone)]
struct Learned {
    facts: Facts,
    at: Instant,
    /// The script that learned them: facts learned for another declared
    /// configuration (the spec changed) are not fresh.
    script: Arc<str>,
}

#[derive(Debug)]
struct KeptTunnel {
    node: String,
    /// The session the tunnel's channels are opened on: a new session
    /// (after a reconnect) means a new tunnel.
    session: Arc<Session>,
    tunnel: Tunnel,
}

/// What one look at the spec's boards found.
#[derive(Debug, Default)]
pub struct Looked {
    /// The boards that answered, by spec node name.
    pub sessions: BTreeMap<String, Arc<Session>>,
    pub facts: BTreeMap<String, Facts>,
    /// The boards whose facts were learned in this look; the others' facts
    /// came from the cache.
    pub learned_now: BTreeSet<String>,
    /// The boards that did not answer or failed the facts script.
    pub failures: Vec<NodeError>,
}

impl Fleet {
    /// A fleet that uses a board's facts for up to `facts_max_age`.
    pub fn new(facts_max_age: Duration) -> Self {
        Self {
            boards: BTreeMap::new(),
            tunnel: None,
            facts_max_age,
            count_updates: false,
        }
    }

    /// The same fleet, counting each board's upgradable packages with its
    /// facts (about a second more per board).
    #[must_use]
    pub fn counting_updates(mut self) -> Self {
        self.count_updates = true;
        self
    }

    /// The same fleet (sessions, facts, tunnel) with another maximum age.
    #[must_use]
    pub fn with_facts_max_age(mut self, facts_max_age: Duration) -> Self {
        self.facts_max_age = facts_max_age;
        self
    }

    /// Looks at every board of the spec at once (at most `parallel`):
    /// reuses each kept session that still answers and its facts while they
    /// are fresh; connects and learns otherwise.
    pub async fn look(&mut self, spec: &Spec, options: SshOptions, parallel: usize) -> Looked {
        let targets: Vec<(Target, Arc<str>)> = spec
            .nodes
            .values()
            .map(|node| (target_for(node), facts_script(node, self.count_updates)))
            .collect();
        // A board that left the spec, or is now reached differently, starts over.
        self.boards.retain(|name, kept| {
            targets
                .iter()
                .any(|(t, _)| t.node == *name && t == kept.session.target())
        });
        let max_age = self.facts_max_age;
        let jobs: Vec<_> = targets
            .into_iter()
            .map(|(target, script)| {
                let kept = self.boards.get(&target.node).map(|kept| {
                    let fresh = kept.learned.clone().filter(|learned| {
                        learned.at.elapsed() < max_age && learned.script == script
                    });
                    (Arc::clone(&kept.session), fresh)
                });
                (target, script, kept)
            })
            .collect();
        let results = for_each(jobs, parallel, move |(target, script, kept)| async move {
            let node = target.node.clone();
            (node, look_at(target, script, kept, options).await)
        })
        .await;
        let mut looked = Looked::default();
        for (node, result) in results {
            match result {
                Ok((session, learned, now)) => {
                    if now {
                        looked.learned_now.insert(node.clone());
                    }
                    looked.sessions.insert(node.clone(), Arc::clone(&session));
                    looked.facts.insert(node.clone(), learned.facts.clone());
                    self.boards.insert(
                        node,
                        Kept {
                            session,
                            learned: Some(learned),
                        },
                    );
                }
                Err(error) => {
                    self.boards.remove(&node);
                    looked.failures.push(error);
                }
            }
        }
        looked
    }

    /// Learns the facts of `nodes` again over their sessions (those with
    /// steps to plan), updating `looked`; a board that fails moves to its
    /// failures.
    pub async fn relearn(
        &mut self,
        spec: &Spec,
        looked: &mut Looked,
        nodes: &[String],
        parallel: usize,
    ) {
        let jobs: Vec<(String, Arc<Session>, Arc<str>)> = nodes
            .iter()
            .filter_map(|n| {
                Some((
                    n.clone(),
                    Arc::clone(looked.sessions.get(n)?),
                    facts_script(spec.nodes.get(n)?, self.count_updates),
                ))
            })
            .collect();
        let results = for_each(jobs, parallel, |(node, session, script)| async move {
            let result = learn(&session, script).await;
            (node, result)
        })
        .await;
        for (node, result) in results {
            match result {
                Ok(learned) => {
                    looked.learned_now.insert(node.clone());
                    looked.facts.insert(node.clone(), learned.facts.clone());
                    if let Some(kept) = self.boards.get_mut(&node) {
                        kept.learned = Some(learned);
                    }
                }
                Err(error) => {
                    looked.facts.remove(&node);
                    looked.sessions.remove(&node);
                    self.boards.remove(&node);
                    looked.failures.push(error);
                }
            }
        }
    }

    /// The board changed (steps ran on it, or one failed): ask it next time.
    pub fn forget_facts(&mut self, node: &str) {
        if let Some(kept) = self.boards.get_mut(node) {
            kept.learned = None;
        }
    }

    /// The facts last learned on each board, by spec node name (however
    /// old: for people to look at, never to plan from).
    pub fn known_facts(&self) -> impl Iterator<Item = (&str, &Facts)> {
        self.boards
            .iter()
            .filter_map(|(node, kept)| Some((node.as_str(), &kept.learned.as_ref()?.facts)))
    }

    /// Forgets the facts of every board whose swarm node (as its facts say)
    /// is not in `ready`, the node IDs the swarm reports ready: a board that
    /// rebooted, left or was re-flashed is looked at again.
    pub fn forget_unready(&mut self, ready: &BTreeSet<String>) {
        for kept in self.boards.values_mut() {
            let member = kept
                .learned
                .as_ref()
                .and_then(|l| l.facts.swarm_node_id().map(str::to_string));
            if member.is_some_and(|id| !ready.contains(&id)) {
                kept.learned = None;
            }
        }
    }

    /// A Docker call through the tunnel found it broken: open a new one next time.
    pub fn drop_tunnel(&mut self) {
        self.tunnel = None;
    }

    /// The Docker host of a tunnel to the first of `managers` (spec node
    /// names, in order of preference) whose session is kept. The tunnel
    /// already open is kept while its board is still one of them and its
    /// session is the same, so the Docker client and its event stream stay
    /// connected across reconciles.
    pub fn docker_host(&mut self, managers: &[String]) -> Option<String> {
        let session_of = |name: &str| self.boards.get(name).map(|k| &k.session);
        if let Some(kept) = &self.tunnel {
            let same = session_of(&kept.node).is_some_and(|s| Arc::ptr_eq(s, &kept.session));
            if same && managers.contains(&kept.node) {
                return Some(kept.tunnel.docker_host());
            }
        }
        self.tunnel = None;
        for name in managers {
            let Some(session) = session_of(name).cloned() else {
                continue;
            };
            match Tunnel::open(Arc::clone(&session)) {
                Ok(tunnel) => {
                    let host = tunnel.docker_host();
                    self.tunnel = Some(KeptTunnel {
                        node: name.clone(),
                        session,
                        tunnel,
                    });
                    return Some(host);
                }
                Err(error) => tracing::warn!(%error, "cannot open the Docker tunnel"),
            }
        }
        None
    }
}

/// One board: the kept session if it still answers (with its facts when
/// fresh), else a new connection; facts learned unless they were fresh.
/// Returns the session, the facts and whether they were learned now.
async fn look_at(
    target: Target,
    script: Arc<str>,
    kept: Option<(Arc<Session>, Option<Learned>)>,
    options: SshOptions,
) -> Result<(Arc<Session>, Learned, bool), NodeError> {
    if let Some((session, fresh)) = kept {
        if session.answers().await {
            match fresh {
                Some(learned) => return Ok((session, learned, false)),
                None => match learn(&session, Arc::clone(&script)).await {
                    Ok(learned) => return Ok((session, learned, true)),
                    // The kept connection broke under us: connect again below.
                    Err(error) if error.connection_lost() => {}
                    Err(error) => return Err(error),
                },
            }
        }
    }
    let session = Arc::new(Session::connect(&target, options).await?);
    let learned = learn(&session, script).await?;
    Ok((session, learned, true))
}

/// The facts script for `node`: the fixed one, the count of upgradable
/// packages when asked for, and the look at its declared configuration.
fn facts_script(node: &reconciler_spec::Node, count_updates: bool) -> Arc<str> {
    let updates = if count_updates {
        facts::UPDATES_SCRIPT
    } else {
        ""
    };
    format!(
        "{}{updates}{}",
        facts::SCRIPT,
        super::config::look_script(&node.board)
    )
    .into()
}

/// Runs the facts script on a board.
async fn learn(session: &Session, script: Arc<str>) -> Result<Learned, NodeError> {
    let at = Instant::now();
    let output = session.run_as_root("gather facts", &script).await?;
    let facts = Facts::parse(&output.stdout).answering(&session.target().node)?;
    Ok(Learned { facts, at, script })
}
