//! The `[metrics] listen` listener: `/metrics` and nothing else, for a role that runs without
//! the admin API (`herald worker`, `herald run`, or `herald serve` without `[admin] listen`),
//! so Prometheus scrapes every long-running process. The admin API's `/metrics` answers with
//! the same [`response`] (one content type, one render path). No token, as scrapers expect: the text holds no personal data
//! (see [`crate::metrics`]). Any other path is 404 and any other method 405.
//!
//! It stops with the process's [`Shutdown`]: the listener closes, a scrape in progress is
//! answered first.

use std::net::SocketAddr;

use axum::Router;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use herald_engine::Shutdown;
use tokio::task::JoinHandle;

use crate::metrics::Metrics;
use crate::{AppError, Settings};

/// The content type of Prometheus text exposition format 0.0.4.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The answer to `GET /metrics`: `metrics`'s text with [`CONTENT_TYPE`]. Both listeners (this
/// one and the admin API's) answer with it.
pub fn response(metrics: &Metrics) -> Response {
    ([(header::CONTENT_TYPE, CONTENT_TYPE)], metrics.render()).into_response()
}

/// `GET /metrics` answering `metrics`'s text.
pub fn router(metrics: Metrics) -> Router {
    Router::new().route(
        "/metrics",
        get(move || {
            let metrics = metrics.clone();
            async move { response(&metrics) }
        }),
    )
}

/// A running `/metrics` listener. Dropped, it stops at once (the role it served failed).
pub struct MetricsListener {
    addr: SocketAddr,
    task: Option<JoinHandle<std::io::Result<()>>>,
}

impl Drop for MetricsListener {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

impl MetricsListener {
    /// Binds `addr` and serves [`router`] until `shutdown` fires. A bind failure (address in
    /// use, not local) is the user's error, naming the key.
    pub async fn start(
        addr: SocketAddr,
        metrics: Metrics,
        shutdown: Shutdown,
    ) -> Result<Self, AppError> {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|e| AppError::User(format!("metrics.listen: cannot listen on {addr}: {e}")))?;
        let addr = listener
            .local_addr()
            .map_err(|e| AppError::Internal(format!("metrics listener address: {e}")))?;
        let mut stop = shutdown;
        let task = tokio::spawn(async move {
            axum::serve(listener, router(metrics))
                .with_graceful_shutdown(async move { stop.recv().await })
                .await
        });
        tracing::info!(%addr, "serving /metrics");
        Ok(Self {
            addr,
            task: Some(task),
        })
    }

    /// Installs the recorder (every long-running role does, whether or not it listens) and,
    /// when `[metrics] listen` is set, starts the listener on it.
    pub async fn start_if_configured(
        settings: &Settings,
        shutdown: Shutdown,
    ) -> Result<Option<Self>, AppError> {
        let metrics = Metrics::install()?;
        match settings.metrics.listen {
            Some(addr) => Self::start(addr, metrics, shutdown).await.map(Some),
            None => Ok(None),
        }
    }

    /// The address it listens on (the port chosen when the config said 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Waits for it to stop (after the shutdown fired).
    pub async fn stopped(mut self) -> Result<(), AppError> {
        let Some(task) = self.task.take() else {
            return Ok(());
        };
        match task.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(AppError::Internal(format!("metrics listener: {e}"))),
            Err(e) => Err(AppError::Internal(format!("metrics listener task: {e}"))),
        }
    }
}
