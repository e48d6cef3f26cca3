//! `App`: binds the listener (port 0 allowed) and opens the subject store, loads the models and the
//! search index in the background, serves until told to stop, then drains: readiness turns 503,
//! in-flight requests finish, the process may exit.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::time::Instant;

use crate::config::ServeConfig;
use crate::infer::{Engine, LoadBackend};
use crate::keys::ApiKeys;
use crate::metrics::Metrics;
use crate::model::ModelCard;
use crate::store::Store;

use crate::http::server::catalogue_loader::{open_store, spawn_catalogue_loader};
use crate::http::server::connections::{self, ConnectionLimits};
use crate::http::server::router::router;
use crate::http::server::state::AppState;

/// Extra time, beyond one request deadline, that a draining server grants requests in flight before
/// giving up on them, so that a stalled client cannot hold the process for ever.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// A bound, not yet serving, server.
pub struct App {
    listener: TcpListener,
    state: AppState,
    /// Opened and migrated by `build`, so that a bad store stops the start there; its search index
    /// loads once serving starts.
    store: Store,
    /// The models' cards and backends when not the model directory's libtorch networks (tests).
    backends: Option<Vec<(ModelCard, Arc<dyn LoadBackend>)>>,
}

impl App {
    /// Binds the listen address and opens (and migrates) the subject store. Nothing is loaded yet:
    /// `run_until_stopped` starts that.
    pub async fn build(config: ServeConfig) -> anyhow::Result<App> {
        let listener = TcpListener::bind(config.listen)
            .await
            .with_context(|| format!("cannot listen on {}", config.listen))?;
        let keys = load_api_keys(&config)?;
        let store = open_store(&config).await?;
        let state = AppState::new(config, Metrics::new());
        if let Some(keys) = keys {
            for name in keys.names() {
                // Every key's series exists from the start, at 0, so that rates work from the first request.
                state.metrics().requests_by_key_total.with_label_values(&[name]);
            }
            state.require_api_keys(keys);
        }
        Ok(App {
            listener,
            state,
            store,
            backends: None,
        })
    }

    /// Serves these models, each on its own backend, instead of the model directory's: for tests that
    /// need a network whose speed and failures they decide.
    #[doc(hidden)]
    pub fn on_backends(mut self, models: Vec<(ModelCard, Arc<dyn LoadBackend>)>) -> Self {
        self.backends = Some(models);
        self
    }

    /// The address actually bound (the real port when the configuration asked for port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("a bound TCP listener has an address; this is a bug")
    }

    /// Serves at once (`/health` answers while the models load), loads every model on the blocking pool,
    /// and stops when `shutdown` completes: `/ready` turns 503, the listener stays open for the drain delay,
    /// then closes, and requests in flight finish. Fails when the models or the search index cannot be loaded.
    pub async fn run_until_stopped(self, shutdown: impl Future<Output = ()> + Send + 'static) -> anyhow::Result<()> {
        let App {
            listener,
            state,
            store,
            backends,
        } = self;
        let started = Instant::now();
        let load_failed = spawn_loader(state.clone(), started, backends);
        let catalogue_failed = spawn_catalogue_loader(state.clone(), store);

        let (stop_tx, stop_rx) = oneshot::channel::<()>();
        let server = tokio::spawn(connections::serve(
            listener,
            router(state.clone()),
            ConnectionLimits::from_config(state.config()),
            async move {
                let _ = stop_rx.await;
            },
        ));

        let outcome = tokio::select! {
            () = shutdown => Ok(()),
            err = load_failed => {
                tracing::error!(error = format!("{err:#}"), "the models could not be loaded; stopping");
                Err(err)
            }
            err = catalogue_failed => {
                tracing::error!(error = format!("{err:#}"), "the subject catalogue could not be loaded; stopping");
                Err(err)
            }
        };
        state.start_draining();
        if outcome.is_ok() {
            tracing::info!(
                drain_delay_ms = state.config().drain_delay_ms,
                "shutting down: /ready now answers 503"
            );
            tokio::time::sleep(state.config().drain_delay()).await;
        }
        let _ = stop_tx.send(());
        let grace = state.config().request_deadline() + SHUTDOWN_GRACE;
        match tokio::time::timeout(grace, server).await {
            Ok(joined) => joined.context("the server task failed")?,
            Err(_) => tracing::warn!(
                grace_s = grace.as_secs(),
                "requests still in flight after the grace period; stopping anyway"
            ),
        }
        tracing::info!("stopped");
        outcome
    }
}

/// Loads the engine on the blocking pool and publishes it; the returned future completes only if loading
/// fails, with the reason.
fn spawn_loader(
    state: AppState,
    started: Instant,
    backends: Option<Vec<(ModelCard, Arc<dyn LoadBackend>)>>,
) -> impl Future<Output = anyhow::Error> {
    let (fail_tx, fail_rx) = oneshot::channel::<anyhow::Error>();
    tokio::spawn(async move {
        let config = state.config().clone();
        let metrics = state.metrics().clone();
        let loaded = tokio::task::spawn_blocking(move || {
            let engine = match backends {
                None => Engine::start(&config.model_dir, &config.engine_config(), &metrics)
                    .with_context(|| format!("cannot load the models under {}", config.model_dir.display()))?,
                Some(models) => Engine::with_backends(models, &config.engine_config(), &metrics)?,
            };
            check_default_model(&engine, &config.default_model)?;
            Ok::<_, anyhow::Error>(engine)
        })
        .await
        .context("model loading panicked")
        .and_then(|r| r);
        match loaded {
            Ok(engine) => {
                let models: Vec<String> = engine.cards().iter().map(|c| c.name.clone()).collect();
                state.set_engine(engine);
                tracing::info!(
                    ?models,
                    seconds = started.elapsed().as_secs_f64(),
                    "models loaded and warmed up: ready"
                );
            }
            Err(err) => {
                let _ = fail_tx.send(err);
            }
        }
    });
    async move {
        match fail_rx.await {
            Ok(err) => err,
            // Loading succeeded: this never completes.
            Err(_) => std::future::pending().await,
        }
    }
}

/// The key file, when --api-keys-file names one; without one the server runs open, and says so once.
fn load_api_keys(config: &ServeConfig) -> anyhow::Result<Option<ApiKeys>> {
    let Some(path) = &config.api_keys_file else {
        tracing::warn!("no --api-keys-file: the API is open to every client that can reach it");
        return Ok(None);
    };
    let keys = ApiKeys::load(path)?;
    tracing::info!(keys = keys.names().count(), "API keys loaded: requests need one");
    Ok(Some(keys))
}

fn check_default_model(engine: &Engine, default_model: &str) -> anyhow::Result<()> {
    engine.card(default_model).map(|_| ()).map_err(|_| {
        let known: Vec<&str> = engine.cards().iter().map(|c| c.name.as_str()).collect();
        anyhow::anyhow!(
            "the default model {default_model:?} is not among the loaded models ({}); set --default-model",
            known.join(", ")
        )
    })
}
