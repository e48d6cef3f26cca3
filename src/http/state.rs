//! `AppState`: what every handler shares: the settings, the metrics, the engine once loaded, readiness.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

use crate::config::ServeConfig;
use crate::infer::Engine;
use crate::metrics::Metrics;

use super::error::ApiError;
use super::images::DecodePool;

/// Cheap to clone; one per server.
#[derive(Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

struct Inner {
    config: ServeConfig,
    metrics: Metrics,
    /// Set once every model is loaded and warmed up; until then model routes answer 503 `not_ready`,
    /// while /health already answers.
    engine: OnceLock<Engine>,
    /// Set on SIGTERM/Ctrl-C so that /ready turns 503 while in-flight requests finish.
    draining: AtomicBool,
    /// Bounds the image decodes running on the blocking pool.
    decoder: DecodePool,
}

impl AppState {
    pub fn new(config: ServeConfig, metrics: Metrics) -> Self {
        let decoder = DecodePool::new(config.decode_pool, config.decode_limits(), metrics.clone());
        Self {
            inner: Arc::new(Inner {
                config,
                metrics,
                engine: OnceLock::new(),
                draining: AtomicBool::new(false),
                decoder,
            }),
        }
    }

    pub fn config(&self) -> &ServeConfig {
        &self.inner.config
    }

    pub fn metrics(&self) -> &Metrics {
        &self.inner.metrics
    }

    pub fn decoder(&self) -> &DecodePool {
        &self.inner.decoder
    }

    /// The engine, or 503 `not_ready` while the models load.
    pub fn engine(&self) -> Result<&Engine, ApiError> {
        self.inner.engine.get().ok_or(ApiError::NotReady)
    }

    /// Publishes the loaded engine; readiness follows.
    pub fn set_engine(&self, engine: Engine) {
        if self.inner.engine.set(engine).is_err() {
            panic!("the engine is loaded once per server; this is a bug");
        }
    }

    pub fn is_loaded(&self) -> bool {
        self.inner.engine.get().is_some()
    }

    pub fn is_draining(&self) -> bool {
        self.inner.draining.load(Ordering::SeqCst)
    }

    pub fn start_draining(&self) {
        self.inner.draining.store(true, Ordering::SeqCst);
    }
}
