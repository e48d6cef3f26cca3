//! Layout edits that put the photo on something larger: padding, letterboxing and frames (`border`), and a
//! listing screenshot or collage (`canvas`).

use image::{Rgb, RgbImage};
use rand::Rng;

use super::raster::{
    draw_centred, fill_rect, fit_scale, fit_size, grey, ink_for, light, not_white, paste, resize, vivid, WHITE,
};
use super::recipe::{BORDER_FRAME, BORDER_PAD, BORDER_WHITE_P, CANVAS_PHOTO_WIDTH, CANVAS_SCALE, MAX_SIDE};

/// Letterboxing to a square or a common rectangle, or a solid frame, one of the two at random.
pub(super) fn border<R: Rng + ?Sized>(image: &RgbImage, rng: &mut R) -> RgbImage {
    if rng.gen_bool(0.6) {
        letterbox(image, rng)
    } else {
        frame(image, rng)
    }
}

/// The photo on a white or coloured rectangle of aspect 1:1, 4:3, 3:4 or 16:9, with at least [`BORDER_PAD`]
/// margin, a little off centre.
fn letterbox<R: Rng + ?Sized>(image: &RgbImage, rng: &mut R) -> RgbImage {
    let (w, h) = image.dimensions();
    let aspect = [1.0, 4.0 / 3.0, 3.0 / 4.0, 16.0 / 9.0][rng.gen_range(0..4)];
    // The smallest canvas of that aspect holding the photo, then the margin on top; never over twice the
    // photo's longest side, so that a tall photo in a wide frame still shows.
    let (mut cw, mut ch) = (w as f32, w as f32 / aspect);
    if ch < h as f32 {
        (cw, ch) = (h as f32 * aspect, h as f32);
    }
    let room = 2.0 * w.max(h) as f32 / cw.max(ch);
    let pad = (1.0 + rng.gen_range(BORDER_PAD)).min(room);
    let (cw, ch) = ((cw * pad).round() as u32, (ch * pad).round() as u32);
    let fill = if rng.gen_bool(BORDER_WHITE_P) {
        WHITE
    } else {
        not_white(rng)
    };
    let mut canvas = RgbImage::from_pixel(cw, ch, fill);
    let (slack_x, slack_y) = (cw.saturating_sub(w), ch.saturating_sub(h));
    let x = centred_jitter(slack_x, rng);
    let y = centred_jitter(slack_y, rng);
    paste(&mut canvas, image, i64::from(x), i64::from(y));
    canvas
}

/// An offset within `slack`, near its middle (a quarter of it either way).
fn centred_jitter<R: Rng + ?Sized>(slack: u32, rng: &mut R) -> u32 {
    let quarter = slack / 4;
    slack / 2 - quarter + rng.gen_range(0..=2 * quarter)
}

/// A solid frame of [`BORDER_FRAME`] thickness around the photo, sometimes with a thin inner line.
fn frame<R: Rng + ?Sized>(image: &RgbImage, rng: &mut R) -> RgbImage {
    let (w, h) = image.dimensions();
    let t = ((w.min(h) as f32 * rng.gen_range(BORDER_FRAME)).round() as u32).max(2);
    let colour = not_white(rng);
    let mut canvas = RgbImage::from_pixel(w + 2 * t, h + 2 * t, colour);
    if rng.gen_bool(0.4) {
        // A thin contrasting line inside the frame, as many frame presets draw.
        let line = (t / 3).max(1);
        let inner = ink_for(colour);
        let (x, y) = (i64::from(t - line), i64::from(t - line));
        fill_rect(&mut canvas, x, y, w + 2 * line, h + 2 * line, inner);
    }
    paste(&mut canvas, image, i64::from(t), i64::from(t));
    canvas
}

/// The photo small on a page: a listing screenshot (header, photo, text lines, a price and a button) or a
/// collage grid of other items' boxes.
pub(super) fn canvas<R: Rng + ?Sized>(image: &RgbImage, rng: &mut R) -> RgbImage {
    let longest = image.width().max(image.height()) as f32;
    let cw = (longest * CANVAS_SCALE).clamp(64.0, MAX_SIDE as f32);
    let ch = (cw * rng.gen_range(0.75..=1.33)).min(MAX_SIDE as f32);
    let mut page = RgbImage::from_pixel(cw as u32, ch as u32, light(rng));
    if rng.gen_bool(0.5) {
        listing(&mut page, image, rng);
    } else {
        collage(&mut page, image, rng);
    }
    page
}

