//! Worker threads: each owns one replica of a model (a [`Backend`], made on its own thread) and runs
//! forward passes on the batches its model's queue assembles.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Mutex};

use tokio::sync::mpsc;
use tokio::time::Instant;

use super::backend::{Backend, LoadBackend};
use super::pace::Pace;
use super::queue::{Batch, Entry};
use super::{EngineError, InferError};
use crate::metrics::ModelMetrics;
use crate::model::ModelCard;

/// What every worker of one model shares.
pub(super) struct WorkerSpec {
    pub card: ModelCard,
    pub backend: Arc<dyn LoadBackend>,
    /// Images in the warm-up batch, so that allocations and kernel choices for real batch shapes
    /// happen before the first request.
    pub warmup_images: usize,
    /// This model's series (see `Metrics::for_model`).
    pub metrics: ModelMetrics,
    pub pace: Arc<Pace>,
}

/// Starts `count` workers reading `batches`; returns once each has loaded its replica and run its
/// warm-up batch, or with the first failure (the others then stop when `batches` closes).
pub(super) fn spawn_workers(spec: WorkerSpec, count: usize, batches: mpsc::Receiver<Batch>) -> Result<(), EngineError> {
    // Workers take turns on one receiver: whoever holds the lock waits for the next batch.
    let batches = Arc::new(Mutex::new(batches));
    let spec = Arc::new(spec);
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    for index in 0..count {
        let (spec, batches, ready) = (Arc::clone(&spec), Arc::clone(&batches), ready_tx.clone());
        std::thread::Builder::new()
            .name(format!("infer-{}-{index}", spec.card.name))
            .spawn(move || {
                let model = match start(&spec) {
                    Ok(model) => {
                        let _ = ready.send(Ok(()));
                        model
                    }
                    Err(e) => {
                        let _ = ready.send(Err(e));
                        return;
                    }
                };
                drop(ready);
                serve(model.as_ref(), &spec, &batches);
            })
            .map_err(|e| EngineError::Config(format!("cannot start a worker thread: {e}")))?;
    }
    drop(ready_tx);
    for _ in 0..count {
        ready_rx.recv().map_err(|_| EngineError::Warmup {
            model: spec.card.name.clone(),
            reason: "a worker thread died while loading".into(),
        })??;
    }
    Ok(())
}

/// Loads this worker's replica and runs the warm-up batch through it.
fn start(spec: &WorkerSpec) -> Result<Box<dyn Backend>, EngineError> {
    let model = spec.backend.load()?;
    let arch = &spec.card.architecture;
    let zeros = vec![0.0; spec.warmup_images * (arch.in_channels * arch.height * arch.width) as usize];
    let warmup_failed = |reason: String| EngineError::Warmup {
        model: spec.card.name.clone(),
        reason,
    };
    let rows = catch_unwind(AssertUnwindSafe(|| model.embed(&zeros, spec.warmup_images)))
        .map_err(|panic| warmup_failed(panic_message(&*panic)))?
        .map_err(warmup_failed)?;
    let shape = [rows.len(), rows.first().map_or(0, Vec::len)];
    if shape != [spec.warmup_images, arch.embedding_dim as usize] {
        return Err(warmup_failed(format!(
            "output shape {shape:?}, the card promises [{}, {}]",
            spec.warmup_images, arch.embedding_dim
        )));
    }
    Ok(model)
}

/// Runs batches until the queue's assembly task stops.
fn serve(model: &dyn Backend, spec: &WorkerSpec, batches: &Mutex<mpsc::Receiver<Batch>>) {
    loop {
        // A poisoned lock only means another worker panicked while waiting; the receiver is intact.
        let next = batches.lock().unwrap_or_else(|e| e.into_inner()).blocking_recv();
        match next {
            Some(batch) => run_batch(model, spec, batch),
            None => return,
        }
    }
}

fn run_batch(model: &dyn Backend, spec: &WorkerSpec, batch: Batch) {
    let now = Instant::now();
    let entries: Vec<Entry> = batch
        .entries
        .into_iter()
        .filter_map(|mut entry| {
            entry.leave_queue();
            // The batch may have waited for a free worker; look again.
            let entry = entry.keep_if_wanted(now)?;
            spec.metrics
                .queue_wait_seconds
                .observe((now - entry.enqueued).as_secs_f64());
            Some(entry)
        })
        .collect();
    if entries.is_empty() {
        return;
    }
    let images: usize = entries.iter().map(Entry::images).sum();
    spec.metrics.batch_size.observe(images as f64);

    let started = std::time::Instant::now();
    let result = catch_unwind(AssertUnwindSafe(|| forward(model, &entries)));
    let took = started.elapsed();
    spec.metrics.inference_duration_seconds.observe(took.as_secs_f64());
    spec.pace.record(took);

    answer_batch(
        &spec.card.name,
        entries,
        result.unwrap_or_else(|panic| Err(panic_message(&*panic))),
    );
}

