//! The engine: every loaded model with its queue, batch assembly task and workers, behind one cheap handle.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio::sync::mpsc;

use super::backend::{LoadBackend, Torch};
use super::pace::Pace;
use super::queue::{assemble_batches, BatchPolicy, Queue};
use super::worker::{spawn_workers, WorkerSpec};
use super::{EngineConfig, EngineError, InferError};
use crate::metrics::Metrics;
use crate::model::store::{read_card, CARD_FILE};
use crate::model::{select_device, ModelCard, ModelError};

/// The warm-up batch is the largest batch the queue sends, up to this: enough to allocate and pick
/// kernels for real batch shapes, without a huge zero batch when `max_batch_size` is set very high.
const MAX_WARMUP_IMAGES: usize = 64;

/// Cheap to clone; shared by every handler. Dropping the last clone closes the queues, which stops
/// the assembly tasks and then the workers.
#[derive(Clone)]
pub struct Engine {
    inner: Arc<Inner>,
}

struct Inner {
    /// By card name, which is what requests use.
    models: BTreeMap<String, Served>,
}

struct Served {
    card: ModelCard,
    queue: Queue,
    /// `C×H×W` of the card's architecture: every input is checked against it before it is queued,
    /// so that one malformed input cannot fail a whole batch.
    input_len: usize,
    /// Floats in one input at the card's `location_input` size, for models that have it.
    located_len: Option<usize>,
}

impl Engine {
    /// Loads every model directory under `model_dir`, starts its workers and runs one warm-up batch
    /// through each. Blocking: call it from `spawn_blocking`.
    ///
    /// `model_dir` holds one directory per model (each with a `model.json`), or is itself one.
    pub fn start(model_dir: &Path, config: &EngineConfig, metrics: &Metrics) -> Result<Engine, EngineError> {
        check(config)?;
        let device = select_device(config.device).map_err(EngineError::Device)?;
        let mut models = Vec::new();
        for dir in model_dirs(model_dir)? {
            // Read first: a bad card fails here with its reason, before any thread starts.
            let card = read_card(&dir)?;
            if models
                .iter()
                .any(|(loaded, _): &(ModelCard, _)| loaded.name == card.name)
            {
                return Err(EngineError::Config(format!(
                    "two model directories under {} are named {:?}",
                    model_dir.display(),
                    card.name
                )));
            }
            let backend: Arc<dyn LoadBackend> = Arc::new(Torch {
                dir,
                device,
                threads: config.torch_threads,
            });
            models.push((card, backend));
        }
        Engine::with_backends(models, config, metrics)
    }

    /// Starts each model's queue and workers on its backend and runs one warm-up batch through each
    /// worker. Blocking: call it from `spawn_blocking`.
    pub(crate) fn with_backends(
        models: Vec<(ModelCard, Arc<dyn LoadBackend>)>,
        config: &EngineConfig,
        metrics: &Metrics,
    ) -> Result<Engine, EngineError> {
        check(config)?;
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| {
            EngineError::Config("the engine needs a tokio runtime; start it from spawn_blocking".into())
        })?;
        let mut served = BTreeMap::new();
        for (card, backend) in models {
            let model_metrics = metrics.for_model(&card.name);
            let device = backend.device();
            let max_batch_size = batch_cap(&card, config.max_batch_size, &device);
            let policy = BatchPolicy {
                max_batch_size,
                max_batch_wait: config.max_batch_wait,
            };
            let pace = Arc::new(Pace::new(max_batch_size, config.workers));
            // One batch in hand-off at a time: while every worker is busy the assembly task waits,
            // and the backlog stays in the bounded queue, where it is counted.
            let (batch_tx, batch_rx) = mpsc::channel(1);
            let spec = WorkerSpec {
                card: card.clone(),
                backend,
                warmup_images: max_batch_size.min(MAX_WARMUP_IMAGES),
                metrics: model_metrics.clone(),
                pace: Arc::clone(&pace),
            };
            spawn_workers(spec, config.workers, batch_rx)?;
            let (queue, entries) = Queue::new(config.queue_capacity, model_metrics.queue_depth, pace);
            runtime.spawn(assemble_batches(entries, batch_tx, policy));
            metrics
                .model_info
                .with_label_values(&[card.name.as_str(), card.weights.sha256.as_str(), &device])
                .set(1);
            let name = [card.name.as_str()];
            metrics
                .batch_size_limit
                .with_label_values(&name)
                .set(max_batch_size as i64);
            metrics
                .model_threshold
                .with_label_values(&name)
                .set(f64::from(card.decision.threshold));
            // The one line per model an operator reads at start: which weights, what they decide with.
            tracing::info!(
                model = %card.name,
                architecture = %card.architecture.name,
                // Through the f32's shortest decimal form, so that the log says 0.56941277 as the card does,
                // not the f64 widening 0.5694127678871155.
                threshold = card.decision.threshold.to_string().parse::<f64>().unwrap_or(f64::NAN),
                sha256 = %card.weights.sha256.get(..12).unwrap_or(&card.weights.sha256),
                device = %device,
                workers = config.workers,
                max_batch_size,
                "model ready"
            );
            let arch = &card.architecture;
            let input_len = (arch.in_channels * arch.height * arch.width) as usize;
            let located_len = arch.location_input().map(|(h, w)| (arch.in_channels * h * w) as usize);
            served.insert(
                card.name.clone(),
                Served {
                    card,
                    queue,
                    input_len,
                    located_len,
                },
            );
        }
        Ok(Engine {
            inner: Arc::new(Inner { models: served }),
        })
    }

    /// The loaded models' cards, sorted by name.
    pub fn cards(&self) -> Vec<&ModelCard> {
        self.inner.models.values().map(|m| &m.card).collect()
    }

    pub fn card(&self, model: &str) -> Result<&ModelCard, InferError> {
        self.served(model).map(|m| &m.card)
    }

    /// The loaded models' names, sorted.
    pub fn model_names(&self) -> Vec<String> {
        self.inner.models.keys().cloned().collect()
    }

    /// Embeds `inputs` with `model`: see [`EngineModel::embed`].
    pub async fn embed(
        &self,
        model: &str,
        inputs: Vec<Vec<f32>>,
        deadline: tokio::time::Instant,
    ) -> Result<Vec<Vec<f32>>, InferError> {
        self.model(model)?.embed(inputs, deadline).await
    }

    /// `model`, looked up once, or `UnknownModel` naming the loaded ones.
    pub(crate) fn model(&self, model: &str) -> Result<EngineModel<'_>, InferError> {
        self.served(model).map(|served| EngineModel { served })
    }

    fn served(&self, model: &str) -> Result<&Served, InferError> {
        self.inner.models.get(model).ok_or_else(|| InferError::UnknownModel {
            name: model.to_string(),
            known: self.model_names(),
        })
    }
}

