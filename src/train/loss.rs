//! The losses: the seed's contrastive loss over pairs, and NT-Xent over two views of each source (near-duplicates).

use tch::{Kind, Tensor};

use crate::model::distance::EPSILON;
use crate::model::net::l2_normalize;

/// `mean(y·max(d − positive_margin, 0)² + (1 − y)·max(margin − d, 0)²)` with `y = 1` for a similar pair.
///
/// With `positive_margin = 0` this is the seed's loss. A positive margin stops pulling similar pairs
/// together once they are close enough, so each class keeps some spread instead of collapsing to a
/// point, which leaves room in the embedding for classes never seen in training.
pub(crate) fn contrastive(distance: &Tensor, similar: &Tensor, margin: f64, positive_margin: f64) -> Tensor {
    let excess: Tensor = (distance - positive_margin).clamp_min(0.0);
    let positive: Tensor = similar * excess.square();
    let dissimilar: Tensor = similar.ones_like() - similar;
    let shortfall: Tensor = (distance.neg() + margin).clamp_min(0.0);
    let negative: Tensor = dissimilar * shortfall.square();
    (positive + negative).mean(Kind::Float)
}

/// The same loss over every pair of a batch of embeddings `[N, D]` with class `labels` `[N]`:
/// N(N−1)/2 pairs instead of N/2, most of them dissimilar, so the two kinds are averaged separately
/// and weighted equally, as in the seed's balanced pairs.
pub(crate) fn contrastive_all_pairs(embeddings: &Tensor, labels: &Tensor, margin: f64, positive_margin: f64) -> Tensor {
    let n = embeddings.size()[0];
    let options = (Kind::Float, embeddings.device());
    let diff = embeddings.unsqueeze(1) - embeddings.unsqueeze(0);
    let distance = diff
        .square()
        .sum_dim_intlist(2, false, Kind::Float)
        .clamp_min(EPSILON)
        .sqrt();
    let upper = Tensor::ones([n, n], options).triu(1);
    let same = labels.unsqueeze(1).eq_tensor(&labels.unsqueeze(0)).to_kind(Kind::Float);
    let positive_mask: Tensor = &upper * &same;
    let negative_mask: Tensor = &upper * (same.ones_like() - &same);
    let pull = (&distance - positive_margin).clamp_min(0.0).square();
    let push = (distance.neg() + margin).clamp_min(0.0).square();
    let mean_over =
        |values: Tensor, mask: &Tensor| (values * mask).sum(Kind::Float) / mask.sum(Kind::Float).clamp_min(1.0);
    (mean_over(pull, &positive_mask) + mean_over(push, &negative_mask)) * 0.5
}

/// NT-Xent (InfoNCE, as in SimCLR) over `2B` embeddings where rows `i` and `i + B` are two views of one
/// source: each view must pick out its partner among all `2B − 1` others and the `memory`'s views, with
/// cosine similarities divided by `temperature`. Every other view in the batch is a negative, and the
/// softmax weights the hardest ones most, which is what lets a small batch teach a strict threshold.
/// The memory holds views of earlier steps as further negatives: a cross-batch memory (MoCo, XBM) that
/// shows each view many more unrelated images than one batch holds.
pub(crate) fn nt_xent(embeddings: &Tensor, memory: Option<&Negatives>, temperature: f64) -> Tensor {
    let n = embeddings.size()[0];
    assert!(n % 2 == 0, "two views per source; this is a bug");
    let z = l2_normalize(embeddings);
    let similarity = z.matmul(&z.tr()) / temperature;
    // A view is not its own candidate.
    let self_mask = Tensor::eye(n, (Kind::Bool, embeddings.device()));
    let mut logits = similarity.masked_fill(&self_mask, f64::NEG_INFINITY);
    if let Some(memory) = memory {
        let remembered = (z.matmul(&memory.views.tr()) / temperature).masked_fill(&memory.excluded, f64::NEG_INFINITY);
        logits = Tensor::cat(&[logits, remembered], 1);
    }
    let half = n / 2;
    let targets = Tensor::arange(n, (Kind::Int64, embeddings.device()));
    let targets = (targets + half).remainder(n);
    logits.cross_entropy_for_logits(&targets)
}

/// A batch's negatives from the [`NegativeMemory`]: `views` `[M, D]` (unit length, no gradient), and
/// `excluded` `[2B, M]`, true where a remembered view is of the batch row's own source and so no negative.
pub(crate) struct Negatives {
    views: Tensor,
    excluded: Tensor,
}

/// The last `capacity` unit-length views the trainer saw, newest first, each with its source's index.
pub(crate) struct NegativeMemory {
    capacity: i64,
    /// Views `[M, D]` and their sources `[M]`.
    kept: Option<(Tensor, Tensor)>,
}

