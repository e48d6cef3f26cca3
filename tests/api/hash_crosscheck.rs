//! Our pHash and dHash against the reference Python imagehash (in the project venv) on the example PNGs and
//! on generated photo-like images: the hashes of lossless images must be imagehash's, those of a JPEG within
//! a couple of bits.
//! Skips only where `.venv/bin/python3` is absent; a venv without imagehash fails (scripts/setup installs it).

use std::path::{Path, PathBuf};
use std::process::Command;

use image::codecs::jpeg::JpegEncoder;
use image::{imageops, GrayImage, Rgb, RgbImage};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use simverify::train::hashes::{hamming, PerceptualHash};

/// The most bits either hash may differ from imagehash's on a lossless image: none, as measured (the grayscale,
/// the resize and the bit order are Pillow's and imagehash's, ported).
const MAX_BITS_APART_LOSSLESS: u32 = 0;
/// The same for a JPEG, which `image` (zune-jpeg) and Pillow (libjpeg-turbo) may decode a grey level apart here
/// and there; measured 0 on this one, the allowance is for other decoder versions.
const MAX_BITS_APART_JPEG: u32 = 2;

fn repo_path(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(relative)
}

/// Filled ellipses and rectangles of random colours on a random background, seeded.
fn shapes(width: u32, height: u32, seed: u64) -> RgbImage {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut image = RgbImage::from_pixel(width, height, Rgb(rng.gen()));
    for _ in 0..12 {
        let (x0, y0) = (rng.gen_range(0..width) as f64, rng.gen_range(0..height) as f64);
        let (w, h) = (
            rng.gen_range(20..width / 2) as f64,
            rng.gen_range(20..height / 2) as f64,
        );
        let ellipse = rng.gen_bool(0.5);
        let colour = Rgb(rng.gen());
        for (x, y, pixel) in image.enumerate_pixels_mut() {
            let (u, v) = ((x as f64 - x0) / w, (y as f64 - y0) / h);
            let inside = if ellipse {
                (u - 0.5).powi(2) + (v - 0.5).powi(2) <= 0.25
            } else {
                (0.0..=1.0).contains(&u) && (0.0..=1.0).contains(&v)
            };
            if inside {
                *pixel = colour;
            }
        }
    }
    image
}

/// The images the test writes: flat, gradients, shapes, a smooth texture, a JPEG, a large image that pHash shrinks
/// 50-fold, a grayscale PNG and the hand-checked pHash pattern of the unit tests.
fn write_images(dir: &Path) -> Vec<PathBuf> {
    let (w, h) = (320, 240);
    let unit = |x: u32, y: u32| (x as f64 / w as f64, y as f64 / h as f64);
    let byte = |v: f64| v.clamp(0.0, 255.0) as u8;
    let mut images: Vec<(&str, RgbImage)> = vec![
        (
            "gradient-radial.png",
            RgbImage::from_fn(w, h, |x, y| {
                let (u, v) = unit(x, y);
                let r = (u - 0.4).hypot(v - 0.6);
                Rgb([byte(255.0 * (1.0 - r)), byte(200.0 * r), byte(120.0 + 60.0 * u)])
            }),
        ),
        (
            "gradient-product.png",
            RgbImage::from_fn(w, h, |x, y| {
                let (u, v) = unit(x, y);
                Rgb([
                    byte(255.0 * u * v),
                    byte(255.0 * (1.0 - u) * v),
                    byte(255.0 * u * (1.0 - v)),
                ])
            }),
        ),
        // Flat and one-dimensional images: most DCT terms are exactly zero, as is their median, so round-off
        // would decide those pHash bits if our DCT did not give exact zeros where scipy's does.
        ("flat.png", RgbImage::from_pixel(100, 80, Rgb([90, 120, 200]))),
        (
            "gradient-horizontal.png",
            RgbImage::from_fn(w, h, |x, _| Rgb([(x * 255 / (w - 1)) as u8; 3])),
        ),
        (
            "gradient-vertical.png",
            RgbImage::from_fn(w, h, |_, y| Rgb([(y * 255 / (h - 1)) as u8; 3])),
        ),
        ("shapes.png", shapes(400, 300, 1)),
        ("large-shapes.png", shapes(1600, 1200, 3)),
    ];
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let coarse = RgbImage::from_fn(16, 12, |_, _| Rgb(rng.gen()));
    images.push((
        "texture.png",
        imageops::resize(&coarse, 256, 192, imageops::FilterType::CatmullRom),
    ));
    let basis = |u: u32, x: u32| (std::f64::consts::PI * f64::from(u) * (2.0 * f64::from(x) + 1.0) / 64.0).cos();
    images.push((
        "dct-checkerboard.png",
        RgbImage::from_fn(32, 32, |x, y| {
            let mut value = 128.0;
            for v in 0..8 {
                for u in 0..8 {
                    if (u, v) != (0, 0) {
                        value += if (u + v) % 2 == 0 { 2.0 } else { -2.0 } * basis(u, x) * basis(v, y);
                    }
                }
            }
            let v = byte(value.round());
            Rgb([v, v, v])
        }),
    ));

    let mut paths = Vec::new();
    for (name, image) in &images {
        let path = dir.join(name);
        image.save(&path).unwrap();
        paths.push(path);
    }
    let scene = imageops::blur(&shapes(640, 480, 2), 2.0);
    let path = dir.join("scene.jpg");
    let mut jpeg = Vec::new();
    JpegEncoder::new_with_quality(&mut jpeg, 85)
        .encode_image(&scene)
        .unwrap();
    std::fs::write(&path, jpeg).unwrap();
    paths.push(path);
    let path = dir.join("scene-gray.png");
    GrayImage::from_fn(640, 480, |x, y| image::Luma([scene.get_pixel(x, y).0[1]]))
        .save(&path)
        .unwrap();
    paths.push(path);
    paths
}