/// One loaded model of the engine.
#[derive(Clone, Copy)]
pub(crate) struct EngineModel<'a> {
    served: &'a Served,
}

impl<'a> EngineModel<'a> {
    pub(crate) fn card(&self) -> &'a ModelCard {
        &self.served.card
    }

    /// Embeds `inputs` (each the model's `C×H×W` floats, from `preprocess::preprocess`) in one batch,
    /// in order. Fails at once when the queue is full; answers `DeadlineExceeded` past `deadline`.
    pub(crate) async fn embed(
        &self,
        inputs: Vec<Vec<f32>>,
        deadline: tokio::time::Instant,
    ) -> Result<Vec<Vec<f32>>, InferError> {
        self.run(inputs, false, deadline).await
    }

    /// The located contributions of inputs at the card's `location_input` size.
    pub(crate) async fn locations(
        &self,
        inputs: Vec<Vec<f32>>,
        deadline: tokio::time::Instant,
    ) -> Result<Vec<Vec<f32>>, InferError> {
        self.run(inputs, true, deadline).await
    }

    async fn run(
        &self,
        inputs: Vec<Vec<f32>>,
        locations: bool,
        deadline: tokio::time::Instant,
    ) -> Result<Vec<Vec<f32>>, InferError> {
        let served = self.served;
        if inputs.is_empty() {
            return Ok(Vec::new());
        }
        let expected = if locations {
            served.located_len
        } else {
            Some(served.input_len)
        };
        if inputs.iter().any(|input| Some(input.len()) != expected) {
            return Err(InferError::BadInput);
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(InferError::DeadlineExceeded);
        }
        let reply = if locations {
            served.queue.submit_with_locations(inputs, deadline)?
        } else {
            served.queue.submit(inputs, deadline)?
        };
        // Giving up at the deadline drops the receiver, so a batch not yet computed skips this entry.
        match tokio::time::timeout_at(deadline, reply).await {
            Err(_) => Err(InferError::DeadlineExceeded),
            Ok(Err(_)) => Err(InferError::WorkerGone),
            Ok(Ok(answer)) => answer,
        }
    }
}

/// `--max-batch-size`, lowered on a CPU to the card's `cpu_max_batch_size` where it has one: some networks
/// (depthwise convolutions) cost more per image in a large batch there, while a GPU wants large batches.
fn batch_cap(card: &ModelCard, configured: usize, device: &str) -> usize {
    match &card.serving {
        Some(serving) if device == "cpu" => configured.min(serving.cpu_max_batch_size.get()),
        _ => configured,
    }
}

/// Refuses settings that would make a queue that never admits or a pool that never computes.
fn check(config: &EngineConfig) -> Result<(), EngineError> {
    for (name, value) in [
        ("workers", config.workers),
        ("torch threads", config.torch_threads),
        ("max batch size", config.max_batch_size),
        ("queue capacity", config.queue_capacity),
    ] {
        if value == 0 {
            return Err(EngineError::Config(format!("{name} must be at least 1")));
        }
    }
    Ok(())
}

/// The model directories: `dir` itself when it holds a card, else its subdirectories that do, sorted.
fn model_dirs(dir: &Path) -> Result<Vec<PathBuf>, EngineError> {
    if dir.join(CARD_FILE).is_file() {
        return Ok(vec![dir.to_path_buf()]);
    }
    let io = |source| ModelError::Io {
        path: dir.to_path_buf(),
        source,
    };
    let mut dirs = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io)? {
        let path = entry.map_err(io)?.path();
        if path.join(CARD_FILE).is_file() {
            dirs.push(path);
        }
    }
    if dirs.is_empty() {
        return Err(EngineError::NoModels(dir.display().to_string()));
    }
    dirs.sort();
    Ok(dirs)
}

#[cfg(test)]
mod tests;