impl NegativeMemory {
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            capacity: capacity as i64,
            kept: None,
        }
    }

    /// The negatives for a batch whose rows show `sources` (`[2B]`): every kept view, less those of a row's
    /// own source (a source seen again within the memory's reach, as in a small folder, is no negative).
    /// `None` while nothing is kept.
    pub(crate) fn negatives_for(&self, sources: &Tensor) -> Option<Negatives> {
        let (views, kept_sources) = self.kept.as_ref()?;
        Some(Negatives {
            views: views.shallow_clone(),
            excluded: sources.unsqueeze(1).eq_tensor(&kept_sources.unsqueeze(0)),
        })
    }

    /// Adds a batch's views and their sources; the oldest fall out beyond the capacity.
    pub(crate) fn push(&mut self, embeddings: &Tensor, sources: &Tensor) {
        if self.capacity == 0 {
            return;
        }
        let fresh = (l2_normalize(&embeddings.detach()), sources.shallow_clone());
        let (views, kept_sources) = match self.kept.take() {
            Some((views, kept_sources)) => (
                Tensor::cat(&[fresh.0, views], 0),
                Tensor::cat(&[fresh.1, kept_sources], 0),
            ),
            None => fresh,
        };
        let kept = views.size()[0].min(self.capacity);
        self.kept = Some((views.narrow(0, 0, kept), kept_sources.narrow(0, 0, kept)));
    }
}

