//! The `cutout` family: the object cut out of its background and composited onto a generated, non-white one.

use image::{Rgb, RgbImage, RgbaImage};
use rand::Rng;

use super::raster::{fill_disc, mix, not_white, paste, resize, scaled, to_byte, FastNoise};
use super::recipe::{CUTOUT_FALLBACK_SCALE, CUTOUT_MASK_COVERAGE, CUTOUT_MASK_DISTANCE, CUTOUT_MIN_TRANSPARENT};

/// The object over a generated background (gradient, noise texture, stripes, solid colour or tiles). The
/// object's matte is the source's alpha where it has real transparency, else the pixels far from the border
/// colour; where neither gives a believable object, the whole photo is placed, a little smaller, on the
/// background.
pub(super) fn cutout<R: Rng + ?Sized>(source: &RgbaImage, flat: &RgbImage, rng: &mut R) -> RgbImage {
    let (w, h) = flat.dimensions();
    let mut out = background(w, h, rng);
    match matte(source, flat) {
        Some((colours, alpha)) => composite(&mut out, colours, &alpha),
        None => {
            let (sw, sh) = scaled(w, h, rng.gen_range(CUTOUT_FALLBACK_SCALE));
            let x = rng.gen_range(0..=w.saturating_sub(sw));
            let y = rng.gen_range(0..=h.saturating_sub(sh));
            paste(&mut out, &resize(flat, sw, sh), i64::from(x), i64::from(y));
        }
    }
    out
}

/// The object's colours and its coverage (0 to 255) per pixel, or `None` where no believable matte exists.
/// `source` and `flat` have the same size.
fn matte<'a>(source: &'a RgbaImage, flat: &'a RgbImage) -> Option<(Colours<'a>, Vec<u8>)> {
    let n = (flat.width() * flat.height()) as f32;
    let transparent = source.pixels().filter(|p| p[3] < 128).count() as f32;
    if source.dimensions() == flat.dimensions()
        && transparent >= CUTOUT_MIN_TRANSPARENT * n
        && n - transparent >= CUTOUT_MIN_TRANSPARENT * n
    {
        return Some((Colours::Rgba(source), source.pixels().map(|p| p[3]).collect()));
    }
    let border = border_colour(flat);
    let (near, far) = CUTOUT_MASK_DISTANCE;
    let alpha: Vec<u8> = flat
        .pixels()
        .map(|p| {
            let distance: f32 = (0..3).map(|c| (f32::from(p[c]) - f32::from(border[c])).abs()).sum();
            to_byte((distance - near) / (far - near) * 255.0)
        })
        .collect();
    let coverage = alpha.iter().map(|&a| f32::from(a)).sum::<f32>() / 255.0 / n.max(1.0);
    CUTOUT_MASK_COVERAGE
        .contains(&coverage)
        .then_some((Colours::Rgb(flat), alpha))
}

