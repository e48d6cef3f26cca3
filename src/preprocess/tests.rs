//! Unit tests of decoding limits, format sniffing, polarity and MNIST-style fitting.

use super::*;
use crate::model::card::{ColorMode, Polarity, Preprocessing, ResizeMode};
use image::{GrayImage, ImageFormat, Luma, Rgba, RgbaImage};

fn mnist_pp() -> Preprocessing {
    crate::train::mnist::preprocessing()
}

/// A light bar on black: a stand-in digit "1".
fn light_stroke(w: u32, h: u32) -> GrayImage {
    GrayImage::from_fn(w, h, |x, y| {
        let on = x >= w / 2 - w / 10 && x <= w / 2 + w / 10 && y >= h / 5 && y < 4 * h / 5;
        Luma([if on { 240 } else { 0 }])
    })
}

fn encode(image: &DynamicImage, format: ImageFormat) -> Vec<u8> {
    let mut out = Cursor::new(Vec::new());
    image.write_to(&mut out, format).unwrap();
    out.into_inner()
}

fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

#[test]
fn every_supported_format_decodes_to_the_model_shape() {
    let image = DynamicImage::ImageLuma8(light_stroke(40, 40));
    for format in [
        ImageFormat::Png,
        ImageFormat::Jpeg,
        ImageFormat::Gif,
        ImageFormat::Bmp,
        ImageFormat::WebP,
    ] {
        let bytes = encode(&image.to_rgb8().into(), format);
        let input =
            preprocess(&bytes, &DecodeLimits::default(), &mnist_pp()).unwrap_or_else(|e| panic!("{format:?}: {e}"));
        assert_eq!(input.len(), 28 * 28, "{format:?}");
        assert!(input.iter().all(|v| (0.0..=1.0).contains(v)), "{format:?}");
        assert!(input.iter().any(|&v| v > 0.5), "{format:?} kept the stroke");
    }
}

#[test]
fn dark_ink_on_paper_is_inverted_to_match_light_on_dark() {
    let light = DynamicImage::ImageLuma8(light_stroke(28, 28));
    let mut dark = light_stroke(28, 28);
    imageops::invert(&mut dark);
    let a = prepare(&light, &mnist_pp());
    let b = prepare(&DynamicImage::ImageLuma8(dark), &mnist_pp());
    assert!(max_abs_diff(&a, &b) < 0.1, "inverted input must look like the original");
    let as_is = Preprocessing {
        polarity: Polarity::AsIs,
        ..mnist_pp()
    };
    let mut dark = light_stroke(28, 28);
    imageops::invert(&mut dark);
    assert!(max_abs_diff(&a, &prepare(&DynamicImage::ImageLuma8(dark), &as_is)) > 0.5);
}

#[test]
fn a_large_photo_of_a_digit_fits_the_mnist_box() {
    let big = prepare(&DynamicImage::ImageLuma8(light_stroke(300, 300)), &mnist_pp());
    let small = prepare(&DynamicImage::ImageLuma8(light_stroke(28, 28)), &mnist_pp());
    // Both are fitted to the 20×20 box and centred, so they nearly coincide.
    let mean_diff = big.iter().zip(&small).map(|(a, b)| (a - b).abs()).sum::<f32>() / big.len() as f32;
    assert!(mean_diff < 0.05, "mean difference {mean_diff}");
    let border: f32 = (0..28)
        .map(|i| big[i] + big[27 * 28 + i] + big[i * 28] + big[i * 28 + 27])
        .sum();
    assert_eq!(border, 0.0, "the frame around the box stays background");
}

#[test]
fn transparency_is_laid_over_white() {
    // Transparent everywhere but an opaque dark stroke: ink on paper, so it is inverted.
    let rgba = RgbaImage::from_fn(28, 28, |x, _| {
        if (12..16).contains(&x) {
            Rgba([0, 0, 0, 255])
        } else {
            Rgba([0, 0, 0, 0])
        }
    });
    let input = prepare(&DynamicImage::ImageRgba8(rgba), &mnist_pp());
    assert!(input.iter().any(|&v| v > 0.9), "the stroke is light after inversion");
    assert_eq!(input[0], 0.0, "the background is dark after inversion");
}

