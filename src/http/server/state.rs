//! `AppState`: what every handler shares: the settings, the metrics, the engine and the subject
//! catalogue once loaded, readiness.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

use crate::config::ServeConfig;
use crate::fetch::UrlFetcher;
use crate::infer::{DecodePool, Engine, ModelHandle};
use crate::keys::ApiKeys;
use crate::metrics::Metrics;
use crate::store::Catalogue;

use crate::http::problem::error::ApiError;
use crate::http::server::in_flight::InFlight;
use crate::http::server::request_model;

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
    /// Bounds the requests doing work at once (`--max-in-flight`).
    in_flight: InFlight,
    /// Set by `App::build` from --api-keys-file, before serving; unset, every request is let in.
    api_keys: OnceLock<ApiKeys>,
    /// Set once the search index is loaded from the store (alongside the models; the store itself is
    /// opened before serving); until then the subject and search routes, and /ready, answer 503.
    catalogue: OnceLock<Arc<Catalogue>>,
}

impl AppState {
    pub fn new(config: ServeConfig, metrics: Metrics) -> Self {
        let decoder = DecodePool::new(
            config.decode_pool,
            config.max_pending_decodes(),
            config.decode_limits(),
            metrics.clone(),
        )
        .with_urls(UrlFetcher::from_config(&config));
        let in_flight = InFlight::new(usize::try_from(config.max_in_flight).unwrap_or(usize::MAX));
        Self {
            inner: Arc::new(Inner {
                config,
                metrics,
                engine: OnceLock::new(),
                draining: AtomicBool::new(false),
                decoder,
                in_flight,
                api_keys: OnceLock::new(),
                catalogue: OnceLock::new(),
            }),
        }
    }

    pub(crate) fn config(&self) -> &ServeConfig {
        &self.inner.config
    }

    pub(crate) fn metrics(&self) -> &Metrics {
        &self.inner.metrics
    }

    pub(crate) fn in_flight(&self) -> &InFlight {
        &self.inner.in_flight
    }

    /// The keys requests must carry; `None` when the server runs open.
    pub(crate) fn api_keys(&self) -> Option<&ApiKeys> {
        self.inner.api_keys.get()
    }

    /// Requires API keys from now on; called once, before serving.
    pub(crate) fn require_api_keys(&self, keys: ApiKeys) {
        if self.inner.api_keys.set(keys).is_err() {
            panic!("the API keys are set once per server; this is a bug");
        }
    }

    /// The engine, or 503 `not_ready` while the models load.
    pub(crate) fn engine(&self) -> Result<&Engine, ApiError> {
        self.inner.engine.get().ok_or(ApiError::NotReady)
    }

    /// The model a request names (the default when it names none), resolved once: what its images are
    /// embedded with. 503 `not_ready` while the models load, 404 `unknown_model` for another name.
    pub(crate) fn model(&self, name: Option<String>) -> Result<ModelHandle<'_>, ApiError> {
        let name = name.as_deref().unwrap_or(&self.inner.config.default_model);
        let model = ModelHandle::new(self.engine()?, &self.inner.decoder, name)?;
        request_model::note_model(model.name());
        Ok(model)
    }

    /// Publishes the loaded engine; readiness follows.
    pub(crate) fn set_engine(&self, engine: Engine) {
        self.inner.metrics.serve_models(&engine.model_names());
        if self.inner.engine.set(engine).is_err() {
            panic!("the engine is loaded once per server; this is a bug");
        }
    }

    /// The subject catalogue, or 503 `not_ready` while its index loads.
    pub(crate) fn catalogue(&self) -> Result<&Arc<Catalogue>, ApiError> {
        self.inner.catalogue.get().ok_or(ApiError::NotReady)
    }

    /// Publishes the loaded catalogue; readiness follows.
    pub(crate) fn set_catalogue(&self, catalogue: Arc<Catalogue>) {
        if self.inner.catalogue.set(catalogue).is_err() {
            panic!("the catalogue is loaded once per server; this is a bug");
        }
    }

    pub(crate) fn is_draining(&self) -> bool {
        self.inner.draining.load(Ordering::SeqCst)
    }

    pub(crate) fn start_draining(&self) {
        self.inner.draining.store(true, Ordering::SeqCst);
    }
}
