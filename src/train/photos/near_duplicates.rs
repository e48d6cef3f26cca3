//! Near-duplicate evaluation: held-out sources against edits of themselves and of each other, scored by the
//! model and by the perceptual hashes on the very same pairs.

use std::collections::BTreeMap;

use image::{DynamicImage, RgbImage};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use tch::nn::ModuleT;
use tch::{Device, Kind, Tensor};

use super::edits::{self, EditFamily};
use super::sources::Source;
use crate::model::card::{DetectorFigures, Preprocessing};
use crate::model::EmbeddingNet;
use crate::preprocess;
use crate::train::hashes::{hash_distance, PerceptualHash};
use crate::train::metrics;

const EMBED_BATCH: usize = 256;

/// Each source as uploaded (flattened over white) and one seeded edit of it per family.
pub(crate) struct EditedSet {
    pub originals: Vec<RgbImage>,
    pub edits: Vec<Edited>,
}

pub(crate) struct Edited {
    /// Index into `originals` of the source this was made from.
    pub source: usize,
    pub family: EditFamily,
    pub image: RgbImage,
}

/// The edits are fixed by `seed` alone, so every detector and every run sees the same pairs.
pub(crate) fn edited_set(sources: &[Source], seed: u64) -> EditedSet {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut edits = Vec::with_capacity(sources.len() * EditFamily::ALL.len());
    for (source, s) in sources.iter().enumerate() {
        for family in EditFamily::ALL {
            edits.push(Edited {
                source,
                family,
                image: edits::apply(family, &s.image, &mut rng),
            });
        }
    }
    EditedSet {
        originals: sources.iter().map(|s| edits::flatten(&s.image)).collect(),
        edits,
    }
}

/// Distances of every (original, edit) pair: similar when the edit came from that original.
pub(crate) struct Scored {
    /// Distance and family of each similar pair.
    pub similar: Vec<(f64, EditFamily)>,
    pub dissimilar: Vec<f64>,
}

impl Scored {
    pub(crate) fn from_matrix(set: &EditedSet, distance: impl Fn(usize, usize) -> f64) -> Self {
        let mut similar = Vec::with_capacity(set.edits.len());
        let mut dissimilar = Vec::with_capacity(set.edits.len() * set.originals.len());
        for i in 0..set.originals.len() {
            for (j, edit) in set.edits.iter().enumerate() {
                let d = distance(i, j);
                if edit.source == i {
                    similar.push((d, edit.family));
                } else {
                    dissimilar.push(d);
                }
            }
        }
        Self { similar, dissimilar }
    }

    /// Every pair's distance and label, as the ROC code takes them.
    pub(crate) fn labelled(&self) -> (Vec<f64>, Vec<bool>) {
        let distances = self
            .similar
            .iter()
            .map(|(d, _)| *d)
            .chain(self.dissimilar.iter().copied());
        let labels =
            std::iter::repeat_n(true, self.similar.len()).chain(std::iter::repeat_n(false, self.dissimilar.len()));
        (distances.collect(), labels.collect())
    }

    /// Everything the card reports about one detector, at `threshold` (a pair matches below it).
    pub(crate) fn figures(&self, detector: &str, threshold: f64) -> DetectorFigures {
        let (distances, similar) = self.labelled();
        let accepted = |ds: &mut dyn Iterator<Item = f64>| {
            let (hit, total) = ds.fold((0usize, 0usize), |(h, t), d| (h + usize::from(d < threshold), t + 1));
            hit as f64 / total.max(1) as f64
        };
        let tar_by_family = EditFamily::ALL
            .iter()
            .map(|&family| {
                let mut ds = self.similar.iter().filter(|(_, f)| *f == family).map(|(d, _)| *d);
                (family.name().to_string(), accepted(&mut ds))
            })
            .collect::<BTreeMap<_, _>>();
        DetectorFigures {
            detector: detector.to_string(),
            roc_auc: metrics::roc_auc(&distances, &similar),
            eer: metrics::eer(&distances, &similar).0,
            tar_at_far_1e_2: metrics::tar_at_far(&distances, &similar, 1e-2),
            tar_at_far_1e_3: metrics::tar_at_far(&distances, &similar, 1e-3),
            threshold,
            far_at_threshold: accepted(&mut self.dissimilar.iter().copied()),
            validation_far: None,
            tar_by_family,
        }
    }
}

