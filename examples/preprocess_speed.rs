//! What decoding and preprocessing one photo costs, old way against new, for an RGB 96×96 card.
//!
//! `cargo run --release --example preprocess_speed -- [--iterations 20] [--sizes 4000x3000,640x480]`
//! generates JPEGs (quality 90, smooth gradients plus noise, like a photo; by default 4000×3000,
//! 2000×1500 and 640×480) and prints the median milliseconds per image for `Letterbox` and
//! `Stretch` cards:
//!
//! - `before`: the full decode by the `image` crate, a full-size RGB copy, `imageops::resize`;
//! - `image + fir`: the same full decode, then `preprocess::prepare` (`fast_image_resize`);
//! - `jpeg-decoder 1/n`: `jpeg-decoder`'s scaled decode forced whatever the size, then `prepare`;
//! - `preprocess`: what the service does now, which scales only from
//!   10 megapixels, where it pays (see `src/preprocess/jpeg.rs`).
//!
//! Then the same for decoding alone. Times are wall-clock: `jpeg-decoder` runs a thread per colour
//! component, so on an idle machine it looks better than its CPU time says.

use std::hint::black_box;
use std::time::Instant;

use clap::Parser;
use image::imageops::{self, FilterType};
use image::{DynamicImage, RgbImage};
use simverify::model::card::{ColorMode, Polarity, Preprocessing, ResizeMode};
use simverify::preprocess::{decode, prepare, preprocess, DecodeLimits};

#[derive(Parser)]
struct Args {
    /// Runs of each way per image and card; the median is printed.
    #[arg(long, default_value_t = 20)]
    iterations: u32,
    /// Photo sizes to generate, WIDTHxHEIGHT.
    #[arg(long, value_delimiter = ',', default_value = "4000x3000,2000x1500,640x480", value_parser = parse_size)]
    sizes: Vec<(u32, u32)>,
}

fn parse_size(text: &str) -> Result<(u32, u32), String> {
    let (w, h) = text.split_once('x').ok_or("expected WIDTHxHEIGHT")?;
    Ok((
        w.parse().map_err(|e| format!("{e}"))?,
        h.parse().map_err(|e| format!("{e}"))?,
    ))
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let limits = DecodeLimits::default();
    println!("decode + preprocess, median ms per image of {} runs", args.iterations);
    println!(
        "{:<10} {:<10} {:>8} {:>12} {:>17} {:>11}",
        "image", "card", "before", "image + fir", "jpeg-decoder 1/n", "preprocess"
    );
    let mut decode_only = Vec::new();
    for &(width, height) in &args.sizes {
        let bytes = jpeg(&photo(width, height), 90)?;
        let (_, eighths) = scaled_decode(&bytes, (96, 96))?;
        decode_only.push((
            format!("{width}x{height} ({} KB)", bytes.len() / 1024),
            time(args.iterations, || decode(&bytes, &limits).expect("decodes")),
            eighths,
            time(args.iterations, || scaled_decode(&bytes, (96, 96)).expect("decodes")),
        ));
        for resize in [ResizeMode::Letterbox, ResizeMode::Stretch] {
            let pp = card(resize);
            let before = time(args.iterations, || {
                let image = decode(&bytes, &limits).expect("decodes");
                old_prepare(&image, &pp)
            });
            let fir = time(args.iterations, || {
                let image = decode(&bytes, &limits).expect("decodes");
                prepare(&image, &pp)
            });
            let scaled = time(args.iterations, || {
                let (image, _) = scaled_decode(&bytes, (pp.width, pp.height)).expect("decodes");
                prepare(&image, &pp)
            });
            let now = time(args.iterations, || preprocess(&bytes, &limits, &pp).expect("decodes"));
            println!(
                "{:<10} {:<10} {before:>8.2} {fir:>12.2} {:>17} {now:>11.2}",
                format!("{width}x{height}"),
                format!("{resize:?}"),
                format!("{scaled:.2} (1/{})", 8 / eighths),
            );
        }
    }
    println!(
        "
decoding alone, median ms per image"
    );
    println!("{:<22} {:>16} {:>17}", "image", "image, full size", "jpeg-decoder 1/n");
    for (name, full, eighths, scaled) in decode_only {
        println!(
            "{name:<22} {full:>16.2} {:>17}",
            format!("{scaled:.2} (1/{})", 8 / eighths)
        );
    }
    Ok(())
}

