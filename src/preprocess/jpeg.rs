//! JPEG decoding at 1/2, 1/4 or 1/8 scale, for photos the card shrinks anyway, and of the lossless JPEGs the
//! `image` crate cannot read.
//!
//! A 12-megapixel photo bound for a 160×160 input need not be decoded pixel by pixel: the DCT lets the
//! decoder produce a smaller image directly, and averaging 8×8 blocks is a good low-pass filter for
//! the resize that follows. Baseline colour and gray JPEGs, most photos, go to libjpeg-turbo ([`turbo`]),
//! which is faster than a full decode at every size it can shrink. Progressive and CMYK ones go to
//! `jpeg-decoder`'s scaled IDCT, but only from about 10 megapixels (see [`SCALED_DECODE_MIN_PIXELS`]):
//! entropy decoding still reads every coefficient, and there `jpeg-decoder` is slower than `zune-jpeg`
//! (the `image` crate's SIMD decoder).
//!
//! Everything here returns `Ok(None)` when neither can help or both fail, so that the caller falls back
//! to the `image` crate and odd files are never treated worse than before.

use image::metadata::Orientation;
use image::{DynamicImage, GrayImage, RgbImage};
use jpeg_decoder::{CodingProcess, Decoder, PixelFormat};

use super::{exceeds, too_large, turbo, DecodeLimits, PreprocessError};

/// The smallest progressive or CMYK JPEG, in pixels, that `jpeg-decoder` decodes at reduced scale.
///
/// Measured on x86-64 (AVX2) by CPU time per decode for a 96×96 card, full `zune-jpeg` decode against
/// `jpeg-decoder` at 1/8: 2000×1500 13 ms against 18, 3264×2448 26 against 36, 4000×3000 70
/// against 59, 5000×4000 124 against 107. `jpeg-decoder` spends the difference on a slower Huffman
/// decoder and on handing rows to its per-component threads; above the threshold `zune-jpeg`'s
/// full-size output (36 MB for 12 megapixels) costs more, and the scaled path also keeps memory per
/// request small.
pub(super) const SCALED_DECODE_MIN_PIXELS: u64 = 10_000_000;

/// Decodes with `jpeg-decoder` when that is worth it: scaled down when `target` (the smallest
/// acceptable size after EXIF orientation) allows and the image has at least
/// [`SCALED_DECODE_MIN_PIXELS`], or a lossless JPEG that the `image` crate cannot read. `Ok(None)`
/// asks the caller to decode with the `image` crate instead.
///
/// The dimensions are checked against `limits` from the header, before any pixel is decoded.
pub(super) fn decode(
    bytes: &[u8],
    limits: &DecodeLimits,
    target: Option<(u32, u32)>,
) -> Result<Option<DynamicImage>, PreprocessError> {
    decode_with(bytes, limits, target, SCALED_DECODE_MIN_PIXELS)
}