/// Grey text lines in the box at `(x, y)` of `w` x `h`, each of random length.
fn text_lines<R: Rng + ?Sized>(page: &mut RgbImage, x: f32, y: f32, w: f32, h: f32, rng: &mut R) {
    let line_h = (page.height() as f32 * 0.025).max(2.0);
    let colour = grey(rng);
    let mut top = y;
    while top + line_h <= y + h && w >= 4.0 {
        let length = w * rng.gen_range(0.35..=1.0);
        fill_rect(page, x as i64, top as i64, length as u32, line_h as u32, colour);
        top += line_h * rng.gen_range(2.0..=2.6);
    }
}

/// A listing page: a header bar, the photo at the left, text lines and a price beside it, more lines and a
/// button under it.
fn listing<R: Rng + ?Sized>(page: &mut RgbImage, image: &RgbImage, rng: &mut R) {
    let (pw, ph) = (page.width() as f32, page.height() as f32);
    let margin = (pw * 0.05).max(2.0);
    let header = ph * rng.gen_range(0.06..=0.1);
    let header_colour = if rng.gen_bool(0.5) {
        vivid(rng)
    } else {
        Rgb([40, 40, 48])
    };
    fill_rect(page, 0, 0, pw as u32, header as u32, header_colour);
    let max_w = pw * rng.gen_range(CANVAS_PHOTO_WIDTH);
    let max_h = (ph - header - 2.0 * margin) * 0.8;
    let (w, h) = fit_size(image.width(), image.height(), max_w as u32, max_h.max(1.0) as u32);
    let top = header + margin;
    paste(page, &resize(image, w, h), margin as i64, top as i64);
    let right = margin * 2.0 + w as f32;
    let right_w = pw - right - margin;
    let price_h = (ph * 0.07).max(6.0);
    if right_w > 8.0 {
        let price = format!("${}.{:02}", rng.gen_range(3..300), rng.gen_range(0..100));
        let scale = fit_scale(&price, right_w, price_h * 0.7);
        draw_centred(
            page,
            Rgb([30, 30, 30]),
            right + right_w / 2.0,
            top + price_h / 2.0,
            scale,
            &price,
        );
        text_lines(page, right, top + price_h * 1.4, right_w, h as f32 - price_h * 1.4, rng);
    }
    let below = top + h as f32 + margin;
    let button_h = ph * 0.08;
    text_lines(
        page,
        margin,
        below,
        pw - 2.0 * margin,
        ph - below - button_h - 2.0 * margin,
        rng,
    );
    let button = vivid(rng);
    let button_y = ph - button_h - margin;
    fill_rect(
        page,
        margin as i64,
        button_y as i64,
        (pw * 0.4) as u32,
        button_h as u32,
        button,
    );
}

/// A grid of 2 or 3 columns of item boxes, each with text lines under it; the photo fills one box.
fn collage<R: Rng + ?Sized>(page: &mut RgbImage, image: &RgbImage, rng: &mut R) {
    let (pw, ph) = (page.width() as f32, page.height() as f32);
    let cols = rng.gen_range(2..=3u32);
    let rows = rng.gen_range(2..=3u32);
    let gutter = (pw * 0.03).max(2.0);
    let cell_w = (pw - gutter * (cols + 1) as f32) / cols as f32;
    let cell_h = (ph - gutter * (rows + 1) as f32) / rows as f32;
    let box_h = cell_h * 0.72;
    let photo_cell = rng.gen_range(0..cols * rows);
    for i in 0..cols * rows {
        let x = gutter + (i % cols) as f32 * (cell_w + gutter);
        let y = gutter + (i / cols) as f32 * (cell_h + gutter);
        if i == photo_cell {
            let (w, h) = fit_size(image.width(), image.height(), cell_w as u32, box_h as u32);
            let (ox, oy) = (x + (cell_w - w as f32) / 2.0, y + (box_h - h as f32) / 2.0);
            paste(page, &resize(image, w, h), ox as i64, oy as i64);
        } else {
            let fill = if rng.gen_bool(0.5) { vivid(rng) } else { grey(rng) };
            fill_rect(page, x as i64, y as i64, cell_w as u32, box_h as u32, fill);
        }
        text_lines(
            page,
            x,
            y + box_h + gutter * 0.5,
            cell_w,
            cell_h - box_h - gutter * 0.5,
            rng,
        );
    }
}
