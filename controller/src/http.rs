//! The controller's HTTP face: metrics, health, the git webhook and status.
//!
//! Handlers only read shared state or enqueue a trigger; none of them applies
//! anything. The default listen address is localhost.

use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use tokio::sync::{mpsc, watch};

use crate::metrics::Metrics;
use crate::metrics::WebhookResult;
use crate::reconcile::Trigger;
use crate::source::webhook::{self, Verdict};
use crate::status::{PictureContext, Status};
use crate::swarm::placement::Placement;

/// State shared between the loop and the HTTP handlers.
#[derive(Debug)]
pub struct Shared {
    pub metrics: Metrics,
    pub status: RwLock<Status>,
    pub triggers: mpsc::UnboundedSender<Trigger>,
    pub webhook_secret: Option<crate::source::webhook::WebhookSecret>,
    /// What the cluster's picture needs besides the swarm; each reconcile
    /// sets it.
    pub picture: RwLock<PictureContext>,
    /// When the page or `/api/status` was last asked for: the picture is
    /// kept live only while someone looks.
    pub viewed: Mutex<Option<Instant>>,
    /// Names besides IP addresses, `localhost` and LAN names that the page,
    /// `/api/*` and `/metrics` answer to ([`host_allowed`]).
    pub allowed_hosts: Vec<String>,
    /// What the page and `/api/*` ask for (`--page-token-file`); `None`:
    /// whoever reaches the listener reads them.
    pub page_token: Option<PageToken>,
    /// Push bodies accepted lately (a replay triggers nothing).
    pub deliveries: Mutex<webhook::Deliveries>,
    /// Wakes the page's viewer when someone looks at a picture gone stale
    /// (the first look after an idle spell).
    pub refresh: tokio::sync::Notify,
    /// When a refused webhook was last said in the log.
    pub refusals: Mutex<webhook::RefusalLog>,
}

/// How long after the last look the picture is still kept live.
pub const VIEWED_FOR: Duration = Duration::from_secs(60);

/// A picture older than this is refreshed before it is shown.
pub const FRESH_FOR: Duration = Duration::from_secs(5);
/// How long an answer waits for that refresh (a slow Docker then gets the
/// old picture, with its age on it).
pub const FRESH_WAIT: Duration = Duration::from_secs(2);

impl Shared {
    pub fn new(
        status: Status,
        triggers: mpsc::UnboundedSender<Trigger>,
        webhook_secret: Option<crate::source::webhook::WebhookSecret>,
    ) -> Self {
        Self {
            metrics: Metrics::new(),
            status: RwLock::new(status),
            triggers,
            webhook_secret,
            picture: RwLock::default(),
            viewed: Mutex::default(),
            allowed_hosts: Vec::new(),
            page_token: None,
            deliveries: Mutex::default(),
            refusals: Mutex::default(),
            refresh: tokio::sync::Notify::new(),
        }
    }

    fn status(&self) -> Status {
        self.status
            .read()
            .map(|s| s.clone())
            .unwrap_or_else(|poisoned| poisoned.into_inner().clone())
    }

    /// The cluster name the picture judges ownership by (empty before the
    /// first reconcile loaded a spec).
    pub fn picture_cluster(&self) -> String {
        self.picture
            .read()
            .map(|c| c.cluster.clone())
            .unwrap_or_default()
    }

    /// Notes that someone looks at the status now.
    fn looked_at(&self) {
        if let Ok(mut viewed) = self.viewed.lock() {
            *viewed = Some(Instant::now());
        }
    }

