//! The recipe: how strong each edit family is, kept in one place so that a model card can quote it.
//!
//! Ranges are inclusive and drawn uniformly unless a constant says otherwise. Where a range does not start
//! at "no change" (brightness, rotation, ...), the edit's direction is drawn separately, so that every edit
//! is a visible one.

use std::ops::RangeInclusive;

/// Largest side of any edit's output, in pixels; larger sources are shrunk before editing.
pub(crate) const MAX_SIDE: u32 = 320;
/// Smallest side of any edit's output, in pixels; smaller results are enlarged.
pub(crate) const MIN_SIDE: u32 = 8;

/// `random_view`: the share of views that are the flattened source itself.
pub(crate) const VIEW_UNCHANGED_P: f64 = 0.1;
/// `random_view`: at most this many distinct families are composed (at least one, uniformly).
pub(crate) const VIEW_MAX_FAMILIES: usize = 3;

/// `crop`: the share of the source's area a crop keeps.
pub(crate) const CROP_AREA: RangeInclusive<f32> = 0.5..=0.9;
/// `crop`: the crop's aspect ratio is the source's times `exp(u)`, `u` drawn from `±CROP_LOG_ASPECT`.
pub(crate) const CROP_LOG_ASPECT: f32 = 0.15;

/// `recompress`: the rescaled side over the source's side, before the JPEG round trip.
pub(crate) const RECOMPRESS_SCALE: RangeInclusive<f32> = 0.3..=1.0;
/// `recompress`: JPEG quality.
pub(crate) const RECOMPRESS_QUALITY: RangeInclusive<u8> = 20..=95;

/// `color`: each knob (brightness, contrast, saturation, gamma) is turned with this probability; at least
/// one always is.
pub(crate) const COLOR_KNOB_P: f64 = 0.6;
/// `color`: brightness gain `1 ± b`.
pub(crate) const COLOR_BRIGHTNESS: RangeInclusive<f32> = 0.1..=0.35;
/// `color`: contrast `1 ± c` about the mean luminance.
pub(crate) const COLOR_CONTRAST: RangeInclusive<f32> = 0.15..=0.45;
/// `color`: saturation `1 ± s` (the mix between each pixel and its luminance).
pub(crate) const COLOR_SATURATION: RangeInclusive<f32> = 0.3..=0.7;
/// `color`: gamma `exp(±g)`, about 0.6 to 1.65 at the ends.
pub(crate) const COLOR_LOG_GAMMA: RangeInclusive<f32> = 0.15..=0.5;
/// `color`: the probability of full grayscale (saturation zero) instead of the saturation knob.
pub(crate) const COLOR_GRAYSCALE_P: f64 = 0.2;

/// `blur_noise`: gaussian blur sigma, in pixels.
pub(crate) const BLUR_SIGMA: RangeInclusive<f32> = 0.8..=2.5;
/// `blur_noise`: additive noise standard deviation, in 8-bit levels, independent per channel.
pub(crate) const NOISE_SIGMA: RangeInclusive<f32> = 6.0..=20.0;
/// `blur_noise`: unsharp-mask blur sigma, in pixels.
pub(crate) const SHARPEN_SIGMA: RangeInclusive<f32> = 0.8..=2.0;
/// `blur_noise`: unsharp-mask amount (`out = in + amount * (in - blurred)`).
pub(crate) const SHARPEN_AMOUNT: RangeInclusive<f32> = 0.8..=2.0;

/// `rotate`: rotation magnitude in degrees, either way; corners left uncovered are white.
pub(crate) const ROTATE_DEGREES: RangeInclusive<f32> = 2.0..=15.0;

/// `aspect`: one axis (drawn at random) is scaled by this factor ...
pub(crate) const ASPECT_STRETCH: RangeInclusive<f32> = 0.7..=1.4;
/// `aspect`: ... but by at least this much either way, so the change is visible.
pub(crate) const ASPECT_MIN_CHANGE: f32 = 0.08;

/// `border`: letterboxing to a square or a 4:3, 3:4 or 16:9 rectangle adds this share of the longest side as
/// margin, less where the canvas would exceed twice the photo's longest side.
pub(crate) const BORDER_PAD: RangeInclusive<f32> = 0.08..=0.4;
/// `border`: a frame's thickness as a share of the shorter side.
pub(crate) const BORDER_FRAME: RangeInclusive<f32> = 0.03..=0.12;
/// `border`: the probability that padding is white rather than coloured.
pub(crate) const BORDER_WHITE_P: f64 = 0.5;

/// `overlay`: the fixed banner texts; generated prices (`$NN.99`) and discounts (`-NN%`) come on top.
pub(crate) const BANNER_TEXTS: [&str; 12] = [
    "SALE",
    "-50%",
    "NEW",
    "FREE SHIPPING",
    "$19.99",
    "HOT DEAL",
    "BEST SELLER",
    "LIMITED",
    "-30%",
    "$9.99",
    "2 FOR 1",
    "IN STOCK",
];
/// `overlay`: a banner bar's height as a share of the image height.
pub(crate) const BANNER_HEIGHT: RangeInclusive<f32> = 0.12..=0.22;
/// `overlay`: a logo's size as a share of the shorter side.
pub(crate) const LOGO_SIZE: RangeInclusive<f32> = 0.22..=0.35;
/// `overlay`: the tiled watermark texts.
pub(crate) const WATERMARK_TEXTS: [&str; 6] = ["SAMPLE", "© SHOP", "WATERMARK", "mystore.com", "PREVIEW", "COPYRIGHT"];
/// `overlay`: the watermark's opacity.
pub(crate) const WATERMARK_ALPHA: RangeInclusive<f32> = 0.25..=0.5;
/// `overlay`: the watermark's text height as a share of the image height.
pub(crate) const WATERMARK_SIZE: RangeInclusive<f32> = 0.07..=0.13;
/// `overlay`: the watermark's slant in degrees, either way.
pub(crate) const WATERMARK_DEGREES: RangeInclusive<f32> = 0.0..=35.0;

/// `canvas`: the canvas's longest side is this times the photo's, at most [`MAX_SIDE`].
pub(crate) const CANVAS_SCALE: f32 = 2.0;
/// `canvas`: the photo's width as a share of the canvas width (listing layout; a collage cell is 1/2 or 1/3).
pub(crate) const CANVAS_PHOTO_WIDTH: RangeInclusive<f32> = 0.2..=0.5;

/// `cutout`: the source's alpha is trusted when at least this share of pixels is transparent (alpha < 128)
/// and at least this share is opaque.
pub(crate) const CUTOUT_MIN_TRANSPARENT: f32 = 0.02;
/// `cutout`: without alpha, a pixel is background below the first summed RGB distance from the border colour,
/// object above the second, and partly both in between.
pub(crate) const CUTOUT_MASK_DISTANCE: (f32, f32) = (30.0, 75.0);
/// `cutout`: a mask covering less or more than this share of the image is not trusted; the whole photo is
/// placed on the background instead.
pub(crate) const CUTOUT_MASK_COVERAGE: RangeInclusive<f32> = 0.03..=0.9;
/// `cutout`: the whole photo's scale on the background when no mask is trusted.
pub(crate) const CUTOUT_FALLBACK_SCALE: RangeInclusive<f32> = 0.7..=0.92;
