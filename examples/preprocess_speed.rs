//! What decoding and preprocessing one JPEG costs, decoder against decoder, for the product card
//! (RGB, 160×160, letterboxed).
//!
//! `cargo run --release --example preprocess_speed -- [--iterations 20] [--sizes 4000x3000,640x480]
//! [--files examples/images/product-toolbox.jpg]` generates JPEGs (quality 90, smooth gradients plus
//! noise, like a photo; by default 4000×3000, 2000×1500 and 640×480), reads any `--files`, and prints
//! the median milliseconds per image:
//!
//! - `image, full`: the `image` crate's decoder (`zune-jpeg`) at full size;
//! - `jpeg-decoder 1/n`: `jpeg-decoder`'s scaled IDCT at the smallest scale that keeps the card's size;
//! - `turbojpeg 1/n`: libjpeg-turbo's scaled IDCT at that scale;
//! - `preprocess`: what the service does (`simverify::preprocess::preprocess`, decode and prepare).
//!
//! Each decoder's time is given alone and with `prepare` (the resize to the card), and the prepared
//! input of each scaled decode is compared with the full decode's, in 8-bit levels: the largest and the
//! mean difference over every value of the 160×160×3 input.

use std::hint::black_box;
use std::time::Instant;

use clap::Parser;
use image::{DynamicImage, RgbImage};
use simverify::model::card::{ColorMode, Polarity, Preprocessing, ResizeMode};
use simverify::preprocess::{decode, prepare, preprocess, DecodeLimits};

#[derive(Parser)]
struct Args {
    /// Runs of each way per image; the median is printed.
    #[arg(long, default_value_t = 20)]
    iterations: u32,
    /// Photo sizes to generate, WIDTHxHEIGHT.
    #[arg(long, value_delimiter = ',', default_value = "4000x3000,2000x1500,640x480", value_parser = parse_size)]
    sizes: Vec<(u32, u32)>,
    /// JPEG files to measure as well.
    #[arg(long, value_delimiter = ',')]
    files: Vec<std::path::PathBuf>,
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
    let pp = product_card();
    let target = (pp.width, pp.height);
    let mut inputs = Vec::new();
    for &(width, height) in &args.sizes {
        inputs.push((format!("{width}x{height} generated"), jpeg(&photo(width, height), 90)?));
    }
    for file in &args.files {
        let name = file
            .file_name()
            .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
        inputs.push((name, std::fs::read(file)?));
    }
    println!(
        "median ms per image of {} runs; decode alone / decode and prepare for the 160x160 letterboxed card",
        args.iterations
    );
    println!(
        "{:<34} {:>15} {:>20} {:>20} {:>11}",
        "image", "image, full", "jpeg-decoder 1/n", "turbojpeg 1/n", "preprocess"
    );
    let mut agreement = Vec::new();
    for (name, bytes) in &inputs {
        let (w, h) = image::load_from_memory(bytes)?.into_rgb8().dimensions();
        let label = format!("{name} ({w}x{h}, {} KB)", bytes.len() / 1024);
        let full = |prep: bool| {
            time(args.iterations, || {
                let image = decode(bytes, &limits).expect("decodes");
                prep.then(|| prepare(&image, &pp))
            })
        };
        let jd = |prep: bool| {
            time(args.iterations, || {
                let (image, _) = jpeg_decoder_scaled(bytes, target).expect("decodes");
                prep.then(|| prepare(&image, &pp))
            })
        };
        let tj = |prep: bool| {
            time(args.iterations, || {
                let (image, _) = turbojpeg_scaled(bytes, target).expect("decodes");
                prep.then(|| prepare(&image, &pp))
            })
        };
        let now = time(args.iterations, || preprocess(bytes, &limits, &pp).expect("decodes"));
        let (_, eighths) = turbojpeg_scaled(bytes, target)?;
        let pair = |a: f64, b: f64| format!("{a:.2} / {b:.2}");
        println!(
            "{label:<34} {:>15} {:>20} {:>20} {now:>11.2}",
            pair(full(false), full(true)),
            format!("{} (1/{})", pair(jd(false), jd(true)), 8 / eighths),
            format!("{} (1/{})", pair(tj(false), tj(true)), 8 / eighths),
        );
        let reference = prepare(&decode(bytes, &limits)?, &pp);
        agreement.push((
            label,
            levels_apart(&reference, &prepare(&jpeg_decoder_scaled(bytes, target)?.0, &pp), &pp),
            levels_apart(&reference, &prepare(&turbojpeg_scaled(bytes, target)?.0, &pp), &pp),
        ));
    }
    println!("\nprepared input against the full decode's, 8-bit levels: largest / mean difference");
    println!("{:<34} {:>20} {:>20}", "image", "jpeg-decoder 1/n", "turbojpeg 1/n");
    for (label, (jd_max, jd_mean), (tj_max, tj_mean)) in agreement {
        println!(
            "{label:<34} {:>20} {:>20}",
            format!("{jd_max:.1} / {jd_mean:.2}"),
            format!("{tj_max:.1} / {tj_mean:.2}")
        );
    }
    Ok(())
}

