//! Self-supervised near-duplicate training: each step takes a batch of sources, makes two random edits of each,
//! and teaches the network that the two edits of one source belong together and everything else does not.

use std::sync::mpsc;
use std::time::{Duration, Instant};

use image::DynamicImage;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use tch::nn::{self, ModuleT, OptimizerConfig};
use tch::{Device, Tensor};

use super::edits;
use super::near_duplicates::{model_scores, EditedSet};
use super::sources::Source;
use crate::model::card::{Architecture, Preprocessing};
use crate::model::net::TRUNK_GROUP;
use crate::model::pretrained::{self, PretrainedError};
use crate::model::EmbeddingNet;
use crate::preprocess;
use crate::train::loss::{contrastive_all_pairs, koleo, nt_xent, NegativeMemory};
use crate::train::metrics::{roc_auc, tar_at_far};

/// Batches prepared ahead of the optimiser by each producer thread.
const PREFETCH: usize = 2;

/// How the two views of a source are pulled together and the rest pushed apart.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum PhotoLoss {
    /// NT-Xent with this temperature.
    NtXent { temperature: f64 },
    /// The seed's contrastive loss over every pair of the batch, with this margin.
    Contrastive { margin: f64 },
}

#[derive(Debug, Clone)]
pub struct PhotoTrainConfig {
    pub architecture: Architecture,
    pub preprocessing: Preprocessing,
    pub steps: usize,
    /// Sources per step; each gives two views, so a batch holds twice as many images.
    pub sources_per_step: usize,
    /// Peak learning rate, reached after a short warm-up and then decayed to zero on a cosine.
    pub learning_rate: f64,
    pub weight_decay: f64,
    pub loss: PhotoLoss,
    /// Weight of SSCD's entropy regulariser ([`koleo`]) added to the loss; 0 leaves it out.
    pub koleo_weight: f64,
    /// NT-Xent: views of earlier steps kept as further negatives ([`NegativeMemory`]); 0 keeps none.
    pub negative_memory: usize,
    /// The pretrained trunk's learning rate as a share of the head's (pooling and projection).
    pub trunk_lr_scale: f64,
    /// The converted pretrained weights, for an architecture with a pretrained trunk.
    pub pretrained: Option<std::path::PathBuf>,
    /// Steps between validations; the best validated weights are kept.
    pub validate_every: usize,
    /// Threads that make and preprocess the views while the network trains.
    pub producers: usize,
    pub seed: u64,
    pub device: Device,
}

/// What one validation measured.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub(crate) struct Round {
    pub step: usize,
    /// Mean training loss since the previous validation.
    pub train_loss: f64,
    pub validation_auc: f64,
    pub validation_tar_at_far_1e_3: f64,
}

/// The kept weights (those of the best validation) and the history that chose them.
pub(crate) struct PhotoTrained {
    pub vs: nn::VarStore,
    pub net: EmbeddingNet,
    pub history: Vec<Round>,
    pub best_step: usize,
    pub elapsed: Duration,
}

