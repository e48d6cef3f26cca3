//! Overlays a seller adds on top of the photo: text banners and stickers, a small logo, a tiled watermark.

use image::{GrayImage, Rgb, RgbImage};
use rand::seq::SliceRandom;
use rand::Rng;

use super::raster::{
    draw_centred, draw_centred_mask, fill_disc, fill_rect, fit_scale, ink_for, luma, rotate_mask, text_width, to_byte,
    vivid,
};
use super::recipe::{
    BANNER_HEIGHT, BANNER_TEXTS, LOGO_SIZE, WATERMARK_ALPHA, WATERMARK_DEGREES, WATERMARK_SIZE, WATERMARK_TEXTS,
};

/// A text banner or sticker, a logo, or a tiled watermark, one of the three at random.
pub(super) fn overlay<R: Rng + ?Sized>(image: &RgbImage, rng: &mut R) -> RgbImage {
    let mut out = image.clone();
    match rng.gen_range(0..3) {
        0 => banner(&mut out, rng),
        1 => logo(&mut out, rng),
        _ => watermark(&mut out, rng),
    }
    out
}

/// A banner text: a fixed one from [`BANNER_TEXTS`], a price or a discount.
fn banner_text<R: Rng + ?Sized>(rng: &mut R) -> String {
    match rng.gen_range(0..4) {
        0 => format!("${}.99", rng.gen_range(2..200)),
        1 => format!("-{}%", rng.gen_range(1..=8) * 10),
        _ => BANNER_TEXTS.choose(rng).copied().unwrap_or("SALE").to_string(),
    }
}

/// A background a banner is printed on: mostly a vivid colour, sometimes black.
fn banner_colour<R: Rng + ?Sized>(rng: &mut R) -> Rgb<u8> {
    if rng.gen_bool(0.2) {
        Rgb([15, 15, 15])
    } else {
        vivid(rng)
    }
}

/// A full-width bar at the top or bottom, a tag in a corner, or a round sticker, with text on it.
fn banner<R: Rng + ?Sized>(image: &mut RgbImage, rng: &mut R) {
    let (w, h) = (image.width() as f32, image.height() as f32);
    let text = banner_text(rng);
    let colour = banner_colour(rng);
    let ink = ink_for(colour);
    let bar_h = (h * rng.gen_range(BANNER_HEIGHT)).max(4.0);
    match rng.gen_range(0..3) {
        0 => {
            let y = if rng.gen_bool(0.5) { 0.0 } else { h - bar_h };
            fill_rect(image, 0, y as i64, w as u32, bar_h as u32, colour);
            let scale = fit_scale(&text, w * 0.9, bar_h * 0.6);
            draw_centred(image, ink, w / 2.0, y + bar_h / 2.0, scale, &text);
        }
        1 => {
            let tag_w = w * rng.gen_range(0.4..=0.7);
            let x = if rng.gen_bool(0.5) { 0.0 } else { w - tag_w };
            let y = if rng.gen_bool(0.5) { 0.0 } else { h - bar_h };
            fill_rect(image, x as i64, y as i64, tag_w as u32, bar_h as u32, colour);
            let scale = fit_scale(&text, tag_w * 0.88, bar_h * 0.6);
            draw_centred(image, ink, x + tag_w / 2.0, y + bar_h / 2.0, scale, &text);
        }
        _ => {
            let radius = w.min(h) * rng.gen_range(0.14..=0.22);
            let (cx, cy) = corner_centre(w, h, radius, rng);
            fill_disc(image, cx as i64, cy as i64, radius as i64, colour);
            let scale = fit_scale(&text, radius * 1.6, radius * 0.7);
            draw_centred(image, ink, cx, cy, scale, &text);
        }
    }
}

/// The centre of a shape of half-size `radius` in a random corner, a small margin from the edges.
fn corner_centre<R: Rng + ?Sized>(w: f32, h: f32, radius: f32, rng: &mut R) -> (f32, f32) {
    let inset = radius + w.min(h) * 0.04;
    let cx = if rng.gen_bool(0.5) { inset } else { w - inset };
    let cy = if rng.gen_bool(0.5) { inset } else { h - inset };
    (cx, cy)
}

/// A small generated logo in a corner: a disc, square or diamond with one to three letters on it.
fn logo<R: Rng + ?Sized>(image: &mut RgbImage, rng: &mut R) {
    let (w, h) = (image.width() as f32, image.height() as f32);
    let radius = w.min(h) * rng.gen_range(LOGO_SIZE) / 2.0;
    let (cx, cy) = corner_centre(w, h, radius, rng);
    let colour = vivid(rng);
    let (ci, cj, r) = (cx as i64, cy as i64, radius as i64);
    match rng.gen_range(0..3) {
        0 => fill_disc(image, ci, cj, r, colour),
        1 => fill_rect(image, ci - r, cj - r, 2 * r as u32, 2 * r as u32, colour),
        _ => fill_diamond(image, ci, cj, r, colour),
    }
    let letters: String = (0..rng.gen_range(1..=3))
        .map(|_| char::from(rng.gen_range(b'A'..=b'Z')))
        .collect();
    let scale = fit_scale(&letters, radius * 1.1, radius * 0.8);
    draw_centred(image, ink_for(colour), cx, cy, scale, &letters);
}