    /// Someone looks now: when the picture is older than [`FRESH_FOR`]
    /// (nobody looked for a while, so nobody kept it live), the viewer is
    /// woken and the answer waits for the new picture, at most
    /// [`FRESH_WAIT`]: stale task states are never drawn as current.
    async fn look_fresh(&self) {
        self.looked_at();
        let Some(at) = self.status.read().ok().and_then(|s| s.picture_at) else {
            return;
        };
        if crate::timestamp::unix_now().saturating_sub(at) < FRESH_FOR.as_secs() {
            return;
        }
        self.refresh.notify_one();
        let deadline = Instant::now() + FRESH_WAIT;
        while Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
            if self.status.read().ok().and_then(|s| s.picture_at) != Some(at) {
                return;
            }
        }
    }

    /// Whether someone looked at the status within [`VIEWED_FOR`].
    pub fn watched(&self) -> bool {
        self.viewed
            .lock()
            .ok()
            .and_then(|v| *v)
            .is_some_and(|at| at.elapsed() < VIEWED_FOR)
    }

    /// Draws the cluster from `placement` into the status, and the node and
    /// replica gauges into the metrics.
    pub fn record_placement(&self, placement: &Placement) {
        let context = self
            .picture
            .read()
            .map(|c| c.clone())
            .unwrap_or_else(|poisoned| poisoned.into_inner().clone());
        let metrics = &self.metrics;
        metrics.nodes.reset();
        for node in &placement.nodes {
            metrics
                .nodes
                .with_label_values(&[node.role.as_str(), node.state.as_str()])
                .inc();
        }
        let mut status = self
            .status
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        status.set_picture(placement, &context);
        metrics.replicas_desired.reset();
        metrics.replicas_running.reset();
        for service in &status.services {
            let gauge = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
            metrics
                .replicas_desired
                .with_label_values(&[service.name.as_str()])
                .set(gauge(service.desired.unwrap_or(service.wanted)));
            metrics
                .replicas_running
                .with_label_values(&[service.name.as_str()])
                .set(gauge(service.running));
        }
    }
}

pub fn router(shared: Arc<Shared>) -> Router {
    // The cluster's picture: for whoever holds the token, when there is one.
    let page = Router::new()
        .route("/api/status", get(status))
        .route("/api/page", get(page_body))
        .route("/", get(page))
        .route_layer(axum::middleware::from_fn_with_state(
            Arc::clone(&shared),
            token_holder,
        ));
    // What a page of another site must not read through DNS rebinding.
    let read = Router::new()
        .route("/metrics", get(metrics))
        .merge(page)
        .route_layer(axum::middleware::from_fn_with_state(
            Arc::clone(&shared),
            known_host,
        ));
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/hooks/git", post(hook))
        .merge(read)
        .with_state(shared)
}

/// Refuses a request whose `Host` is a name the controller was not told
/// about: a page on `evil.example` whose name a rebinding DNS points at
/// 127.0.0.1 sends `Host: evil.example`, and must not read the status
/// (environment values, the cluster's layout) or the metrics.
async fn known_host(
    State(shared): State<Arc<Shared>>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let host = request
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or_default()
        .to_string();
    if host_allowed(&host, &shared.allowed_hosts) {
        return next.run(request).await;
    }
    let name = host_name(&host);
    (
        StatusCode::MISDIRECTED_REQUEST,
        format!("refused: this controller does not answer to the name `{name}`; start it with --allow-host {name} if that name is its own\n"),
    )
        .into_response()
}

/// The token the status page and `/api/*` ask for, kept as its digest so
/// comparing takes the same time whatever is sent.
#[derive(Clone)]
pub struct PageToken([u8; 32]);

impl std::fmt::Debug for PageToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PageToken(..)")
    }
}

/// Why a page token cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum PageTokenError {
    /// Shorter than [`MIN_TOKEN_CHARS`]: guessable.
    #[error("the page token is {0} characters long; use at least {MIN_TOKEN_CHARS} (`openssl rand -hex 32`)")]
    TooShort(usize),
    /// A character a URL or a cookie would carry differently.
    #[error("the page token may only hold letters, digits, `-`, `_`, `.` and `~` (it travels in a URL and a cookie); `openssl rand -hex 32` makes one")]
    Character,
}

/// The shortest page token taken.
pub const MIN_TOKEN_CHARS: usize = 16;

