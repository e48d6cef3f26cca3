//! Builds balanced similar / dissimilar pairs the way the seed's `create_pairs` does.

use rand::seq::SliceRandom;
use rand::Rng;

/// Two sample indices and whether they share a class.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pair {
    pub a: usize,
    pub b: usize,
    pub similar: bool,
}

/// For every class, positives from consecutive samples and, for each positive, `negatives` pairs of
/// its first sample with a sample of a random other class. Every class contributes as many positives
/// as the smallest class allows (`min - 1`), so no class dominates. With `negatives = 1` the set is
/// balanced, as in the seed. When `shuffle` is given, each class's samples are shuffled first: training
/// draws fresh pairs every epoch, while evaluation passes `None` and a fixed seed for the negatives.
pub fn create_pairs<R: Rng>(by_class: &[Vec<usize>], negatives: usize, rng: &mut R, shuffle: bool) -> Vec<Pair> {
    let mut groups: Vec<Vec<usize>> = by_class.iter().filter(|g| !g.is_empty()).cloned().collect();
    if groups.len() < 2 {
        return Vec::new();
    }
    if shuffle {
        for group in &mut groups {
            group.shuffle(rng);
        }
    }
    let per_class = groups.iter().map(Vec::len).min().unwrap_or(0).saturating_sub(1);
    let mut pairs = Vec::with_capacity(groups.len() * per_class * (1 + negatives));
    for (class, group) in groups.iter().enumerate() {
        for i in 0..per_class {
            pairs.push(Pair {
                a: group[i],
                b: group[i + 1],
                similar: true,
            });
            for _ in 0..negatives {
                // An offset in 1..classes picks any class but this one, uniformly.
                let other = (class + rng.gen_range(1..groups.len())) % groups.len();
                let partner = if shuffle {
                    *groups[other].choose(rng).expect("groups are non-empty")
                } else {
                    groups[other][i]
                };
                pairs.push(Pair {
                    a: group[i],
                    b: partner,
                    similar: false,
                });
            }
        }
    }
    pairs
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    fn classes() -> Vec<Vec<usize>> {
        // Class c holds samples 100c .. 100c + 10 + c: unequal sizes, as in MNIST.
        (0..5).map(|c| (100 * c..100 * c + 10 + c).collect()).collect()
    }

    fn class_of(i: usize) -> usize {
        i / 100
    }

    #[test]
    fn pairs_are_balanced_and_labelled_truthfully() {
        let pairs = create_pairs(&classes(), 1, &mut ChaCha8Rng::seed_from_u64(1), true);
        let similar = pairs.iter().filter(|p| p.similar).count();
        assert_eq!(similar, 5 * 9, "min class size 10 gives 9 positives per class");
        assert_eq!(pairs.len(), 2 * similar, "one negative per positive");
        for p in &pairs {
            assert_eq!(p.similar, class_of(p.a) == class_of(p.b), "{p:?}");
            assert_ne!(p.a, p.b);
        }
    }

    #[test]
    fn extra_negatives_and_fixed_evaluation_pairs() {
        let pairs = create_pairs(&classes(), 3, &mut ChaCha8Rng::seed_from_u64(1), true);
        assert_eq!(pairs.iter().filter(|p| !p.similar).count(), 3 * 5 * 9);
        let fixed = |seed| create_pairs(&classes(), 1, &mut ChaCha8Rng::seed_from_u64(seed), false);
        assert_eq!(fixed(4), fixed(4), "evaluation pairs depend only on the seed");
    }

    #[test]
    fn pairs_only_use_the_given_samples() {
        // Training draws from the training indices only: no test sample can appear.
        let train: Vec<Vec<usize>> = classes().into_iter().map(|g| g[..8].to_vec()).collect();
        let allowed: Vec<usize> = train.concat();
        for p in create_pairs(&train, 2, &mut ChaCha8Rng::seed_from_u64(9), true) {
            assert!(allowed.contains(&p.a) && allowed.contains(&p.b));
        }
    }

    #[test]
    fn fewer_than_two_classes_give_no_pairs() {
        assert!(create_pairs(&[vec![1, 2, 3]], 1, &mut ChaCha8Rng::seed_from_u64(0), true).is_empty());
    }
}