/// `jpeg-decoder` at the smallest scale that keeps both axes at least `target`, as
/// `simverify::preprocess` decodes large JPEGs (RGB and gray only: enough for these photos), and
/// the scale in eighths.
fn scaled_decode(bytes: &[u8], (tw, th): (u32, u32)) -> anyhow::Result<(DynamicImage, u32)> {
    let mut decoder = jpeg_decoder::Decoder::new(bytes);
    decoder.read_info()?;
    let info = decoder.info().ok_or_else(|| anyhow::anyhow!("no header"))?;
    let (w, h) = (u32::from(info.width), u32::from(info.height));
    let side = |len: u32, eighths: u32| (len * eighths).div_ceil(8);
    let eighths = [1, 2, 4]
        .into_iter()
        .find(|&s| side(w, s) >= tw && side(h, s) >= th)
        .unwrap_or(8);
    let (sw, sh) = decoder.scale(side(w, eighths) as u16, side(h, eighths) as u16)?;
    let pixels = decoder.decode()?;
    let image = match info.pixel_format {
        jpeg_decoder::PixelFormat::RGB24 => {
            RgbImage::from_raw(sw.into(), sh.into(), pixels).map(DynamicImage::ImageRgb8)
        }
        jpeg_decoder::PixelFormat::L8 => {
            image::GrayImage::from_raw(sw.into(), sh.into(), pixels).map(DynamicImage::ImageLuma8)
        }
        other => anyhow::bail!("{other:?} is not needed here"),
    };
    Ok((image.ok_or_else(|| anyhow::anyhow!("short output"))?, eighths))
}

/// Median milliseconds of `runs` calls of `f`, after one warm-up call: the median shrugs off the
/// other processes of a busy machine.
fn time<T>(runs: u32, mut f: impl FnMut() -> T) -> f64 {
    black_box(f());
    let mut ms: Vec<f64> = (0..runs.max(1))
        .map(|_| {
            let start = Instant::now();
            black_box(f());
            start.elapsed().as_secs_f64() * 1000.0
        })
        .collect();
    ms.sort_by(f64::total_cmp);
    ms[ms.len() / 2]
}

fn card(resize: ResizeMode) -> Preprocessing {
    Preprocessing {
        color: ColorMode::Rgb,
        width: 96,
        height: 96,
        resize,
        content_box: None,
        mean: vec![0.485, 0.456, 0.406],
        std: vec![0.229, 0.224, 0.225],
        polarity: Polarity::AsIs,
        trim_border: false,
    }
}

/// The RGB preparation before `fast_image_resize`: a full-size RGB copy, then `imageops::resize`
/// (letterboxing done the same way, for a like-for-like comparison).
fn old_prepare(image: &DynamicImage, pp: &Preprocessing) -> Vec<f32> {
    let rgb = image.to_rgb8();
    let resized = match pp.resize {
        ResizeMode::Letterbox => {
            let scale = f64::min(
                f64::from(pp.width) / f64::from(rgb.width()),
                f64::from(pp.height) / f64::from(rgb.height()),
            );
            let w = ((f64::from(rgb.width()) * scale).round() as u32).clamp(1, pp.width);
            let h = ((f64::from(rgb.height()) * scale).round() as u32).clamp(1, pp.height);
            let scaled = imageops::resize(&rgb, w, h, FilterType::Triangle);
            let fill = image::Rgb([0, 1, 2].map(|c| (pp.mean[c] * 255.0).round() as u8));
            let mut canvas = RgbImage::from_pixel(pp.width, pp.height, fill);
            imageops::replace(
                &mut canvas,
                &scaled,
                i64::from((pp.width - w) / 2),
                i64::from((pp.height - h) / 2),
            );
            canvas
        }
        _ => imageops::resize(&rgb, pp.width, pp.height, FilterType::Triangle),
    };
    (0..3)
        .flat_map(|c| {
            let (mean, std) = (pp.mean[c], pp.std[c]);
            resized.pixels().map(move |p| (f32::from(p.0[c]) / 255.0 - mean) / std)
        })
        .collect()
}

/// Smooth colour ramps with deterministic noise: compresses and decodes like a photo.
fn photo(width: u32, height: u32) -> RgbImage {
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    RgbImage::from_fn(width, height, |x, y| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let noise = (state % 13) as f32 - 6.0;
        let (u, v) = (x as f32 / width as f32, y as f32 / height as f32);
        let channel = |base: f32| (base + noise).clamp(0.0, 255.0) as u8;
        image::Rgb([
            channel(40.0 + 180.0 * u),
            channel(128.0 + 100.0 * (6.0 * u + 4.0 * v).sin()),
            channel(220.0 - 160.0 * v),
        ])
    })
}

fn jpeg(image: &RgbImage, quality: u8) -> anyhow::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut bytes, quality).encode_image(image)?;
    Ok(bytes)
}