/// The largest and the mean absolute difference of two prepared inputs, in 8-bit levels.
fn levels_apart(a: &[f32], b: &[f32], pp: &Preprocessing) -> (f64, f64) {
    let plane = a.len() / pp.std.len();
    let levels: Vec<f64> = a
        .iter()
        .zip(b)
        .enumerate()
        .map(|(i, (x, y))| f64::from((x - y).abs()) * f64::from(pp.std[i / plane]) * 255.0)
        .collect();
    let max = levels.iter().copied().fold(0.0, f64::max);
    (max, levels.iter().sum::<f64>() / levels.len() as f64)
}

/// The smallest IDCT scale, in eighths, whose output is at least `target` on both axes.
fn eighths_for((w, h): (u32, u32), (tw, th): (u32, u32)) -> u32 {
    [1, 2, 4]
        .into_iter()
        .find(|&s| (w * s).div_ceil(8) >= tw && (h * s).div_ceil(8) >= th)
        .unwrap_or(8)
}

/// `jpeg-decoder` at the smallest scale that keeps both axes at least `target` (RGB and gray only:
/// enough for these photos), and the scale in eighths.
fn jpeg_decoder_scaled(bytes: &[u8], target: (u32, u32)) -> anyhow::Result<(DynamicImage, u32)> {
    let mut decoder = jpeg_decoder::Decoder::new(bytes);
    decoder.read_info()?;
    let info = decoder.info().ok_or_else(|| anyhow::anyhow!("no header"))?;
    let (w, h) = (u32::from(info.width), u32::from(info.height));
    let eighths = eighths_for((w, h), target);
    let (sw, sh) = decoder.scale((w * eighths).div_ceil(8) as u16, (h * eighths).div_ceil(8) as u16)?;
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

/// libjpeg-turbo at the same scale, to RGB, and the scale in eighths.
fn turbojpeg_scaled(bytes: &[u8], target: (u32, u32)) -> anyhow::Result<(DynamicImage, u32)> {
    let mut decompressor = turbojpeg::Decompressor::new()?;
    let header = decompressor.read_header(bytes)?;
    let (w, h) = (header.width as u32, header.height as u32);
    let eighths = eighths_for((w, h), target);
    let (sw, sh) = ((w * eighths).div_ceil(8), (h * eighths).div_ceil(8));
    let mut pixels = vec![0; 3 * sw as usize * sh as usize];
    let image = turbojpeg::Image {
        pixels: pixels.as_mut_slice(),
        width: sw as usize,
        pitch: 3 * sw as usize,
        height: sh as usize,
        format: turbojpeg::PixelFormat::RGB,
    };
    decompressor.decompress(bytes, image)?;
    let image = RgbImage::from_raw(sw, sh, pixels).ok_or_else(|| anyhow::anyhow!("short output"))?;
    Ok((DynamicImage::ImageRgb8(image), eighths))
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

/// The product model's preprocessing.
fn product_card() -> Preprocessing {
    Preprocessing {
        color: ColorMode::Rgb,
        width: 160,
        height: 160,
        resize: ResizeMode::Letterbox,
        content_box: None,
        mean: vec![0.5; 3],
        std: vec![0.5; 3],
        polarity: Polarity::AsIs,
        trim_border: true,
    }
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
