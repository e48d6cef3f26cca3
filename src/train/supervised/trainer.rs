//! The training loop: fresh pairs every epoch, contrastive loss, validation each epoch, best epoch kept.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use tch::nn::{self, ModuleT, OptimizerConfig};
use tch::{Device, Kind, Tensor};

use super::augment::random_affine;
use crate::model::card::Architecture;
use crate::model::distance::euclidean;
use crate::model::EmbeddingNet;
use crate::train::dataset::Dataset;
use crate::train::evaluate::{check_pairs, embed_all, evaluation_pairs, pair_distances};
use crate::train::loss::{contrastive, contrastive_all_pairs};
use crate::train::metrics::roc_auc;
use crate::train::pairs::{create_pairs, Pair};

#[derive(Debug, Clone)]
pub(crate) struct TrainConfig {
    pub architecture: Architecture,
    pub epochs: usize,
    /// Pairs per optimiser step.
    pub batch_size: usize,
    pub learning_rate: f64,
    pub weight_decay: f64,
    pub margin: f64,
    /// Similar pairs closer than this are left alone (0 in the seed).
    pub positive_margin: f64,
    pub seed: u64,
    pub augment: bool,
    /// Dissimilar pairs drawn for each similar one (the seed uses 1).
    pub negatives_per_positive: usize,
    /// Train on every pair within a batch, not only the sampled ones.
    pub all_pairs: bool,
    pub device: Device,
}

/// What one epoch measured.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub(crate) struct EpochStats {
    pub epoch: usize,
    pub train_loss: f64,
    pub validation_loss: f64,
    pub validation_auc: f64,
    /// ROC AUC on pairs of classes kept out of training, when there are such: watched, never used to choose.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unseen_auc: Option<f64>,
}

/// The trained weights (those of the best epoch) and the history that chose them.
pub(crate) struct Trained {
    pub vs: nn::VarStore,
    pub net: EmbeddingNet,
    pub history: Vec<EpochStats>,
    pub best_epoch: usize,
    pub elapsed: Duration,
}

/// Trains on `train`, validating on `validation` after every epoch; keeps the epoch with the best
/// validation ROC AUC (ties: lower validation loss). `unseen`, classes absent from training, is
/// only measured, so that the history shows how the embedding carries over to new classes.
///
/// Fails, before any step, when the training or validation split gives no pairs to learn or select on,
/// and when the loss stops being a number.
pub(crate) fn train(
    train: &Dataset,
    validation: &Dataset,
    unseen: Option<&Dataset>,
    config: &TrainConfig,
) -> anyhow::Result<Trained> {
    let started = Instant::now();
    tch::manual_seed(config.seed as i64);
    let mut rng = ChaCha8Rng::seed_from_u64(config.seed);
    let vs = nn::VarStore::new(config.device);
    let net = EmbeddingNet::new(&vs.root(), &config.architecture);
    let mut best = nn::VarStore::new(config.device);
    let best_net = EmbeddingNet::new(&best.root(), &config.architecture);
    let mut optimizer = nn::Adam::default()
        .wd(config.weight_decay)
        .build(&vs, config.learning_rate)
        .expect("Adam builds on a fresh VarStore; this is a bug");

    let by_class = train.indices_by_class();
    check_pairs(
        "training",
        train,
        &create_pairs(&by_class, config.negatives_per_positive, &mut rng.clone(), true),
    )?;
    let validation_pairs = evaluation_pairs(validation, config.seed);
    check_pairs("validation", validation, &validation_pairs)?;
    let unseen_pairs = unseen.map(|data| (data, evaluation_pairs(data, config.seed)));
    let pair_auc = |net: &EmbeddingNet, data: &Dataset, pairs: &[Pair]| {
        let (d, s) = pair_distances(&embed_all(net, data, config.device), pairs);
        roc_auc(&d, &s)
    };
    let steps_per_epoch = create_pairs(&by_class, config.negatives_per_positive, &mut rng.clone(), true)
        .len()
        .div_ceil(config.batch_size);
    let progress = Progress::new((steps_per_epoch * config.epochs) as u64);
    let mut history: Vec<EpochStats> = Vec::new();
    let mut best_epoch = 0;

    for epoch in 1..=config.epochs {
        let mut pairs = create_pairs(&by_class, config.negatives_per_positive, &mut rng, true);
        pairs.shuffle(&mut rng);
        let mut loss_sum = 0.0;
        for batch in pairs.chunks(config.batch_size) {
            let loss = batch_loss(&net, train, batch, config, true);
            optimizer.backward_step(&loss);
            loss_sum += f64::try_from(&loss).expect("scalar loss") * batch.len() as f64;
            progress.step(epoch, config.epochs, loss_sum / pairs.len() as f64);
        }
        let train_loss = loss_sum / pairs.len() as f64;
        anyhow::ensure!(
            train_loss.is_finite(),
            "the training loss became {train_loss} in epoch {epoch}; try a lower --lr"
        );
        let stats = EpochStats {
            epoch,
            train_loss,
            validation_loss: tch::no_grad(|| validation_loss(&net, validation, &validation_pairs, config)),
            validation_auc: pair_auc(&net, validation, &validation_pairs),
            unseen_auc: unseen_pairs.as_ref().map(|(data, pairs)| pair_auc(&net, data, pairs)),
        };
        progress.epoch_done(&stats, config.epochs);
        let improved = history.iter().all(|h| {
            stats.validation_auc > h.validation_auc
                || (stats.validation_auc == h.validation_auc && stats.validation_loss < h.validation_loss)
        });
        if improved {
            best.copy(&vs)
                .expect("same architecture, same variables; this is a bug");
            best_epoch = epoch;
        }
        history.push(stats);
    }
    progress.finish();
    drop(net);
    Ok(Trained {
        vs: best,
        net: best_net,
        history,
        best_epoch,
        elapsed: started.elapsed(),
    })
}

