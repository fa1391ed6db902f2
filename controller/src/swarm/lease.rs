//! One writer per cluster: a lease kept as a label on the Swarm object.
//!
//! The label `io.reconciler.lease.<cluster>` holds `"<holder> <expiry>"`
//! (expiry in unix seconds, for people and for older controllers, which read
//! exactly these two fields), `io.reconciler.lease-ttl.<cluster>` the
//! holder's ttl in seconds, and `io.reconciler.lease-instance.<cluster>` a
//! random name of the holder's process, so two controllers started with the
//! same `--holder-id` are told apart. All are written at once with the
//! swarm's version index, so two controllers racing for the lease cannot
//! both win.
//!
//! **No clock is compared across hosts.** Boards without a real-time clock
//! boot in the past until NTP answers, so a wall-clock expiry would let a
//! standby whose clock runs ahead take a live lease. Instead each controller
//! times the lease with its own monotonic clock ([`LeaseClock`]): the holder
//! counts itself the writer for `ttl` after each successful write, and a
//! standby takes the lease only once it has seen the very same label value
//! unchanged for the holder's `ttl`. A standby sees a write no earlier than it
//! happened, so its wait never ends before the holder's own. Lease writes are
//! counted apart from reconcile writes.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bollard::models::SwarmSpec;

use super::{api, is_out_of_sequence, DockerCall, Swarm, SwarmError};

/// The state of the lease after an attempt to take or renew it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LeaseState {
    /// We hold it (for `ttl` from our last write, by our own clock).
    Held,
    /// Another controller holds it, or held it too recently to tell.
    HeldBy { holder: String },
}

/// What this controller has seen of the lease, timed by its own monotonic
/// clock: one per controller, kept across reconciles.
#[derive(Debug, Clone)]
pub struct LeaseClock {
    /// The label value last seen, and when it was first seen with that value.
    seen: Option<(String, Instant)>,
    /// When our own last write of the lease succeeded.
    written: Option<Instant>,
    /// This process's name in the lease, unlike any other's.
    instance: String,
}

impl Default for LeaseClock {
    fn default() -> Self {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let host = std::fs::read_to_string("/etc/hostname").unwrap_or_default();
        let seed = format!("{host} {} {nanos} {:p}", std::process::id(), &nanos);
        Self {
            seen: None,
            written: None,
            instance: crate::digest::sha256_prefix(seed.as_bytes(), 16),
        }
    }
}

impl LeaseClock {
    /// Whether we count ourselves the writer at `now`: within `ttl` of our
    /// last successful write.
    pub fn holds(&self, now: Instant, ttl: Duration) -> bool {
        self.written
            .is_some_and(|at| now.saturating_duration_since(at) < ttl)
    }
}

/// A holder id that would not read back as written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("holder id {0:?} must be 1 to 64 letters, digits or . _ - : @ (it is written into a label and read back)")]
pub struct InvalidHolder(pub String);

/// A lease holder's name: 1–64 letters, digits and `.` `_` `-` `:` `@`, so
/// it reads back exactly as written (a space would end the name early).
pub fn valid_holder(holder: &str) -> Result<(), InvalidHolder> {
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | ':' | '@');
    if holder.is_empty() || holder.len() > 64 || !holder.chars().all(allowed) {
        return Err(InvalidHolder(holder.to_string()));
    }
    Ok(())
}

/// The longest lease ttl: `run` refuses a longer `--lease-ttl`, and a label
/// asking for more is waited for only this long.
pub const MAX_LEASE_TTL: Duration = Duration::from_secs(3600);

/// A lease label as read: who holds it, the ttl it asked for (absent in
/// the older two-field form) and the holder's process (absent before
/// instances were written).
#[derive(Debug, Clone, PartialEq, Eq)]
struct LeaseValue<'v> {
    holder: &'v str,
    ttl: Option<Duration>,
    instance: Option<&'v str>,
}