#[test]
fn normalisation_uses_the_card() {
    let pp = Preprocessing {
        color: ColorMode::Rgb,
        resize: ResizeMode::Stretch,
        content_box: None,
        mean: vec![0.5, 0.5, 0.5],
        std: vec![0.5, 0.5, 0.5],
        polarity: Polarity::AsIs,
        ..mnist_pp()
    };
    let white = DynamicImage::ImageRgb8(RgbImage::from_pixel(10, 10, image::Rgb([255, 255, 255])));
    let input = prepare(&white, &pp);
    assert_eq!(input.len(), 3 * 28 * 28);
    assert!(input.iter().all(|&v| (v - 1.0).abs() < 1e-6));
}

#[test]
fn hostile_and_broken_inputs_are_refused_cleanly() {
    let limits = DecodeLimits::default();
    assert_eq!(decode(&[], &limits).unwrap_err(), PreprocessError::Empty);
    assert!(matches!(
        decode(b"hello, not an image", &limits),
        Err(PreprocessError::UnsupportedFormat(_))
    ));
    let tiff_header = b"II*\x00\x08\x00\x00\x00rest of a TIFF";
    assert_eq!(
        decode(tiff_header, &limits).unwrap_err(),
        PreprocessError::UnsupportedFormat("TIFF".into())
    );

    let png = encode(&DynamicImage::ImageLuma8(light_stroke(64, 64)), ImageFormat::Png);
    assert!(matches!(
        decode(&png[..png.len() / 2], &limits),
        Err(PreprocessError::Undecodable(_))
    ));

    // A valid PNG header claiming 100000×100000 pixels, with no data behind it.
    assert!(matches!(
        decode(&png_claiming(100_000, 100_000), &limits),
        Err(PreprocessError::TooLarge { .. })
    ));

    let tight = DecodeLimits {
        max_pixels: 1000,
        ..limits
    };
    assert!(matches!(
        decode(&png, &tight),
        Err(PreprocessError::TooLarge {
            width: 64,
            height: 64,
            ..
        })
    ));
}

#[test]
fn random_bytes_behind_a_valid_signature_never_panic() {
    let limits = DecodeLimits::default();
    let png = encode(&DynamicImage::ImageLuma8(light_stroke(32, 32)), ImageFormat::Png);
    let mut state = 0x2545_f491_4f6c_dd1du64;
    for _ in 0..200 {
        let mut bytes = png.clone();
        for _ in 0..8 {
            // xorshift: a cheap deterministic stream of corruptions.
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let at = 8 + (state as usize % (bytes.len() - 8));
            bytes[at] = (state >> 32) as u8;
        }
        let _ = preprocess(&bytes, &limits, &mnist_pp());
    }
}

/// The signature and an IHDR chunk (with a correct CRC) claiming `width × height` 8-bit gray pixels.
fn png_claiming(width: u32, height: u32) -> Vec<u8> {
    let mut chunk = b"IHDR".to_vec();
    chunk.extend_from_slice(&width.to_be_bytes());
    chunk.extend_from_slice(&height.to_be_bytes());
    chunk.extend_from_slice(&[8, 0, 0, 0, 0]);
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    png.extend_from_slice(&13u32.to_be_bytes());
    png.extend_from_slice(&chunk);
    png.extend_from_slice(&crc32(&chunk).to_be_bytes());
    png
}

fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = 0xffff_ffffu32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xedb8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

#[test]
fn exif_orientation_is_applied() {
    use image::codecs::png::PngEncoder;
    use image::{ExtendedColorType, ImageEncoder};
    // A little-endian Exif block with one entry: Orientation (0x0112) = 6, "rotate 90° clockwise".
    let exif = vec![
        0x49, 0x49, 0x2a, 0x00, 0x08, 0x00, 0x00, 0x00, 0x01, 0x00, 0x12, 0x01, 0x03, 0x00, 0x01, 0x00, 0x00, 0x00,
        0x06, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    ];
    let wide = GrayImage::from_fn(20, 10, |x, _| Luma([if x < 2 { 255 } else { 0 }]));
    let mut png = Vec::new();
    let mut encoder = PngEncoder::new(&mut png);
    encoder.set_exif_metadata(exif).unwrap();
    encoder
        .write_image(wide.as_raw(), 20, 10, ExtendedColorType::L8)
        .unwrap();

    let decoded = decode(&png, &DecodeLimits::default()).unwrap().to_luma8();

    assert_eq!(decoded.dimensions(), (10, 20), "stood upright");
    assert_eq!(decoded.get_pixel(5, 0).0[0], 255, "the left edge became the top");
}
