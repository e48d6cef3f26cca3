//! Untrusted image bytes → limited decode → model-ready CHW `f32`, as the model card's preprocessing says.
//!
//! Pure functions, shared by the server and the `train` binary so that both see images the same way.

use std::borrow::Cow;
use std::io::Cursor;
use std::panic::{catch_unwind, AssertUnwindSafe};

use image::imageops::{self, FilterType};
use image::{DynamicImage, GrayImage, ImageDecoder, ImageFormat, ImageReader, Limits, Luma, Rgb, RgbImage};

use crate::model::card::{ColorMode, Polarity, Preprocessing, ResizeMode};

pub(crate) mod jpeg;
mod resize;
mod trim;
mod turbo;

/// The formats we decode; anything else is refused before a decoder runs.
pub const SUPPORTED_FORMATS: [ImageFormat; 5] = [
    ImageFormat::Png,
    ImageFormat::Jpeg,
    ImageFormat::WebP,
    ImageFormat::Gif,
    ImageFormat::Bmp,
];

/// Bounds on what one image may cost to decode.
#[derive(Debug, Clone, Copy)]
pub struct DecodeLimits {
    pub max_width: u32,
    pub max_height: u32,
    pub max_pixels: u64,
    /// Bytes the decoder may allocate at once, output included.
    pub max_alloc: u64,
}

impl Default for DecodeLimits {
    fn default() -> Self {
        Self {
            max_width: 8192,
            max_height: 8192,
            max_pixels: 16_000_000,
            max_alloc: 256 * 1024 * 1024,
        }
    }
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PreprocessError {
    #[error("the image is empty")]
    Empty,
    #[error("unsupported image format {0}; supported: PNG, JPEG, WebP, GIF, BMP")]
    UnsupportedFormat(String),
    #[error("the image cannot be decoded: {0}")]
    Undecodable(String),
    #[error("the image is {width}x{height}; the limit is {max_width}x{max_height} and {max_pixels} pixels")]
    TooLarge {
        width: u32,
        height: u32,
        max_width: u32,
        max_height: u32,
        max_pixels: u64,
    },
}

/// Decodes then prepares in one step: what the server does with every uploaded image.
///
/// Large JPEGs bound for a small input are decoded at reduced scale (see [`decode_target`]).
pub fn preprocess(bytes: &[u8], limits: &DecodeLimits, pp: &Preprocessing) -> Result<Vec<f32>, PreprocessError> {
    let image = decode_for(bytes, limits, decode_target(pp))?;
    Ok(prepare(&image, pp))
}

/// [`preprocess`] for `pp`, and the input for `located` with its placement (the image decoded in full,
/// so that the placement is in the image's own pixels).
///
/// The input for `pp` is exactly what [`preprocess`] makes, so that asking where two images match never
/// changes their distance: a JPEG it decodes at reduced scale is decoded so a second time (a few
/// milliseconds, beside the located forward pass at twice the card's size).
pub fn preprocess_placed(
    bytes: &[u8],
    limits: &DecodeLimits,
    pp: &Preprocessing,
    located: &Preprocessing,
) -> Result<(Vec<f32>, Vec<f32>, Placement), PreprocessError> {
    let image = decode(bytes, limits)?;
    let (located_input, placement) = prepare_placed(&image, located);
    let shrinks = |target| jpeg::dct_scale(image.width(), image.height(), target) < 8;
    let input = if image::guess_format(bytes).ok() == Some(ImageFormat::Jpeg) && decode_target(pp).is_some_and(shrinks)
    {
        preprocess(bytes, limits, pp)?
    } else {
        prepare(&image, pp)
    };
    Ok((input, located_input, placement))
}

/// Where a model input came from: the part of the image [`prepare`] kept and where it put it, so that a
/// place in the input maps back to the image's pixels.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Placement {
    /// The decoded image's width and height (after EXIF orientation).
    pub image: (u32, u32),
    /// The part of the image prepared (what trimming a uniform border kept): x, y, width, height.
    pub source: (u32, u32, u32, u32),
    /// Where that part lies in the model input: x, y, width, height.
    pub target: (u32, u32, u32, u32),
}