/// SSCD's entropy regulariser (Kozachenko–Leonenko): `−mean(log(distance to the nearest other view))` over
/// `2B` unit-length embeddings, the partner view excluded. It spreads the embeddings over the sphere,
/// which keeps unrelated images apart and the distance threshold meaningful.
pub(crate) fn koleo(embeddings: &Tensor) -> Tensor {
    let n = embeddings.size()[0];
    let options = (Kind::Bool, embeddings.device());
    let half = n / 2;
    let partners = Tensor::eye(half, options).repeat([2, 2]);
    let excluded = Tensor::eye(n, options).logical_or(&partners);
    let distance = Tensor::cdist(embeddings, embeddings, 2.0, None::<i64>).masked_fill(&excluded, f64::INFINITY);
    let (nearest, _) = distance.min_dim(1, false);
    (nearest + 1e-8).log().mean(Kind::Float).neg()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_hand_computed_values() {
        let d = Tensor::from_slice(&[0.5f32, 0.25, 1.5, 0.0]);
        let y = Tensor::from_slice(&[1.0f32, 0.0, 0.0, 1.0]);
        // similar 0.5 → 0.25; dissimilar 0.25 → (0.75)² = 0.5625; dissimilar 1.5 → 0; similar 0 → 0.
        let expected = (0.25 + 0.5625 + 0.0 + 0.0) / 4.0;
        let loss = f64::try_from(contrastive(&d, &y, 1.0, 0.0)).unwrap();
        assert!((loss - expected).abs() < 1e-6, "{loss} != {expected}");
        let wider = f64::try_from(contrastive(&d, &y, 2.0, 0.0)).unwrap();
        let expected_wider = (0.25 + 1.75f64.powi(2) + 0.25 + 0.0) / 4.0;
        assert!((wider - expected_wider).abs() < 1e-6);
        // A positive margin of 0.3: the similar pair at 0.5 costs (0.2)², the one at 0 nothing.
        let relaxed = f64::try_from(contrastive(&d, &y, 1.0, 0.3)).unwrap();
        let expected_relaxed = (0.04 + 0.5625) / 4.0;
        assert!(
            (relaxed - expected_relaxed).abs() < 1e-6,
            "{relaxed} != {expected_relaxed}"
        );
    }

    #[test]
    fn nt_xent_matches_hand_computed_values() {
        // Four views on the unit circle: 0 and 2 are one source at angle 0 and 90°, 1 and 3 the other.
        let e = Tensor::from_slice(&[1.0f32, 0.0, 0.0, 1.0, 0.0, 1.0, -1.0, 0.0]).view([4, 2]);
        let t = 0.5;
        // View 0: partner 2 at cos 0, others at cos 0 (view 1) and −1 (view 3).
        let row0 = -(0.0f64 / t) + (2.0 * (0.0f64 / t).exp() + (-1.0f64 / t).exp()).ln();
        // View 1: partner 3 at cos 0; others 0 at cos 0 and 2 at cos 1.
        let row1 = -(0.0f64 / t) + ((0.0f64 / t).exp() * 2.0 + (1.0f64 / t).exp()).ln();
        // By symmetry view 2 is like view 1 and view 3 like view 0.
        let expected = (row0 + row1) / 2.0;
        let loss = f64::try_from(nt_xent(&e, None, t)).unwrap();
        assert!((loss - expected).abs() < 1e-5, "{loss} != {expected}");
    }

    #[test]
    fn nt_xent_is_low_when_views_agree_and_high_when_they_do_not() {
        let agree = Tensor::from_slice(&[1.0f32, 0.0, 0.0, 1.0, 1.0, 0.0, 0.0, 1.0]).view([4, 2]);
        let swapped = Tensor::from_slice(&[1.0f32, 0.0, 0.0, 1.0, 0.0, 1.0, 1.0, 0.0]).view([4, 2]);
        let good = f64::try_from(nt_xent(&agree, None, 0.1)).unwrap();
        let bad = f64::try_from(nt_xent(&swapped, None, 0.1)).unwrap();
        assert!(good < 0.01 && bad > 5.0, "{good} {bad}");
    }

    #[test]
    fn nt_xent_counts_the_memory_as_negatives_but_not_a_rows_own_source() {
        // Two sources on the unit circle whose views agree: views 0 and 2 at 0°, 1 and 3 at 90°.
        let e = Tensor::from_slice(&[1.0f32, 0.0, 0.0, 1.0, 1.0, 0.0, 0.0, 1.0]).view([4, 2]);
        let sources = Tensor::from_slice(&[10i64, 11, 10, 11]);
        // Remembered: source 12 at 0°, source 13 at 180°, and source 10 itself (at 0°) from an earlier step.
        let mut memory = NegativeMemory::new(3);
        memory.push(
            &Tensor::from_slice(&[1.0f32, 0.0]).view([1, 2]),
            &Tensor::from_slice(&[10i64]),
        );
        memory.push(
            &Tensor::from_slice(&[2.0f32, 0.0, -1.0, 0.0]).view([2, 2]),
            &Tensor::from_slice(&[12i64, 13]),
        );
        let t = 0.5;
        let exp = |cos: f64| (cos / t).exp();
        // View 0: partner at cos 1 among views at cos 0, 1 (partner), 0 and remembered views at cos 1 and −1
        // (its own source's is left out); view 1: partner at cos 1 among views at cos 0, 0, and remembered
        // views at cos 0, 0 and 0. Views 2 and 3 alike.
        let row0 = -(1.0 / t) + (exp(0.0) * 2.0 + exp(1.0) * 2.0 + exp(-1.0)).ln();
        let row1 = -(1.0 / t) + (exp(0.0) * 5.0 + exp(1.0)).ln();
        let expected = (row0 + row1) / 2.0;
        let negatives = memory.negatives_for(&sources).unwrap();
        let loss = f64::try_from(nt_xent(&e, Some(&negatives), t)).unwrap();
        assert!((loss - expected).abs() < 1e-5, "{loss} != {expected}");
        assert!(loss > f64::try_from(nt_xent(&e, None, t)).unwrap());
    }

    #[test]
    fn negative_memory_keeps_the_newest_views_at_unit_length() {
        let mut memory = NegativeMemory::new(3);
        let ids = Tensor::from_slice(&[0i64, 1]);
        assert!(memory.negatives_for(&ids).is_none());
        memory.push(&Tensor::from_slice(&[2.0f32, 0.0, 0.0, 3.0]).view([2, 2]), &ids);
        memory.push(&Tensor::from_slice(&[0.0f32, -4.0, -1.0, 0.0]).view([2, 2]), &ids);
        let negatives = memory.negatives_for(&ids).unwrap();
        let kept = Vec::<f32>::try_from(negatives.views.flatten(0, 1)).unwrap();
        // The second batch first, then the first batch's first view; its second fell out.
        assert_eq!(kept, vec![0.0, -1.0, -1.0, 0.0, 1.0, 0.0]);

        let mut off = NegativeMemory::new(0);
        off.push(
            &Tensor::from_slice(&[1.0f32, 0.0]).view([1, 2]),
            &Tensor::from_slice(&[0i64]),
        );
        assert!(off.negatives_for(&ids).is_none());
    }

    #[test]
    fn all_pairs_matches_hand_computed_values() {
        // Points on a line: class 0 at 0.0 and 0.5, class 1 at 0.75.
        let e = Tensor::from_slice(&[0.0f32, 0.5, 0.75]).view([3, 1]);
        let labels = Tensor::from_slice(&[0i64, 0, 1]);
        // One similar pair at 0.5 → 0.25. Dissimilar pairs at 0.75 and 0.25 → (0.0625 + 0.5625) / 2.
        let expected = (0.25 + (0.0625 + 0.5625) / 2.0) / 2.0;
        let loss = f64::try_from(contrastive_all_pairs(&e, &labels, 1.0, 0.0)).unwrap();
        assert!((loss - expected).abs() < 1e-6, "{loss} != {expected}");
    }

    #[test]
    fn koleo_is_lower_for_spread_out_embeddings_and_ignores_the_partner_view() {
        // Four sources, two views each; rows i and i + 4 are partners.
        let spread = Tensor::eye(8, (Kind::Float, tch::Device::Cpu));
        let crowded = (Tensor::ones([8, 8], (Kind::Float, tch::Device::Cpu)) * 0.35 + &spread * 0.05)
            / (0.35f64 * 0.35 * 8.0).sqrt();
        let partners_together = Tensor::cat(&[spread.narrow(0, 0, 4), spread.narrow(0, 0, 4)], 0);

        let (spread_loss, crowded_loss) = (koleo(&spread).double_value(&[]), koleo(&crowded).double_value(&[]));
        let partners_loss = koleo(&partners_together).double_value(&[]);

        assert!(spread_loss < crowded_loss, "{spread_loss} vs {crowded_loss}");
        assert!(
            partners_loss.is_finite(),
            "identical partner views are not each other's neighbours"
        );
    }
}
