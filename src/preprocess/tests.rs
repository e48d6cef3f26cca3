//! Unit tests of decoding limits, format sniffing, polarity, MNIST-style fitting, photo resizing and scaled JPEG decoding.

use super::*;
use crate::model::card::{ColorMode, Polarity, Preprocessing, ResizeMode};
use image::{GenericImageView, GrayImage, ImageFormat, Luma, Rgba, RgbaImage};

fn mnist_pp() -> Preprocessing {
    crate::train::supervised::mnist::preprocessing()
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

// ---- Photos: letterboxing, fast resizing, scaled JPEG decoding and odd files. ----

/// An RGB photo card with ImageNet's statistics.
fn photo_pp(resize: ResizeMode, width: u32, height: u32) -> Preprocessing {
    Preprocessing {
        color: ColorMode::Rgb,
        width,
        height,
        resize,
        content_box: None,
        mean: vec![0.485, 0.456, 0.406],
        std: vec![0.229, 0.224, 0.225],
        polarity: Polarity::AsIs,
        trim_border: false,
    }
}

fn gray_photo_pp(resize: ResizeMode, width: u32, height: u32) -> Preprocessing {
    Preprocessing {
        color: ColorMode::Grayscale,
        mean: vec![0.5],
        std: vec![0.25],
        ..photo_pp(resize, width, height)
    }
}

fn mean_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).sum::<f32>() / a.len() as f32
}

fn mean_abs_byte_diff(a: &[u8], b: &[u8]) -> f64 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .map(|&x| f64::from(x))
        .zip(b.iter().map(|&y| f64::from(y)))
        .map(|(x, y)| (x - y).abs())
        .sum::<f64>()
        / a.len() as f64
}

/// Smooth colour ramps with a little deterministic noise: compresses and resizes like a photo.
fn photo(width: u32, height: u32) -> RgbImage {
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    RgbImage::from_fn(width, height, |x, y| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let noise = (state % 9) as f32 - 4.0;
        let (u, v) = (x as f32 / width as f32, y as f32 / height as f32);
        let channel = |base: f32| (base + noise).clamp(0.0, 255.0) as u8;
        image::Rgb([
            channel(40.0 + 180.0 * u),
            channel(128.0 + 100.0 * (6.0 * u + 4.0 * v).sin()),
            channel(220.0 - 160.0 * v),
        ])
    })
}

/// A colour or gray image as a baseline JPEG.
fn jpeg_of<I: GenericImageView>(image: &I, quality: u8) -> Vec<u8>
where
    I::Pixel: image::PixelWithColorType,
{
    let mut bytes = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut bytes, quality)
        .encode_image(image)
        .unwrap();
    bytes
}

