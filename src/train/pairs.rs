//! Builds balanced similar / dissimilar pairs, as the seed's `create_pairs` does, from every class that can give them.

use rand::seq::SliceRandom;
use rand::Rng;

/// Two sample indices and whether they share a class.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Pair {
    pub a: usize,
    pub b: usize,
    pub similar: bool,
}

/// For every class, positives from consecutive samples and, for each positive, `negatives` pairs of
/// its sample with a sample of a random other class. A class gives all its consecutive pairs (`n - 1`),
/// but no more than the median class that can give one, so that no class dominates and a class of two
/// images does not starve the others; a class of one image gives no positive but is drawn as a negative.
/// With `negatives = 1` the set is balanced, as in the seed. When `shuffle` is given, each class's
/// samples are shuffled first: training draws fresh pairs every epoch, while evaluation passes `false`
/// and a fixed seed for the negatives.
pub(crate) fn create_pairs<R: Rng>(by_class: &[Vec<usize>], negatives: usize, rng: &mut R, shuffle: bool) -> Vec<Pair> {
    let mut groups: Vec<Vec<usize>> = by_class.iter().filter(|g| !g.is_empty()).cloned().collect();
    if groups.len() < 2 {
        return Vec::new();
    }
    if shuffle {
        for group in &mut groups {
            group.shuffle(rng);
        }
    }
    let mut pairable: Vec<usize> = groups.iter().map(|g| g.len() - 1).filter(|&n| n > 0).collect();
    pairable.sort_unstable();
    let cap = pairable.get(pairable.len() / 2).copied().unwrap_or(0);
    let mut pairs = Vec::new();
    for (class, group) in groups.iter().enumerate() {
        for i in 0..(group.len() - 1).min(cap) {
            pairs.push(Pair {
                a: group[i],
                b: group[i + 1],
                similar: true,
            });
            for _ in 0..negatives {
                // An offset in 1..classes picks any class but this one, uniformly.
                let other = &groups[(class + rng.gen_range(1..groups.len())) % groups.len()];
                let partner = if shuffle {
                    *other.choose(rng).expect("groups are non-empty")
                } else {
                    other[i % other.len()]
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
        // Classes of 10 to 14 give 9 to 13 pairs each, capped at the median's 11.
        assert_eq!(similar, 9 + 10 + 11 + 11 + 11);
        assert_eq!(pairs.len(), 2 * similar, "one negative per positive");
        for p in &pairs {
            assert_eq!(p.similar, class_of(p.a) == class_of(p.b), "{p:?}");
            assert_ne!(p.a, p.b);
        }
    }

    #[test]
    fn extra_negatives_and_fixed_evaluation_pairs() {
        let pairs = create_pairs(&classes(), 3, &mut ChaCha8Rng::seed_from_u64(1), true);
        assert_eq!(pairs.iter().filter(|p| !p.similar).count(), 3 * (9 + 10 + 11 + 11 + 11));
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

    #[test]
    fn every_class_that_can_pair_gives_pairs_whatever_the_others_hold() {
        // A class of one image and a class of two beside classes of five.
        let by_class = vec![vec![0], vec![1, 2], vec![3, 4, 5, 6, 7], vec![8, 9, 10, 11, 12]];
        for shuffle in [true, false] {
            let pairs = create_pairs(&by_class, 1, &mut ChaCha8Rng::seed_from_u64(3), shuffle);
            let positives = |class: &[usize]| pairs.iter().filter(|p| p.similar && class.contains(&p.a)).count();
            assert_eq!(positives(&by_class[0]), 0);
            assert_eq!(positives(&by_class[1]), 1);
            assert_eq!(positives(&by_class[2]), 4);
            assert_eq!(pairs.iter().filter(|p| !p.similar).count(), 9);
        }
    }
}
