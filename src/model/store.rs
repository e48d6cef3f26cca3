//! Reads and writes a model directory: `model.json` (the card) beside `model.safetensors` (the weights).

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use tch::nn::{self, ModuleT};
use tch::{Device, Tensor};

use super::card::{ModelCard, CARD_FORMAT_VERSION};
use super::net::EmbeddingNet;

pub const CARD_FILE: &str = "model.json";
pub const WEIGHTS_FILE: &str = "model.safetensors";

#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("cannot read {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{path} is not a valid model card: {reason}")]
    BadCard { path: PathBuf, reason: String },
    #[error(
        "weights {path} do not match the model card: SHA-256 is {actual}, the card says {expected}; \
         the file was changed or belongs to another model"
    )]
    HashMismatch {
        path: PathBuf,
        expected: String,
        actual: String,
    },
    #[error("cannot load weights {path}: {source}")]
    Weights { path: PathBuf, source: tch::TchError },
}

/// A model ready for inference: its card, and the network with weights on one device.
pub struct LoadedModel {
    pub card: ModelCard,
    pub net: EmbeddingNet,
    pub device: Device,
    /// Owns the weights `net` uses; dropping it frees them.
    _vs: nn::VarStore,
}

impl LoadedModel {
    /// Embeds a preprocessed batch `[N, C, H, W]` without recording gradients.
    pub fn embed(&self, batch: &Tensor) -> Tensor {
        tch::no_grad(|| self.net.forward_t(&batch.to_device(self.device), false))
    }

    /// The located contributions of `batch` (see `EmbeddingNet::locations`).
    pub fn locations(&self, batch: &Tensor) -> Option<Tensor> {
        tch::no_grad(|| self.net.locations(&batch.to_device(self.device)))
    }
}

/// Loads `dir`, refusing a card that is malformed or whose weights do not hash to what it says. A loaded
/// model only infers, so its batch norms are folded into their convolutions once, here.
pub fn load_model(dir: &Path, device: Device) -> Result<LoadedModel, ModelError> {
    let mut model = load_model_unfolded(dir, device)?;
    model.net.fold_batch_norm();
    Ok(model)
}

/// [`load_model`] with the batch norms left as trained: what folding gains is measured against it.
pub fn load_model_unfolded(dir: &Path, device: Device) -> Result<LoadedModel, ModelError> {
    let card = read_card(dir)?;
    let weights = dir.join(&card.weights.file);
    let actual = sha256_file(&weights)?;
    if !actual.eq_ignore_ascii_case(&card.weights.sha256) {
        return Err(ModelError::HashMismatch {
            path: weights,
            expected: card.weights.sha256.clone(),
            actual,
        });
    }
    let mut vs = nn::VarStore::new(device);
    let net = EmbeddingNet::new(&vs.root(), &card.architecture);
    vs.load(&weights).map_err(|source| ModelError::Weights {
        path: weights.clone(),
        source,
    })?;
    Ok(LoadedModel {
        card,
        net,
        device,
        _vs: vs,
    })
}

/// Reads and checks `dir/model.json` without touching the weights.
pub fn read_card(dir: &Path) -> Result<ModelCard, ModelError> {
    let path = dir.join(CARD_FILE);
    let text = std::fs::read_to_string(&path).map_err(|source| ModelError::Io {
        path: path.clone(),
        source,
    })?;
    let bad = |reason: String| ModelError::BadCard {
        path: path.clone(),
        reason,
    };
    let card: ModelCard = serde_json::from_str(&text).map_err(|e| bad(e.to_string()))?;
    if card.format_version != CARD_FORMAT_VERSION {
        return Err(bad(format!(
            "format_version {} (this build reads {CARD_FORMAT_VERSION})",
            card.format_version
        )));
    }
    card.architecture.validate().map_err(bad)?;
    if card.distance != "euclidean" {
        return Err(bad(format!("unknown distance {:?}", card.distance)));
    }
    let channels = card.preprocessing.color.channels();
    if channels as i64 != card.architecture.in_channels
        || card.preprocessing.mean.len() != channels
        || card.preprocessing.std.len() != channels
        || card.preprocessing.std.iter().any(|s| *s <= 0.0)
        || i64::from(card.preprocessing.width) != card.architecture.width
        || i64::from(card.preprocessing.height) != card.architecture.height
    {
        return Err(bad("preprocessing does not fit the architecture".into()));
    }
    if Path::new(&card.weights.file).components().count() != 1 {
        return Err(bad("weights.file must be a plain file name".into()));
    }
    Ok(card)
}