fn fixture(name: &str) -> Vec<u8> {
    let path = format!("{}/tests/fixtures/images/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The normalised value of byte `v` in channel `c`.
fn normalised(pp: &Preprocessing, c: usize, v: u8) -> f32 {
    (f32::from(v) / 255.0 - pp.mean[c]) / pp.std[c]
}

#[test]
fn letterbox_pads_with_the_mean_and_keeps_the_content() {
    // A 2:1 red picture in a square input: 64×32 of content between two 16-row bands of padding.
    let wide = DynamicImage::ImageRgb8(RgbImage::from_pixel(200, 100, image::Rgb([200, 30, 30])));
    let pp = photo_pp(ResizeMode::Letterbox, 64, 64);
    let input = prepare(&wide, &pp);
    assert_eq!(input.len(), 3 * 64 * 64);
    let at = |c: usize, x: usize, y: usize| input[c * 64 * 64 + y * 64 + x];
    for c in 0..3 {
        for x in 0..64 {
            for y in (0..16).chain(48..64) {
                assert!(
                    at(c, x, y).abs() < 0.01,
                    "padding ({x}, {y}) of channel {c} is {}",
                    at(c, x, y)
                );
            }
            for y in 16..48 {
                let want = normalised(&pp, c, [200, 30, 30][c]);
                assert!((at(c, x, y) - want).abs() < 0.02, "content ({x}, {y}) of channel {c}");
            }
        }
    }

    // Grayscale likewise, a tall picture this time: the bands are on the sides.
    let tall = DynamicImage::ImageLuma8(GrayImage::from_pixel(50, 100, Luma([20])));
    let pp = gray_photo_pp(ResizeMode::Letterbox, 32, 32);
    let input = prepare(&tall, &pp);
    assert_eq!(input.len(), 32 * 32);
    for y in 0..32 {
        for x in 0..32 {
            let v = input[y * 32 + x];
            if (8..24).contains(&x) {
                assert!((v - normalised(&pp, 0, 20)).abs() < 0.02, "content ({x}, {y})");
            } else {
                assert!(v.abs() < 0.01, "padding ({x}, {y}) is {v}");
            }
        }
    }
}

#[test]
fn stretch_and_letterbox_differ_on_a_non_square_image_only() {
    let wide = DynamicImage::ImageRgb8(photo(300, 150));
    let stretch = prepare(&wide, &photo_pp(ResizeMode::Stretch, 48, 48));
    let letterbox = prepare(&wide, &photo_pp(ResizeMode::Letterbox, 48, 48));
    assert_eq!(stretch.len(), letterbox.len());
    assert!(mean_abs_diff(&stretch, &letterbox) > 0.3);

    let square = DynamicImage::ImageRgb8(photo(150, 150));
    let stretch = prepare(&square, &photo_pp(ResizeMode::Stretch, 48, 48));
    let letterbox = prepare(&square, &photo_pp(ResizeMode::Letterbox, 48, 48));
    assert_eq!(stretch, letterbox, "a square picture fills a square input either way");
}

#[test]
fn fast_resize_is_close_to_imageops() {
    let smooth = RgbImage::from_fn(640, 480, |x, y| {
        let (u, v) = (x as f32 / 640.0, y as f32 / 480.0);
        image::Rgb([
            (255.0 * u) as u8,
            (128.0 + 120.0 * (5.0 * u + 3.0 * v).sin()) as u8,
            (255.0 * v) as u8,
        ])
    });
    for (w, h) in [(96, 96), (224, 160), (37, 51)] {
        let fast = resize::stretch(&smooth, w, h);
        let reference = imageops::resize(&smooth, w, h, FilterType::Triangle);
        let diff = mean_abs_byte_diff(fast.as_raw(), reference.as_raw());
        assert!(diff < 1.0, "{w}x{h}: mean difference {diff} levels");
    }
    // Same size: a copy.
    assert_eq!(resize::stretch(&smooth, 640, 480), smooth);
}

#[test]
fn dct_scale_keeps_both_axes_at_least_the_target() {
    assert_eq!(jpeg::dct_scale(2000, 1500, (96, 96)), 1, "250×188");
    assert_eq!(jpeg::dct_scale(640, 480, (96, 96)), 2, "160×120: 1/8 would give 80×60");
    assert_eq!(
        jpeg::dct_scale(2000, 300, (96, 96)),
        4,
        "the short side decides: 1000×150"
    );
    assert_eq!(jpeg::dct_scale(100, 100, (96, 96)), 8, "no reduction");
    assert_eq!(
        jpeg::stored_axes((48, 96), image::metadata::Orientation::Rotate90),
        (96, 48)
    );
    assert_eq!(
        jpeg::stored_axes((48, 96), image::metadata::Orientation::FlipHorizontal),
        (48, 96)
    );
    assert_eq!(resize::fitted_size((2000, 1000), (64, 64)), (64, 32));
    assert_eq!(resize::fitted_size((1, 1000), (64, 64)), (1, 64));
}

#[test]
fn a_large_jpeg_is_decoded_at_reduced_scale_close_to_the_full_decode() {
    let bytes = jpeg_of(&photo(2000, 1500), 90);
    let limits = DecodeLimits::default();
    let full = decode(&bytes, &limits).unwrap();
    assert_eq!(full.dimensions(), (2000, 1500), "decode still gives every pixel");
    // A baseline JPEG is decoded by libjpeg-turbo at the smallest scale that keeps the card's size…
    assert_eq!(
        decode_for(&bytes, &limits, Some((96, 96))).unwrap().dimensions(),
        (250, 188),
        "1/8"
    );
    assert_eq!(
        decode_for(&bytes, &limits, Some((300, 200))).unwrap().dimensions(),
        (500, 375),
        "1/4"
    );
    assert_eq!(
        decode_for(&bytes, &limits, Some((1001, 96))).unwrap().dimensions(),
        (2000, 1500),
        "whole"
    );
    assert_eq!(jpeg::sof_precision(&bytes), Some(8));
    let scaled = decode_for(&bytes, &limits, Some((96, 96))).unwrap();

    for pp in [
        photo_pp(ResizeMode::Letterbox, 96, 96),
        photo_pp(ResizeMode::Stretch, 96, 96),
        gray_photo_pp(ResizeMode::Letterbox, 96, 96),
    ] {
        let fast = prepare(&scaled, &pp);
        let reference = prepare(&full, &pp);
        assert_eq!(
            fast,
            preprocess(&bytes, &limits, &pp).unwrap(),
            "preprocess takes the scaled path"
        );
        let diff = mean_abs_diff(&fast, &reference);
        // 0.03 in units of a std of about 0.23 is under two grey levels.
        assert!(diff < 0.03, "{:?} {:?}: mean difference {diff}", pp.color, pp.resize);
    }
    // A gray JPEG stays gray.
    let gray = jpeg_of(&full.to_luma8(), 90);
    let scaled = decode_for(&gray, &limits, Some((96, 96))).unwrap();
    assert!(matches!(scaled, DynamicImage::ImageLuma8(_)));
    assert_eq!(scaled.dimensions(), (250, 188));
    let pp = gray_photo_pp(ResizeMode::Letterbox, 96, 96);
    let diff = mean_abs_diff(&prepare(&scaled, &pp), &prepare(&decode(&gray, &limits).unwrap(), &pp));
    assert!(diff < 0.03, "gray: mean difference {diff}");
}

#[test]
fn a_real_product_photo_decoded_at_half_scale_prepares_as_the_full_decode_does() {
    let bytes = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/examples/images/product-toolbox.jpg"
    ))
    .unwrap();
    let limits = DecodeLimits::default();
    let pp = Preprocessing {
        trim_border: true,
        ..photo_pp(ResizeMode::Letterbox, 160, 160)
    };
    let scaled = decode_for(&bytes, &limits, Some((160, 160))).unwrap();
    assert_eq!(scaled.dimensions(), (320, 240), "640x480 at 1/2");
    let diff = mean_abs_diff(&prepare(&scaled, &pp), &prepare(&decode(&bytes, &limits).unwrap(), &pp));
    // `examples/preprocess_speed` measures 1.1 levels on average for this photo.
    assert!(diff < 0.03, "mean difference {diff}");
}