/// Where the object's colours come from: the RGBA source itself (its colour under the alpha), or the flattened
/// photo when the matte was derived from it.
enum Colours<'a> {
    Rgba(&'a RgbaImage),
    Rgb(&'a RgbImage),
}

/// `out = colour * a + out * (1 - a)` per pixel.
fn composite(out: &mut RgbImage, colours: Colours<'_>, alpha: &[u8]) {
    let blend = |dst: &mut Rgb<u8>, src: [u8; 3], a: u8| {
        let a = u16::from(a);
        for c in 0..3 {
            dst[c] = ((u16::from(src[c]) * a + u16::from(dst[c]) * (255 - a) + 127) / 255) as u8;
        }
    };
    match colours {
        Colours::Rgba(source) => {
            for ((dst, src), &a) in out.pixels_mut().zip(source.pixels()).zip(alpha) {
                blend(dst, [src[0], src[1], src[2]], a);
            }
        }
        Colours::Rgb(flat) => {
            for ((dst, src), &a) in out.pixels_mut().zip(flat.pixels()).zip(alpha) {
                blend(dst, src.0, a);
            }
        }
    }
}

/// The per-channel median of the outermost pixels: the backdrop colour of a product photo.
fn border_colour(image: &RgbImage) -> Rgb<u8> {
    let (w, h) = image.dimensions();
    if w == 0 || h == 0 {
        return Rgb([255, 255, 255]);
    }
    let mut histograms = [[0u32; 256]; 3];
    let mut count = 0u32;
    let mut add = |p: &Rgb<u8>| {
        for c in 0..3 {
            histograms[c][p[c] as usize] += 1;
        }
        count += 1;
    };
    for x in 0..w {
        add(image.get_pixel(x, 0));
        add(image.get_pixel(x, h - 1));
    }
    for y in 0..h {
        add(image.get_pixel(0, y));
        add(image.get_pixel(w - 1, y));
    }
    let median = |histogram: &[u32; 256]| {
        let mut seen = 0;
        histogram
            .iter()
            .position(|&k| {
                seen += k;
                seen * 2 >= count
            })
            .unwrap_or(255) as u8
    };
    Rgb([median(&histograms[0]), median(&histograms[1]), median(&histograms[2])])
}

/// A generated, non-white background of `w` x `h`.
pub(super) fn background<R: Rng + ?Sized>(w: u32, h: u32, rng: &mut R) -> RgbImage {
    match rng.gen_range(0..5) {
        0 => gradient(w, h, rng),
        1 => texture(w, h, rng),
        2 => stripes(w, h, rng),
        3 => RgbImage::from_pixel(w, h, not_white(rng)),
        _ => tiles(w, h, rng),
    }
}

/// A linear gradient between two colours in a random direction.
fn gradient<R: Rng + ?Sized>(w: u32, h: u32, rng: &mut R) -> RgbImage {
    let (from, to) = (not_white(rng), not_white(rng));
    let (sin, cos) = rng.gen_range(0.0..std::f32::consts::TAU).sin_cos();
    let extent = (w as f32 * cos.abs() + h as f32 * sin.abs()).max(1.0);
    let (cx, cy) = (w as f32 / 2.0, h as f32 / 2.0);
    RgbImage::from_fn(w, h, |x, y| {
        let along = (x as f32 - cx) * cos + (y as f32 - cy) * sin;
        mix(from, to, (0.5 + along / extent).clamp(0.0, 1.0))
    })
}

/// Smooth blotches (bilinear value noise on a coarse grid) plus fine grain around a base colour.
fn texture<R: Rng + ?Sized>(w: u32, h: u32, rng: &mut R) -> RgbImage {
    let base = not_white(rng);
    let (gx, gy) = (rng.gen_range(2..=7usize), rng.gen_range(2..=7usize));
    let grid: Vec<[f32; 3]> = (0..(gx + 1) * (gy + 1))
        .map(|_| [0, 1, 2].map(|c| f32::from(base[c]) + rng.gen_range(-45.0..=45.0)))
        .collect();
    let grain = rng.gen_range(4.0..=16.0);
    let mut fast = FastNoise::from_rng(rng);
    let mut out = RgbImage::new(w, h);
    for (x, y, p) in out.enumerate_pixels_mut() {
        let fx = x as f32 / w.max(1) as f32 * gx as f32;
        let fy = y as f32 / h.max(1) as f32 * gy as f32;
        let (ix, iy) = ((fx as usize).min(gx - 1), (fy as usize).min(gy - 1));
        let (tx, ty) = (fx - ix as f32, fy - iy as f32);
        let at = |i: usize, j: usize| grid[j * (gx + 1) + i];
        let (a, b, c, d) = (at(ix, iy), at(ix + 1, iy), at(ix, iy + 1), at(ix + 1, iy + 1));
        for k in 0..3 {
            let top = a[k] + (b[k] - a[k]) * tx;
            let bottom = c[k] + (d[k] - c[k]) * tx;
            let v = top + (bottom - top) * ty + fast.symmetric() * grain;
            p[k] = to_byte(v.min(235.0));
        }
    }
    out
}

/// Two-colour stripes of a random period and direction.
fn stripes<R: Rng + ?Sized>(w: u32, h: u32, rng: &mut R) -> RgbImage {
    let (a, b) = (not_white(rng), not_white(rng));
    let period = rng.gen_range(6.0..=24.0f32);
    let (sin, cos) = [0.0f32, 45.0, 90.0, 135.0, rng.gen_range(0.0..180.0)][rng.gen_range(0..5)]
        .to_radians()
        .sin_cos();
    RgbImage::from_fn(w, h, |x, y| {
        let along = (x as f32 * cos + y as f32 * sin) / period;
        if along.rem_euclid(1.0) < 0.5 {
            a
        } else {
            b
        }
    })
}

/// A checkerboard, or polka dots on a base colour.
fn tiles<R: Rng + ?Sized>(w: u32, h: u32, rng: &mut R) -> RgbImage {
    let base = not_white(rng);
    let other = if rng.gen_bool(0.5) {
        mix(base, Rgb([0, 0, 0]), 0.35)
    } else {
        not_white(rng)
    };
    let cell = rng.gen_range(6..=20u32);
    if rng.gen_bool(0.5) {
        return RgbImage::from_fn(w, h, |x, y| if (x / cell + y / cell) % 2 == 0 { base } else { other });
    }
    let mut out = RgbImage::from_pixel(w, h, base);
    let radius = i64::from(cell) * 3 / 10;
    for j in 0..=h / cell {
        for i in 0..=w / cell {
            let shift = if j % 2 == 1 { cell / 2 } else { 0 };
            let (cx, cy) = (i64::from(i * cell + shift), i64::from(j * cell + cell / 2));
            fill_disc(&mut out, cx, cy, radius.max(1), other);
        }
    }
    out
}