/// [`decode`] with the size from which scaling is used given: tests and the fuzz target exercise the path
/// on small images.
pub(crate) fn decode_with(
    bytes: &[u8],
    limits: &DecodeLimits,
    target: Option<(u32, u32)>,
    min_pixels: u64,
) -> Result<Option<DynamicImage>, PreprocessError> {
    let mut decoder = Decoder::new(bytes);
    if decoder.read_info().is_err() {
        return Ok(None);
    }
    let Some(info) = decoder.info() else {
        return Ok(None);
    };
    let (width, height) = (u32::from(info.width), u32::from(info.height));
    if width == 0 || height == 0 {
        return Ok(None);
    }
    if exceeds(width, height, limits) {
        return Err(too_large(width, height, limits));
    }
    let lossless = info.coding_process == CodingProcess::Lossless;
    // The EXIF block normally precedes the frame header, so it is known here; it says which stored
    // axis becomes the upright width.
    let raw_target = target.map(|t| stored_axes(t, orientation(&decoder)));
    let baseline = info.coding_process == CodingProcess::DctSequential
        && matches!(info.pixel_format, PixelFormat::RGB24 | PixelFormat::L8);
    if let (true, Some(t)) = (baseline && width >= 8 && height >= 8, raw_target) {
        // Faster than any other decoder here at every size it can shrink (see `turbo`); from 8 pixels a
        // side each scale gives a different size, so TurboJPEG picks exactly the one asked for. (An EXIF
        // block after the frame header, which cameras do not write, is not seen on this path.)
        let scale = dct_scale(width, height, t);
        let size = (scaled(width, scale), scaled(height, scale));
        let gray = info.pixel_format == PixelFormat::L8;
        if let Some(mut image) = (scale < 8).then(|| turbo::decode_scaled(bytes, size, gray)).flatten() {
            image.apply_orientation(orientation(&decoder));
            return Ok(Some(image));
        }
    }
    let scale = match raw_target {
        // Scaled IDCT exists only for DCT-coded images.
        Some(t) if !lossless && u64::from(width) * u64::from(height) >= min_pixels => dct_scale(width, height, t),
        _ => 8,
    };
    if scale == 8 && !lossless {
        // Nothing to gain: the `image` crate's decoder is faster at full size.
        return Ok(None);
    }
    decoder.set_max_decoding_buffer_size(usize::try_from(limits.max_alloc).unwrap_or(usize::MAX));
    if let (true, Some((need_w, need_h))) = (scale < 8, raw_target) {
        let request = (scaled(width, scale), scaled(height, scale));
        let (Ok(request_w), Ok(request_h)) = (u16::try_from(request.0), u16::try_from(request.1)) else {
            return Ok(None);
        };
        match decoder.scale(request_w, request_h) {
            // `scale` settles for either axis reaching the request; ours needs both.
            Ok((w, h)) if u32::from(w) >= need_w && u32::from(h) >= need_h => {}
            _ => return Ok(None),
        }
    }
    let Ok(pixels) = decoder.decode() else {
        return Ok(None);
    };
    let Some(info) = decoder.info() else {
        return Ok(None);
    };
    let precision = if lossless { sof_precision(bytes) } else { Some(8) };
    let Some(mut image) = precision.and_then(|p| to_image(pixels, info.width, info.height, info.pixel_format, p))
    else {
        return Ok(None);
    };
    // Read again: an EXIF block after the frame header is only known once the whole file is read.
    image.apply_orientation(orientation(&decoder));
    if let Some((tw, th)) = target {
        if scale < 8 && (image.width() < tw || image.height() < th) {
            return Ok(None);
        }
    }
    Ok(Some(image))
}

/// The EXIF orientation found so far; none, or a broken block, means upright.
fn orientation(decoder: &Decoder<&[u8]>) -> Orientation {
    decoder
        .exif_data()
        .and_then(Orientation::from_exif_chunk)
        .unwrap_or(Orientation::NoTransforms)
}

/// An upright size as stored before `orientation` is applied: a quarter turn swaps the axes.
pub(super) fn stored_axes((w, h): (u32, u32), orientation: Orientation) -> (u32, u32) {
    match orientation {
        Orientation::Rotate90 | Orientation::Rotate270 | Orientation::Rotate90FlipH | Orientation::Rotate270FlipH => {
            (h, w)
        }
        _ => (w, h),
    }
}

/// The smallest IDCT scale, in eighths (1, 2, 4 or 8), whose output is at least `target` on both axes.
pub(super) fn dct_scale(width: u32, height: u32, (tw, th): (u32, u32)) -> u32 {
    [1, 2, 4]
        .into_iter()
        .find(|&s| scaled(width, s) >= tw && scaled(height, s) >= th)
        .unwrap_or(8)
}

/// A side of `len` pixels decoded at `eighths`/8 scale, rounded up as `jpeg-decoder` does.
fn scaled(len: u32, eighths: u32) -> u32 {
    (u64::from(len) * u64::from(eighths)).div_ceil(8) as u32
}