impl Placement {
    /// The image pixel `(x, y)` shows at this point of the model input (pixels); `None` outside the
    /// picture (the letterbox padding).
    pub fn to_input(&self, x: f32, y: f32) -> Option<(f32, f32)> {
        let (sx, sy, sw, sh) = self.source;
        let (tx, ty, tw, th) = self.target;
        let (fx, fy) = ((x - sx as f32) / sw as f32, (y - sy as f32) / sh as f32);
        ((0.0..=1.0).contains(&fx) && (0.0..=1.0).contains(&fy))
            .then_some((tx as f32 + fx * tw as f32, ty as f32 + fy * th as f32))
    }
}

/// The smallest image, `(width, height)` after orientation, from which [`prepare`] still makes the
/// same input for this card; `None` when it needs every pixel.
///
/// Stretching and letterboxing shrink the whole picture to the card's size, so a decoder may
/// deliver anything at least that large on both axes. Grayscale `Fit` crops to the strokes first
/// (MNIST), and a few strokes in a large scan need the full resolution.
pub fn decode_target(pp: &Preprocessing) -> Option<(u32, u32)> {
    match (pp.color, pp.resize) {
        (ColorMode::Grayscale, ResizeMode::Fit) => None,
        _ => Some((pp.width, pp.height)),
    }
}

/// Decodes the first frame of an image whose format is sniffed from its bytes, EXIF orientation applied.
///
/// A decoder that panics on hostile input is reported as undecodable rather than taking the caller down.
pub fn decode(bytes: &[u8], limits: &DecodeLimits) -> Result<DynamicImage, PreprocessError> {
    decode_for(bytes, limits, None)
}

/// [`decode`], allowed to return a smaller image when `target` is given: one at least `target` on
/// both axes (after EXIF orientation), which only JPEGs get today.
///
/// Baseline JPEGs at least twice `target` are decoded by libjpeg-turbo at 1/2, 1/4 or 1/8 scale, and
/// progressive or CMYK JPEGs of 10 megapixels or more by `jpeg-decoder` (see `preprocess/jpeg.rs`);
/// whenever that fails (or a panic escapes `jpeg-decoder`), the `image` crate decodes the full image
/// as [`decode`] does. Lossless JPEGs, which the `image` crate cannot read, are decoded by
/// `jpeg-decoder` at full size.
pub fn decode_for(
    bytes: &[u8],
    limits: &DecodeLimits,
    target: Option<(u32, u32)>,
) -> Result<DynamicImage, PreprocessError> {
    if bytes.is_empty() {
        return Err(PreprocessError::Empty);
    }
    let format = image::guess_format(bytes).map_err(|_| PreprocessError::UnsupportedFormat("(unrecognised)".into()))?;
    if !SUPPORTED_FORMATS.contains(&format) {
        return Err(PreprocessError::UnsupportedFormat(format!("{format:?}").to_uppercase()));
    }
    if format == ImageFormat::Jpeg {
        // A panic in `jpeg-decoder` only means that the `image` crate gets its turn.
        if let Ok(decoded) = catch_unwind(AssertUnwindSafe(|| jpeg::decode(bytes, limits, target))) {
            if let Some(image) = decoded? {
                return Ok(image);
            }
        }
    }
    catch_unwind(AssertUnwindSafe(|| decode_format(bytes, format, limits))).unwrap_or_else(|_| {
        Err(PreprocessError::Undecodable(
            "the decoder failed on malformed data".into(),
        ))
    })
}

