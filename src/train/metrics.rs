//! Verification metrics over labelled distances: ROC, AUC, EER, accuracy, TAR at a FAR, threshold choice.
//!
//! A pair is predicted similar when its distance is below the threshold.

/// One point of the ROC curve: predicting "similar" for distances `< threshold` gives these rates.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct RocPoint {
    pub threshold: f64,
    /// False accept rate: dissimilar pairs predicted similar.
    pub far: f64,
    /// True accept rate: similar pairs predicted similar.
    pub tar: f64,
}

/// The ROC curve from the strictest threshold (accept nothing) to the loosest (accept everything).
/// Tied distances move together, so each point is reachable by some threshold.
pub(crate) fn roc_curve(distances: &[f64], similar: &[bool]) -> Vec<RocPoint> {
    let (positives, negatives) = counts(similar);
    let mut order: Vec<usize> = (0..distances.len()).collect();
    order.sort_by(|&i, &j| distances[i].total_cmp(&distances[j]));
    let first = order.first().map_or(0.0, |&i| distances[i]);
    let mut points = vec![RocPoint {
        threshold: first,
        far: 0.0,
        tar: 0.0,
    }];
    let (mut accepted_pos, mut accepted_neg) = (0usize, 0usize);
    let mut k = 0;
    while k < order.len() {
        let d = distances[order[k]];
        while k < order.len() && distances[order[k]] == d {
            if similar[order[k]] {
                accepted_pos += 1;
            } else {
                accepted_neg += 1;
            }
            k += 1;
        }
        // Any threshold above d and up to the next distance accepts exactly these pairs.
        let next = order.get(k).map_or(d + 1e-6, |&i| distances[i]);
        points.push(RocPoint {
            threshold: (d + next) / 2.0,
            far: ratio(accepted_neg, negatives),
            tar: ratio(accepted_pos, positives),
        });
    }
    points
}

/// Area under the ROC curve: the chance a random similar pair is closer than a random dissimilar one
/// (ties count one half).
pub(crate) fn roc_auc(distances: &[f64], similar: &[bool]) -> f64 {
    let curve = roc_curve(distances, similar);
    curve
        .windows(2)
        .map(|w| (w[1].far - w[0].far) * (w[1].tar + w[0].tar) / 2.0)
        .sum()
}

/// Equal error rate: where false accepts and false rejects are (closest to) equal, and its threshold.
pub(crate) fn eer(distances: &[f64], similar: &[bool]) -> (f64, f64) {
    let curve = roc_curve(distances, similar);
    let best = curve
        .iter()
        .min_by(|a, b| (a.far - (1.0 - a.tar)).abs().total_cmp(&(b.far - (1.0 - b.tar)).abs()))
        .expect("a curve has at least one point");
    ((best.far + 1.0 - best.tar) / 2.0, best.threshold)
}

/// Share of pairs classified correctly at `threshold`.
pub(crate) fn accuracy_at(distances: &[f64], similar: &[bool], threshold: f64) -> f64 {
    let correct = distances
        .iter()
        .zip(similar)
        .filter(|(&d, &s)| (d < threshold) == s)
        .count();
    ratio(correct, distances.len())
}

/// The threshold with the best accuracy; ties go to the first (strictest) one.
pub(crate) fn best_accuracy_threshold(distances: &[f64], similar: &[bool]) -> f64 {
    let (positives, negatives) = counts(similar);
    let total = (positives + negatives) as f64;
    let accuracy = |p: &RocPoint| (p.tar * positives as f64 + (1.0 - p.far) * negatives as f64) / total;
    roc_curve(distances, similar)
        .into_iter()
        .fold(None::<(f64, f64)>, |best, p| match best {
            Some((acc, _)) if acc >= accuracy(&p) => best,
            _ => Some((accuracy(&p), p.threshold)),
        })
        .map_or(0.5, |(_, threshold)| threshold)
}

/// The highest true accept rate whose false accept rate does not exceed `far`.
pub(crate) fn tar_at_far(distances: &[f64], similar: &[bool], far: f64) -> f64 {
    roc_curve(distances, similar)
        .iter()
        .filter(|p| p.far <= far)
        .map(|p| p.tar)
        .fold(0.0, f64::max)
}

/// The loosest threshold whose false accept rate does not exceed `far`: the strictest that an
/// operator asking for that FAR would still accept.
pub(crate) fn threshold_at_far(distances: &[f64], similar: &[bool], far: f64) -> f64 {
    roc_curve(distances, similar)
        .iter()
        .filter(|p| p.far <= far)
        .map(|p| p.threshold)
        .fold(f64::NEG_INFINITY, f64::max)
}

fn counts(similar: &[bool]) -> (usize, usize) {
    let positives = similar.iter().filter(|&&s| s).count();
    (positives, similar.len() - positives)
}

fn ratio(n: usize, d: usize) -> f64 {
    if d == 0 {
        0.0
    } else {
        n as f64 / d as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn perfect_separation() {
        let d = [0.1, 0.2, 0.3, 0.7, 0.8, 0.9];
        let s = [true, true, true, false, false, false];
        assert_eq!(roc_auc(&d, &s), 1.0);
        assert_eq!(eer(&d, &s).0, 0.0);
        let t = best_accuracy_threshold(&d, &s);
        assert!(t > 0.3 && t < 0.7, "{t}");
        assert_eq!(accuracy_at(&d, &s, t), 1.0);
        assert_eq!(tar_at_far(&d, &s, 0.0), 1.0);
    }

    #[test]
    fn reversed_and_tied_cases() {
        let s = [true, true, false, false];
        assert_eq!(roc_auc(&[0.9, 0.8, 0.1, 0.2], &s), 0.0);
        assert_eq!(roc_auc(&[0.5, 0.5, 0.5, 0.5], &s), 0.5, "all ties are a coin toss");
    }

    #[test]
    fn known_mixed_case() {
        // Positives at 0.1, 0.4; negatives at 0.3, 0.6. Of the 4 (pos, neg) orderings, 3 are right.
        let d = [0.1, 0.4, 0.3, 0.6];
        let s = [true, true, false, false];
        assert!((roc_auc(&d, &s) - 0.75).abs() < 1e-12);
        // Threshold 0.2: TAR 0.5, FAR 0 → accuracy 0.75; that is the best reachable.
        assert_eq!(accuracy_at(&d, &s, best_accuracy_threshold(&d, &s)), 0.75);
        assert_eq!(tar_at_far(&d, &s, 0.0), 0.5);
        assert_eq!(tar_at_far(&d, &s, 0.5), 1.0);
        // FAR 0 allows accepting 0.1 only: a threshold between 0.1 and 0.3.
        let strict = threshold_at_far(&d, &s, 0.0);
        assert!(strict > 0.1 && strict < 0.3, "{strict}");
        assert_eq!(accuracy_at(&d, &s, strict), 0.75);
        // Accepting 0.1 and 0.3 gives FAR 0.5 and FRR 0.5: equal.
        let (rate, threshold) = eer(&d, &s);
        assert_eq!(rate, 0.5);
        assert!(threshold > 0.3 && threshold < 0.4, "{threshold}");
        assert_eq!(accuracy_at(&d, &s, 0.5), 0.75);
    }
}
