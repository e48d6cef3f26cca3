//! Untrusted image bytes → limited decode → model-ready CHW `f32`, as the model card's preprocessing says.
//!
//! Pure functions, shared by the server and the `train` binary so that both see images the same way.

use std::io::Cursor;
use std::panic::{catch_unwind, AssertUnwindSafe};

use image::imageops::{self, FilterType};
use image::{DynamicImage, GrayImage, ImageDecoder, ImageFormat, ImageReader, Limits, RgbImage};

use crate::model::card::{ColorMode, Polarity, Preprocessing, ResizeMode};

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
pub fn preprocess(bytes: &[u8], limits: &DecodeLimits, pp: &Preprocessing) -> Result<Vec<f32>, PreprocessError> {
    let image = decode(bytes, limits)?;
    Ok(prepare(&image, pp))
}

/// Decodes the first frame of an image whose format is sniffed from its bytes, EXIF orientation applied.
///
/// A decoder that panics on hostile input is reported as undecodable rather than taking the caller down.
pub fn decode(bytes: &[u8], limits: &DecodeLimits) -> Result<DynamicImage, PreprocessError> {
    if bytes.is_empty() {
        return Err(PreprocessError::Empty);
    }
    let format = image::guess_format(bytes).map_err(|_| PreprocessError::UnsupportedFormat("(unrecognised)".into()))?;
    if !SUPPORTED_FORMATS.contains(&format) {
        return Err(PreprocessError::UnsupportedFormat(format!("{format:?}").to_uppercase()));
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
    if width > limits.max_width
        || height > limits.max_height
        || u64::from(width) * u64::from(height) > limits.max_pixels
    {
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
pub fn prepare(image: &DynamicImage, pp: &Preprocessing) -> Vec<f32> {
    let (w, h) = (pp.width, pp.height);
    let planes: Vec<Vec<f32>> = match pp.color {
        ColorMode::Grayscale => {
            let mut gray = to_gray_on_white(image);
            if pp.polarity == Polarity::LightOnDark && border_is_light(&gray) {
                imageops::invert(&mut gray);
            }
            let resized = match (pp.resize, pp.content_box) {
                (ResizeMode::Fit, Some(content)) => fit_content(&gray, w, h, content.min(w).min(h)),
                (ResizeMode::Fit, None) => fit_gray(&gray, w, h),
                (ResizeMode::Stretch, _) => imageops::resize(&gray, w, h, FilterType::Triangle),
            };
            vec![resized.pixels().map(|p| f32::from(p.0[0]) / 255.0).collect()]
        }
        ColorMode::Rgb => {
            let rgb = imageops::resize(&to_rgb_on_white(image), w, h, FilterType::Triangle);
            (0..3)
                .map(|c| rgb.pixels().map(|p| f32::from(p.0[c]) / 255.0).collect())
                .collect()
        }
    };
    planes
        .into_iter()
        .enumerate()
        .flat_map(|(c, plane)| {
            let (mean, std) = (pp.mean[c], pp.std[c]);
            plane.into_iter().map(move |x| (x - mean) / std)
        })
        .collect()
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
    let rgba = image.to_rgba8();
    RgbImage::from_fn(rgba.width(), rgba.height(), |x, y| {
        let p = rgba.get_pixel(x, y).0;
        let alpha = u16::from(p[3]);
        let over_white = |c: u8| ((u16::from(c) * alpha + 255 * (255 - alpha)) / 255) as u8;
        image::Rgb([over_white(p[0]), over_white(p[1]), over_white(p[2])])
    })
}

/// True when the one-pixel frame is mostly light: dark ink on paper rather than MNIST's light strokes on black.
fn border_is_light(gray: &GrayImage) -> bool {
    let (w, h) = gray.dimensions();
    let border = gray
        .enumerate_pixels()
        .filter(|(x, y, _)| *x == 0 || *y == 0 || *x == w - 1 || *y == h - 1);
    let (sum, count) = border.fold((0u64, 0u64), |(s, n), (_, _, p)| (s + u64::from(p.0[0]), n + 1));
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
