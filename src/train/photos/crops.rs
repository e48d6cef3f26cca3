//! Region matching, measured as a lever (`train eval --crops`): each image is also embedded as crops at its
//! own resolution, and a pair's distance is the least between one image's whole embedding and the other's
//! whole or crop embeddings, with its own threshold chosen at FAR 1e-3 on validation.
//!
//! A photo shown small inside a page (`canvas`) fills a crop of the page far more than the page itself,
//! and the crop is cut from the page's pixels, not from a feature map whose every cell sees most of the
//! page.

use image::imageops;
use image::RgbImage;
use tch::{Device, Kind, Tensor};

use super::near_duplicates::{embed_images, EditedSet, Scored};
use crate::model::card::Preprocessing;
use crate::model::EmbeddingNet;

/// The crop grids: `n` × `n` windows of `size` times the image's width and height, spread evenly from one
/// edge to the other (so neighbours overlap).
pub(crate) const CROP_GRIDS: [(u32, f32); 2] = [(3, 0.5), (2, 0.7)];

/// Images embedded at a time with all their crops.
const IMAGES_PER_BATCH: usize = 16;

/// Every crop of `image`, grid by grid, row by row.
pub(crate) fn crops(image: &RgbImage) -> Vec<RgbImage> {
    let (w, h) = image.dimensions();
    let mut out = Vec::new();
    for (n, size) in CROP_GRIDS {
        let (cw, ch) = (
            ((w as f32 * size).round() as u32).clamp(1, w),
            ((h as f32 * size).round() as u32).clamp(1, h),
        );
        let at = |free: u32, i: u32| if n > 1 { free * i / (n - 1) } else { free / 2 };
        for row in 0..n {
            for col in 0..n {
                out.push(imageops::crop_imm(image, at(w - cw, col), at(h - ch, row), cw, ch).to_image());
            }
        }
    }
    out
}

/// The crops' embeddings, `[images, crops, dim]`.
fn embed_crops(net: &EmbeddingNet, images: &[RgbImage], pp: &Preprocessing, device: Device) -> Tensor {
    let per_image: usize = CROP_GRIDS.iter().map(|(n, _)| (n * n) as usize).sum();
    let chunks: Vec<Tensor> = images
        .chunks(IMAGES_PER_BATCH)
        .map(|chunk| {
            let all: Vec<RgbImage> = chunk.iter().flat_map(crops).collect();
            embed_images(net, &all, pp, device).view([chunk.len() as i64, per_image as i64, -1])
        })
        .collect();
    Tensor::cat(&chunks, 0)
}

/// Every pair of `set` scored by the least distance between one side's whole embedding and the other's
/// whole or crop embeddings.
pub(crate) fn crop_scores(net: &EmbeddingNet, set: &EditedSet, pp: &Preprocessing, device: Device) -> Scored {
    let edits: Vec<RgbImage> = set.edits.iter().map(|e| e.image.clone()).collect();
    let (originals, edited) = (
        embed_images(net, &set.originals, pp, device),
        embed_images(net, &edits, pp, device),
    );
    let (original_crops, edited_crops) = (
        embed_crops(net, &set.originals, pp, device),
        embed_crops(net, &edits, pp, device),
    );
    let cdist = |a: &Tensor, b: &Tensor| Tensor::cdist(a, b, 2.0, None::<i64>);
    let mut best = cdist(&originals, &edited);
    for c in 0..original_crops.size()[1] {
        best = best
            .minimum(&cdist(&originals, &edited_crops.select(1, c)))
            .minimum(&cdist(&original_crops.select(1, c), &edited));
    }
    let cols = set.edits.len();
    let flat = Vec::<f64>::try_from(best.to_kind(Kind::Double).flatten(0, -1)).expect("a double tensor converts");
    Scored::from_matrix(set, |i, j| flat[i * cols + j])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crops_cover_the_image_from_edge_to_edge() {
        let image = RgbImage::from_fn(100, 60, |x, y| image::Rgb([x as u8, y as u8, 0]));
        let all = crops(&image);
        assert_eq!(all.len(), 13);
        // The 3x3 grid's first and last windows touch opposite corners; the middle one is centred.
        assert_eq!((all[0].dimensions(), all[0].get_pixel(0, 0).0), ((50, 30), [0, 0, 0]));
        assert_eq!(all[8].get_pixel(49, 29).0, [99, 59, 0]);
        assert_eq!(all[4].get_pixel(0, 0).0, [25, 15, 0]);
        // The 2x2 grid's windows are 0.7 of each side.
        assert_eq!(all[9].dimensions(), (70, 42));
        assert_eq!(all[12].get_pixel(69, 41).0, [99, 59, 0]);
    }
}