/// Reads `"<holder> <expiry> [<ttl> [<instance>]]"`. Anything else is held
/// by its raw text: an unreadable lease is never free, and never ours.
fn holder_of(value: &str) -> LeaseValue<'_> {
    let fields: Vec<&str> = value.split(' ').collect();
    let numbers = fields.get(1..3.min(fields.len())).unwrap_or_default();
    let instance = fields.get(3).copied();
    let readable = matches!(fields.len(), 2..=4)
        && fields.first().is_some_and(|h| valid_holder(h).is_ok())
        && numbers.iter().all(|n| n.parse::<u64>().is_ok())
        && instance.is_none_or(|i| !i.is_empty() && i.bytes().all(|b| b.is_ascii_hexdigit()));
    match fields.first() {
        Some(holder) if readable => LeaseValue {
            holder,
            ttl: fields
                .get(2)
                .and_then(|t| t.parse::<u64>().ok())
                .map(Duration::from_secs),
            instance,
        },
        _ => LeaseValue {
            holder: value,
            ttl: None,
            instance: None,
        },
    }
}

/// What to do about the lease, given its label and what we have seen.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Decision {
    /// Ours, with more than half of `ttl` left: nothing to write.
    Keep,
    /// Free, ours to renew, or unchanged for its holder's whole ttl: write it.
    Write,
    /// Someone else's, and not yet seen unchanged for long enough.
    Wait { holder: String },
}

/// The lease rule, without I/O. Updates `clock.seen` with what was read.
fn decide(
    current: Option<&str>,
    holder: &str,
    ttl: Duration,
    clock: &mut LeaseClock,
    now: Instant,
) -> Decision {
    let Some(value) = current else {
        return Decision::Write;
    };
    let LeaseValue {
        holder: named,
        ttl: their_ttl,
        instance,
    } = holder_of(value);
    let another_instance = instance.is_some_and(|i| i != clock.instance);
    if named == holder && !another_instance {
        return if clock.holds(now, ttl / 2) {
            Decision::Keep
        } else {
            Decision::Write
        };
    }
    // Our holder id written by another process: a second controller started
    // with the same --holder-id (or this one restarted): waited for as any
    // other holder, so the two never both write.
    let named = if named == holder {
        format!("{named} (another controller with this holder id)")
    } else {
        named.to_string()
    };
    let since = match &clock.seen {
        Some((seen, at)) if seen == value => *at,
        _ => {
            clock.seen = Some((value.to_string(), now));
            now
        }
    };
    // The longer of their ttl and ours: a holder's own view never outlasts it.
    let wait = their_ttl.map_or(ttl, |t| t.clamp(ttl, MAX_LEASE_TTL.max(ttl)));
    if now.saturating_duration_since(since) >= wait {
        Decision::Write
    } else {
        Decision::Wait { holder: named }
    }
}

impl Swarm {
    fn lease_label(&self) -> String {
        format!("io.reconciler.lease.{}", self.cluster)
    }

    fn lease_ttl_label(&self) -> String {
        format!("io.reconciler.lease-ttl.{}", self.cluster)
    }

    fn lease_instance_label(&self) -> String {
        format!("io.reconciler.lease-instance.{}", self.cluster)
    }

    /// The swarm's spec, its version, and the lease label's value.
    async fn read_lease(&self) -> Result<(SwarmSpec, i64, Option<String>), SwarmError> {
        let (spec, version) = self.swarm_spec().await?;
        // Read as one value, `"<holder> <expiry> <ttl> <instance>"`: a
        // renewal changes it.
        let lease = spec.labels.as_ref().and_then(|labels| {
            let value = labels.get(&self.lease_label())?;
            let ttl = labels.get(&self.lease_ttl_label());
            let instance = labels.get(&self.lease_instance_label());
            Some(match (ttl, instance) {
                (Some(ttl), Some(instance)) if value.split(' ').count() == 2 => {
                    format!("{value} {ttl} {instance}")
                }
                (Some(ttl), None) if value.split(' ').count() == 2 => format!("{value} {ttl}"),
                _ => value.clone(),
            })
        });
        Ok((spec, version, lease))
    }

