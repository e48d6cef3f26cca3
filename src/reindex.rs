//! `simverify reindex`: after a model's weights change, re-embeds every stored image that other weights
//! embedded and whose bytes `--keep-images` kept, with the same preprocessing and model as `serve`; the
//! images that were not kept are counted, for only re-enrolment can refresh them.
//!
//! It may run beside the servers: each page of new embeddings is one transaction that also logs the
//! change, so every replica's search index swaps the rows within its follow interval.

use std::fmt;
use std::time::Duration;

use anyhow::Context;
use clap::Args;

use crate::config::ServeConfig;
use crate::infer::{DecodePool, Engine, ModelHandle, Upload};
use crate::metrics::Metrics;
use crate::model::ModelCard;
use crate::store::{ImageId, Reembedded, StaleImage, Store};

/// Stale images read, embedded and written per round (one transaction each): large enough to fill
/// batches, small enough that the kept images of one round sit in memory comfortably.
const PAGE: i64 = 256;

/// How long one batch may wait for the engine: nobody waits on an HTTP answer here, and a big model on a
/// busy CPU may be slow; only a stuck engine should trip it.
const BATCH_DEADLINE: Duration = Duration::from_secs(600);

/// `simverify reindex` settings: which model, and the server's own settings, so that the store, the
/// models and the device are found exactly as `serve` finds them (same flags, same environment).
#[derive(Debug, Clone, Args)]
pub struct ReindexConfig {
    /// Re-embed only this model's images; every loaded model's when absent.
    #[arg(long)]
    pub model: Option<String>,

    #[command(flatten)]
    pub serve: ServeConfig,
}

/// What reindexing one model did.
#[derive(Debug, Default, PartialEq, Eq)]
struct ModelReport {
    model: String,
    /// Re-embedded with the loaded weights and stored.
    reembedded: usize,
    /// Stale, with no kept bytes: these need re-enrolment.
    not_kept: usize,
    /// Kept bytes that no longer decode within the limits (or changed under us): still stale.
    failed: usize,
    /// Embedded by the loaded weights already.
    current: i64,
}

impl fmt::Display for ModelReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: {} re-embedded, {} need re-enrolment (image not kept), {} failed, {} already current",
            self.model, self.reembedded, self.not_kept, self.failed, self.current
        )
    }
}

/// Runs `simverify reindex`; prints one line per model. Fails when the store or the models cannot be
/// opened, and (after the report) when some kept images could not be re-embedded.
pub fn run(config: ReindexConfig) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(reindex(config))
}

async fn reindex(config: ReindexConfig) -> anyhow::Result<()> {
    let serve = config.serve;
    let store = Store::open(&serve.store_url())
        .await
        .context("cannot open the subject store (--store / --data-dir)")?;
    let engine = serve.load_engine().await?;
    let cards = match &config.model {
        Some(name) => vec![engine.card(name)?],
        None => engine.cards(),
    };
    let stored = store.models().await?;
    for (model, count) in &stored {
        if engine.card(model).is_err() && config.model.is_none() {
            println!("{model}: {count} images, but no such model is loaded here: skipped");
        }
    }
    // One submission never exceeds a batch, nor what the queue admits at once.
    let batch = serve.max_batch_size.min(serve.queue_capacity) as usize;
    let work = Work {
        store: &store,
        engine: &engine,
        // The server's decoders, with room for one submission: this command is their only caller.
        decoder: DecodePool::new(serve.decode_pool, batch, serve.decode_limits(), Metrics::new()),
        batch,
    };
    let mut failed = 0;
    for card in cards {
        let total = stored.iter().find(|(m, _)| *m == card.name).map_or(0, |(_, n)| *n);
        let report = work.model(card, total).await?;
        println!("{report}");
        failed += report.failed;
    }
    anyhow::ensure!(
        failed == 0,
        "{failed} kept images could not be re-embedded (see the log)"
    );
    Ok(())
}

/// What re-embedding needs, shared by every model.
struct Work<'a> {
    store: &'a Store,
    engine: &'a Engine,
    decoder: DecodePool,
    /// Images per engine submission.
    batch: usize,
}

impl Work<'_> {
    /// Re-embeds `card`'s stale images a page at a time; `total` is how many images the model has.
    async fn model(&self, card: &ModelCard, total: i64) -> anyhow::Result<ModelReport> {
        let store = self.store;
        let weights = card.weights.sha256.as_str();
        let mut report = ModelReport {
            model: card.name.clone(),
            ..ModelReport::default()
        };
        let model = ModelHandle::new(self.engine, &self.decoder, &card.name)?;
        let mut stale_seen = 0;
        let mut after: Option<ImageId> = None;
        loop {
            let page = store.stale_images(&card.name, weights, after, PAGE).await?;
            let Some(last) = page.last() else { break };
            after = Some(last.id);
            stale_seen += page.len();
            let (kept, not_kept): (Vec<StaleImage>, Vec<StaleImage>) =
                page.into_iter().partition(|i| i.bytes.is_some());
            for image in &not_kept {
                tracing::info!(image = %image.id, subject = %image.subject, "stale, and its image was not kept: re-enrol it");
            }
            report.not_kept += not_kept.len();
            let kept_count = kept.len();
            let replacements = self.embed(model, kept).await?;
            report.failed += kept_count - replacements.len();
            // Fewer when some were deleted or re-embedded by another run since they were read: those are
            // not stale any more, and not ours to count.
            report.reembedded += store.replace_embeddings(&card.name, weights, &replacements).await?;
        }
        report.current = total - stale_seen as i64;
        Ok(report)
    }

    /// New embeddings of the kept images that still decode, a batch at a time; the others are logged, and
    /// left out.
    async fn embed(&self, model: ModelHandle<'_>, kept: Vec<StaleImage>) -> anyhow::Result<Vec<Reembedded>> {
        let mut replacements = Vec::with_capacity(kept.len());
        let mut kept = kept.into_iter().peekable();
        while kept.peek().is_some() {
            let mut chunk: Vec<StaleImage> = kept.by_ref().take(self.batch).collect();
            let uploads = chunk
                .iter_mut()
                .map(|image| {
                    let bytes = image
                        .bytes
                        .take()
                        .expect("only kept images are embedded; this is a bug");
                    Upload::raw(image.id.to_string(), bytes.into())
                })
                .collect();
            let deadline = tokio::time::Instant::now() + BATCH_DEADLINE;
            for (image, outcome) in chunk.into_iter().zip(model.embed_each(uploads, deadline).await?) {
                match outcome {
                    Ok(embedding) => replacements.push(Reembedded {
                        id: image.id,
                        old_sha256: image.weights_sha256,
                        embedding,
                    }),
                    Err(err) => tracing::warn!(image = %image.id, error = %err, "a kept image no longer decodes"),
                }
            }
        }
        Ok(replacements)
    }
}