/// Embeds `images` as the server would: the card's preprocessing, then the network in inference mode.
pub(crate) fn embed_images(net: &EmbeddingNet, images: &[RgbImage], pp: &Preprocessing, device: Device) -> Tensor {
    let shape = [pp.color.channels() as i64, i64::from(pp.height), i64::from(pp.width)];
    let chunks: Vec<Tensor> = images
        .chunks(EMBED_BATCH)
        .map(|chunk| {
            let batch = preprocessed_batch(chunk, pp, shape);
            tch::no_grad(|| net.forward_t(&batch.to_device(device), false).to_device(Device::Cpu))
        })
        .collect();
    Tensor::cat(&chunks, 0)
}

/// Stacks preprocessed images into `[N, C, H, W]`; the same code path as serving.
pub(crate) fn preprocessed_batch(images: &[RgbImage], pp: &Preprocessing, shape: [i64; 3]) -> Tensor {
    let flat: Vec<f32> = images
        .iter()
        .flat_map(|image| preprocess::prepare(&DynamicImage::ImageRgb8(image.clone()), pp))
        .collect();
    Tensor::from_slice(&flat).view([images.len() as i64, shape[0], shape[1], shape[2]])
}

/// The model's Euclidean distances on every pair of `set`.
pub(crate) fn model_scores(net: &EmbeddingNet, set: &EditedSet, pp: &Preprocessing, device: Device) -> Scored {
    let originals = embed_images(net, &set.originals, pp, device);
    let edits: Vec<RgbImage> = set.edits.iter().map(|e| e.image.clone()).collect();
    let edited = embed_images(net, &edits, pp, device);
    let matrix = Tensor::cdist(&originals, &edited, 2.0, None::<i64>).to_kind(Kind::Double);
    let rows = set.originals.len();
    let flat = Vec::<f64>::try_from(matrix.flatten(0, -1)).expect("a double tensor converts; this is a bug");
    let cols = set.edits.len();
    debug_assert_eq!(flat.len(), rows * cols);
    Scored::from_matrix(set, |i, j| flat[i * cols + j])
}

/// A hash's normalised Hamming distances on every pair of `set`.
pub(crate) fn hash_scores(hash: PerceptualHash, set: &EditedSet) -> Scored {
    let originals: Vec<u64> = set.originals.iter().map(|image| hash.hash(image)).collect();
    let edits: Vec<u64> = set.edits.iter().map(|e| hash.hash(&e.image)).collect();
    Scored::from_matrix(set, |i, j| hash_distance(originals[i], edits[j]))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scored() -> Scored {
        Scored {
            similar: vec![
                (0.1, EditFamily::ALL[0]),
                (0.6, EditFamily::ALL[0]),
                (0.2, EditFamily::ALL[1]),
            ],
            dissimilar: vec![0.5, 0.9, 0.8, 0.7],
        }
    }

    #[test]
    fn figures_count_per_family_at_the_threshold() {
        let f = scored().figures("m", 0.55);
        assert_eq!(f.tar_by_family[EditFamily::ALL[0].name()], 0.5);
        assert_eq!(f.tar_by_family[EditFamily::ALL[1].name()], 1.0);
        assert_eq!(f.far_at_threshold, 0.25);
        // Of 12 (similar, dissimilar) orderings only 0.6 > 0.5 is wrong.
        assert!((f.roc_auc - 11.0 / 12.0).abs() < 1e-12, "{}", f.roc_auc);
    }

    #[test]
    fn matrix_pairs_an_edit_with_its_own_source_only() {
        let image = RgbImage::new(2, 2);
        let set = EditedSet {
            originals: vec![image.clone(), image.clone()],
            edits: (0..2)
                .map(|source| Edited {
                    source,
                    family: EditFamily::ALL[0],
                    image: image.clone(),
                })
                .collect(),
        };
        let scored = Scored::from_matrix(&set, |i, j| (i * 10 + j) as f64);
        assert_eq!(scored.similar.iter().map(|(d, _)| *d).collect::<Vec<_>>(), [0.0, 11.0]);
        assert_eq!(scored.dissimilar, [1.0, 10.0]);
    }
}
