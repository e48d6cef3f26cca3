//! The Euclidean distance between embeddings, as the seed defines it, on tensors and on plain vectors.

use tch::{Kind, Tensor};

/// Keeps the square root differentiable where two embeddings coincide (the seed's `K.epsilon()`).
pub const EPSILON: f64 = 1e-7;

/// Row-wise `sqrt(max(sum((a - b)^2), eps))` for two `[N, D]` batches; returns `[N]`.
pub fn euclidean(a: &Tensor, b: &Tensor) -> Tensor {
    (a - b)
        .square()
        .sum_dim_intlist(1, false, Kind::Float)
        .clamp_min(EPSILON)
        .sqrt()
}

/// The same distance for two embeddings already copied out of libtorch.
pub fn euclidean_vec(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(
        a.len(),
        b.len(),
        "embeddings of one model share a length; this is a bug"
    );
    let sum: f64 = a.iter().zip(b).map(|(x, y)| f64::from(x - y).powi(2)).sum();
    sum.max(EPSILON).sqrt() as f32
}

#[cfg(test)]
mod tests {
    use super::*;

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