#[test]
fn jpeg_limits_are_checked_from_the_header() {
    let bytes = jpeg_of(&photo(640, 480), 80);
    let tight = DecodeLimits {
        max_pixels: 100_000,
        ..DecodeLimits::default()
    };
    for pp in [photo_pp(ResizeMode::Letterbox, 96, 96), mnist_pp()] {
        assert!(matches!(
            preprocess(&bytes, &tight, &pp),
            Err(PreprocessError::TooLarge {
                width: 640,
                height: 480,
                ..
            })
        ));
    }
}

#[test]
fn corrupt_jpegs_never_panic_on_either_path() {
    let limits = DecodeLimits::default();
    let pp = photo_pp(ResizeMode::Letterbox, 32, 32);
    let jpeg = jpeg_of(&photo(256, 192), 85);
    let mut state = 0x2545_f491_4f6c_dd1du64;
    for round in 0..100 {
        let mut bytes = jpeg.clone();
        for _ in 0..4 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let at = 2 + (state as usize % (bytes.len() - 2));
            bytes[at] = (state >> 32) as u8;
        }
        if round % 10 == 0 {
            bytes.truncate(bytes.len() / 2);
        }
        if let Ok(input) = preprocess(&bytes, &limits, &pp) {
            assert_eq!(input.len(), 3 * 32 * 32);
        }
        // The scaled path, forced on this small image; `decode_for` catches its panics the same way.
        let scaled = catch_unwind(AssertUnwindSafe(|| {
            jpeg::decode_with(&bytes, &limits, Some((32, 32)), 0)
        }));
        if let Ok(Ok(Some(image))) = scaled {
            assert!(image.width() >= 32 && image.height() >= 32);
        }
    }
}

