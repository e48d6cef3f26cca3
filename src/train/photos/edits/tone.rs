//! Pixel-value edits: colour adjustments, blur / noise / sharpening, and rescaled JPEG recompression.

use image::codecs::jpeg::JpegEncoder;
use image::{Rgb, RgbImage};
use rand::Rng;

use super::raster::{gaussian_blur, resize, scaled, to_byte, FastNoise};
use super::recipe::{
    BLUR_SIGMA, COLOR_BRIGHTNESS, COLOR_CONTRAST, COLOR_GRAYSCALE_P, COLOR_KNOB_P, COLOR_LOG_GAMMA, COLOR_SATURATION,
    NOISE_SIGMA, RECOMPRESS_QUALITY, RECOMPRESS_SCALE, SHARPEN_AMOUNT, SHARPEN_SIGMA,
};

/// One drawn colour adjustment; each field at its identity value leaves pixels unchanged.
#[derive(Debug, Clone, Copy)]
struct ColorKnobs {
    gain: f32,
    contrast: f32,
    saturation: f32,
    gamma: f32,
}

/// `1 ± x` for `x` drawn from `range`: a visible change, either way.
fn either_way<R: Rng + ?Sized>(rng: &mut R, range: std::ops::RangeInclusive<f32>) -> f32 {
    let x = rng.gen_range(range);
    if rng.gen_bool(0.5) {
        1.0 + x
    } else {
        1.0 - x
    }
}

impl ColorKnobs {
    fn draw<R: Rng + ?Sized>(rng: &mut R) -> Self {
        let mut turned = [0; 4].map(|_| rng.gen_bool(COLOR_KNOB_P));
        if !turned.iter().any(|&t| t) {
            turned[rng.gen_range(0..4)] = true;
        }
        let mut knobs = Self {
            gain: 1.0,
            contrast: 1.0,
            saturation: 1.0,
            gamma: 1.0,
        };
        if turned[0] {
            knobs.gain = either_way(rng, COLOR_BRIGHTNESS);
        }
        if turned[1] {
            knobs.contrast = either_way(rng, COLOR_CONTRAST);
        }
        if turned[2] {
            knobs.saturation = either_way(rng, COLOR_SATURATION);
        }
        if turned[3] {
            // Symmetric in log space: gamma g and 1/g are equally strong.
            let log_gamma = rng.gen_range(COLOR_LOG_GAMMA);
            knobs.gamma = if rng.gen_bool(0.5) {
                log_gamma.exp()
            } else {
                (-log_gamma).exp()
            };
        }
        if rng.gen_bool(COLOR_GRAYSCALE_P) {
            knobs.saturation = 0.0;
        }
        knobs
    }
}

/// Mean Rec. 601 luma over 0 to 1, on a sparse grid (the contrast pivot needs no more precision).
fn mean_luma(image: &RgbImage) -> f32 {
    let (mut sum, mut n) = (0.0f32, 0u32);
    for p in image.pixels().step_by(7) {
        sum += super::raster::luma(*p);
        n += 1;
    }
    sum / n.max(1) as f32 / 255.0
}

/// Brightness, contrast, saturation and gamma, and sometimes full grayscale (see the `COLOR_*` recipe).
pub(super) fn color<R: Rng + ?Sized>(image: &RgbImage, rng: &mut R) -> RgbImage {
    let knobs = ColorKnobs::draw(rng);
    // The tone curve (gamma, gain, contrast about the mean) is the same for every channel: one table.
    let pivot = mean_luma(image).powf(knobs.gamma) * knobs.gain;
    let mut curve = [0f32; 256];
    for (v, out) in curve.iter_mut().enumerate() {
        let x = (v as f32 / 255.0).powf(knobs.gamma) * knobs.gain;
        *out = ((x - pivot) * knobs.contrast + pivot) * 255.0;
    }
    let mut out = image.clone();
    for p in out.pixels_mut() {
        let [r, g, b] = [curve[p[0] as usize], curve[p[1] as usize], curve[p[2] as usize]];
        let l = 0.299 * r + 0.587 * g + 0.114 * b;
        let byte = |c: f32| to_byte(l + (c - l) * knobs.saturation);
        *p = Rgb([byte(r), byte(g), byte(b)]);
    }
    out
}

/// Gaussian blur, additive noise, or an unsharp mask, one of the three at random.
pub(super) fn blur_noise<R: Rng + ?Sized>(image: &RgbImage, rng: &mut R) -> RgbImage {
    match rng.gen_range(0..3) {
        0 => gaussian_blur(image, rng.gen_range(BLUR_SIGMA)),
        1 => noise(image, rng),
        _ => sharpen(image, rng),
    }
}

/// Independent gaussian noise on every channel, of [`NOISE_SIGMA`] levels.
fn noise<R: Rng + ?Sized>(image: &RgbImage, rng: &mut R) -> RgbImage {
    let sigma = rng.gen_range(NOISE_SIGMA);
    let mut fast = FastNoise::from_rng(rng);
    let mut out = image.clone();
    for v in out.iter_mut() {
        *v = to_byte(f32::from(*v) + fast.normal() * sigma);
    }
    out
}

/// An unsharp mask: the image plus [`SHARPEN_AMOUNT`] times its difference from a blurred copy.
fn sharpen<R: Rng + ?Sized>(image: &RgbImage, rng: &mut R) -> RgbImage {
    let blurred = gaussian_blur(image, rng.gen_range(SHARPEN_SIGMA));
    let amount = rng.gen_range(SHARPEN_AMOUNT);
    let mut out = image.clone();
    for (v, b) in out.iter_mut().zip(blurred.iter()) {
        let (v0, b0) = (f32::from(*v), f32::from(*b));
        *v = to_byte(v0 + amount * (v0 - b0));
    }
    out
}

/// Rescaled by [`RECOMPRESS_SCALE`], then a JPEG round trip at [`RECOMPRESS_QUALITY`]; the result keeps the
/// smaller size, as a re-upload of a downloaded thumbnail would.
pub(super) fn recompress<R: Rng + ?Sized>(image: &RgbImage, rng: &mut R) -> RgbImage {
    let scale = rng.gen_range(RECOMPRESS_SCALE);
    let (w, h) = scaled(image.width(), image.height(), scale);
    let small = resize(image, w, h);
    jpeg_round_trip(&small, rng.gen_range(RECOMPRESS_QUALITY))
}

/// `image` encoded as a JPEG at `quality` and decoded again.
pub(super) fn jpeg_round_trip(image: &RgbImage, quality: u8) -> RgbImage {
    let mut bytes = Vec::new();
    JpegEncoder::new_with_quality(&mut bytes, quality)
        .encode_image(image)
        .expect("encoding an in-memory RGB image of at most MAX_SIDE as JPEG succeeds; this is a bug");
    image::load_from_memory_with_format(&bytes, image::ImageFormat::Jpeg)
        .expect("a JPEG just encoded decodes; this is a bug")
        .to_rgb8()
}