/// Fills the diamond `|x - cx| + |y - cy| <= r`, clipped to the image.
fn fill_diamond(image: &mut RgbImage, cx: i64, cy: i64, r: i64, colour: Rgb<u8>) {
    let (iw, ih) = (i64::from(image.width()), i64::from(image.height()));
    for y in (cy - r).max(0)..(cy + r + 1).min(ih) {
        let half = r - (y - cy).abs();
        for x in (cx - half).max(0)..(cx + half + 1).min(iw) {
            image.put_pixel(x as u32, y as u32, colour);
        }
    }
}

/// A semi-transparent text tiled across the whole image in staggered rows, sometimes slanted.
fn watermark<R: Rng + ?Sized>(image: &mut RgbImage, rng: &mut R) {
    let (w, h) = image.dimensions();
    let text = WATERMARK_TEXTS.choose(rng).copied().unwrap_or("SAMPLE");
    let cap = (h as f32 * rng.gen_range(WATERMARK_SIZE)).max(4.0);
    let scale = cap / 0.73;
    let degrees = rng.gen_range(WATERMARK_DEGREES) * if rng.gen_bool(0.5) { 1.0 } else { -1.0 };
    let colour = watermark_colour(image, rng);
    let alpha = rng.gen_range(WATERMARK_ALPHA);
    let mask = tiled_mask(w, h, text, scale, degrees);
    for (p, m) in image.pixels_mut().zip(mask.pixels()) {
        let a = alpha * f32::from(m[0]) / 255.0;
        for c in 0..3 {
            p[c] = to_byte(f32::from(p[c]) + (f32::from(colour[c]) - f32::from(p[c])) * a);
        }
    }
}

/// White on a dark photo, else black or grey: a seller picks a watermark colour that shows.
fn watermark_colour<R: Rng + ?Sized>(image: &RgbImage, rng: &mut R) -> Rgb<u8> {
    let sampled = image.pixels().step_by(11);
    let (sum, n) = sampled.fold((0.0, 0u32), |(s, n), p| (s + luma(*p), n + 1));
    if sum / n.max(1) as f32 > 140.0 {
        [Rgb([0, 0, 0]), Rgb([90, 90, 90])][rng.gen_range(0..2)]
    } else {
        Rgb([255, 255, 255])
    }
}

/// The coverage of `text` tiled over `w` x `h` at `scale`, slanted by `degrees`. The text is rendered once and
/// stamped, and a slanted tiling is made on a square covering the diagonal, so no corner is left bare.
fn tiled_mask(w: u32, h: u32, text: &str, scale: f32, degrees: f32) -> GrayImage {
    let tile_w = text_width(text, scale).max(1) + (scale * 0.6) as u32;
    let tile_h = ((scale * 1.1) as u32).max(1);
    let mut tile = GrayImage::new(tile_w, tile_h);
    draw_centred_mask(&mut tile, tile_w as f32 / 2.0, tile_h as f32 / 2.0, scale, text);
    let slanted = degrees.abs() > 1.0;
    let side = if slanted {
        (f64::from(w).hypot(f64::from(h)).ceil() as u32).max(1)
    } else {
        0
    };
    let (mw, mh) = if slanted { (side, side) } else { (w, h) };
    let mut mask = GrayImage::new(mw, mh);
    let row_step = (scale * 1.9) as u32;
    for (row, y) in (0..mh).step_by(row_step.max(1) as usize).enumerate() {
        let shift = if row % 2 == 1 { tile_w / 2 } else { 0 };
        let mut x = -i64::from(shift);
        while x < i64::from(mw) {
            stamp(&mut mask, &tile, x, i64::from(y));
            x += i64::from(tile_w);
        }
    }
    if !slanted {
        return mask;
    }
    let rotated = rotate_mask(&mask, degrees.to_radians());
    image::imageops::crop_imm(&rotated, (side - w) / 2, (side - h) / 2, w, h).to_image()
}

/// Copies `tile` onto `mask` at `(x, y)` keeping the larger coverage, clipped to the mask.
fn stamp(mask: &mut GrayImage, tile: &GrayImage, x: i64, y: i64) {
    let (mw, mh) = (i64::from(mask.width()), i64::from(mask.height()));
    for (tx, ty, v) in tile.enumerate_pixels() {
        let (mx, my) = (x + i64::from(tx), y + i64::from(ty));
        if v[0] > 0 && (0..mw).contains(&mx) && (0..mh).contains(&my) {
            let m = mask.get_pixel_mut(mx as u32, my as u32);
            m[0] = m[0].max(v[0]);
        }
    }
}