#[test]
fn a_cmyk_jpeg_shows_the_same_colours_through_either_decoder() {
    let bytes = fixture("cmyk.jpg");
    let limits = DecodeLimits::default();
    let expected = decode(&fixture("cmyk_expected.png"), &limits).unwrap().to_rgb8();

    // The `image` crate (zune-jpeg), every pixel.
    let full = decode(&bytes, &limits).unwrap().to_rgb8();
    assert_eq!(full.dimensions(), (400, 300));
    assert!(mean_abs_byte_diff(full.as_raw(), expected.as_raw()) < 2.0);

    // `jpeg-decoder` at full size with our conversion: the same colours.
    let mut decoder = jpeg_decoder::Decoder::new(&bytes[..]);
    let cmyk = decoder.decode().unwrap();
    assert_eq!(decoder.info().unwrap().pixel_format, jpeg_decoder::PixelFormat::CMYK32);
    let converted = jpeg::cmyk_to_rgb(&cmyk);
    let diff = mean_abs_byte_diff(&converted, full.as_raw());
    assert!(diff < 1.0, "jpeg-decoder vs zune-jpeg: {diff} levels");

    // The scaled path: half size for a 96×96 card, and the same input as from the full decode.
    let scaled = jpeg::decode_with(&bytes, &limits, Some((96, 96)), 0).unwrap().unwrap();
    assert_eq!(scaled.dimensions(), (200, 150));
    let pp = photo_pp(ResizeMode::Letterbox, 96, 96);
    let reference = prepare(&DynamicImage::ImageRgb8(expected), &pp);
    assert!(mean_abs_diff(&prepare(&scaled, &pp), &reference) < 0.03);
    assert!(mean_abs_diff(&preprocess(&bytes, &limits, &pp).unwrap(), &reference) < 0.03);
    // Spot colours: cyan top left, magenta top right, yellow bottom left, grey from K.
    let rgb = scaled.to_rgb8();
    for ((x, y), want) in [
        ((50, 30), [0, 255, 255]),
        ((150, 30), [255, 0, 255]),
        ((50, 90), [255, 255, 0]),
        ((150, 90), [127, 127, 127]),
    ] {
        let got = rgb.get_pixel(x, y).0;
        assert!(
            got.iter().zip(want).all(|(&g, w)| (i32::from(g) - w).abs() <= 6),
            "({x}, {y}): {got:?}, want {want:?}"
        );
    }
}

#[test]
fn a_16_bit_png_reads_like_its_8_bit_version() {
    let limits = DecodeLimits::default();
    let pp = photo_pp(ResizeMode::Letterbox, 64, 64);
    let deep = preprocess(&fixture("rgb16.png"), &limits, &pp).unwrap();
    let shallow = preprocess(&fixture("rgb16_as_8bit.png"), &limits, &pp).unwrap();
    assert_eq!(deep.len(), 3 * 64 * 64);
    assert!(max_abs_diff(&deep, &shallow) < 0.02);
    assert!(max_abs_diff(&deep, &vec![0.0; deep.len()]) > 1.0, "the ramps survived");
}

#[test]
fn a_transparent_palette_png_is_laid_over_white() {
    let image = decode(&fixture("palette_alpha.png"), &DecodeLimits::default()).unwrap();
    assert_eq!(image.dimensions(), (64, 48));
    // The card's own size: nothing is resampled, so every pixel can be checked exactly.
    let pp = photo_pp(ResizeMode::Stretch, 64, 48);
    let input = prepare(&image, &pp);
    let at = |c: usize, x: usize, y: usize| input[c * 64 * 48 + y * 64 + x];
    for (c, (corner, disc, bar)) in [(255, 255, 127), (255, 0, 127), (255, 0, 255)].into_iter().enumerate() {
        assert!(
            (at(c, 0, 0) - normalised(&pp, c, corner)).abs() < 1e-5,
            "transparent → white"
        );
        assert!(
            (at(c, 24, 24) - normalised(&pp, c, disc)).abs() < 1e-5,
            "opaque red stays red"
        );
        assert!(
            (at(c, 51, 20) - normalised(&pp, c, bar)).abs() < 1e-5,
            "half-transparent blue over white"
        );
    }
}