    /// Takes the lease if it is free or has stayed unchanged for its
    /// holder's ttl, renews it if it is ours and less than half of `ttl` is
    /// left (by `clock`), and otherwise reports who holds it.
    pub async fn acquire_lease(
        &self,
        holder: &str,
        ttl: Duration,
        clock: &mut LeaseClock,
    ) -> Result<LeaseState, SwarmError> {
        for _ in 0..super::WRITE_ATTEMPTS {
            let (mut spec, version, current) = self.read_lease().await?;
            // Timed from before the write: our view never outlasts the label.
            let now = Instant::now();
            match decide(current.as_deref(), holder, ttl, clock, now) {
                Decision::Keep => return Ok(LeaseState::Held),
                Decision::Wait { holder } => return Ok(LeaseState::HeldBy { holder }),
                Decision::Write => {}
            }
            let labels = spec.labels.get_or_insert_with(Default::default);
            labels.insert(
                self.lease_label(),
                format!("{holder} {}", crate::timestamp::unix_now() + ttl.as_secs()),
            );
            labels.insert(self.lease_ttl_label(), ttl.as_secs().to_string());
            labels.insert(self.lease_instance_label(), clock.instance.clone());
            match self.write_swarm_spec(spec, version).await {
                Ok(()) => {
                    clock.written = Some(now);
                    return Ok(LeaseState::Held);
                }
                // Another controller (or an operator) wrote the swarm in between: read again.
                Err(error) if is_out_of_sequence(&error) => continue,
                Err(source) => {
                    return Err(SwarmError::Api {
                        operation: DockerCall::UpdateSwarm,
                        source,
                    })
                }
            }
        }
        Err(SwarmError::OutOfSequence("swarm (lease)".into()))
    }

    /// Who the lease label names now (read only; `None` when free): what
    /// the status shows when this reconcile did not need the lease. Our
    /// holder id written by another process is another's.
    pub async fn lease_holder(
        &self,
        holder: &str,
        clock: &LeaseClock,
    ) -> Result<Option<LeaseState>, SwarmError> {
        let (_, _, current) = self.read_lease().await?;
        Ok(current.map(|text| {
            let value = holder_of(&text);
            match (value.holder == holder, value.instance) {
                (true, Some(instance)) if instance != clock.instance => LeaseState::HeldBy {
                    holder: format!("{holder} (another controller with this holder id)"),
                },
                (true, _) => LeaseState::Held,
                (false, _) => LeaseState::HeldBy {
                    holder: value.holder.to_string(),
                },
            }
        }))
    }

    /// Gives the lease up on shutdown, so a standby controller takes over
    /// after seeing it free (it still waits for nothing longer).
    pub async fn release_lease(&self, holder: &str, clock: &LeaseClock) -> Result<(), SwarmError> {
        let (mut spec, version, current) = self.read_lease().await?;
        let ours = current.as_deref().is_some_and(|v| {
            let value = holder_of(v);
            value.holder == holder && value.instance.is_none_or(|i| i == clock.instance)
        });
        if !ours {
            return Ok(());
        }
        if let Some(labels) = spec.labels.as_mut() {
            labels.remove(&self.lease_label());
            labels.remove(&self.lease_ttl_label());
            labels.remove(&self.lease_instance_label());
        }
        self.write_swarm_spec(spec, version)
            .await
            .map_err(api(DockerCall::UpdateSwarm))
    }
}

/// Whether this controller still holds the lease, as its [`LeaseKeeper`]
/// last found: an apply checks it before each write and stops when it is lost.
#[derive(Debug, Clone)]
pub struct LeaseGuard(Arc<AtomicBool>);

