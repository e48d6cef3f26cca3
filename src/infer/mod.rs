//! The embedding service: image sources in (bytes, base64, URLs), embeddings out, through the decode pool,
//! the batching queue and the worker pool. Handlers never see a `Tensor`.
//!
//! A handler resolves a model once into a [`ModelHandle`] and makes one call (`model.rs`): admission to the
//! bounded decode pool, URL fetch, decoding and preprocessing per the model's card (`decode.rs`), then the
//! engine. Per model: a bounded queue (`queue.rs`, capacity counted in images) takes submissions; a tokio task
//! gathers them into batches within a fill window; worker threads (`worker.rs`), each owning a model
//! replica on a `Backend` (`backend.rs`: the libtorch model, or a test's stand-in), run the forward passes
//! and answer through `oneshot`s. `engine.rs` ties them together. `explain.rs` says where two images
//! match, from the located contributions of a second pass at twice the card's size.

mod backend;
mod decode;
mod engine;
pub(crate) mod explain;
mod model;
mod pace;
mod queue;
mod worker;

use std::time::Duration;

use crate::model::DeviceSetting;
use crate::preprocess::PreprocessError;

pub use backend::{Backend, LoadBackend};
pub(crate) use decode::decode_base64;
pub(crate) use decode::{DecodePool, Upload, UploadData};
pub(crate) use engine::Engine;
pub(crate) use model::ModelHandle;

/// Settings of the engine, filled from `config::ServeConfig`.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    pub device: DeviceSetting,
    /// Worker threads per model, each owning a model replica.
    pub workers: usize,
    /// libtorch intra-op threads per worker.
    pub torch_threads: usize,
    pub max_batch_size: usize,
    pub max_batch_wait: Duration,
    /// Queued images (not requests) beyond which submissions are refused at once.
    pub queue_capacity: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("no model directories under {0}")]
    NoModels(String),
    #[error(transparent)]
    Model(#[from] crate::model::ModelError),
    #[error("{0}")]
    Device(String),
    /// A setting the engine cannot run with (a zero size, two models of one name, no runtime).
    #[error("{0}")]
    Config(String),
    /// The model loaded but its warm-up batch failed or gave the wrong shape.
    #[error("model {model}: the warm-up batch failed: {reason}")]
    Warmup { model: String, reason: String },
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum InferError {
    #[error("unknown model {name:?}; models: {known:?}")]
    UnknownModel { name: String, known: Vec<String> },
    #[error("the queue is full; retry after {retry_after:?}")]
    Overloaded { retry_after: Duration },
    #[error("the request deadline passed before the model ran")]
    DeadlineExceeded,
    #[error("the image does not have the model's input shape")]
    BadInput,
    #[error("the inference worker stopped")]
    WorkerGone,
    /// The forward pass itself failed (a libtorch error, e.g. out of device memory); the worker lives on.
    #[error("the forward pass failed")]
    InferenceFailed,
}

/// Why the way from image sources to embeddings failed: an image (named as the caller sent it), the
/// wait for a decode slot, or the engine.
#[derive(Debug, thiserror::Error)]
pub(crate) enum EmbedError {
    #[error("{field} is not valid base64: {reason}")]
    InvalidBase64 { field: String, reason: String },
    #[error("{field}: {error}")]
    Image { field: String, error: PreprocessError },
    #[error("{field}: {reason}")]
    UrlForbidden { field: String, reason: &'static str },
    #[error("{field} could not be fetched: {reason}")]
    UrlFetchFailed { field: String, reason: String },
    #[error("{field}: the fetched images are over the limit of {limit} bytes per request")]
    UrlTooLarge { field: String, limit: usize },
    #[error("{field} could not be fetched within {} ms", .timeout.as_millis())]
    UrlTimeout { field: String, timeout: Duration },
    /// Too many images wait for a decode slot, or would wait past half the time the request has left.
    #[error("the image decoders are at capacity; retry after {retry_after:?}")]
    Overloaded { retry_after: Duration },
    #[error(transparent)]
    Infer(#[from] InferError),
    /// A fault of the service (a decode task that died); the string goes to the log only.
    #[error("{0}")]
    Internal(String),
}