/// The cookie that carries the token after `/?token=...`, so the page's
/// script (and a reload) need not put it in a URL again.
const TOKEN_COOKIE: &str = "reconciler_token";

impl PageToken {
    /// A token from its text (surrounding whitespace dropped).
    pub fn new(text: &str) -> Result<Self, PageTokenError> {
        use sha2::Digest as _;
        let text = text.trim();
        if text.chars().count() < MIN_TOKEN_CHARS {
            return Err(PageTokenError::TooShort(text.chars().count()));
        }
        if !text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.~".contains(c))
        {
            return Err(PageTokenError::Character);
        }
        Ok(Self(sha2::Sha256::digest(text.as_bytes()).into()))
    }

    fn matches(&self, given: &str) -> bool {
        use sha2::Digest as _;
        use subtle::ConstantTimeEq as _;
        sha2::Sha256::digest(given.as_bytes())
            .as_slice()
            .ct_eq(&self.0)
            .into()
    }
}

/// Where a request carries a token: `Authorization: Bearer`, the cookie,
/// or `?token=` in the URL.
fn offered_tokens(request: &axum::extract::Request) -> (Vec<&str>, Option<&str>) {
    let headers = request.headers();
    let mut offered: Vec<&str> = headers
        .get_all(header::AUTHORIZATION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .collect();
    for cookies in headers.get_all(header::COOKIE).iter() {
        let Ok(cookies) = cookies.to_str() else {
            continue;
        };
        offered.extend(cookies.split(';').filter_map(|pair| {
            let (name, value) = pair.trim().split_once('=')?;
            (name == TOKEN_COOKIE).then_some(value)
        }));
    }
    let query = request.uri().query().and_then(|query| {
        query
            .split('&')
            .find_map(|pair| pair.strip_prefix("token="))
    });
    (offered, query)
}

/// With `--page-token-file`, the page and `/api/*` answer only a request
/// that carries the token. `/?token=...` (the link to bookmark) sets a
/// cookie and sends the browser to the page without it in the address bar.
async fn token_holder(
    State(shared): State<Arc<Shared>>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let Some(token) = &shared.page_token else {
        return next.run(request).await;
    };
    let (offered, query) = offered_tokens(&request);
    if let Some(given) = query.filter(|given| token.matches(given)) {
        return (
            StatusCode::SEE_OTHER,
            [
                (header::LOCATION, "./".to_string()),
                (
                    header::SET_COOKIE,
                    format!("{TOKEN_COOKIE}={given}; HttpOnly; SameSite=Strict"),
                ),
                (header::CACHE_CONTROL, "no-store".to_string()),
            ],
        )
            .into_response();
    }
    if offered.iter().any(|given| token.matches(given)) {
        return next.run(request).await;
    }
    (
        StatusCode::UNAUTHORIZED,
        [(header::WWW_AUTHENTICATE, "Bearer")],
        "this controller's status needs its page token: open /?token=TOKEN once in the browser, or send `Authorization: Bearer TOKEN`\n",
    )
        .into_response()
}

/// The name part of a `Host` header (`[fd00::1]:9469` → `fd00::1`).
fn host_name(host: &str) -> &str {
    match host.strip_prefix('[') {
        Some(bracketed) => bracketed.split(']').next().unwrap_or_default(),
        None => host.rsplit_once(':').map_or(host, |(name, _)| name),
    }
}

/// Suffixes no public DNS answers for (mDNS's `.local`, RFC 8375's
/// `.home.arpa`, ICANN's reserved `.internal`, the undelegated `.lan`):
/// an attacker's DNS cannot point one at this machine.
const LAN_SUFFIXES: [&str; 5] = [".local", ".lan", ".home.arpa", ".internal", ".localhost"];

/// A `Host` a browser sends only when it was asked for this controller:
/// an IP address, `localhost`, a LAN name (`pi1`, `pi1.local`,
/// `pi1.home.arpa`), or a name given with `--allow-host`. A rebinding
/// attack needs a public name of its own.
pub fn host_allowed(host: &str, allowed: &[String]) -> bool {
    let name = host_name(host).trim_end_matches('.');
    let lower = name.to_ascii_lowercase();
    !name.is_empty()
        && (name.parse::<std::net::IpAddr>().is_ok()
            || lower == "localhost"
            || !name.contains('.')
            || LAN_SUFFIXES.iter().any(|s| lower.ends_with(s))
            || allowed.iter().any(|a| a.eq_ignore_ascii_case(name)))
}

/// Serves until `shutdown` turns true.
pub async fn serve(
    listener: tokio::net::TcpListener,
    shared: Arc<Shared>,
    mut shutdown: watch::Receiver<bool>,
) {
    let listener = DeadlineListener {
        listener,
        slots: Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS)),
    };
    let server = axum::serve(listener, router(shared)).with_graceful_shutdown(async move {
        let _ = shutdown.wait_for(|stop| *stop).await;
    });
    if let Err(error) = server.await {
        tracing::error!(%error, "HTTP server stopped");
    }
}

