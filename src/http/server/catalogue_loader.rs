//! Start-up of the subject catalogue: the store is opened and migrated before the server serves (a store
//! that cannot be opened stops the start with its reason), then its search index loads in the background,
//! next to the models, while `/ready` answers 503.

use std::future::Future;

use anyhow::Context;
use tokio::sync::oneshot;

use crate::config::ServeConfig;
use crate::store::{Catalogue, Store};

use crate::http::server::state::AppState;

/// Opens and migrates `--store`. Fails rather than retries: a wrong URL, a database that refuses us or
/// a directory we cannot write must stop the start, not leave a server that is never ready. (A database
/// that starts after the service is a job for the supervisor's restart policy.)
pub(crate) async fn open_store(config: &ServeConfig) -> anyhow::Result<Store> {
    // The error, never the URL: it may carry a password.
    Store::open(&config.store_url())
        .await
        .context("cannot open the subject store (--store / --data-dir)")
}

/// Loads the index from `store` and publishes the catalogue; the returned future completes only if
/// loading fails, with the reason.
pub(crate) fn spawn_catalogue_loader(state: AppState, store: Store) -> impl Future<Output = anyhow::Error> {
    let (fail_tx, fail_rx) = oneshot::channel::<anyhow::Error>();
    tokio::spawn(async move {
        match Catalogue::load(store, state.metrics().clone(), state.config().approximate_search()).await {
            Ok(catalogue) => {
                catalogue.follow(state.config().store_follow());
                state.set_catalogue(catalogue);
            }
            Err(err) => {
                state.metrics().store_errors_total.with_label_values(&["open"]).inc();
                let _ = fail_tx.send(anyhow::Error::new(err).context("cannot load the subject catalogue"));
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
