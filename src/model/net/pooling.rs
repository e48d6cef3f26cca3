//! Global pooling of a feature map into one vector: average, or generalised mean (GeM).

use tch::nn;
use tch::{Kind, Tensor};

use crate::model::card::Pooling;

/// GeM's exponent starts at 3, the value its authors found to work well for retrieval.
pub(super) const GEM_INITIAL_P: f64 = 3.0;

/// GeM's learnt exponent under `vs` (`gem_p`), or `None` for average pooling.
pub(super) fn gem_exponent(vs: &nn::Path, pooling: Pooling) -> Option<Tensor> {
    (pooling == Pooling::Gem).then(|| vs.var("gem_p", &[1], nn::Init::Const(GEM_INITIAL_P)))
}

/// `[N, C, H, W]` → `[N, C]`: the spatial mean, or `(mean(x^p))^(1/p)` when `gem_p` is given.
pub(super) fn global_pool(x: &Tensor, gem_p: Option<&Tensor>) -> Tensor {
    match gem_p {
        None => x.mean_dim([2i64, 3].as_slice(), false, Kind::Float),
        Some(p) => {
            // Clamped so that the root stays finite; the inputs are ReLU outputs, ≥ 0 already.
            let p = p.clamp_min(1.0);
            x.clamp_min(1e-6)
                .pow(&p)
                .mean_dim([2i64, 3].as_slice(), false, Kind::Float)
                .pow(&p.reciprocal())
        }
    }
}