fn decode_format(bytes: &[u8], format: ImageFormat, limits: &DecodeLimits) -> Result<DynamicImage, PreprocessError> {
    let undecodable = |e: image::ImageError| match e {
        image::ImageError::Limits(_) => PreprocessError::Undecodable(format!("over the decoding limits: {e}")),
        other => PreprocessError::Undecodable(other.to_string()),
    };
    let mut reader = ImageReader::with_format(Cursor::new(bytes), format);
    let mut decoder_limits = Limits::default();
    decoder_limits.max_image_width = Some(limits.max_width);
    decoder_limits.max_image_height = Some(limits.max_height);
    decoder_limits.max_alloc = Some(limits.max_alloc);
    reader.limits(decoder_limits);
    let mut decoder = reader
        .into_decoder()
        .map_err(|e| too_large_or(e, limits, undecodable))?;
    let (width, height) = decoder.dimensions();
    if width == 0 || height == 0 {
        return Err(PreprocessError::Undecodable("the image has no pixels".into()));
    }
    if exceeds(width, height, limits) {
        return Err(too_large(width, height, limits));
    }
    // A missing or broken EXIF block is no reason to refuse the picture.
    let orientation = decoder
        .orientation()
        .unwrap_or(image::metadata::Orientation::NoTransforms);
    let mut image = DynamicImage::from_decoder(decoder).map_err(undecodable)?;
    image.apply_orientation(orientation);
    Ok(image)
}

/// Dimension-limit errors raised while reading the header become `TooLarge` with what we know.
fn too_large_or(
    e: image::ImageError,
    limits: &DecodeLimits,
    otherwise: impl Fn(image::ImageError) -> PreprocessError,
) -> PreprocessError {
    match &e {
        image::ImageError::Limits(l) if l.kind() == image::error::LimitErrorKind::DimensionError => {
            too_large(0, 0, limits)
        }
        _ => otherwise(e),
    }
}

/// Whether a `width × height` image is over the limits.
fn exceeds(width: u32, height: u32, limits: &DecodeLimits) -> bool {
    width > limits.max_width || height > limits.max_height || u64::from(width) * u64::from(height) > limits.max_pixels
}

fn too_large(width: u32, height: u32, limits: &DecodeLimits) -> PreprocessError {
    PreprocessError::TooLarge {
        width,
        height,
        max_width: limits.max_width,
        max_height: limits.max_height,
        max_pixels: limits.max_pixels,
    }
}

/// Turns a decoded image into the network's input: `channels × height × width` floats, channel-major.
///
/// Transparency is laid over white. An RGB card with `trim_border` cuts a uniform border off first (see
/// `trim::content_box`). Grayscale `Fit` follows MNIST (see `fit_content`); `Stretch`
/// and `Letterbox` resize the whole picture, the latter padding with the card's mean so that the
/// border normalises to about 0. RGB `Fit` stretches, as it always has: no card uses it.
pub fn prepare(image: &DynamicImage, pp: &Preprocessing) -> Vec<f32> {
    prepare_placed(image, pp).0
}

