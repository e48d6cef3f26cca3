//! An in-memory labelled image set, already preprocessed, and the train / validation / test split of one.

use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use tch::Tensor;

/// Preprocessed images `[N, C, H, W]` with a class index each.
#[derive(Debug)]
pub struct Dataset {
    pub images: Tensor,
    pub labels: Vec<usize>,
    /// Class index → name (the digit, or the ImageFolder directory).
    pub class_names: Vec<String>,
}

impl Dataset {
    /// Stacks preprocessed `C×H×W` inputs into one tensor.
    pub fn from_inputs(inputs: &[Vec<f32>], shape: [i64; 3], labels: Vec<usize>, class_names: Vec<String>) -> Self {
        assert_eq!(inputs.len(), labels.len(), "one label per image; this is a bug");
        let flat: Vec<f32> = inputs.iter().flatten().copied().collect();
        let images = Tensor::from_slice(&flat).view([inputs.len() as i64, shape[0], shape[1], shape[2]]);
        Self {
            images,
            labels,
            class_names,
        }
    }

    pub fn len(&self) -> usize {
        self.labels.len()
    }

    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// The samples at `indices`, in that order, sharing class names.
    pub fn subset(&self, indices: &[usize]) -> Dataset {
        let index = Tensor::from_slice(&indices.iter().map(|&i| i as i64).collect::<Vec<_>>());
        Dataset {
            images: self.images.index_select(0, &index),
            labels: indices.iter().map(|&i| self.labels[i]).collect(),
            class_names: self.class_names.clone(),
        }
    }

    /// Adds a mirrored copy (left–right) and a transposed copy of every sample, each as a class of its
    /// own: `classes × 3` classes that differ in shape but share strokes, so the embedding learns more
    /// general features than the training classes alone ask for. (No composition of the two, which
    /// would be a half-turn and could turn one digit into another, such as 6 into 9.)
    pub fn with_mirrored_classes(&self) -> Dataset {
        let k = self.class_names.len();
        let images = Tensor::cat(
            &[
                self.images.shallow_clone(),
                self.images.flip([3]),
                self.images.transpose(2, 3),
            ],
            0,
        );
        let labels = [0, k, 2 * k]
            .iter()
            .flat_map(|&offset| self.labels.iter().map(move |&l| l + offset))
            .collect();
        let class_names = ["", "mirrored ", "transposed "]
            .iter()
            .flat_map(|prefix| self.class_names.iter().map(move |name| format!("{prefix}{name}")))
            .collect();
        Dataset {
            images,
            labels,
            class_names,
        }
    }

    /// Keeps only the samples whose class is in `classes`.
    pub fn filter_classes(&self, classes: &[usize]) -> Dataset {
        let keep: Vec<usize> = (0..self.len()).filter(|&i| classes.contains(&self.labels[i])).collect();
        self.subset(&keep)
    }

    /// Sample indices grouped by class, each group in dataset order.
    pub fn indices_by_class(&self) -> Vec<Vec<usize>> {
        let mut groups = vec![Vec::new(); self.class_names.len()];
        for (i, &label) in self.labels.iter().enumerate() {
            groups[label].push(i);
        }
        groups
    }

    pub fn sample_shape(&self) -> [i64; 3] {
        let size = self.images.size();
        [size[1], size[2], size[3]]
    }
}

/// A data set cut three ways; no sample is in two parts.
#[derive(Debug)]
pub struct Split {
    pub train: Dataset,
    pub validation: Dataset,
    pub test: Dataset,
    /// Classes too small to split ([`MIN_CLASS_TO_SPLIT`]), kept whole in `train`.
    pub unsplit_classes: Vec<usize>,
}

/// Sample indices of the three parts of a split, each sorted.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct SplitIndices {
    pub train: Vec<usize>,
    pub validation: Vec<usize>,
    pub test: Vec<usize>,
    /// Classes too small to split, kept whole in `train`.
    pub unsplit_classes: Vec<usize>,
}

/// The fewest images a class needs to be split: two for each part, so that every part can pair two of
/// its images.
pub(crate) const MIN_CLASS_TO_SPLIT: usize = 6;

