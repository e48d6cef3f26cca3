//! Stretching and letterboxing photos to the network's input size with `fast_image_resize`.
//!
//! Its SIMD convolution is many times faster than `image::imageops::resize` on large photos. The
//! bilinear filter (a triangle whose support widens with the reduction, as in `imageops`' `Triangle`)
//! keeps inputs close to what models trained before the switch saw; its `Convolution` form averages
//! every source pixel, so shrinking a photo never aliases.

use fast_image_resize::{FilterType, IntoImageView, IntoImageViewMut, ResizeAlg, ResizeOptions, Resizer};
use image::{imageops, ImageBuffer, Pixel};

/// The filter of every photo resize; see the module documentation for why.
pub(super) const FILTER: FilterType = FilterType::Bilinear;

/// An 8-bit image buffer: `GrayImage` or `RgbImage` here.
pub(super) type Buffer<P> = ImageBuffer<P, Vec<u8>>;

/// `src` resized to exactly `width × height`, each axis scaled on its own; an empty source gives
/// an all-zero image.
pub(super) fn stretch<P>(src: &Buffer<P>, width: u32, height: u32) -> Buffer<P>
where
    P: Pixel<Subpixel = u8> + 'static,
    Buffer<P>: IntoImageView + IntoImageViewMut,
{
    let mut dst = Buffer::<P>::new(width, height);
    if src.width() == 0 || src.height() == 0 || width == 0 || height == 0 {
        return dst;
    }
    if src.dimensions() == (width, height) {
        dst.copy_from_slice(src);
        return dst;
    }
    let options = ResizeOptions::new().resize_alg(ResizeAlg::Convolution(FILTER));
    if Resizer::new().resize(src, &mut dst, &options).is_err() {
        // Unreachable with non-empty sizes; the slow path is still correct.
        return imageops::resize(src, width, height, imageops::FilterType::Triangle);
    }
    dst
}

/// `src` scaled to fit inside `width × height` keeping its aspect ratio, centred on `fill`.
pub(super) fn letterbox<P>(src: &Buffer<P>, width: u32, height: u32, fill: P) -> Buffer<P>
where
    P: Pixel<Subpixel = u8> + 'static,
    Buffer<P>: IntoImageView + IntoImageViewMut,
{
    let mut canvas = Buffer::<P>::from_pixel(width, height, fill);
    if src.width() == 0 || src.height() == 0 || width == 0 || height == 0 {
        return canvas;
    }
    let (fit_w, fit_h) = fitted_size(src.dimensions(), (width, height));
    let scaled = stretch(src, fit_w, fit_h);
    imageops::replace(
        &mut canvas,
        &scaled,
        i64::from((width - fit_w) / 2),
        i64::from((height - fit_h) / 2),
    );
    canvas
}

/// The largest size with the aspect ratio of `src` that fits in `bounds`, at least one pixel each way.
pub(super) fn fitted_size((src_w, src_h): (u32, u32), (width, height): (u32, u32)) -> (u32, u32) {
    let scale = f64::min(
        f64::from(width) / f64::from(src_w),
        f64::from(height) / f64::from(src_h),
    );
    let fit_w = ((f64::from(src_w) * scale).round() as u32).clamp(1, width);
    let fit_h = ((f64::from(src_h) * scale).round() as u32).clamp(1, height);
    (fit_w, fit_h)
}
