//! The process's metrics: one Prometheus recorder behind the `metrics` facade, installed once,
//! rendered as Prometheus text by whatever serves `/metrics` (the admin router, or the small
//! listener `[metrics] listen` starts for a worker without the admin).
//!
//! No label ever holds a phone number or a recipient id: labels are bounded sets (outcome,
//! reason, provider code, sender name, webhook kind and verdict), so the series count stays
//! bounded and the text holds no personal data, which is why `/metrics` needs no token.

use std::sync::{Mutex, PoisonError};

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

use crate::AppError;

/// A handle on the installed recorder.
#[derive(Clone)]
pub struct Metrics {
    handle: PrometheusHandle,
}

static INSTALLED: Mutex<Option<Metrics>> = Mutex::new(None);

impl Metrics {
    /// Installs the process's recorder on first call, and returns it on every call (the facade
    /// holds one global recorder; a second install would fail).
    pub fn install() -> Result<Metrics, AppError> {
        let mut installed = INSTALLED.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(metrics) = installed.as_ref() {
            return Ok(metrics.clone());
        }
        let recorder = PrometheusBuilder::new().build_recorder();
        let handle = recorder.handle();
        metrics::set_global_recorder(recorder)
            .map_err(|_| AppError::Internal("another metrics recorder is installed".to_owned()))?;
        Ok(installed.insert(Metrics { handle }).clone())
    }

    /// Everything recorded so far, as Prometheus text exposition format 0.0.4.
    pub fn render(&self) -> String {
        self.handle.render()
    }
}