/// Trains on `train` sources; validates on the fixed `validation` edits every `validate_every` steps
/// and keeps the weights with the best TAR at FAR 1e-3 there (ties: ROC AUC). A pretrained trunk starts
/// from its ImageNet weights, which must be where `config.pretrained` says.
pub(crate) fn train_photos(
    train: &[Source],
    validation: &EditedSet,
    config: &PhotoTrainConfig,
) -> Result<PhotoTrained, PretrainedError> {
    assert!(
        train.len() >= 2 && config.sources_per_step >= 2,
        "checked by the caller; this is a bug"
    );
    let started = Instant::now();
    tch::manual_seed(config.seed as i64);
    let vs = nn::VarStore::new(config.device);
    let net = EmbeddingNet::new(&vs.root(), &config.architecture);
    let trunk = config.architecture.efficientnet.as_ref();
    if let Some(shape) = trunk {
        pretrained::load_trunk(&vs, shape.variant, config.pretrained.as_deref())?;
    }
    let mut best = nn::VarStore::new(config.device);
    let best_net = EmbeddingNet::new(&best.root(), &config.architecture);
    let mut optimizer = nn::AdamW::default()
        .wd(config.weight_decay)
        .build(&vs, config.learning_rate)
        .expect("AdamW builds on a fresh VarStore; this is a bug");
    let batch = config.sources_per_step.min(train.len());
    let views = 2 * batch as i64;
    let labels = Tensor::arange(batch as i64, (tch::Kind::Int64, config.device)).repeat([2]);
    // Only NT-Xent reads the memory.
    let memory_size = match config.loss {
        PhotoLoss::NtXent { .. } => config.negative_memory,
        PhotoLoss::Contrastive { .. } => 0,
    };
    let mut memory = NegativeMemory::new(memory_size);

    let mut history: Vec<Round> = Vec::new();
    let mut best_step = 0;
    let (mut loss_sum, mut loss_steps) = (0.0, 0usize);
    // Time spent waiting for views: when it grows, the edits, not the network, bound training speed.
    let mut waited = Duration::ZERO;
    std::thread::scope(|scope| {
        let producers = start_producers(scope, train, batch, config);
        for step in 1..=config.steps {
            let wait_started = Instant::now();
            let (inputs, picked) = producers[step % producers.len()]
                .recv()
                .expect("producers run until the last step; this is a bug");
            waited += wait_started.elapsed();
            let images = Tensor::from_slice(&inputs)
                .view([
                    views,
                    config.architecture.in_channels,
                    config.architecture.height,
                    config.architecture.width,
                ])
                .to_device(config.device);
            // Each view's source, in the order of the views (see `two_views`).
            let sources = Tensor::from_slice(&picked).repeat([2]).to_device(config.device);
            let lr = learning_rate_at(step, config);
            optimizer.set_lr(lr);
            if trunk.is_some() {
                optimizer.set_lr_group(TRUNK_GROUP, lr * config.trunk_lr_scale);
            }
            let embeddings = net.forward_t(&images, true);
            let mut loss = match config.loss {
                PhotoLoss::NtXent { temperature } => {
                    nt_xent(&embeddings, memory.negatives_for(&sources).as_ref(), temperature)
                }
                PhotoLoss::Contrastive { margin } => contrastive_all_pairs(&embeddings, &labels, margin, 0.0),
            };
            if config.koleo_weight > 0.0 {
                loss += koleo(&embeddings) * config.koleo_weight;
            }
            memory.push(&embeddings, &sources);
            optimizer.backward_step(&loss);
            loss_sum += f64::try_from(&loss).expect("scalar loss");
            loss_steps += 1;
            if step % config.validate_every == 0 || step == config.steps {
                let scored = model_scores(&net, validation, &config.preprocessing, config.device);
                let (d, s) = scored.labelled();
                let round = Round {
                    step,
                    train_loss: loss_sum / loss_steps as f64,
                    validation_auc: roc_auc(&d, &s),
                    validation_tar_at_far_1e_3: tar_at_far(&d, &s, 1e-3),
                };
                (loss_sum, loss_steps) = (0.0, 0);
                eprintln!(
                    "step {step}/{}  train loss {:.4}  validation AUC {:.5}  TAR@FAR1e-3 {:.4}  {:.0}s ({:.0}s waiting for views)",
                    config.steps,
                    round.train_loss,
                    round.validation_auc,
                    round.validation_tar_at_far_1e_3,
                    started.elapsed().as_secs_f64(),
                    waited.as_secs_f64()
                );
                let key = |r: &Round| (r.validation_tar_at_far_1e_3, r.validation_auc);
                if history.iter().all(|h| key(&round) > key(h)) {
                    best.copy(&vs)
                        .expect("same architecture, same variables; this is a bug");
                    best_step = step;
                }
                history.push(round);
            }
        }
    });
    Ok(PhotoTrained {
        vs: best,
        net: best_net,
        history,
        best_step,
        elapsed: started.elapsed(),
    })
}

/// Linear warm-up over the first 5% of the steps, then a cosine decay to zero.
fn learning_rate_at(step: usize, config: &PhotoTrainConfig) -> f64 {
    let warmup = (config.steps / 20).max(1);
    if step <= warmup {
        return config.learning_rate * step as f64 / warmup as f64;
    }
    let progress = (step - warmup) as f64 / (config.steps - warmup).max(1) as f64;
    config.learning_rate * 0.5 * (1.0 + (std::f64::consts::PI * progress).cos())
}

/// Starts `config.producers` threads; thread `t` makes the batches of steps `k` with `k % producers == t`,
/// each from its own seed, so the batches do not depend on how the threads are scheduled.
fn start_producers<'scope>(
    scope: &'scope std::thread::Scope<'scope, '_>,
    train: &'scope [Source],
    batch: usize,
    config: &'scope PhotoTrainConfig,
) -> Vec<mpsc::Receiver<(Vec<f32>, Vec<i64>)>> {
    let count = config.producers.max(1);
    let per_epoch = train.len() / batch;
    (0..count)
        .map(|t| {
            let (tx, rx) = mpsc::sync_channel(PREFETCH);
            scope.spawn(move || {
                for step in (1..=config.steps).filter(|k| k % count == t) {
                    let epoch = (step - 1) / per_epoch;
                    let mut order: Vec<usize> = (0..train.len()).collect();
                    order.shuffle(&mut ChaCha8Rng::seed_from_u64(config.seed ^ ((epoch as u64) << 20)));
                    let start = ((step - 1) % per_epoch) * batch;
                    let picked = &order[start..start + batch];
                    let mut rng = ChaCha8Rng::seed_from_u64(config.seed.wrapping_add(step as u64));
                    let views = two_views(train, picked, &config.preprocessing, &mut rng);
                    let sources = picked.iter().map(|&i| i as i64).collect();
                    if tx.send((views, sources)).is_err() {
                        return; // the trainer stopped early
                    }
                }
            });
            rx
        })
        .collect()
}

/// The first view of every picked source, then the second view of every one, preprocessed and flattened.
fn two_views(train: &[Source], picked: &[usize], pp: &Preprocessing, rng: &mut ChaCha8Rng) -> Vec<f32> {
    let mut views: Vec<Vec<f32>> = vec![Vec::new(); 2 * picked.len()];
    for (k, &i) in picked.iter().enumerate() {
        for half in 0..2 {
            let view = edits::random_view(&train[i].image, rng);
            views[half * picked.len() + k] = preprocess::prepare(&DynamicImage::ImageRgb8(view), pp);
        }
    }
    views.concat()
}