/// Contrastive loss of one batch of pairs; both sides go through the shared network in one pass.
fn batch_loss(net: &EmbeddingNet, data: &Dataset, pairs: &[Pair], config: &TrainConfig, train: bool) -> Tensor {
    let index =
        |pick: fn(&Pair) -> usize| Tensor::from_slice(&pairs.iter().map(|p| pick(p) as i64).collect::<Vec<_>>());
    let images = Tensor::cat(
        &[
            data.images.index_select(0, &index(|p| p.a)),
            data.images.index_select(0, &index(|p| p.b)),
        ],
        0,
    )
    .to_device(config.device);
    let images = if train && config.augment {
        random_affine(&images)
    } else {
        images
    };
    let embeddings = net.forward_t(&images, train);
    if train && config.all_pairs {
        let labels: Vec<i64> = [|p: &Pair| p.a, |p: &Pair| p.b]
            .iter()
            .flat_map(|pick| pairs.iter().map(|p| data.labels[pick(p)] as i64))
            .collect();
        let labels = Tensor::from_slice(&labels).to_device(config.device);
        return contrastive_all_pairs(&embeddings, &labels, config.margin, config.positive_margin);
    }
    let halves = embeddings.chunk(2, 0);
    let similar = Tensor::from_slice(&pairs.iter().map(|p| f32::from(u8::from(p.similar))).collect::<Vec<_>>())
        .to_kind(Kind::Float)
        .to_device(config.device);
    contrastive(
        &euclidean(&halves[0], &halves[1]),
        &similar,
        config.margin,
        config.positive_margin,
    )
}

fn validation_loss(net: &EmbeddingNet, data: &Dataset, pairs: &[Pair], config: &TrainConfig) -> f64 {
    let mut sum = 0.0;
    for batch in pairs.chunks(512) {
        let loss = batch_loss(net, data, batch, config, false);
        sum += f64::try_from(&loss).expect("scalar loss") * batch.len() as f64;
    }
    sum / pairs.len().max(1) as f64
}

/// A progress bar on a terminal; plain lines, one per epoch, anywhere else (logs, CI).
struct Progress {
    bar: Option<ProgressBar>,
    started: Instant,
}

impl Progress {
    fn new(total_steps: u64) -> Self {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = ProgressBar::new(total_steps);
            bar.set_style(
                ProgressStyle::with_template("{bar:30} {pos}/{len} steps  {msg}  ETA {eta}")
                    .expect("the template is valid; this is a bug"),
            );
            bar
        });
        Self {
            bar,
            started: Instant::now(),
        }
    }

    fn step(&self, epoch: usize, epochs: usize, running_loss: f64) {
        if let Some(bar) = &self.bar {
            bar.inc(1);
            bar.set_message(format!("epoch {epoch}/{epochs}  loss {running_loss:.4}"));
        }
    }

    fn epoch_done(&self, s: &EpochStats, epochs: usize) {
        let eta = self.started.elapsed().as_secs_f64() / s.epoch as f64 * (epochs - s.epoch) as f64;
        let unseen = s
            .unseen_auc
            .map(|auc| format!("  unseen AUC {auc:.4}"))
            .unwrap_or_default();
        let line = format!(
            "epoch {}/{}  train loss {:.4}  validation loss {:.4}  validation AUC {:.4}{unseen}  ETA {:.0}s",
            s.epoch, epochs, s.train_loss, s.validation_loss, s.validation_auc, eta
        );
        match &self.bar {
            Some(bar) => bar.println(line),
            None => eprintln!("{line}"),
        }
    }

    fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}