#[test]
fn our_hashes_match_python_imagehash() {
    let python = repo_path(".venv/bin/python3");
    if !python.exists() {
        eprintln!(
            "skipped: {} is absent (scripts/setup creates the venv with imagehash)",
            python.display()
        );
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut files = write_images(dir.path());
    let mut examples: Vec<PathBuf> = std::fs::read_dir(repo_path("examples/images"))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|e| e == "png"))
        .collect();
    examples.sort();
    files.extend(examples);

    // The reference: one imagehash run over every file, one `PHASH DHASH` line per file, in order.
    let script = "import sys, imagehash\nfrom PIL import Image\nfor path in sys.argv[1:]:\n    \
                  with Image.open(path) as image:\n        print(imagehash.phash(image), imagehash.dhash(image))\n";
    let output = Command::new(&python)
        .arg("-c")
        .arg(script)
        .args(&files)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{} could not hash with imagehash (run scripts/setup):\n{}",
        python.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    let reference = String::from_utf8(output.stdout).unwrap();
    let reference: Vec<&str> = reference.lines().collect();
    assert_eq!(reference.len(), files.len(), "one line per file: {reference:?}");

    let mut table = format!(
        "{:<24} {:<5} {:<16} {:<16} {:>4}\n",
        "file", "hash", "ours", "imagehash", "diff"
    );
    let mut failures = Vec::new();
    let mut worst = 0;
    for (file, line) in files.iter().zip(reference) {
        let image = image::open(file).unwrap().to_rgb8();
        let name = file.file_name().unwrap().to_string_lossy();
        let bound = if name.ends_with(".jpg") {
            MAX_BITS_APART_JPEG
        } else {
            MAX_BITS_APART_LOSSLESS
        };
        let theirs: Vec<u64> = line
            .split_whitespace()
            .map(|h| u64::from_str_radix(h, 16).unwrap())
            .collect();
        for (hash, theirs) in PerceptualHash::ALL.into_iter().zip(theirs) {
            let ours = hash.hash(&image);
            let apart = hamming(ours, theirs);
            worst = worst.max(apart);
            if apart > bound {
                failures.push(format!("{name} {}: {apart} bits apart (at most {bound})", hash.name()));
            }
            table += &format!("{name:<24} {:<5} {ours:016x} {theirs:016x} {apart:>4}\n", hash.name());
        }
    }
    println!("{table}max {worst} bits apart");
    assert!(failures.is_empty(), "{}\n{table}", failures.join("\n"));
}
