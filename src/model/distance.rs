//! The Euclidean distance between embeddings, as the seed defines it, on tensors and on plain vectors.

#[cfg(any(test, feature = "train"))]
use tch::{Kind, Tensor};

/// Keeps the square root differentiable where two embeddings coincide (the seed's `K.epsilon()`).
pub(crate) const EPSILON: f64 = 1e-7;

/// Row-wise `sqrt(max(sum((a - b)^2), eps))` for two `[N, D]` batches; returns `[N]` (training's loss).
#[cfg(any(test, feature = "train"))]
pub(crate) fn euclidean(a: &Tensor, b: &Tensor) -> Tensor {
    (a - b)
        .square()
        .sum_dim_intlist(1, false, Kind::Float)
        .clamp_min(EPSILON)
        .sqrt()
}

/// The same distance for two embeddings already copied out of libtorch.
pub(crate) fn euclidean_vec(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(
        a.len(),
        b.len(),
        "embeddings of one model share a length; this is a bug"
    );
    let sum: f64 = a.iter().zip(b).map(|(x, y)| f64::from(x - y).powi(2)).sum();
    sum.max(EPSILON).sqrt() as f32
}

/// Lanes of the squared-distance accumulator: eight independent sums let LLVM keep them in SIMD registers
/// (a single running sum would force the additions into sequence).
const LANES: usize = 8;

/// `sum((a - b)^2)` in `LANES` independent accumulators: the inner loop of every scan over stored
/// embeddings.
pub(crate) fn squared_euclidean(a: &[f32], b: &[f32]) -> f32 {
    let mut lanes = [0.0f32; LANES];
    let (a_body, a_tail) = a.split_at(a.len() - a.len() % LANES);
    let (b_body, b_tail) = b.split_at(a_body.len());
    for (x, y) in a_body.chunks_exact(LANES).zip(b_body.chunks_exact(LANES)) {
        for i in 0..LANES {
            let d = x[i] - y[i];
            lanes[i] += d * d;
        }
    }
    let tail: f32 = a_tail.iter().zip(b_tail).map(|(x, y)| (x - y) * (x - y)).sum();
    lanes.iter().sum::<f32>() + tail
}

/// The distance from a squared one, clamped as [`euclidean_vec`] clamps it.
pub(crate) fn from_squared(squared: f32) -> f32 {
    (f64::from(squared).max(EPSILON)).sqrt() as f32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lane_distance_matches_the_plain_one() {
        let a: Vec<f32> = (0..13).map(|i| i as f32 * 0.1).collect();
        let b: Vec<f32> = (0..13).map(|i| 1.0 - i as f32 * 0.05).collect();

        assert!((from_squared(squared_euclidean(&a, &b)) - euclidean_vec(&a, &b)).abs() < 1e-5);
    }

    #[test]
    fn tensor_and_vector_forms_agree() {
        let a = Tensor::from_slice(&[0.0f32, 3.0, 1.0, 1.0]).view([2, 2]);
        let b = Tensor::from_slice(&[4.0f32, 0.0, 1.0, 1.0]).view([2, 2]);
        let d = Vec::<f32>::try_from(euclidean(&a, &b)).unwrap();
        assert!((d[0] - 5.0).abs() < 1e-6);
        assert!(
            (d[1] - EPSILON.sqrt() as f32).abs() < 1e-6,
            "identical rows clamp to sqrt(eps)"
        );
        assert!((euclidean_vec(&[0.0, 3.0], &[4.0, 0.0]) - 5.0).abs() < 1e-6);
    }
}
