//! Orchestrates a photo model: load and split the sources, train on near-duplicates, calibrate on validation,
//! measure on test against pHash and dHash, and write the model directory with its card and report.

use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};

use anyhow::{ensure, Result};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use tch::Device;

use super::crops::crop_scores;
use super::edits::{self, EditFamily};
use super::near_duplicates::{edited_set, hash_scores, model_scores, EditedSet, Scored};
use super::options::PhotoOptions;
use super::plots as photo_plots;
use super::sources::{load_sources, split_key, split_sources, Source, SourceSplit};
use super::trainer::{train_photos, PhotoLoss, PhotoTrainConfig};
use crate::model::card::*;
use crate::model::{pretrained, save_model, EmbeddingNet};
use crate::train::calibrate::fit_platt;
use crate::train::evaluate::figures;
use crate::train::hashes::PerceptualHash;
use crate::train::model_name;
use crate::train::{metrics, plots};

/// Fractions of the sources held out; the split depends on each source's name and this seed only.
pub const VALIDATION_FRACTION: f64 = 0.1;
pub const TEST_FRACTION: f64 = 0.1;
pub const SPLIT_SEED: u64 = 42;
/// Validation and test edits are fixed by these seeds, apart from the training seed.
const VALIDATION_EDIT_SEED: u64 = 7;
const TEST_EDIT_SEED: u64 = 8;
/// The card's threshold accepts at most this share of different-source pairs on validation.
pub const TARGET_FAR: f64 = 1e-3;
/// Sources shown in the report's `augment.png`.
const GRID_SOURCES: usize = 6;

/// Where the data is and how much of it the evaluation uses.
#[derive(Debug, Clone)]
pub struct PhotoData {
    pub root: PathBuf,
    /// Sources are shrunk to at most this side when loaded: edits and the model need no more.
    pub max_side: u32,
    /// At most this many validation and test sources are evaluated (every one against every other's edits).
    pub eval_sources: usize,
    pub threads: usize,
}

/// The split, read and logged the same way by training and by `train eval`.
pub fn load_split(data: &PhotoData) -> Result<SourceSplit> {
    let (sources, report) = load_sources(&data.root, data.max_side, data.threads)?;
    eprintln!(
        "data {}: {} images found, {} loaded, {} exact duplicates dropped, {} skipped",
        data.root.display(),
        report.found,
        report.loaded,
        report.duplicates,
        report.skipped.len()
    );
    let split = split_sources(sources, VALIDATION_FRACTION, TEST_FRACTION, SPLIT_SEED);
    ensure!(
        split.train.len() >= 2 && !split.validation.is_empty() && !split.test.is_empty(),
        "{} has too few usable images to split ({} train, {} validation, {} test)",
        data.root.display(),
        split.train.len(),
        split.validation.len(),
        split.test.len()
    );
    eprintln!(
        "split by source: {} train, {} validation, {} test",
        split.train.len(),
        split.validation.len(),
        split.test.len()
    );
    Ok(split)
}

/// Up to `limit` sources drawn by `seed`, at most one per group of variants (`split_key`), so that no
/// two evaluated sources are copies of one drawing; then their seeded edits.
fn evaluation_set(sources: &[Source], limit: usize, seed: u64) -> (EditedSet, usize) {
    let mut order: Vec<&Source> = sources.iter().collect();
    order.shuffle(&mut ChaCha8Rng::seed_from_u64(seed));
    let mut groups = std::collections::HashSet::new();
    let mut used: Vec<Source> = order
        .into_iter()
        .filter(|s| groups.insert(split_key(&s.name)))
        .take(limit)
        .cloned()
        .collect();
    used.sort_by(|a, b| a.name.cmp(&b.name));
    (edited_set(&used, seed), used.len())
}

/// The detector name of the frozen pretrained trunk in the card's figures.
pub const FROZEN_TRUNK: &str = "frozen trunk";