#[test]
fn an_exif_rotated_jpeg_is_stood_upright_on_both_paths() {
    let limits = DecodeLimits::default();
    let rotated = fixture("exif_rotate6.jpg");
    let upright = fixture("exif_rotate6_upright.jpg");

    assert_eq!(decode(&rotated, &limits).unwrap().dimensions(), (320, 480));
    // A 48×96 card needs 48×96 upright, 96×48 as stored: 1/4 scale (120×80 stored) is enough.
    // Without swapping the axes it would have needed 1/2.
    let scaled = |target| jpeg::decode_with(&rotated, &limits, Some(target), 0).unwrap().unwrap();
    assert_eq!(scaled((48, 96)).dimensions(), (80, 120));

    for pp in [
        photo_pp(ResizeMode::Letterbox, 96, 96),
        photo_pp(ResizeMode::Stretch, 48, 96),
    ] {
        let got = preprocess(&rotated, &limits, &pp).unwrap();
        let want = preprocess(&upright, &limits, &pp).unwrap();
        let diff = mean_abs_diff(&got, &want);
        assert!(
            diff < 0.05,
            "{:?}: mean difference {diff} from the upright picture",
            pp.resize
        );
        let got_scaled = prepare(&scaled((pp.width, pp.height)), &pp);
        let diff = mean_abs_diff(&got_scaled, &want);
        assert!(
            diff < 0.05,
            "{:?}: scaled, mean difference {diff} from the upright picture",
            pp.resize
        );
        // Turned the other way round, the picture is far off: the rotation really happened.
        let mut wrong = decode(&upright, &limits).unwrap();
        wrong.apply_orientation(image::metadata::Orientation::Rotate180);
        assert!(mean_abs_diff(&got, &prepare(&wrong, &pp)) > 0.3);
    }
}

#[test]
fn lossless_samples_are_scaled_by_their_precision() {
    assert_eq!(jpeg::sof_precision(b"\xff\xd8\xff\xc3\x00\x0b\x0c\x00\x01"), Some(12));
    assert_eq!(
        jpeg::sof_precision(b"\xff\xd8\xff\xe0\x00\x04ab\xff\xff\xc0\x00\x0b\x08"),
        Some(8)
    );
    assert_eq!(jpeg::sof_precision(b"\xff\xd8\xff\xe0\x00\xff"), None);
    assert_eq!(jpeg::sof_precision(b"\xff\xd8\xff\xda"), None);
    let (zero, full, half) = (0u16, 4095u16, 2048u16);
    let bytes = [zero, full, half, 9999].iter().flat_map(|v| v.to_ne_bytes()).collect();
    let image = jpeg::to_image(bytes, 4, 1, jpeg_decoder::PixelFormat::L16, 12).unwrap();
    assert_eq!(image.to_luma8().as_raw(), &[0, 255, 128, 255]);
    assert!(jpeg::to_image(vec![0; 5], 4, 1, jpeg_decoder::PixelFormat::L16, 12).is_none());
}

#[test]
fn faster_helpers_match_the_originals_bit_for_bit() {
    // The per-pixel code they replaced, kept here as the reference for MNIST's `Fit` path.
    fn old_rgb_on_white(image: &DynamicImage) -> RgbImage {
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
    fn old_border_is_light(gray: &GrayImage) -> bool {
        let (w, h) = gray.dimensions();
        let border = gray
            .enumerate_pixels()
            .filter(|(x, y, _)| *x == 0 || *y == 0 || *x == w - 1 || *y == h - 1);
        let (sum, count) = border.fold((0u64, 0u64), |(s, n), (_, _, p)| (s + u64::from(p.0[0]), n + 1));
        sum > count * 127
    }

    let mut state = 0x1234_5678_9abc_def1u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let rgba = RgbaImage::from_fn(37, 23, |_, _| Rgba(next().to_le_bytes()[..4].try_into().unwrap()));
    let rgba = DynamicImage::ImageRgba8(rgba);
    assert_eq!(to_rgb_on_white(&rgba), old_rgb_on_white(&rgba));
    let la16 = DynamicImage::ImageLumaA16(rgba.to_luma_alpha16());
    assert_eq!(to_rgb_on_white(&la16), old_rgb_on_white(&la16));

    for (w, h) in [(1, 1), (1, 9), (9, 1), (2, 2), (28, 28), (40, 17)] {
        for threshold in [60, 128, 200] {
            let gray = GrayImage::from_fn(w, h, |_, _| Luma([if next() % 256 > threshold { 255 } else { 0 }]));
            assert_eq!(border_is_light(&gray), old_border_is_light(&gray), "{w}x{h}");
        }
    }
    assert!(!border_is_light(&GrayImage::new(0, 0)));
}