impl LeaseGuard {
    pub fn held(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

/// Keeps a held lease renewed in the background while a reconcile writes,
/// so a long step (apt-get on a board, a drain, an `after` wait) never
/// outlives it. When the lease is taken by another controller, or cannot be
/// renewed before our own clock says it ran out, the guard turns false.
#[derive(Debug)]
pub struct LeaseKeeper {
    held: Arc<AtomicBool>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<LeaseClock>,
}

impl LeaseKeeper {
    /// Starts renewing a lease just acquired (`clock` says when).
    pub fn start(swarm: Swarm, holder: String, ttl: Duration, clock: LeaseClock) -> Self {
        Self::spawn(Arc::new(move || swarm.clone()), holder, ttl, clock, false)
    }

    /// [`LeaseKeeper::start`] for a rolling upgrade, asking `swarm` for the
    /// connection at each renewal: one that is replaced (the tunnel's
    /// manager rebooted) is followed. Its only way to the swarm may be a
    /// manager that is rebooting: a lease that ran out
    /// only because the swarm did not answer is taken back once it does
    /// and nobody else took it (the guard is false in between). An apply
    /// must not use this: it would go on writing a plan made before the gap.
    pub fn start_recovering(
        swarm: Arc<dyn Fn() -> Swarm + Send + Sync>,
        holder: String,
        ttl: Duration,
        clock: LeaseClock,
    ) -> Self {
        Self::spawn(swarm, holder, ttl, clock, true)
    }

    fn spawn(
        swarm: Arc<dyn Fn() -> Swarm + Send + Sync>,
        holder: String,
        ttl: Duration,
        clock: LeaseClock,
        recover: bool,
    ) -> Self {
        let held = Arc::new(AtomicBool::new(clock.holds(Instant::now(), ttl)));
        let (stop, mut stopped) = tokio::sync::oneshot::channel::<()>();
        let flag = held.clone();
        let task = tokio::spawn(async move {
            let mut clock = clock;
            // Four looks per ttl: renewed near half of it, and given up a
            // quarter before our own view of it ends.
            let tick = (ttl / 4).max(Duration::from_millis(100));
            loop {
                tokio::select! {
                    _ = &mut stopped => break,
                    () = tokio::time::sleep(tick) => {}
                }
                match swarm().acquire_lease(&holder, ttl, &mut clock).await {
                    Ok(LeaseState::Held) => flag.store(true, Ordering::SeqCst),
                    Ok(LeaseState::HeldBy { holder: other }) => {
                        tracing::warn!(holder = %other, "lost the lease to another controller; stopping writes");
                        flag.store(false, Ordering::SeqCst);
                        break;
                    }
                    Err(error) => {
                        tracing::warn!(%error, "could not renew the lease");
                        if !clock.holds(Instant::now(), ttl.saturating_sub(tick)) {
                            flag.store(false, Ordering::SeqCst);
                            if !recover {
                                break;
                            }
                        }
                    }
                }
            }
            clock
        });
        Self {
            held,
            stop: Some(stop),
            task,
        }
    }

    pub fn guard(&self) -> LeaseGuard {
        LeaseGuard(self.held.clone())
    }

    /// Stops renewing; gives back what was seen of the lease. (Dropped
    /// without this, e.g. on an error, it stops renewing as well.)
    pub async fn stop(mut self) -> LeaseClock {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        (&mut self.task).await.unwrap_or_default()
    }
}

impl Drop for LeaseKeeper {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TTL: Duration = Duration::from_secs(30);

    #[test]
    fn lease_values_name_their_holder_and_ttl() {
        let read = |v| {
            let value = holder_of(v);
            (value.holder, value.ttl, value.instance)
        };
        assert_eq!(
            read("host-1.abc 1700000000 30"),
            ("host-1.abc", Some(TTL), None)
        );
        assert_eq!(
            read("host-1.abc 1700000000 30 9f3a"),
            ("host-1.abc", Some(TTL), Some("9f3a"))
        );
        assert_eq!(read("host-1.abc 1700000000"), ("host-1.abc", None, None));
        assert_eq!(read("garbage"), ("garbage", None, None));
        assert_eq!(read("a b c"), ("a b c", None, None));
        assert_eq!(read("a 1 2 xyz"), ("a 1 2 xyz", None, None));
        assert_eq!(read("a 1 2 3 4"), ("a 1 2 3 4", None, None));
    }

    #[test]
    fn a_free_lease_is_taken_and_ours_is_kept_until_half_its_ttl() {
        let mut clock = LeaseClock::default();
        let t0 = Instant::now();
        assert_eq!(decide(None, "me", TTL, &mut clock, t0), Decision::Write);
        clock.written = Some(t0);
        let ours = Some("me 0 30");
        assert_eq!(
            decide(ours, "me", TTL, &mut clock, t0 + TTL / 4),
            Decision::Keep
        );
        assert_eq!(
            decide(ours, "me", TTL, &mut clock, t0 + TTL / 2),
            Decision::Write
        );
        // Written before instances were: renewed at once.
        assert_eq!(
            decide(ours, "me", TTL, &mut LeaseClock::default(), t0),
            Decision::Write
        );
        let mine = format!("me 0 30 {}", clock.instance);
        assert_eq!(
            decide(Some(&mine), "me", TTL, &mut clock, t0 + TTL / 4),
            Decision::Keep
        );
    }

    /// Regression (issue 22): two controllers started with the same
    /// `--holder-id` both counted the lease as theirs and both wrote. The
    /// label names the writing process too; another process under our
    /// name is waited for like any other holder, and shown as such.
    #[test]
    fn regression_a_second_controller_with_the_same_holder_id_does_not_write() {
        let t0 = Instant::now();
        let first = LeaseClock::default();
        let mut second = LeaseClock::default();
        assert_ne!(first.instance, second.instance);
        let written = format!("me 0 30 {}", first.instance);
        let wait = Decision::Wait {
            holder: "me (another controller with this holder id)".into(),
        };
        assert_eq!(decide(Some(&written), "me", TTL, &mut second, t0), wait);
        assert_eq!(
            decide(Some(&written), "me", TTL, &mut second, t0 + TTL / 2),
            wait
        );
        // Unchanged for a whole ttl: the first stopped; the second takes it.
        assert_eq!(
            decide(Some(&written), "me", TTL, &mut second, t0 + TTL),
            Decision::Write
        );
    }

    /// The label's expiry says the lease ran out long ago (a standby whose
    /// clock is a day ahead would read it so); it is still waited for.
    #[test]
    fn regression_a_standby_whose_clock_runs_ahead_never_takes_a_live_lease() {
        let mut clock = LeaseClock::default();
        let t0 = Instant::now();
        let stale_by_its_clock = Some("holder-1 1000 30");
        let wait = Decision::Wait {
            holder: "holder-1".into(),
        };
        assert_eq!(
            decide(stale_by_its_clock, "standby", TTL, &mut clock, t0),
            wait
        );
        assert_eq!(
            decide(
                stale_by_its_clock,
                "standby",
                TTL,
                &mut clock,
                t0 + TTL - Duration::from_millis(1)
            ),
            wait
        );
        // The holder renewed: the wait starts again from the new value.
        let renewed = Some("holder-1 1015 30");
        assert_eq!(decide(renewed, "standby", TTL, &mut clock, t0 + TTL), wait);
        assert_eq!(
            decide(renewed, "standby", TTL, &mut clock, t0 + TTL + TTL / 2),
            wait
        );
        // Unchanged for a whole ttl: the holder stopped renewing.
        assert_eq!(
            decide(renewed, "standby", TTL, &mut clock, t0 + TTL * 2),
            Decision::Write
        );
    }

    /// A holder that asked for a longer ttl than ours is waited for that long.
    #[test]
    fn a_longer_ttl_in_the_label_is_honoured() {
        let mut clock = LeaseClock::default();
        let t0 = Instant::now();
        let long = Some("holder-1 0 120");
        assert!(matches!(
            decide(long, "me", TTL, &mut clock, t0),
            Decision::Wait { .. }
        ));
        assert!(matches!(
            decide(long, "me", TTL, &mut clock, t0 + TTL * 2),
            Decision::Wait { .. }
        ));
        assert_eq!(
            decide(long, "me", TTL, &mut clock, t0 + Duration::from_secs(120)),
            Decision::Write
        );
    }

    /// A holder id with a space once read back as a different holder and an
    /// unparseable expiry, so the lease looked free to everyone.
    #[test]
    fn regression_a_holder_id_with_a_space_is_refused_and_an_unreadable_lease_is_not_free() {
        assert!(valid_holder("ops laptop").is_err());
        assert!(valid_holder("").is_err());
        assert!(valid_holder(&"x".repeat(65)).is_err());
        assert!(valid_holder("pi-controller_1.local:42@rack").is_ok());
        let mut clock = LeaseClock::default();
        let t0 = Instant::now();
        let unreadable = Some("ops laptop 1700000000");
        assert_eq!(
            decide(unreadable, "ops", TTL, &mut clock, t0),
            Decision::Wait {
                holder: "ops laptop 1700000000".into()
            }
        );
        assert_eq!(
            decide(unreadable, "ops", TTL, &mut clock, t0 + TTL),
            Decision::Write
        );
    }
}
