//! simverify: decides whether two images show the same thing, with a Siamese embedding network.
//!
//! # Layout
//!
//! Dependencies point one way, `http -> infer -> model`, and `model` knows nothing of HTTP.
//!
//! - [`model`]: the embedding network, its model card, loading and saving, device selection.
//! - [`preprocess`]: untrusted bytes → limited decode → model-ready input; shared by training and serving.
//! - [`config`]: the `simverify serve` settings (flags and environment variables).
//! - [`dedup`]: duplicate clusters in a folder (`simverify dedup DIR`) or the enrolled catalogue
//!   (`--catalogue`, `POST /duplicates`): near pairs exactly or through k-means cells, clusters, report.
//! - `kmeans`: the k-means cells of both approximate searches (dedup's near pairs, the catalogue's index).
//! - [`client`]: the command-line client (`simverify compare | embed | verify | healthcheck`).
//! - [`http`]: the axum service, by role: routes, middleware, server (start-up, connections, shutdown),
//!   request extraction, problems (errors), OpenAPI.
//! - [`infer`]: the embedding service: a model resolved once per request, the bounded decode pool (URL
//!   fetch, decode, preprocessing), the batching queues and the worker threads that own the model
//!   replicas, each on a `Backend` (the libtorch model in the server).
//! - [`metrics`]: the Prometheus registry and every metric the service exports.
//! - `fetch`: images by URL behind an SSRF guard (public addresses only, checked when resolved).
//! - [`keys`]: API keys: the key file, the constant-time check, `simverify keys add`.
//! - [`reindex`]: `simverify reindex`, which re-embeds kept images after a model's weights change.
//! - `store`: enrolled subjects and their embeddings (sqlx over SQLite or PostgreSQL), the in-memory
//!   exact search index per model, the approximate index (k-means cells), and the change-log follower that keeps
//!   replicas in step.
//! - [`train`]: data sets, pair sampling, the contrastive loss, the training loop, evaluation and plots
//!   (what only training runs is behind the `train` feature).

#![warn(unreachable_pub)]

pub mod client;
pub mod config;
pub mod dedup;
mod fetch;
// The fuzz targets' and their regression test's way in to the untrusted-input paths; not an API.
#[doc(hidden)]
pub mod fuzzing;
pub mod http;
mod infer;
pub mod keys;
mod kmeans;
pub mod metrics;
pub mod model;
pub mod preprocess;
pub mod reindex;
mod store;
#[cfg(feature = "train")]
pub mod train;

// The integration tests' way to run the whole service, over real HTTP, on a deterministic stand-in for
// the network (batching, deadlines, overload and failures); not an API.
#[doc(hidden)]
pub mod testing {
    pub use crate::infer::{Backend, EngineError, LoadBackend};
}