/// [`prepare`], and where the input came from (grayscale `Fit`, which crops to the strokes, is placed as
/// if it stretched the whole image).
pub fn prepare_placed(image: &DynamicImage, pp: &Preprocessing) -> (Vec<f32>, Placement) {
    let (w, h) = (pp.width, pp.height);
    let whole = (0, 0, image.width(), image.height());
    let mut placement = Placement {
        image: (image.width(), image.height()),
        source: whole,
        target: (0, 0, w, h),
    };
    let letterboxed = |(_, _, sw, sh): (u32, u32, u32, u32)| {
        let (fw, fh) = resize::fitted_size((sw.max(1), sh.max(1)), (w, h));
        ((w - fw) / 2, (h - fh) / 2, fw, fh)
    };
    if pp.resize == ResizeMode::Letterbox {
        placement.target = letterboxed(whole);
    }
    let input = match pp.color {
        ColorMode::Grayscale => {
            let resized = match pp.resize {
                ResizeMode::Fit => {
                    let mut gray = to_gray_on_white(image);
                    if pp.polarity == Polarity::LightOnDark && border_is_light(&gray) {
                        imageops::invert(&mut gray);
                    }
                    match pp.content_box {
                        Some(content) => fit_content(&gray, w, h, content.min(w).min(h)),
                        None => fit_gray(&gray, w, h),
                    }
                }
                ResizeMode::Stretch | ResizeMode::Letterbox => {
                    let mut gray = gray_photo(image);
                    if pp.polarity == Polarity::LightOnDark && border_is_light(&gray) {
                        imageops::invert(gray.to_mut());
                    }
                    if pp.resize == ResizeMode::Letterbox {
                        resize::letterbox(&gray, w, h, Luma([padding(pp, 0)]))
                    } else {
                        resize::stretch(&gray, w, h)
                    }
                }
            };
            normalise(resized.as_raw(), 1, pp)
        }
        ColorMode::Rgb => {
            let mut rgb = rgb_photo(image);
            if pp.trim_border {
                if let Some((x, y, cw, ch)) = trim::content_box(&rgb) {
                    rgb = Cow::Owned(imageops::crop_imm(rgb.as_ref(), x, y, cw, ch).to_image());
                    placement.source = (x, y, cw, ch);
                    if pp.resize == ResizeMode::Letterbox {
                        placement.target = letterboxed(placement.source);
                    }
                }
            }
            let resized = match pp.resize {
                ResizeMode::Letterbox => {
                    resize::letterbox(&rgb, w, h, Rgb([padding(pp, 0), padding(pp, 1), padding(pp, 2)]))
                }
                ResizeMode::Stretch | ResizeMode::Fit => resize::stretch(&rgb, w, h),
            };
            normalise(resized.as_raw(), 3, pp)
        }
    };
    (input, placement)
}

/// Interleaved bytes of `channels` channels → channel-major `(x / 255 - mean) / std`.
fn normalise(interleaved: &[u8], channels: usize, pp: &Preprocessing) -> Vec<f32> {
    (0..channels)
        .flat_map(|c| {
            let (mean, std) = (pp.mean[c], pp.std[c]);
            interleaved
                .iter()
                .skip(c)
                .step_by(channels)
                .map(move |&v| (f32::from(v) / 255.0 - mean) / std)
        })
        .collect()
}

/// The letterbox padding of channel `c`: the byte nearest the card's mean, which normalises to about 0.
fn padding(pp: &Preprocessing, c: usize) -> u8 {
    (pp.mean[c] * 255.0).round().clamp(0.0, 255.0) as u8
}

/// A photo in grayscale, borrowed when it already is 8-bit gray: large photos are not copied for nothing.
fn gray_photo(image: &DynamicImage) -> Cow<'_, GrayImage> {
    match image {
        DynamicImage::ImageLuma8(gray) => Cow::Borrowed(gray),
        other if !other.color().has_alpha() => Cow::Owned(other.to_luma8()),
        other => Cow::Owned(to_gray_on_white(other)),
    }
}

/// A photo in RGB over white, borrowed when it already is 8-bit RGB.
fn rgb_photo(image: &DynamicImage) -> Cow<'_, RgbImage> {
    match image {
        DynamicImage::ImageRgb8(rgb) => Cow::Borrowed(rgb),
        other => Cow::Owned(to_rgb_on_white(other)),
    }
}

/// Grayscale with transparency laid over white, as a transparent signature or product cut-out reads on paper.
fn to_gray_on_white(image: &DynamicImage) -> GrayImage {
    let rgb = to_rgb_on_white(image);
    DynamicImage::ImageRgb8(rgb).to_luma8()
}

fn to_rgb_on_white(image: &DynamicImage) -> RgbImage {
    if !image.color().has_alpha() {
        return image.to_rgb8();
    }
    // 8-bit RGBA (the usual case) is read in place rather than copied first.
    let converted;
    let rgba = match image {
        DynamicImage::ImageRgba8(rgba) => rgba,
        other => {
            converted = other.to_rgba8();
            &converted
        }
    };
    let over_white: Vec<u8> = rgba
        .as_raw()
        .chunks_exact(4)
        .flat_map(|p| {
            let alpha = u16::from(p[3]);
            let over = move |c: u8| ((u16::from(c) * alpha + 255 * (255 - alpha)) / 255) as u8;
            [over(p[0]), over(p[1]), over(p[2])]
        })
        .collect();
    RgbImage::from_raw(rgba.width(), rgba.height(), over_white).unwrap_or_default()
}

