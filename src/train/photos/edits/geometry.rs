//! Geometric edits: crop, mirror, rotation and aspect-ratio change.

use image::imageops;
use image::RgbImage;
use rand::Rng;

use super::raster::{resize, rotate_on_white};
use super::recipe::{ASPECT_MIN_CHANGE, ASPECT_STRETCH, CROP_AREA, CROP_LOG_ASPECT, ROTATE_DEGREES};

/// A random crop keeping [`CROP_AREA`] of the area, its aspect ratio jittered by [`CROP_LOG_ASPECT`].
pub(super) fn crop<R: Rng + ?Sized>(image: &RgbImage, rng: &mut R) -> RgbImage {
    let (w, h) = image.dimensions();
    let area = rng.gen_range(CROP_AREA);
    let aspect = rng.gen_range(-CROP_LOG_ASPECT..=CROP_LOG_ASPECT).exp();
    let side = |full: u32, share: f32| ((full as f32 * share.sqrt()).round() as u32).clamp(1, full.max(1));
    let (cw, ch) = (side(w, area * aspect), side(h, area / aspect));
    let x = rng.gen_range(0..=w.saturating_sub(cw));
    let y = rng.gen_range(0..=h.saturating_sub(ch));
    imageops::crop_imm(image, x, y, cw, ch).to_image()
}

/// A horizontal flip.
pub(super) fn mirror(image: &RgbImage) -> RgbImage {
    imageops::flip_horizontal(image)
}

/// A rotation by [`ROTATE_DEGREES`] either way about the centre, on the same canvas; the corners it uncovers
/// are white, as an editor's rotate tool leaves them.
pub(super) fn rotate<R: Rng + ?Sized>(image: &RgbImage, rng: &mut R) -> RgbImage {
    let degrees = rng.gen_range(ROTATE_DEGREES) * if rng.gen_bool(0.5) { 1.0 } else { -1.0 };
    rotate_on_white(image, degrees.to_radians())
}

/// One axis (drawn at random) scaled within [`ASPECT_STRETCH`], by at least [`ASPECT_MIN_CHANGE`].
pub(super) fn aspect<R: Rng + ?Sized>(image: &RgbImage, rng: &mut R) -> RgbImage {
    let (lo, hi) = (*ASPECT_STRETCH.start(), *ASPECT_STRETCH.end());
    let factor = if rng.gen_bool(0.5) {
        rng.gen_range(lo..=1.0 - ASPECT_MIN_CHANGE)
    } else {
        rng.gen_range(1.0 + ASPECT_MIN_CHANGE..=hi)
    };
    let (w, h) = image.dimensions();
    let stretched = |side: u32| ((side as f32 * factor).round() as u32).max(1);
    if rng.gen_bool(0.5) {
        resize(image, stretched(w), h)
    } else {
        resize(image, w, stretched(h))
    }
}