/// Scores of the model, of the frozen pretrained trunk (when the model has one) and of each hash on one
/// edited set, the model first.
fn all_scores(
    net: &EmbeddingNet,
    frozen: Option<&EmbeddingNet>,
    set: &EditedSet,
    pp: &Preprocessing,
    device: Device,
) -> Vec<(String, Scored)> {
    let mut scores = vec![("model".to_string(), model_scores(net, set, pp, device))];
    if let Some(frozen) = frozen {
        scores.push((FROZEN_TRUNK.to_string(), model_scores(frozen, set, pp, device)));
    }
    scores.extend(
        PerceptualHash::ALL
            .iter()
            .map(|&h| (h.name().to_string(), hash_scores(h, set))),
    );
    scores
}

/// The pretrained trunk of `arch` without fine-tuning, loaded from `path` (or the cache), batch norms
/// folded; `None` for an architecture without a pretrained trunk.
pub fn frozen_trunk(
    arch: &Architecture,
    path: Option<&Path>,
    device: Device,
) -> Result<Option<(tch::nn::VarStore, EmbeddingNet)>> {
    let Some(shape) = &arch.efficientnet else {
        return Ok(None);
    };
    let vs = tch::nn::VarStore::new(device);
    let mut net = EmbeddingNet::frozen_trunk(&vs.root(), arch);
    pretrained::load_trunk(&vs, shape.variant, path)?;
    net.fold_batch_norm();
    Ok(Some((vs, net)))
}

/// Trains a photo model as `options` say and writes its directory; answers its card.
pub fn train_photo_model(options: &PhotoOptions) -> Result<ModelCard> {
    let (data, config) = options.configuration()?;
    train_product_model(&data, &config, &options.out, &model_name(&options.out)?)
}

