//! Test helpers: a complete model card for a small random model, and saving such a model.

use std::path::Path;

use tch::nn;

use super::card::*;
use super::{save_model, EmbeddingNet};

/// A valid card for a `side × side` grayscale model with `embedding_dim` outputs and made-up figures.
pub(crate) fn card(name: &str, side: i64, embedding_dim: i64) -> ModelCard {
    let figures = PairFigures {
        classes: "0-9".into(),
        pairs: 0,
        roc_auc: 0.5,
        eer: 0.5,
        accuracy_at_0_5: 0.5,
        accuracy_at_threshold: 0.5,
        tar_at_far_1e_2: 0.0,
        tar_at_far_1e_3: 0.0,
    };
    ModelCard {
        format_version: CARD_FORMAT_VERSION,
        name: name.into(),
        description: "random weights for tests".into(),
        architecture: Architecture {
            embedding_dim,
            ..Architecture::seed(1, side, side)
        },
        preprocessing: Preprocessing {
            color: ColorMode::Grayscale,
            width: side as u32,
            height: side as u32,
            resize: ResizeMode::Stretch,
            content_box: None,
            mean: vec![0.0],
            std: vec![1.0],
            polarity: Polarity::AsIs,
            trim_border: false,
        },
        distance: "euclidean".into(),
        decision: Decision {
            threshold: 0.5,
            method: "fixed".into(),
        },
        calibration: Calibration {
            method: "platt".into(),
            a: 1.0,
            b: 0.0,
        },
        evaluation: Evaluation {
            test: figures,
            unseen_classes: None,
            near_duplicates: None,
        },
        training: TrainingSummary {
            data: "none".into(),
            classes: "0-9".into(),
            train_samples: 0,
            validation_samples: 0,
            test_samples: 0,
            seed: 0,
            epochs: 0,
            best_epoch: 0,
            batch_size: 0,
            learning_rate: 0.0,
            weight_decay: 0.0,
            loss: "contrastive".into(),
            margin: 1.0,
            positive_margin: 0.0,
            augment: false,
            negatives_per_positive: 1,
            all_pairs: false,
            mirror_classes: false,
            self_supervised: None,
            seconds: 0.0,
        },
        weights: Weights {
            file: String::new(),
            sha256: String::new(),
        },
        serving: None,
    }
}

/// Saves a randomly initialised model (seeded) into `dir`; returns its weights and network.
pub(crate) fn save_random(
    dir: &Path,
    name: &str,
    side: i64,
    embedding_dim: i64,
    seed: i64,
) -> (nn::VarStore, EmbeddingNet) {
    save_random_with_card(dir, card(name, side, embedding_dim), seed)
}

/// Saves a randomly initialised model (seeded) for `card` into `dir`; returns its weights and network.
pub(crate) fn save_random_with_card(dir: &Path, mut card: ModelCard, seed: i64) -> (nn::VarStore, EmbeddingNet) {
    tch::manual_seed(seed);
    let vs = nn::VarStore::new(tch::Device::Cpu);
    let net = EmbeddingNet::new(&vs.root(), &card.architecture);
    save_model(dir, &mut card, &vs).expect("a temporary directory is writable");
    (vs, net)
}