/// Wraps the decoder's output in an image; `None` when its length does not match its description.
///
/// `precision` is the sample precision in bits, which only lossless JPEGs set to other than 8.
pub(super) fn to_image(
    pixels: Vec<u8>,
    width: u16,
    height: u16,
    format: PixelFormat,
    precision: u8,
) -> Option<DynamicImage> {
    let (w, h) = (u32::from(width), u32::from(height));
    let count = usize::from(width) * usize::from(height);
    if pixels.len() != count * format.pixel_bytes() {
        return None;
    }
    match format {
        PixelFormat::L8 if precision == 8 => GrayImage::from_raw(w, h, pixels).map(DynamicImage::ImageLuma8),
        PixelFormat::L8 => {
            let max = (1u32 << precision.clamp(1, 8)) - 1;
            let gray = pixels.into_iter().map(|v| rescale(u32::from(v), max)).collect();
            GrayImage::from_raw(w, h, gray).map(DynamicImage::ImageLuma8)
        }
        PixelFormat::L16 => {
            // Native-endian samples below 2^precision (a 12-bit scan stays below 4096).
            let max = (1u32 << precision.clamp(9, 16)) - 1;
            let gray = pixels
                .chunks_exact(2)
                .map(|b| rescale(u32::from(u16::from_ne_bytes([b[0], b[1]])), max))
                .collect();
            GrayImage::from_raw(w, h, gray).map(DynamicImage::ImageLuma8)
        }
        PixelFormat::RGB24 => RgbImage::from_raw(w, h, pixels).map(DynamicImage::ImageRgb8),
        PixelFormat::CMYK32 => RgbImage::from_raw(w, h, cmyk_to_rgb(&pixels)).map(DynamicImage::ImageRgb8),
    }
}

/// `value` out of `max` as a byte, rounded; values above `max` (a corrupt stream) saturate.
fn rescale(value: u32, max: u32) -> u8 {
    ((value.min(max) * 255 + max / 2) / max) as u8
}

/// `jpeg-decoder`'s CMYK (and YCCK) output as RGB, exactly as `zune-jpeg` (the `image` crate's
/// decoder) computes it, so that a CMYK photo looks the same whichever decoder read it.
///
/// `jpeg-decoder` hands out `255 - stored` for every channel. Photoshop writes CMYK JPEGs inverted
/// (the stored value is `255 - ink`), and `zune-jpeg`, like libjpeg-based readers, assumes that
/// convention: red = `stored_c × stored_k / 255`. In `jpeg-decoder`'s terms that is
/// `(255 - c) × (255 - k) / 255`.
pub(super) fn cmyk_to_rgb(cmyk: &[u8]) -> Vec<u8> {
    let mut rgb = Vec::with_capacity(cmyk.len() / 4 * 3);
    for p in cmyk.chunks_exact(4) {
        let k = 255 - p[3];
        rgb.extend([
            blinn_8x8(255 - p[0], k),
            blinn_8x8(255 - p[1], k),
            blinn_8x8(255 - p[2], k),
        ]);
    }
    rgb
}

/// `a × b / 255` rounded, with `zune-jpeg`'s integer arithmetic (Jim Blinn's trick).
fn blinn_8x8(a: u8, b: u8) -> u8 {
    let t = u32::from(a) * u32::from(b) + 128;
    ((t + (t >> 8)) >> 8) as u8
}

/// The sample precision of the first frame header (SOFn), walking the marker segments; `None` for
/// a stream too broken to say.
///
/// `jpeg-decoder` does not report it, and lossless JPEGs of 2 to 16 bits need it to be scaled to bytes.
pub(super) fn sof_precision(bytes: &[u8]) -> Option<u8> {
    let mut at = 2; // past SOI
    loop {
        if *bytes.get(at)? != 0xFF {
            return None;
        }
        // Any number of 0xFF fill bytes may precede a marker.
        while *bytes.get(at + 1)? == 0xFF {
            at += 1;
        }
        let marker = *bytes.get(at + 1)?;
        at += 2;
        match marker {
            // Markers without a length: TEM, RSTn, SOI.
            0x01 | 0xD0..=0xD8 => continue,
            // SOF0..SOF15, except DHT (C4), JPG (C8) and DAC (CC).
            0xC0..=0xCF if !matches!(marker, 0xC4 | 0xC8 | 0xCC) => return bytes.get(at + 2).copied(),
            // The scan started (SOS) or the image ended (EOI) with no frame header.
            0xDA | 0xD9 => return None,
            _ => {
                let length = usize::from(u16::from_be_bytes([*bytes.get(at)?, *bytes.get(at + 1)?]));
                at += length;
            }
        }
    }
}