async fn metrics(State(shared): State<Arc<Shared>>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        shared.metrics.render(),
    )
        .into_response()
}

/// Ready when a good revision is loaded and Docker answered the last reconcile.
async fn readyz(State(shared): State<Arc<Shared>>) -> Response {
    let status = shared.status();
    match (&status.revision, status.docker_reachable) {
        (Some(_), true) => (StatusCode::OK, "ready\n").into_response(),
        (None, _) => (
            StatusCode::SERVICE_UNAVAILABLE,
            "not ready: no valid spec revision loaded yet\n",
        )
            .into_response(),
        (Some(_), false) => (
            StatusCode::SERVICE_UNAVAILABLE,
            "not ready: Docker is not reachable\n",
        )
            .into_response(),
    }
}

async fn page(State(shared): State<Arc<Shared>>) -> Response {
    shared.look_fresh().await;
    (
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        crate::status_page::render(&shared.status()),
    )
        .into_response()
}

/// The page's body alone: what the page's script fetches to update itself.
async fn page_body(State(shared): State<Arc<Shared>>) -> Response {
    shared.look_fresh().await;
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        crate::status_page::body(&shared.status()),
    )
        .into_response()
}

async fn status(State(shared): State<Arc<Shared>>) -> Json<Status> {
    shared.look_fresh().await;
    Json(shared.status())
}

