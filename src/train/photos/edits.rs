//! The edits marketplaces see (crops, recompression, banners, ...), applied at random to make near-duplicate pairs.
//!
//! Every edit takes a source (RGBA, possibly a transparent cut-out), works on it flattened over white (what a
//! seller's first upload looks like) except `cutout`, which needs the alpha, and returns an RGB image of
//! [`recipe::MIN_SIDE`] to [`recipe::MAX_SIDE`] px a side. Edits are pure functions of the source and the RNG,
//! so a seed fixes them. How strong each family is lives in [`recipe`].

mod cutout;
mod geometry;
mod grid;
mod layout;
mod overlay;
mod raster;
pub(crate) mod recipe;
mod tone;

#[cfg(test)]
mod tests;

use std::fmt;

pub(crate) use image::{RgbImage, RgbaImage};
use rand::seq::SliceRandom;
use serde::{Deserialize, Serialize};

use raster::{bound, shrink_rgba};
use recipe::{VIEW_MAX_FAMILIES, VIEW_UNCHANGED_P};

/// One kind of edit a seller makes before re-uploading a photo. Evaluation labels each edited test pair with
/// exactly one family; serialised as [`EditFamily::name`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EditFamily {
    /// A random crop keeping 50% to 90% of the area.
    Crop,
    /// Rescaled to 0.3x to 1x, then a JPEG round trip at quality 20 to 95.
    Recompress,
    /// Brightness, contrast, saturation, gamma, and sometimes full grayscale.
    Color,
    /// Gaussian blur, additive noise, or sharpening.
    BlurNoise,
    /// A horizontal flip.
    Mirror,
    /// A small rotation (up to 15 degrees), uncovered corners white.
    Rotate,
    /// One axis stretched or squeezed (0.7x to 1.4x).
    Aspect,
    /// Padding to a square or rectangle (white or coloured), or a solid frame.
    Border,
    /// A text banner or sticker, a small logo, or a tiled semi-transparent watermark.
    Overlay,
    /// The photo small in a listing screenshot or a collage.
    Canvas,
    /// The object cut out and put on a generated, non-white background.
    Cutout,
}

impl EditFamily {
    /// Every family, in a fixed order (the order of evaluation reports and of the augmentation grid).
    pub const ALL: [EditFamily; 11] = [
        EditFamily::Crop,
        EditFamily::Recompress,
        EditFamily::Color,
        EditFamily::BlurNoise,
        EditFamily::Mirror,
        EditFamily::Rotate,
        EditFamily::Aspect,
        EditFamily::Border,
        EditFamily::Overlay,
        EditFamily::Canvas,
        EditFamily::Cutout,
    ];

    /// The snake_case name, as serialised and as reports key their per-family figures.
    pub fn name(self) -> &'static str {
        match self {
            EditFamily::Crop => "crop",
            EditFamily::Recompress => "recompress",
            EditFamily::Color => "color",
            EditFamily::BlurNoise => "blur_noise",
            EditFamily::Mirror => "mirror",
            EditFamily::Rotate => "rotate",
            EditFamily::Aspect => "aspect",
            EditFamily::Border => "border",
            EditFamily::Overlay => "overlay",
            EditFamily::Canvas => "canvas",
            EditFamily::Cutout => "cutout",
        }
    }

    /// When the family runs in a composed view: the cut-out first (it needs the source's alpha), then
    /// geometry, colour, layout onto a larger canvas, overlays, and recompression last, as a seller's
    /// editor and then the upload would.
    fn stage(self) -> u8 {
        match self {
            EditFamily::Cutout => 0,
            EditFamily::Crop | EditFamily::Aspect | EditFamily::Rotate | EditFamily::Mirror => 1,
            EditFamily::Color | EditFamily::BlurNoise => 2,
            EditFamily::Border | EditFamily::Canvas => 3,
            EditFamily::Overlay => 4,
            EditFamily::Recompress => 5,
        }
    }
}

