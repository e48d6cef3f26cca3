//! The contrastive loss of the seed: pull similar pairs together, push dissimilar ones past a margin.

use tch::Tensor;

/// `mean(y·d² + (1 − y)·max(margin − d, 0)²)` with `y = 1` for a similar pair.
pub fn contrastive(distance: &Tensor, similar: &Tensor, margin: f64) -> Tensor {
    let positive: Tensor = similar * distance.square();
    let dissimilar: Tensor = similar.ones_like() - similar;
    let shortfall: Tensor = (distance.neg() + margin).clamp_min(0.0);
    let negative: Tensor = dissimilar * shortfall.square();
    (positive + negative).mean(tch::Kind::Float)
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
        let loss = f64::try_from(contrastive(&d, &y, 1.0)).unwrap();
        assert!((loss - expected).abs() < 1e-6, "{loss} != {expected}");
        let wider = f64::try_from(contrastive(&d, &y, 2.0)).unwrap();
        let expected_wider = (0.25 + 1.75f64.powi(2) + 0.25 + 0.0) / 4.0;
        assert!((wider - expected_wider).abs() < 1e-6);
    }
}
