//! The batching queue and the worker pool: preprocessed images in, embeddings out. Handlers never see a `Tensor`.
//!
//! Per model: a bounded queue (`queue.rs`, capacity counted in images) takes submissions; a tokio task
//! gathers them into batches within a fill window; worker threads (`worker.rs`), each owning a model
//! replica, run the forward passes and answer through `oneshot`s. `engine.rs` ties them together.

mod engine;
mod pace;
mod queue;
mod worker;

use std::time::Duration;

use crate::model::DeviceSetting;

pub use engine::Engine;
// The decode pool paces its own backlog the same way, for the `Retry-After` it answers.
pub(crate) use pace::Pace;

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