/// Trains, calibrates, measures and writes `out`; returns the card written.
pub fn train_product_model(data: &PhotoData, config: &PhotoTrainConfig, out: &Path, name: &str) -> Result<ModelCard> {
    let split = load_split(data)?;
    let (validation, _) = evaluation_set(&split.validation, data.eval_sources, VALIDATION_EDIT_SEED);
    let (pp, device) = (&config.preprocessing, config.device);
    // Loaded first, so that a missing pretrained file stops the run before training rather than after.
    let frozen = frozen_trunk(&config.architecture, config.pretrained.as_deref(), device)?;
    let frozen = frozen.as_ref().map(|(_, net)| net);
    let trained = train_photos(&split.train, &validation, config)?;

    // Every detector's threshold is chosen on validation at the same FAR; test pairs only measure.
    let validation_scores = all_scores(&trained.net, frozen, &validation, pp, device);
    let thresholds: Vec<f64> = validation_scores
        .iter()
        .map(|(_, scored)| {
            let (d, s) = scored.labelled();
            metrics::threshold_at_far(&d, &s, TARGET_FAR)
        })
        .collect();
    let calibration = {
        let (d, s) = balanced(&validation_scores[0].1, config.seed);
        fit_platt(&d, &s)
    };
    let (test, test_sources) = evaluation_set(&split.test, data.eval_sources, TEST_EDIT_SEED);
    let test_scores = all_scores(&trained.net, frozen, &test, pp, device);
    let detectors: Vec<DetectorFigures> = test_scores
        .iter()
        .zip(&validation_scores)
        .zip(&thresholds)
        .map(|(((name, scored), (_, validated)), &t)| DetectorFigures {
            validation_far: Some(validated.figures(name, t).far_at_threshold),
            ..scored.figures(name, t)
        })
        .collect();
    let (model_d, model_s) = test_scores[0].1.labelled();

    let self_supervised = SelfSupervised {
        sources_per_step: config.sources_per_step,
        steps: config.steps,
        temperature: match config.loss {
            PhotoLoss::NtXent { temperature } => temperature,
            PhotoLoss::Contrastive { .. } => 0.0,
        },
        edit_families: EditFamily::ALL.iter().map(|f| f.name().to_string()).collect(),
        koleo_weight: config.koleo_weight,
        negative_memory: (config.negative_memory > 0).then_some(config.negative_memory),
        trunk_lr_scale: config.architecture.efficientnet.as_ref().map(|_| config.trunk_lr_scale),
    };
    let sources_desc = format!("{test_sources} held-out sources, one edit per family each");
    let pretrained_from = config.architecture.efficientnet.as_ref().map_or(String::new(), |e| {
        format!(
            ", fine-tuned from the ImageNet weights of {} {}",
            e.pretrained.package, e.pretrained.version
        )
    });
    let description = format!(
        "{} embedding of product photos and drawings for near-duplicate detection, trained self-supervised on {}{}",
        config.architecture.name,
        data_name(&data.root),
        pretrained_from
    );
    let mut card = ModelCard {
        format_version: CARD_FORMAT_VERSION,
        name: name.to_string(),
        description,
        architecture: config.architecture.clone(),
        preprocessing: pp.clone(),
        distance: "euclidean".into(),
        decision: Decision {
            threshold: thresholds[0] as f32,
            method: format!("far_{TARGET_FAR:e}_on_validation_pairs"),
        },
        calibration,
        evaluation: Evaluation {
            test: figures(&model_d, &model_s, thresholds[0], sources_desc.clone()),
            unseen_classes: None,
            near_duplicates: Some(NearDuplicateFigures {
                sources: test_sources,
                similar_pairs: test_scores[0].1.similar.len(),
                dissimilar_pairs: test_scores[0].1.dissimilar.len(),
                detectors: detectors.clone(),
            }),
        },
        training: TrainingSummary {
            data: data_name(&data.root),
            classes: format!("none: {} training sources, each its own identity", split.train.len()),
            train_samples: split.train.len(),
            validation_samples: split.validation.len(),
            test_samples: split.test.len(),
            seed: config.seed,
            epochs: (config.steps * config.sources_per_step).div_ceil(split.train.len()),
            best_epoch: trained.best_step,
            batch_size: 2 * config.sources_per_step,
            learning_rate: config.learning_rate,
            weight_decay: config.weight_decay,
            loss: match config.loss {
                PhotoLoss::NtXent { .. } => "nt_xent".into(),
                PhotoLoss::Contrastive { .. } => "contrastive_all_pairs".into(),
            },
            margin: match config.loss {
                PhotoLoss::Contrastive { margin } => margin,
                PhotoLoss::NtXent { .. } => 0.0,
            },
            positive_margin: 0.0,
            augment: true,
            negatives_per_positive: 2 * config.sources_per_step - 2,
            all_pairs: true,
            mirror_classes: false,
            seconds: (trained.elapsed.as_secs_f64() * 10.0).round() / 10.0,
            self_supervised: Some(self_supervised),
        },
        weights: Weights {
            file: String::new(),
            sha256: String::new(),
        },
        // The pretrained trunk's depthwise convolutions cost more per image in a large batch on a CPU:
        // `scripts/bench-defaults` served the most compares with batches of at most 2 there.
        serving: config.architecture.efficientnet.as_ref().map(|_| Serving {
            cpu_max_batch_size: NonZeroUsize::new(2).expect("2 is not 0"),
        }),
    };
    save_model(out, &mut card, &trained.vs)?;

    let report = out.join("report");
    std::fs::create_dir_all(&report)?;
    std::fs::write(
        report.join("history.json"),
        serde_json::to_string_pretty(&trained.history)? + "\n",
    )?;
    let grid: Vec<_> = split.test.iter().take(GRID_SOURCES).map(|s| s.image.clone()).collect();
    edits::write_grid(&report.join("augment.png"), &grid, TEST_EDIT_SEED, 96)?;
    photo_plots::training_rounds(&report.join("training.png"), &trained.history, trained.best_step)?;
    let labelled: Vec<(Vec<f64>, Vec<bool>)> = test_scores.iter().map(|(_, scored)| scored.labelled()).collect();
    let curves: Vec<(&str, &[f64], &[bool])> = test_scores
        .iter()
        .zip(&labelled)
        .map(|((name, _), (d, s))| (name.as_str(), d.as_slice(), s.as_slice()))
        .collect();
    photo_plots::roc_against_baselines(&report.join("roc.png"), &curves)?;
    photo_plots::tar_by_family(&report.join("tar_by_family.png"), &detectors)?;
    plots::distance_histogram(&report.join("distances.png"), &model_d, &model_s, thresholds[0])?;
    Ok(card)
}