/// True when the one-pixel frame is mostly light: dark ink on paper rather than MNIST's light strokes on black.
///
/// Reads only the frame, so that a large photo costs its perimeter, not its area.
fn border_is_light(gray: &GrayImage) -> bool {
    let (w, h) = gray.dimensions();
    if w == 0 || h == 0 {
        return false;
    }
    let (mut sum, mut count) = (0u64, 0u64);
    let mut add = |x: u32, y: u32| {
        sum += u64::from(gray.get_pixel(x, y).0[0]);
        count += 1;
    };
    // Each frame pixel once: the top and bottom rows whole, then the two sides between them.
    for x in 0..w {
        add(x, 0);
        if h > 1 {
            add(x, h - 1);
        }
    }
    for y in 1..h.saturating_sub(1) {
        add(0, y);
        if w > 1 {
            add(w - 1, y);
        }
    }
    sum > count * 127
}

/// Scales to fit inside `w × h` keeping the aspect ratio, centred on a black background.
fn fit_gray(gray: &GrayImage, w: u32, h: u32) -> GrayImage {
    let scale = f64::min(
        f64::from(w) / f64::from(gray.width()),
        f64::from(h) / f64::from(gray.height()),
    );
    let nw = ((f64::from(gray.width()) * scale).round() as u32).clamp(1, w);
    let nh = ((f64::from(gray.height()) * scale).round() as u32).clamp(1, h);
    let scaled = imageops::resize(gray, nw, nh, FilterType::Triangle);
    let mut canvas = GrayImage::new(w, h);
    imageops::overlay(&mut canvas, &scaled, i64::from((w - nw) / 2), i64::from((h - nh) / 2));
    canvas
}

/// MNIST's own normalisation: crop to the strokes, fit them in a `content × content` box, centre
/// that box in `w × h` by the strokes' centre of mass. Blank images are only resized.
fn fit_content(gray: &GrayImage, w: u32, h: u32, content: u32) -> GrayImage {
    let Some((x0, y0, x1, y1)) = ink_bounds(gray) else {
        return imageops::resize(gray, w, h, FilterType::Triangle);
    };
    let cropped = imageops::crop_imm(gray, x0, y0, x1 - x0 + 1, y1 - y0 + 1).to_image();
    let boxed = fit_gray(&cropped, content, content);
    let (cx, cy) = centre_of_mass(&boxed);
    let mut canvas = GrayImage::new(w, h);
    let left = (f64::from(w) / 2.0 - cx).round() as i64;
    let top = (f64::from(h) / 2.0 - cy).round() as i64;
    imageops::overlay(&mut canvas, &boxed, left, top);
    canvas
}

/// The bounding box of pixels noticeably brighter than black; `None` for a blank image.
fn ink_bounds(gray: &GrayImage) -> Option<(u32, u32, u32, u32)> {
    const INK: u8 = 32;
    gray.enumerate_pixels()
        .filter(|(_, _, p)| p.0[0] > INK)
        .fold(None, |acc, (x, y, _)| match acc {
            None => Some((x, y, x, y)),
            Some((x0, y0, x1, y1)) => Some((x0.min(x), y0.min(y), x1.max(x), y1.max(y))),
        })
}

fn centre_of_mass(gray: &GrayImage) -> (f64, f64) {
    let (mut sx, mut sy, mut total) = (0.0, 0.0, 0.0);
    for (x, y, p) in gray.enumerate_pixels() {
        let v = f64::from(p.0[0]);
        sx += v * (f64::from(x) + 0.5);
        sy += v * (f64::from(y) + 0.5);
        total += v;
    }
    if total == 0.0 {
        (f64::from(gray.width()) / 2.0, f64::from(gray.height()) / 2.0)
    } else {
        (sx / total, sy / total)
    }
}

#[cfg(test)]
mod tests;
