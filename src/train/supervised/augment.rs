//! Random small affine jitter of a training batch: the same digit or product, seen slightly differently.

use std::f64::consts::PI;

use tch::{Kind, Tensor};

/// Up to this rotation either way, in degrees.
const MAX_ROTATION_DEG: f64 = 12.0;
/// Scale drawn from `1 ± MAX_SCALE`.
const MAX_SCALE: f64 = 0.1;
/// Shift up to this share of the half-width (the sampler's coordinates run from −1 to 1).
const MAX_SHIFT: f64 = 0.12;

/// Rotates, scales and shifts every image of `[N, C, H, W]` by its own random amount (tch's seeded
/// generator), filling uncovered pixels with zero, the background after normalisation.
pub(crate) fn random_affine(images: &Tensor) -> Tensor {
    let n = images.size()[0];
    let options = (Kind::Float, images.device());
    let uniform = |half_range: f64| (Tensor::rand([n], options) * 2.0 - 1.0) * half_range;
    let angle = uniform(MAX_ROTATION_DEG * PI / 180.0);
    let scale = uniform(MAX_SCALE) + 1.0;
    let (cos, sin) = (angle.cos() / &scale, angle.sin() / &scale);
    let theta = Tensor::stack(
        &[
            Tensor::stack(&[&cos, &(-&sin), &uniform(MAX_SHIFT)], 1),
            Tensor::stack(&[&sin, &cos, &uniform(MAX_SHIFT)], 1),
        ],
        1,
    );
    let grid = Tensor::affine_grid_generator(&theta, images.size(), false);
    // Bilinear interpolation (0), zero padding (0).
    images.grid_sampler(&grid, 0, 0, false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_shape_and_mostly_keeps_content() {
        tch::manual_seed(3);
        let images = Tensor::zeros([4, 1, 28, 28], (Kind::Float, tch::Device::Cpu));
        let _ = images.narrow(2, 8, 12).narrow(3, 8, 12).fill_(1.0);
        let out = random_affine(&images);
        assert_eq!(out.size(), images.size());
        let before = f64::try_from(images.sum(Kind::Float)).unwrap();
        let after = f64::try_from(out.sum(Kind::Float)).unwrap();
        assert!((after / before - 1.0).abs() < 0.35, "mass {before} became {after}");
        assert!(
            f64::try_from((&out - &images).abs().sum(Kind::Float)).unwrap() > 0.0,
            "it moved"
        );
    }
}