impl fmt::Display for EditFamily {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Flattens a source over white: what a seller's original upload looks like. Same size as the source.
pub fn flatten(source: &RgbaImage) -> RgbImage {
    let mut out = vec![255u8; source.as_raw().len() / 4 * 3];
    for (dst, src) in out.chunks_exact_mut(3).zip(source.as_raw().chunks_exact(4)) {
        let a = u32::from(src[3]);
        // Most pixels are fully opaque or fully transparent: copy, or keep the white.
        if a == 255 {
            dst.copy_from_slice(&src[..3]);
        } else if a > 0 {
            for (d, &s) in dst.iter_mut().zip(&src[..3]) {
                *d = ((u32::from(s) * a + 255 * (255 - a) + 127) / 255) as u8;
            }
        }
    }
    RgbImage::from_raw(source.width(), source.height(), out)
        .expect("three bytes per RGBA pixel make an RGB image of the same size; this is a bug")
}

/// The source as every edit starts from it: shrunk to the output bounds, flattened over white.
fn prepared(source: &RgbaImage) -> (RgbaImage, RgbImage) {
    let small = shrink_rgba(source);
    let flat = bound(flatten(&small));
    (small, flat)
}

/// One edit of a family other than `cutout`, on an already flattened image.
fn apply_flat<R: rand::Rng + ?Sized>(family: EditFamily, image: &RgbImage, rng: &mut R) -> RgbImage {
    let edited = match family {
        EditFamily::Crop => geometry::crop(image, rng),
        EditFamily::Recompress => tone::recompress(image, rng),
        EditFamily::Color => tone::color(image, rng),
        EditFamily::BlurNoise => tone::blur_noise(image, rng),
        EditFamily::Mirror => geometry::mirror(image),
        EditFamily::Rotate => geometry::rotate(image, rng),
        EditFamily::Aspect => geometry::aspect(image, rng),
        EditFamily::Border => layout::border(image, rng),
        EditFamily::Overlay => overlay::overlay(image, rng),
        EditFamily::Canvas => layout::canvas(image, rng),
        // A flattened image has no alpha left: the cut-out falls back to a matte from the border colour.
        EditFamily::Cutout => cutout::cutout(&RgbaImage::new(0, 0), image, rng),
    };
    bound(edited)
}

/// One edit of `family`, drawn with `rng`, applied to `source` (RGBA, may be transparent; every family except
/// cutout works on `flatten(source)`). The result is at most [`recipe::MAX_SIDE`] and at least
/// [`recipe::MIN_SIDE`] px a side.
pub fn apply<R: rand::Rng>(family: EditFamily, source: &RgbaImage, rng: &mut R) -> RgbImage {
    let (small, flat) = prepared(source);
    match family {
        EditFamily::Cutout => bound(cutout::cutout(&small, &flat, rng)),
        other => apply_flat(other, &flat, rng),
    }
}

/// The training view: 1 to [`recipe::VIEW_MAX_FAMILIES`] distinct families drawn at random and composed in a
/// sensible order (cut-out, geometry, colour, layout, overlays, recompression last); a share
/// [`recipe::VIEW_UNCHANGED_P`] of views is the flattened source unchanged.
pub fn random_view<R: rand::Rng>(source: &RgbaImage, rng: &mut R) -> RgbImage {
    let (small, flat) = prepared(source);
    if rng.gen_bool(VIEW_UNCHANGED_P) {
        return flat;
    }
    let count = rng.gen_range(1..=VIEW_MAX_FAMILIES);
    let mut families: Vec<EditFamily> = EditFamily::ALL.choose_multiple(rng, count).copied().collect();
    families.sort_by_key(|f| (f.stage(), *f));
    let mut image = flat;
    for family in families {
        image = match family {
            EditFamily::Cutout => bound(cutout::cutout(&small, &image, rng)),
            other => apply_flat(other, &image, rng),
        };
    }
    image
}

/// Writes `augment.png` at `path`: a grid, one row per source: the flattened source, then one edit of each
/// family (in [`EditFamily::ALL`] order, drawn from a `ChaCha8Rng` seeded with `seed`), each letterboxed into
/// a `cell` px square, under a header row naming the column ("source", then the family names). The image is
/// `(1 + EditFamily::ALL.len()) * cell` wide and `header + rows * cell` high, the header `cell / 7` clamped to
/// 12..=24 px. `cell` must be 16 to 1024 and `sources` non-empty (at most 4096).
pub fn write_grid(path: &std::path::Path, sources: &[RgbaImage], seed: u64, cell: u32) -> anyhow::Result<()> {
    grid::write_grid(path, sources, seed, cell)
}
