//! Where two images match, from one extra forward pass each at twice the card's size: every cell of an
//! image's last feature map, raised to GeM's power and projected by the embedding's weights, is what that
//! place adds to the image's embedding; its dot product with the other image's embedding is the cell's
//! heat (a class activation map for a similarity rather than a class). The region is the connected part
//! of the heatmap around its peak that reaches `level` of the way from the image's least heat to its
//! peak, mapped back to the image's own pixels through the preprocessing's placement: a photo pasted into
//! a page lights up where it was pasted. The level and the scale were chosen on validation pages by
//! `scripts/explain-iou`, which also measures the held-out figure.

use std::io::Cursor;

use crate::preprocess::Placement;

/// Heatmap pixels on the longer side: enough to draw over a photo, small enough to travel as base64.
pub(crate) const HEATMAP_SIDE: u32 = 64;

/// Input pixels per feature-map cell (EfficientNet's total stride).
const CELL: f32 = 32.0;

/// One image's located contributions and where its input came from.
pub(crate) struct Located {
    /// `rows × cols × dim` floats, row by row: each cell's contribution to the embedding.
    pub cells: Vec<f32>,
    pub grid: (usize, usize),
    pub dim: usize,
    pub placement: Placement,
}

/// The part of an image that matches the other image.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Region {
    /// `[x0, y0, x1, y1]` in the image's own pixels (after EXIF orientation), `x1`, `y1` exclusive.
    pub bbox: [u32; 4],
    /// The box's share of the image's area.
    pub coverage: f32,
    /// The heatmap as an RGBA PNG the image's shape: red where the image matches, transparent elsewhere.
    pub heatmap_png: Vec<u8>,
}

/// The regions of `a` and `b` (with their embeddings `embedding_a`, `embedding_b`) that match each
/// other; `level` (0 to 1) is how far from an image's least heat towards its peak a place must be to
/// count as matching.
pub(crate) fn explain(
    a: &Located,
    embedding_a: &[f32],
    b: &Located,
    embedding_b: &[f32],
    level: f32,
) -> (Region, Region) {
    (region(a, embedding_b, level), region(b, embedding_a, level))
}

fn region(this: &Located, other: &[f32], level: f32) -> Region {
    // Each cell's heat: how far it draws this image's embedding towards the other's.
    let heat: Vec<f32> = this
        .cells
        .chunks_exact(this.dim)
        .map(|cell| cell.iter().zip(other).map(|(x, y)| x * y).sum())
        .collect();
    let (iw, ih) = this.placement.image;
    let scale = HEATMAP_SIDE as f32 / iw.max(ih).max(1) as f32;
    let (hw, hh) = (
        ((iw as f32 * scale).round() as u32).max(1),
        ((ih as f32 * scale).round() as u32).max(1),
    );
    // Each heatmap pixel's heat, sampled between cell centres; `None` outside the input (a trimmed border).
    let pixels: Vec<Option<f32>> = (0..hh)
        .flat_map(|v| (0..hw).map(move |u| (u, v)))
        .map(|(u, v)| {
            let x = (u as f32 + 0.5) / hw as f32 * iw as f32;
            let y = (v as f32 + 0.5) / hh as f32 * ih as f32;
            let (ix, iy) = this.placement.to_input(x, y)?;
            Some(bilinear(&heat, this.grid, ix / CELL - 0.5, iy / CELL - 0.5))
        })
        .collect();
    let valid = || pixels.iter().flatten().copied();
    let peak = valid().fold(f32::NEG_INFINITY, f32::max);
    let floor = valid().fold(f32::INFINITY, f32::min);
    let threshold = floor + level * (peak - floor);
    let mask = component_around_peak(&pixels, hw as usize, hh as usize, threshold);
    let (mut x0, mut y0, mut x1, mut y1) = (hw, hh, 0, 0);
    for (i, _) in mask.iter().enumerate().filter(|(_, &m)| m) {
        let (u, v) = ((i % hw as usize) as u32, (i / hw as usize) as u32);
        (x0, y0, x1, y1) = (x0.min(u), y0.min(v), x1.max(u + 1), y1.max(v + 1));
    }
    if x1 <= x0 || y1 <= y0 {
        (x0, y0, x1, y1) = (0, 0, hw, hh);
    }
    let to_image = |value: u32, heat_side: u32, side: u32| {
        ((value as f32 / heat_side as f32 * side as f32).round() as u32).min(side)
    };
    let bbox = [
        to_image(x0, hw, iw),
        to_image(y0, hh, ih),
        to_image(x1, hw, iw),
        to_image(y1, hh, ih),
    ];
    let coverage = ((bbox[2] - bbox[0]) as f64 * (bbox[3] - bbox[1]) as f64 / (iw as f64 * ih as f64).max(1.0)) as f32;
    Region {
        bbox,
        coverage,
        heatmap_png: heatmap_png(&pixels, hw, hh, floor, peak),
    }
}

