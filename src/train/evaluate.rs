//! Embeds a data set, measures distances on fixed pairs, and sums them up as the model card's figures.

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use tch::nn::ModuleT;
use tch::{Device, Tensor};

use super::dataset::Dataset;
use super::metrics;
use super::pairs::{create_pairs, Pair};
use crate::model::card::PairFigures;
use crate::model::distance::euclidean;
use crate::model::EmbeddingNet;

/// The seed's fixed decision threshold, reported for comparison.
pub(crate) const SEED_THRESHOLD: f64 = 0.5;
const EMBED_BATCH: i64 = 512;

/// Evaluation pairs: balanced, one per positive, fixed by `seed` alone.
pub(crate) fn evaluation_pairs(data: &Dataset, seed: u64) -> Vec<Pair> {
    create_pairs(&data.indices_by_class(), 1, &mut ChaCha8Rng::seed_from_u64(seed), false)
}

/// Refuses a split whose pairs cannot measure anything: ROC AUC, a threshold and a loss all need both
/// similar and dissimilar pairs.
pub(crate) fn check_pairs(split: &str, data: &Dataset, pairs: &[Pair]) -> anyhow::Result<()> {
    let similar = pairs.iter().filter(|p| p.similar).count();
    anyhow::ensure!(
        similar > 0 && similar < pairs.len(),
        "the {split} split ({} images in {} classes) gives {similar} similar and {} dissimilar pairs; it needs \
         both: at least two classes, one of them with two images or more (a class needs {} images to be \
         split, two for each part)",
        data.len(),
        data.indices_by_class().iter().filter(|g| !g.is_empty()).count(),
        pairs.len() - similar,
        super::dataset::MIN_CLASS_TO_SPLIT,
    );
    Ok(())
}

/// Embeddings `[N, D]` of every sample, in inference mode.
pub(crate) fn embed_all(net: &EmbeddingNet, data: &Dataset, device: Device) -> Tensor {
    tch::no_grad(|| {
        let chunks: Vec<Tensor> = data
            .images
            .split(EMBED_BATCH, 0)
            .iter()
            .map(|chunk| net.forward_t(&chunk.to_device(device), false).to_device(Device::Cpu))
            .collect();
        Tensor::cat(&chunks, 0)
    })
}

/// Distances of `pairs` and whether each is similar.
pub(crate) fn pair_distances(embeddings: &Tensor, pairs: &[Pair]) -> (Vec<f64>, Vec<bool>) {
    let index =
        |pick: fn(&Pair) -> usize| Tensor::from_slice(&pairs.iter().map(|p| pick(p) as i64).collect::<Vec<_>>());
    let a = embeddings.index_select(0, &index(|p| p.a));
    let b = embeddings.index_select(0, &index(|p| p.b));
    let distances = Vec::<f64>::try_from(euclidean(&a, &b).to_kind(tch::Kind::Double))
        .expect("a 1-D tensor converts to a Vec; this is a bug");
    (distances, pairs.iter().map(|p| p.similar).collect())
}

/// Everything the card reports about one set of pairs, at the card's `threshold`.
pub(crate) fn figures(distances: &[f64], similar: &[bool], threshold: f64, classes: String) -> PairFigures {
    PairFigures {
        classes,
        pairs: distances.len(),
        roc_auc: metrics::roc_auc(distances, similar),
        eer: metrics::eer(distances, similar).0,
        accuracy_at_0_5: metrics::accuracy_at(distances, similar, SEED_THRESHOLD),
        accuracy_at_threshold: metrics::accuracy_at(distances, similar, threshold),
        tar_at_far_1e_2: metrics::tar_at_far(distances, similar, 1e-2),
        tar_at_far_1e_3: metrics::tar_at_far(distances, similar, 1e-3),
    }
}