/// Splits every class the same way (stratified), deterministically for a `seed`.
///
/// Each class gives `round(n * test_fraction)` samples to test, then `round(rest * validation_fraction)`
/// to validation, and the rest to training, with at least two in each part. A class of fewer than
/// [`MIN_CLASS_TO_SPLIT`] images cannot give that: it goes whole to training (its images still serve as
/// other classes' negatives) and is listed in `unsplit_classes`.
pub(crate) fn split_indices(labels: &[usize], test_fraction: f64, validation_fraction: f64, seed: u64) -> SplitIndices {
    let classes = labels.iter().max().map_or(0, |&m| m + 1);
    let mut groups = vec![Vec::new(); classes];
    for (i, &label) in labels.iter().enumerate() {
        groups[label].push(i);
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let (mut train, mut validation, mut test) = (Vec::new(), Vec::new(), Vec::new());
    let mut unsplit_classes = Vec::new();
    for (class, mut group) in groups.into_iter().enumerate() {
        group.shuffle(&mut rng);
        let n = group.len();
        if n < MIN_CLASS_TO_SPLIT {
            if n > 0 {
                unsplit_classes.push(class);
            }
            train.extend_from_slice(&group);
            continue;
        }
        let n_test = ((n as f64 * test_fraction).round() as usize).clamp(2, n - 4);
        let n_val = (((n - n_test) as f64 * validation_fraction).round() as usize).clamp(2, n - n_test - 2);
        test.extend_from_slice(&group[..n_test]);
        validation.extend_from_slice(&group[n_test..n_test + n_val]);
        train.extend_from_slice(&group[n_test + n_val..]);
    }
    for part in [&mut train, &mut validation, &mut test] {
        part.sort_unstable();
    }
    SplitIndices {
        train,
        validation,
        test,
        unsplit_classes,
    }
}

/// `split_indices` applied to a data set.
pub(crate) fn stratified_split(data: &Dataset, test_fraction: f64, validation_fraction: f64, seed: u64) -> Split {
    let parts = split_indices(&data.labels, test_fraction, validation_fraction, seed);
    Split {
        train: data.subset(&parts.train),
        validation: data.subset(&parts.validation),
        test: data.subset(&parts.test),
        unsplit_classes: parts.unsplit_classes,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mirrored_classes_are_new_classes() {
        let images = Tensor::arange(2 * 4 * 4, (tch::Kind::Float, tch::Device::Cpu)).view([2, 1, 4, 4]);
        let data = Dataset {
            images,
            labels: vec![0, 1],
            class_names: vec!["a".into(), "b".into()],
        };
        let more = data.with_mirrored_classes();
        assert_eq!(more.labels, vec![0, 1, 2, 3, 4, 5]);
        assert_eq!(more.class_names[3], "mirrored b");
        assert_eq!(more.images.size(), vec![6, 1, 4, 4]);
        assert_eq!(
            more.images.get(2).get(0).get(0).get(0).double_value(&[]),
            3.0,
            "first row reversed"
        );
        assert_eq!(
            more.images.get(4).get(0).get(0).get(1).double_value(&[]),
            4.0,
            "rows become columns"
        );
    }

    #[test]
    fn split_is_stratified_disjoint_complete_and_seeded() {
        let labels: Vec<usize> = (0..1000).map(|i| i % 10).collect();
        let parts = split_indices(&labels, 0.2, 0.1, 7);
        assert_eq!(
            (parts.train.len(), parts.validation.len(), parts.test.len()),
            (720, 80, 200)
        );
        for class in 0..10 {
            assert_eq!(parts.test.iter().filter(|&&i| labels[i] == class).count(), 20);
        }
        let mut all: Vec<usize> = [&parts.train[..], &parts.validation[..], &parts.test[..]].concat();
        all.sort_unstable();
        assert_eq!(all, (0..1000).collect::<Vec<_>>(), "every sample in exactly one part");
        assert_eq!(parts, split_indices(&labels, 0.2, 0.1, 7));
        assert_ne!(parts.test, split_indices(&labels, 0.2, 0.1, 8).test);
    }

    #[test]
    fn small_classes_get_two_per_part_or_stay_whole_in_training() {
        // Classes of 1, 3, 6 and 12 images.
        let labels: Vec<usize> = [1, 3, 6, 12]
            .iter()
            .enumerate()
            .flat_map(|(class, &n)| std::iter::repeat_n(class, n))
            .collect();
        let parts = split_indices(&labels, 0.2, 0.1, 7);
        let count = |part: &[usize], class: usize| part.iter().filter(|&&i| labels[i] == class).count();

        assert_eq!(parts.unsplit_classes, vec![0, 1]);
        for class in [0, 1] {
            assert_eq!(count(&parts.validation, class) + count(&parts.test, class), 0);
        }
        assert_eq!(count(&parts.train, 1), 3);
        for class in [2, 3] {
            for part in [&parts.train, &parts.validation, &parts.test] {
                assert!(count(part, class) >= 2, "class {class}: {parts:?}");
            }
        }
        assert_eq!(
            parts.train.len() + parts.validation.len() + parts.test.len(),
            labels.len()
        );
    }
}
