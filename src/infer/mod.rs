//! The batching queue and the worker pool: preprocessed images in, embeddings out. Handlers never see a `Tensor`.
//!
//! INTERFACE CONTRACT (bodies to be written): the http layer codes against exactly these names.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use crate::model::{DeviceSetting, ModelCard};

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
}

/// Cheap to clone; shared by every handler.
#[derive(Clone)]
pub struct Engine {
    inner: Arc<()>,
}

impl Engine {
    /// Loads every model directory under `model_dir`, starts its workers and runs one warm-up batch
    /// through each. Blocking: call it from `spawn_blocking`.
    pub fn start(model_dir: &Path, config: &EngineConfig, metrics: &crate::metrics::Metrics) -> Result<Engine, EngineError> {
        todo!()
    }

    /// The loaded models' cards, sorted by name.
    pub fn cards(&self) -> Vec<&ModelCard> {
        todo!()
    }

    pub fn card(&self, model: &str) -> Result<&ModelCard, InferError> {
        todo!()
    }

    /// Embeds `inputs` (each the model's `C×H×W` floats, from `preprocess::preprocess`) in one batch,
    /// in order. Fails at once when the queue is full; answers `DeadlineExceeded` past `deadline`.
    pub async fn embed(&self, model: &str, inputs: Vec<Vec<f32>>, deadline: tokio::time::Instant) -> Result<Vec<Vec<f32>>, InferError> {
        todo!()
    }
}