/// Hands each entry its rows of a forward pass, or every entry `InferenceFailed` when the pass failed.
fn answer_batch(model: &str, entries: Vec<Entry>, result: Result<Vec<Vec<f32>>, String>) {
    match result {
        Ok(rows) => {
            let mut rows = rows.into_iter();
            for entry in entries {
                let mine: Vec<Vec<f32>> = rows.by_ref().take(entry.images()).collect();
                entry.answer(Ok(mine));
            }
        }
        Err(reason) => {
            // Inputs were checked against the card before queueing, so this is a libtorch failure
            // (e.g. out of device memory): the callers get their own error (not "worker gone": the
            // worker lives on, and the next batch may well succeed), the log gets the cause.
            let images: usize = entries.iter().map(Entry::images).sum();
            tracing::error!(model, images, error = %reason, "forward pass failed");
            for entry in entries {
                entry.answer(Err(InferError::InferenceFailed));
            }
        }
    }
}

/// Lays every entry's images end to end and returns their rows in order: embeddings, and for the entries
/// that asked, located contributions (inputs of another size: a pass of their own).
fn forward(model: &dyn Backend, entries: &[Entry]) -> Result<Vec<Vec<f32>>, String> {
    let pass = |located: bool| -> Result<Vec<Vec<f32>>, String> {
        let mine: Vec<&Entry> = entries.iter().filter(|e| e.locations == located).collect();
        let images: usize = mine.iter().map(|e| e.images()).sum();
        if images == 0 {
            return Ok(Vec::new());
        }
        let mut inputs = Vec::with_capacity(mine.iter().flat_map(|e| &e.inputs).map(Vec::len).sum());
        for input in mine.iter().flat_map(|e| &e.inputs) {
            inputs.extend_from_slice(input);
        }
        let rows = if located {
            model.locations(&inputs, images)?
        } else {
            model.embed(&inputs, images)?
        };
        if rows.len() != images {
            return Err(format!("{} rows for {images} images", rows.len()));
        }
        Ok(rows)
    };
    let (mut embedded, mut located) = (pass(false)?.into_iter(), pass(true)?.into_iter());
    Ok(entries
        .iter()
        .flat_map(|entry| {
            let rows = if entry.locations { &mut located } else { &mut embedded };
            rows.by_ref().take(entry.images()).collect::<Vec<_>>()
        })
        .collect())
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "panic without a message".into())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use prometheus::IntGauge;
    use tokio::sync::oneshot;

    use super::super::queue::{Queue, Reply};
    use super::*;

    /// A batch of two queued entries, the first with two rows and the second with one, and the receivers
    /// of their answers.
    async fn two_entries_in_one_batch() -> (oneshot::Receiver<Reply>, oneshot::Receiver<Reply>, Vec<Entry>) {
        let depth = IntGauge::new("test_queue_depth", "test").unwrap();
        let (queue, mut entries) = Queue::new(8, depth, Arc::new(Pace::new(8, 1)));
        let deadline = Instant::now() + Duration::from_secs(60);
        let first = queue.submit(vec![vec![0.0]; 2], deadline).unwrap();
        let second = queue.submit(vec![vec![1.0]], deadline).unwrap();
        let batch = vec![entries.recv().await.unwrap(), entries.recv().await.unwrap()];
        (first, second, batch)
    }

    #[tokio::test]
    async fn a_failed_forward_pass_answers_inference_failed_not_worker_gone() {
        let (first, second, batch) = two_entries_in_one_batch().await;

        answer_batch("tiny", batch, Err("CUDA out of memory".into()));

        assert_eq!(first.await.unwrap(), Err(InferError::InferenceFailed));
        assert_eq!(second.await.unwrap(), Err(InferError::InferenceFailed));
    }

    #[tokio::test]
    async fn a_forward_pass_hands_each_entry_its_own_rows() {
        let (first, second, batch) = two_entries_in_one_batch().await;

        answer_batch("tiny", batch, Ok(vec![vec![1.0], vec![2.0], vec![3.0]]));

        assert_eq!(first.await.unwrap(), Ok(vec![vec![1.0], vec![2.0]]));
        assert_eq!(second.await.unwrap(), Ok(vec![vec![3.0]]));
    }
}