/// Measures an existing photo model on the test sources again, with the thresholds its card records.
pub fn evaluate_product_model(
    net: &EmbeddingNet,
    card: &ModelCard,
    data: &PhotoData,
    device: Device,
) -> Result<NearDuplicateFigures> {
    let split = load_split(data)?;
    let (test, sources) = evaluation_set(&split.test, data.eval_sources, TEST_EDIT_SEED);
    let recorded = card.evaluation.near_duplicates.as_ref().map(|n| &n.detectors);
    let threshold_of = |name: &str| {
        recorded
            .and_then(|ds| ds.iter().find(|d| d.detector == name))
            .map(|d| d.threshold)
    };
    let frozen = frozen_trunk(&card.architecture, None, device)?;
    let scores = all_scores(net, frozen.as_ref().map(|(_, n)| n), &test, &card.preprocessing, device);
    let detectors = scores
        .iter()
        .map(|(name, scored)| {
            let threshold = threshold_of(name).unwrap_or(f64::from(card.decision.threshold));
            scored.figures(name, threshold)
        })
        .collect();
    Ok(NearDuplicateFigures {
        sources,
        similar_pairs: scores[0].1.similar.len(),
        dissimilar_pairs: scores[0].1.dissimilar.len(),
        detectors,
    })
}

/// `train eval --crops`: the model with whole images only and with crop matching (`crops`), each with its
/// threshold chosen at [`TARGET_FAR`] on the validation pairs; each detector's validation and test figures.
pub fn evaluate_crop_matching(
    net: &EmbeddingNet,
    card: &ModelCard,
    data: &PhotoData,
    device: Device,
) -> Result<Vec<(DetectorFigures, DetectorFigures)>> {
    type Scorer = fn(&EmbeddingNet, &EditedSet, &Preprocessing, Device) -> Scored;
    let split = load_split(data)?;
    let (validation, _) = evaluation_set(&split.validation, data.eval_sources, VALIDATION_EDIT_SEED);
    let (test, _) = evaluation_set(&split.test, data.eval_sources, TEST_EDIT_SEED);
    let pp = &card.preprocessing;
    let scorers: [(&str, Scorer); 2] = [("model", model_scores), ("model, crops", crop_scores)];
    Ok(scorers
        .into_iter()
        .map(|(name, score)| {
            let validated = score(net, &validation, pp, device);
            let (d, s) = validated.labelled();
            let threshold = metrics::threshold_at_far(&d, &s, TARGET_FAR);
            let mut tested = score(net, &test, pp, device).figures(name, threshold);
            let validated = validated.figures(name, threshold);
            tested.validation_far = Some(validated.far_at_threshold);
            eprintln!(
                "{name}: validation TAR at FAR 1e-3 {:.3}, test {:.3}",
                validated.tar_at_far_1e_3, tested.tar_at_far_1e_3
            );
            (validated, tested)
        })
        .collect())
}

/// All similar pairs and as many dissimilar ones drawn at random: Platt scaling wants a balanced set,
/// as a compare request is as likely to be a duplicate as not.
fn balanced(scored: &Scored, seed: u64) -> (Vec<f64>, Vec<bool>) {
    let mut dissimilar = scored.dissimilar.clone();
    dissimilar.shuffle(&mut ChaCha8Rng::seed_from_u64(seed));
    dissimilar.truncate(scored.similar.len());
    let distances = scored.similar.iter().map(|(d, _)| *d).chain(dissimilar.iter().copied());
    let labels = std::iter::repeat_n(true, scored.similar.len()).chain(std::iter::repeat_n(false, dissimilar.len()));
    (distances.collect(), labels.collect())
}

/// A data path as the card records it: its last component, never a path from this machine.
fn data_name(root: &Path) -> String {
    root.file_name()
        .map_or_else(|| root.display().to_string(), |n| n.to_string_lossy().into_owned())
}