/// `grid` sampled at fractional cell coordinates `(x, y)`, clamped to the edge cells.
fn bilinear(grid: &[f32], (rows, cols): (usize, usize), x: f32, y: f32) -> f32 {
    let x = x.clamp(0.0, (cols - 1) as f32);
    let y = y.clamp(0.0, (rows - 1) as f32);
    let (x0, y0) = (x.floor() as usize, y.floor() as usize);
    let (x1, y1) = ((x0 + 1).min(cols - 1), (y0 + 1).min(rows - 1));
    let (fx, fy) = (x - x0 as f32, y - y0 as f32);
    let at = |r: usize, c: usize| grid[r * cols + c];
    let top = at(y0, x0) * (1.0 - fx) + at(y0, x1) * fx;
    let bottom = at(y1, x0) * (1.0 - fx) + at(y1, x1) * fx;
    top * (1.0 - fy) + bottom * fy
}

/// The 4-connected pixels at or above `threshold` around the hottest pixel.
fn component_around_peak(pixels: &[Option<f32>], width: usize, height: usize, threshold: f32) -> Vec<bool> {
    let mut mask = vec![false; pixels.len()];
    let Some(start) = pixels
        .iter()
        .enumerate()
        .filter_map(|(i, p)| p.map(|p| (i, p)))
        .max_by(|a, b| a.1.total_cmp(&b.1))
        .map(|(i, _)| i)
    else {
        return mask;
    };
    let hot = |i: usize| pixels[i].is_some_and(|p| p >= threshold);
    let mut stack = vec![start];
    mask[start] = true;
    while let Some(i) = stack.pop() {
        let (x, y) = (i % width, i / width);
        let neighbours = [
            (x > 0).then(|| i - 1),
            (x + 1 < width).then(|| i + 1),
            (y > 0).then(|| i - width),
            (y + 1 < height).then(|| i + width),
        ];
        for n in neighbours.into_iter().flatten() {
            if !mask[n] && hot(n) {
                mask[n] = true;
                stack.push(n);
            }
        }
    }
    mask
}

/// Red, more opaque where hotter (from `floor` to `peak`); transparent outside the input.
fn heatmap_png(pixels: &[Option<f32>], width: u32, height: u32, floor: f32, peak: f32) -> Vec<u8> {
    let span = (peak - floor).max(1e-6);
    let rgba: Vec<u8> = pixels
        .iter()
        .flat_map(|p| {
            let level = p.map_or(0.0, |p| ((p - floor) / span).clamp(0.0, 1.0));
            [255, (200.0 * (1.0 - level)) as u8, 0, (level * 200.0) as u8]
        })
        .collect();
    let image = image::RgbaImage::from_raw(width, height, rgba).expect("width × height pixels; this is a bug");
    let mut png = Cursor::new(Vec::new());
    image
        .write_to(&mut png, image::ImageFormat::Png)
        .expect("a PNG encodes in memory; this is a bug");
    png.into_inner()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 2×2 grid whose cells add `cells` (one value each, in one dimension) over a 64×64 input, the
    /// image `side` pixels square.
    fn located(cells: [f32; 4], side: u32) -> Located {
        Located {
            cells: cells.to_vec(),
            grid: (2, 2),
            dim: 1,
            placement: Placement {
                image: (side, side),
                source: (0, 0, side, side),
                target: (0, 0, 64, 64),
            },
        }
    }

    #[test]
    fn the_region_is_where_the_image_draws_towards_the_other() {
        // The page's top-left cell carries the photo; the photo's cells all carry it.
        let photo = located([1.0, 1.0, 1.0, 1.0], 100);
        let page = located([1.0, 0.0, 0.0, 0.0], 200);

        let (photo_region, page_region) = explain(&photo, &[1.0], &page, &[1.0], 0.5);

        assert_eq!(photo_region.bbox, [0, 0, 100, 100], "no place stands out: all of it");
        assert!((photo_region.coverage - 1.0).abs() < 1e-6);
        let [x0, y0, x1, y1] = page_region.bbox;
        assert_eq!((x0, y0), (0, 0));
        assert!(x1 > 50 && x1 < 150 && y1 > 50 && y1 < 150, "{:?}", page_region.bbox);
        assert!(page_region.coverage < 0.6);
        let heatmap = image::load_from_memory(&page_region.heatmap_png).unwrap();
        assert_eq!((heatmap.width(), heatmap.height()), (HEATMAP_SIDE, HEATMAP_SIDE));
    }
}
