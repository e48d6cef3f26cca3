//! The augmentation sheet: every source beside one edit of each family, to see at a glance what training sees.

use std::path::Path;

use anyhow::{ensure, Context};
use image::{Rgb, RgbImage, RgbaImage};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::raster::{draw_centred, fit_scale, fit_size, paste, resize};
use super::{apply, flatten, EditFamily};

/// The header row's height for cells of `cell` px: room for one line of small text.
pub(super) fn header_height(cell: u32) -> u32 {
    (cell / 7).clamp(12, 24)
}

/// The sheet's `(width, height)` for `rows` sources and cells of `cell` px.
pub(super) fn grid_size(rows: u32, cell: u32) -> (u32, u32) {
    let columns = 1 + EditFamily::ALL.len() as u32;
    (columns * cell, header_height(cell) + rows * cell)
}

/// Writes the sheet as a PNG (see [`super::write_grid`]).
pub(super) fn write_grid(path: &Path, sources: &[RgbaImage], seed: u64, cell: u32) -> anyhow::Result<()> {
    ensure!(!sources.is_empty(), "no sources to draw an augmentation grid of");
    ensure!(
        (16..=1024).contains(&cell),
        "grid cell of {cell} px is outside 16..=1024"
    );
    let rows = u32::try_from(sources.len())
        .ok()
        .filter(|&r| r <= 4096)
        .context("too many sources for one grid")?;
    let (width, height) = grid_size(rows, cell);
    let mut sheet = RgbImage::from_pixel(width, height, Rgb([255, 255, 255]));
    let header = header_height(cell);
    let labels = std::iter::once("source").chain(EditFamily::ALL.iter().map(|f| f.name()));
    for (column, label) in labels.enumerate() {
        let scale = fit_scale(label, cell as f32 * 0.92, header as f32 * 0.55);
        let cx = (column as u32 * cell) as f32 + cell as f32 / 2.0;
        draw_centred(&mut sheet, Rgb([30, 30, 30]), cx, header as f32 / 2.0, scale, label);
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    for (row, source) in (0u32..).zip(sources) {
        let top = header + row * cell;
        put_cell(&mut sheet, &flatten(source), 0, top, cell);
        for (column, family) in (1u32..).zip(EditFamily::ALL) {
            put_cell(&mut sheet, &apply(family, source, &mut rng), column * cell, top, cell);
        }
    }
    sheet
        .save_with_format(path, image::ImageFormat::Png)
        .with_context(|| format!("writing the augmentation grid {}", path.display()))
}

/// `image` letterboxed into the `cell` square at `(x, y)`: a light grey cell with a 2 px gutter, so that each
/// edit's own white is visible against it.
fn put_cell(sheet: &mut RgbImage, image: &RgbImage, x: u32, y: u32, cell: u32) {
    const GUTTER: u32 = 2;
    let inner = cell - 2 * GUTTER;
    let backdrop = RgbImage::from_pixel(inner, inner, Rgb([225, 225, 228]));
    paste(sheet, &backdrop, i64::from(x + GUTTER), i64::from(y + GUTTER));
    let (w, h) = fit_size(image.width(), image.height(), inner, inner);
    let (ox, oy) = (x + GUTTER + (inner - w) / 2, y + GUTTER + (inner - h) / 2);
    paste(sheet, &resize(image, w, h), i64::from(ox), i64::from(oy));
}
