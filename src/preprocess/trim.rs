//! Finds a uniform border around a photo (a white square around a product, a solid frame, letterboxing)
//! so that preprocessing can cut it off: a copy shown on a larger canvas then looks like its original.

use image::{Rgb, RgbImage};

/// Largest per-channel difference from the border colour still counted as border: JPEG ringing and
/// gentle noise stay within it, a photo's own content rarely does.
const TOLERANCE: u8 = 16;
/// Share of a row or column that must match the border colour for it to be border.
const ROW_SHARE: f64 = 0.98;

/// The part of `image` inside its uniform border, as `(x, y, width, height)`; `None` when there is no
/// border (or nothing but border), so the image is used as it is.
///
/// The border colour is the one at least three of the four corners share; rows and columns are then cut
/// from each side while almost all of their pixels have that colour.
pub(super) fn content_box(image: &RgbImage) -> Option<(u32, u32, u32, u32)> {
    let (w, h) = image.dimensions();
    if w < 3 || h < 3 {
        return None;
    }
    let colour = border_colour(image)?;
    let is_border = |p: &Rgb<u8>| p.0.iter().zip(colour.0).all(|(&a, b)| a.abs_diff(b) <= TOLERANCE);
    let row_is_border = |y: u32, x0: u32, x1: u32| share(x0..x1, |x| is_border(image.get_pixel(x, y)));
    let col_is_border = |x: u32, y0: u32, y1: u32| share(y0..y1, |y| is_border(image.get_pixel(x, y)));

    let (mut top, mut bottom) = (0, h);
    while top < bottom && row_is_border(top, 0, w) {
        top += 1;
    }
    if top == bottom {
        return None; // one colour all over: nothing to cut to
    }
    while bottom > top + 1 && row_is_border(bottom - 1, 0, w) {
        bottom -= 1;
    }
    let (mut left, mut right) = (0, w);
    while left < right && col_is_border(left, top, bottom) {
        left += 1;
    }
    while right > left + 1 && col_is_border(right - 1, top, bottom) {
        right -= 1;
    }
    if (left, top, right, bottom) == (0, 0, w, h) {
        return None;
    }
    Some((left, top, right - left, bottom - top))
}

/// Whether at least `ROW_SHARE` of `range` satisfies `matches`.
fn share(range: std::ops::Range<u32>, matches: impl Fn(u32) -> bool) -> bool {
    let len = range.len() as f64;
    range.filter(|&i| matches(i)).count() as f64 >= ROW_SHARE * len
}

/// The colour three or four corners share (within the tolerance), or `None` when they disagree.
fn border_colour(image: &RgbImage) -> Option<Rgb<u8>> {
    let (w, h) = image.dimensions();
    let corners = [
        *image.get_pixel(0, 0),
        *image.get_pixel(w - 1, 0),
        *image.get_pixel(0, h - 1),
        *image.get_pixel(w - 1, h - 1),
    ];
    let close = |a: &Rgb<u8>, b: &Rgb<u8>| a.0.iter().zip(b.0).all(|(&x, y)| x.abs_diff(y) <= TOLERANCE);
    corners
        .iter()
        .find(|c| corners.iter().filter(|o| close(c, o)).count() >= 3)
        .copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 40x30 "photo" of varied pixels: no two neighbours alike, no uniform rows.
    fn photo() -> RgbImage {
        RgbImage::from_fn(40, 30, |x, y| {
            Rgb([(x * 7 + y * 3) as u8, (x * 13 + 50) as u8, (y * 11 + 90) as u8])
        })
    }

    fn framed(border: Rgb<u8>, left: u32, top: u32, right: u32, bottom: u32) -> RgbImage {
        let inner = photo();
        let mut canvas = RgbImage::from_pixel(inner.width() + left + right, inner.height() + top + bottom, border);
        image::imageops::replace(&mut canvas, &inner, i64::from(left), i64::from(top));
        canvas
    }

    #[test]
    fn a_white_square_around_a_photo_is_cut_off() {
        let canvas = framed(Rgb([255, 255, 255]), 30, 5, 30, 5);
        assert_eq!(content_box(&canvas), Some((30, 5, 40, 30)));
    }

    #[test]
    fn a_solid_coloured_frame_of_uneven_width_is_cut_off() {
        let canvas = framed(Rgb([20, 60, 140]), 3, 8, 11, 2);
        assert_eq!(content_box(&canvas), Some((3, 8, 40, 30)));
    }

    #[test]
    fn a_slightly_noisy_border_still_counts_as_uniform() {
        let mut canvas = framed(Rgb([250, 250, 250]), 6, 6, 6, 6);
        for (x, y, p) in canvas.enumerate_pixels_mut() {
            if (x < 6 || y < 6) && (x + y) % 3 == 0 {
                p.0 = [243, 255, 246];
            }
        }
        assert_eq!(content_box(&canvas), Some((6, 6, 40, 30)));
    }

    #[test]
    fn a_photo_without_a_border_is_left_as_it_is() {
        assert_eq!(content_box(&photo()), None);
    }

    #[test]
    fn an_image_of_one_colour_is_left_as_it_is() {
        assert_eq!(content_box(&RgbImage::from_pixel(20, 20, Rgb([255, 255, 255]))), None);
    }
}