/// Writes the weights, then the card with their SHA-256, into `dir` (created if missing).
pub fn save_model(dir: &Path, card: &mut ModelCard, vs: &nn::VarStore) -> Result<(), ModelError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| ModelError::Io { path, source }
    };
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let weights = dir.join(WEIGHTS_FILE);
    vs.save(&weights).map_err(|source| ModelError::Weights {
        path: weights.clone(),
        source,
    })?;
    card.weights.file = WEIGHTS_FILE.to_string();
    card.weights.sha256 = sha256_file(&weights)?;
    let json = serde_json::to_string_pretty(card).expect("a model card always serialises; this is a bug");
    let card_path = dir.join(CARD_FILE);
    std::fs::write(&card_path, json + "\n").map_err(io(&card_path))
}

pub fn sha256_file(path: &Path) -> Result<String, ModelError> {
    let bytes = std::fs::read(path).map_err(|source| ModelError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    Ok(hex::encode(Sha256::digest(&bytes)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::testing::save_random;

    /// A randomly initialised model saved to a fresh directory, and its embeddings of `batch`.
    fn saved_model(batch: &Tensor) -> (tempfile::TempDir, Tensor) {
        let dir = tempfile::tempdir().unwrap();
        let (_vs, net) = save_random(dir.path(), "tiny", 12, 8, 1);
        let before = tch::no_grad(|| net.forward_t(batch, false));
        (dir, before)
    }

    #[test]
    fn save_then_load_gives_identical_embeddings() {
        tch::manual_seed(1);
        let batch = Tensor::rand([3, 1, 12, 12], (tch::Kind::Float, Device::Cpu));
        let (dir, before) = saved_model(&batch);
        let loaded = load_model(dir.path(), Device::Cpu).unwrap();
        assert_eq!(loaded.card.weights.sha256.len(), 64);
        assert!(before.abs().sum(tch::Kind::Float).double_value(&[]) > 0.0);
        assert!(loaded.embed(&batch).equal(&before), "weights must round-trip exactly");
    }
    #[test]
    fn tampered_weights_are_refused_with_a_clear_error() {
        let batch = Tensor::zeros([1, 1, 12, 12], (tch::Kind::Float, Device::Cpu));
        let (dir, _) = saved_model(&batch);
        let weights = dir.path().join(WEIGHTS_FILE);
        let mut bytes = std::fs::read(&weights).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 0x01;
        std::fs::write(&weights, bytes).unwrap();
        let err = load_model(dir.path(), Device::Cpu)
            .err()
            .expect("tampered weights must not load");
        assert!(matches!(err, ModelError::HashMismatch { .. }), "{err}");
        assert!(err.to_string().contains("do not match the model card"), "{err}");
    }

    #[test]
    fn malformed_cards_are_refused() {
        let batch = Tensor::zeros([1, 1, 12, 12], (tch::Kind::Float, Device::Cpu));
        let (dir, _) = saved_model(&batch);
        let path = dir.path().join(CARD_FILE);
        let card = std::fs::read_to_string(&path).unwrap();
        std::fs::write(&path, card.replace("seed_cnn", "resnet9000")).unwrap();
        let err = read_card(dir.path()).unwrap_err();
        assert!(err.to_string().contains("unknown architecture"), "{err}");
        std::fs::write(&path, "{ not json").unwrap();
        assert!(matches!(read_card(dir.path()), Err(ModelError::BadCard { .. })));
    }
}
