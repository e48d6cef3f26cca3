//! simverify: decides whether two images show the same thing, with a Siamese embedding network.
//!
//! # Layout
//!
//! Dependencies point one way, `http -> infer -> model`, and `model` knows nothing of HTTP.
//!
//! - [`model`]: the embedding network, its model card, loading and saving, device selection.
//! - [`preprocess`]: untrusted bytes → limited decode → model-ready input; shared by training and serving.
//! - [`config`]: the `simverify serve` settings (flags and environment variables).
//! - [`client`]: the command-line client (`simverify compare | embed | verify | healthcheck`).
//! - [`http`]: the axum service: router, endpoints, input extraction, errors, OpenAPI, start-up and shutdown.
//! - [`infer`]: the batching queues and the worker threads that own the model replicas.
//! - [`metrics`]: the Prometheus registry and every metric the service exports.
//! - [`train`]: data sets, pair sampling, the contrastive loss, the training loop, evaluation and plots.

pub mod client;
pub mod config;
pub mod http;
pub mod infer;
pub mod metrics;
pub mod model;
pub mod preprocess;
pub mod train;
