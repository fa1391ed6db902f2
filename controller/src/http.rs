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
}

/// How long after the last look the picture is still kept live.
pub const VIEWED_FOR: Duration = Duration::from_secs(60);

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
    Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/hooks/git", post(hook))
        .route("/api/status", get(status))
        .route("/api/page", get(page_body))
        .route("/", get(page))
        .with_state(shared)
}

/// Serves until `shutdown` turns true.
pub async fn serve(
    listener: tokio::net::TcpListener,
    shared: Arc<Shared>,
    mut shutdown: watch::Receiver<bool>,
) {
    let listener = DeadlineListener(listener);
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
    shared.looked_at();
    (
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        crate::status_page::render(&shared.status()),
    )
        .into_response()
}

/// The page's body alone: what the page's script fetches to update itself.
async fn page_body(State(shared): State<Arc<Shared>>) -> Response {
    shared.looked_at();
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
    shared.looked_at();
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
            tracing::warn!(%error, "webhook refused");
            (StatusCode::UNAUTHORIZED, format!("refused: {error}\n")).into_response()
        }
    }
}

/// How long one HTTP connection may last, from accept to close. Every
/// answer here is small and quick; a client that sends its headers a byte a
/// minute (or never) is cut off instead of holding a connection forever.
const CONNECTION_DEADLINE: std::time::Duration = std::time::Duration::from_secs(30);

/// The TCP listener, each connection bounded by [`CONNECTION_DEADLINE`].
struct DeadlineListener(tokio::net::TcpListener);

impl axum::serve::Listener for DeadlineListener {
    type Io = DeadlineIo;
    type Addr = std::net::SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        let (stream, address) = axum::serve::Listener::accept(&mut self.0).await;
        let io = DeadlineIo {
            stream,
            deadline: Box::pin(tokio::time::sleep(CONNECTION_DEADLINE)),
        };
        (io, address)
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.0.local_addr()
    }
}

/// A connection whose reads and writes fail once its deadline passed.
struct DeadlineIo {
    stream: tokio::net::TcpStream,
    deadline: std::pin::Pin<Box<tokio::time::Sleep>>,
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
