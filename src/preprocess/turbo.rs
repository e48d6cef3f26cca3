//! Baseline JPEGs decoded at 1/2, 1/4 or 1/8 scale by libjpeg-turbo (its TurboJPEG API, Debian's `libturbojpeg0`).
//!
//! libjpeg-turbo's SIMD Huffman decoding and scaled IDCT make this the fastest way to a picture the card
//! shrinks anyway, at every size where scaling is possible: measured by `examples/preprocess_speed` for the
//! product card (160×160), decoding and preparing took 9.1 ms for a 2000×1500 photo against 18.6 ms with
//! the full `zune-jpeg` decode, and 1.1 ms for a 640×480 product photo against 2.0 ms, with prepared inputs
//! on average within 1.2 levels of the full decode's.
//!
//! Only baseline (sequential) colour and gray JPEGs come here. A progressive JPEG would make libjpeg-turbo
//! 2.1 keep every coefficient and run every scan, however many an attacker sends (its scan limit arrived in
//! 3.0), and it cannot turn CMYK into RGB; those stay with `jpeg-decoder` and the `image` crate.

use image::{DynamicImage, GrayImage, RgbImage};
use turbojpeg::{Decompressor, Image, PixelFormat};

/// The JPEG in `bytes` decoded to exactly `width` × `height` (a size its scaled IDCT makes), RGB or gray
/// as `gray` says; `None` when libjpeg-turbo refuses the file or warns about it, so that the caller falls
/// back to a decoder that may be more lenient.
pub(super) fn decode_scaled(bytes: &[u8], (width, height): (u32, u32), gray: bool) -> Option<DynamicImage> {
    let (format, channels) = if gray {
        (PixelFormat::GRAY, 1)
    } else {
        (PixelFormat::RGB, 3)
    };
    let (w, h) = (usize::try_from(width).ok()?, usize::try_from(height).ok()?);
    let mut pixels = vec![0; w.checked_mul(h)?.checked_mul(channels)?];
    let output = Image {
        pixels: pixels.as_mut_slice(),
        width: w,
        pitch: w * channels,
        height: h,
        format,
    };
    // TurboJPEG picks the largest scale that fits the size asked for: asking for exactly the scaled size
    // gets that scale.
    Decompressor::new().ok()?.decompress(bytes, output).ok()?;
    if gray {
        GrayImage::from_raw(width, height, pixels).map(DynamicImage::ImageLuma8)
    } else {
        RgbImage::from_raw(width, height, pixels).map(DynamicImage::ImageRgb8)
    }
}
