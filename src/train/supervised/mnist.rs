//! Real MNIST digits from IDX files (what `scripts/fetch-mnist` writes), and the project's fixed split of them.

use std::path::Path;

use anyhow::{bail, ensure, Context, Result};
use image::GrayImage;

use crate::model::card::{ColorMode, Polarity, Preprocessing, ResizeMode};
use crate::preprocess;
use crate::train::dataset::{split_indices, stratified_split, Dataset, Split};

pub const IMAGES_FILE: &str = "images.idx3-ubyte";
pub const LABELS_FILE: &str = "labels.idx1-ubyte";
/// The split's seed is part of the data set's definition: every model and test sees the same test digits.
pub const SPLIT_SEED: u64 = 20_241_128;
/// 2,000 of the 10,000 digits are held out for testing.
pub const TEST_FRACTION: f64 = 0.2;
/// Of the 8,000 training digits, this share validates (threshold calibration, best epoch).
pub const VALIDATION_FRACTION: f64 = 0.1;

/// How the `mnist` model reads images: MNIST's own normalisation (strokes fitted in 20×20, centred in
/// 28×28), light strokes on black, pixels in [0, 1] as the seed uses them.
pub fn preprocessing() -> Preprocessing {
    Preprocessing {
        color: ColorMode::Grayscale,
        width: 28,
        height: 28,
        resize: ResizeMode::Fit,
        content_box: Some(20),
        mean: vec![0.0],
        std: vec![1.0],
        polarity: Polarity::LightOnDark,
        trim_border: false,
    }
}

/// Raw digits as stored: 28×28 grayscale images and their labels.
pub fn read_idx(dir: &Path) -> Result<(Vec<GrayImage>, Vec<usize>)> {
    let images = std::fs::read(dir.join(IMAGES_FILE))
        .with_context(|| format!("reading {} (run scripts/setup)", dir.join(IMAGES_FILE).display()))?;
    let labels =
        std::fs::read(dir.join(LABELS_FILE)).with_context(|| format!("reading {}", dir.join(LABELS_FILE).display()))?;
    let header = |bytes: &[u8], i: usize| -> Result<usize> {
        let b = bytes.get(4 * i..4 * i + 4).context("truncated IDX header")?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize)
    };
    ensure!(
        header(&images, 0)? == 0x803 && header(&labels, 0)? == 0x801,
        "not MNIST IDX files"
    );
    let (count, rows, cols) = (header(&images, 1)?, header(&images, 2)?, header(&images, 3)?);
    ensure!(header(&labels, 1)? == count, "image and label counts differ");
    let pixels = &images[16..];
    if pixels.len() != count * rows * cols || labels.len() != 8 + count {
        bail!("IDX files are truncated");
    }
    let digits = pixels
        .chunks_exact(rows * cols)
        .map(|chunk| GrayImage::from_raw(cols as u32, rows as u32, chunk.to_vec()).expect("chunk has rows*cols bytes"))
        .collect();
    let labels = labels[8..].iter().map(|&l| usize::from(l)).collect();
    Ok((digits, labels))
}

/// All digits, preprocessed exactly as the server will preprocess an uploaded digit.
pub fn load(dir: &Path) -> Result<Dataset> {
    let (digits, labels) = read_idx(dir)?;
    ensure!(labels.iter().all(|&l| l < 10), "labels must be digits 0-9");
    let pp = preprocessing();
    let inputs: Vec<Vec<f32>> = digits
        .into_iter()
        .map(|d| preprocess::prepare(&image::DynamicImage::ImageLuma8(d), &pp))
        .collect();
    let names = (0..10).map(|d| d.to_string()).collect();
    Ok(Dataset::from_inputs(&inputs, [1, 28, 28], labels, names))
}

/// The fixed split: 8,000 training digits (800 of them validation) and 2,000 test digits, stratified.
pub fn load_split(dir: &Path) -> Result<Split> {
    Ok(stratified_split(
        &load(dir)?,
        TEST_FRACTION,
        VALIDATION_FRACTION,
        SPLIT_SEED,
    ))
}

/// The raw images of the held-out test digits, with labels: what tests send to the server as held-out input.
pub fn test_digits(dir: &Path) -> Result<Vec<(GrayImage, usize)>> {
    let (digits, labels) = read_idx(dir)?;
    let test_indices = split_indices(&labels, TEST_FRACTION, VALIDATION_FRACTION, SPLIT_SEED).test;
    Ok(test_indices
        .into_iter()
        .map(|i| (digits[i].clone(), labels[i]))
        .collect())
}