async fn hook(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> Response {
    let lookup = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    match webhook::verify(
        lookup,
        &body,
        shared
            .webhook_secret
            .as_ref()
            .map(crate::source::webhook::WebhookSecret::expose),
    ) {
        Ok(Verdict::Push(provider)) => {
            let first_time = shared
                .deliveries
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .first_time(&body);
            if !first_time {
                shared
                    .metrics
                    .webhooks
                    .with_label_values(&[WebhookResult::Replayed.as_str()])
                    .inc();
                tracing::debug!(
                    provider = provider.as_str(),
                    "webhook: a push body accepted before; ignored"
                );
                return (StatusCode::OK, "ignored: this push was received before\n")
                    .into_response();
            }
            shared
                .metrics
                .webhooks
                .with_label_values(&[WebhookResult::Accepted.as_str()])
                .inc();
            tracing::info!(provider = provider.as_str(), "webhook: push; fetching now");
            let _ = shared.triggers.send(Trigger::Webhook);
            (StatusCode::ACCEPTED, "accepted: fetching\n").into_response()
        }
        Ok(Verdict::Ignored(provider, event)) => {
            shared
                .metrics
                .webhooks
                .with_label_values(&[WebhookResult::Ignored.as_str()])
                .inc();
            tracing::debug!(provider = provider.as_str(), %event, "webhook: not a push, ignored");
            (
                StatusCode::OK,
                format!("ignored: event {event:?} is not a push\n"),
            )
                .into_response()
        }
        Err(error) => {
            shared
                .metrics
                .webhooks
                .with_label_values(&[WebhookResult::Unauthorized.as_str()])
                .inc();
            let said = shared
                .refusals
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .say(Instant::now());
            match said {
                Some(0) => tracing::warn!(%error, "webhook refused"),
                Some(unsaid) => {
                    tracing::warn!(%error, unsaid, "webhook refused ({unsaid} more refused since the last line)");
                }
                None => tracing::debug!(%error, "webhook refused"),
            }
            (StatusCode::UNAUTHORIZED, format!("refused: {error}\n")).into_response()
        }
    }
}

/// How long one HTTP connection may last, from accept to close. Every
/// answer here is small and quick; a client that sends its headers a byte a
/// minute (or never) is cut off instead of holding a connection forever.
const CONNECTION_DEADLINE: std::time::Duration = std::time::Duration::from_secs(30);

/// The most connections served at once: 1 100 idle ones used to exhaust
/// the process's files (systemd's soft limit is 1 024), and every
/// reconcile then failed with "Too many open files". Past it, new
/// connections wait in the kernel's backlog until one closes.
pub const MAX_CONNECTIONS: usize = 256;

/// The TCP listener: at most [`MAX_CONNECTIONS`] at once, each bounded by
/// [`CONNECTION_DEADLINE`].
struct DeadlineListener {
    listener: tokio::net::TcpListener,
    slots: Arc<tokio::sync::Semaphore>,
}

impl axum::serve::Listener for DeadlineListener {
    type Io = DeadlineIo;
    type Addr = std::net::SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        // The semaphore is never closed: a slot always comes.
        let slot = Arc::clone(&self.slots).acquire_owned().await.ok();
        let (stream, address) = axum::serve::Listener::accept(&mut self.listener).await;
        let io = DeadlineIo {
            stream,
            deadline: Box::pin(tokio::time::sleep(CONNECTION_DEADLINE)),
            _slot: slot,
        };
        (io, address)
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.listener.local_addr()
    }
}

/// A connection whose reads and writes fail once its deadline passed; it
/// gives its slot back when it closes.
struct DeadlineIo {
    stream: tokio::net::TcpStream,
    deadline: std::pin::Pin<Box<tokio::time::Sleep>>,
    _slot: Option<tokio::sync::OwnedSemaphorePermit>,
}

impl DeadlineIo {
    fn expired(&mut self, cx: &mut std::task::Context<'_>) -> bool {
        std::future::Future::poll(self.deadline.as_mut(), cx).is_ready()
    }
}

fn timed_out() -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::TimedOut,
        "the HTTP connection outlived its deadline",
    )
}

impl tokio::io::AsyncRead for DeadlineIo {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        if self.expired(cx) {
            return std::task::Poll::Ready(Err(timed_out()));
        }
        std::pin::Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl tokio::io::AsyncWrite for DeadlineIo {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        if self.expired(cx) {
            return std::task::Poll::Ready(Err(timed_out()));
        }
        std::pin::Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::host_allowed;

    #[test]
    fn only_names_the_controller_was_given_pass_the_host_check() {
        let none: Vec<String> = Vec::new();
        for host in [
            "127.0.0.1:9469",
            "192.168.1.20:9469",
            "[::1]:9469",
            "[fd00::20]",
            "localhost:9469",
            "pi1:9469",
            "pi1",
            "raspberrypi.local:9469",
            "pi1.home.arpa",
            "pi1.lan.",
        ] {
            assert!(host_allowed(host, &none), "{host}");
        }
        for host in [
            "evil.example:9469",
            "evil.example",
            "",
            "a.b.c:80",
            "local.evil.example",
        ] {
            assert!(!host_allowed(host, &none), "{host}");
        }
        let given = vec!["reconciler.lab.example".to_string()];
        assert!(host_allowed("reconciler.lab.example:443", &given));
        assert!(host_allowed("Reconciler.Lab.Example", &given));
        assert!(!host_allowed("other.lab.example", &given));
    }
}
