//! Small raster helpers shared by the edit families: sizing, pasting, blending, colours, fast noise, text.

use std::cell::RefCell;
use std::sync::OnceLock;

use ab_glyph::{Font, FontRef, ScaleFont};
use fast_image_resize::{IntoImageView, IntoImageViewMut, ResizeAlg, ResizeOptions, Resizer};
use image::imageops::{self, FilterType};
use image::{GrayImage, Luma, Rgb, RgbImage, RgbaImage};
use imageproc::drawing::{draw_text_mut, text_size};
use rand::Rng;

use super::recipe::{MAX_SIDE, MIN_SIDE};

/// White, the background every seller's photo is flattened over.
pub(super) const WHITE: Rgb<u8> = Rgb([255, 255, 255]);

/// `image` resized to exactly `w` x `h` (at least 1 x 1) with a bilinear filter that averages when shrinking;
/// `fast_image_resize`'s SIMD convolution, many times faster than `imageops` at these sizes.
pub(super) fn resize(image: &RgbImage, w: u32, h: u32) -> RgbImage {
    let (w, h) = (w.max(1), h.max(1));
    if image.dimensions() == (w, h) {
        return image.clone();
    }
    if image.width() == 0 || image.height() == 0 {
        return RgbImage::from_pixel(w, h, WHITE);
    }
    let mut out = RgbImage::new(w, h);
    match convolve(image, &mut out) {
        Ok(()) => out,
        Err(_) => imageops::resize(image, w, h, FilterType::Triangle),
    }
}

/// Resizes `src` into `dst` with one resizer per thread, so its buffers are reused from call to call.
fn convolve<I>(src: &I, dst: &mut I) -> Result<(), fast_image_resize::ResizeError>
where
    I: IntoImageView + IntoImageViewMut,
{
    thread_local! {
        static RESIZER: RefCell<Resizer> = RefCell::new(Resizer::new());
    }
    let options = ResizeOptions::new().resize_alg(ResizeAlg::Convolution(fast_image_resize::FilterType::Bilinear));
    RESIZER.with(|resizer| resizer.borrow_mut().resize(src, dst, &options))
}

/// The size `(w, h)` scaled by `scale`, rounded, each side at least 1.
pub(super) fn scaled(w: u32, h: u32, scale: f32) -> (u32, u32) {
    let side = |s: u32| ((s as f32 * scale).round() as u32).max(1);
    (side(w), side(h))
}

/// The largest size of aspect `w:h` that fits in `max_w` x `max_h`.
pub(super) fn fit_size(w: u32, h: u32, max_w: u32, max_h: u32) -> (u32, u32) {
    let scale = (max_w as f32 / w.max(1) as f32).min(max_h as f32 / h.max(1) as f32);
    let (fw, fh) = scaled(w, h, scale);
    (fw.min(max_w.max(1)), fh.min(max_h.max(1)))
}

/// The size an output of `w` x `h` is brought to: shrunk (aspect kept) to at most [`MAX_SIDE`], then each side
/// clamped to [`MIN_SIDE`]..=[`MAX_SIDE`] (which distorts only absurd aspect ratios).
pub(super) fn bounded_size(w: u32, h: u32) -> (u32, u32) {
    let longest = w.max(h).max(1);
    let scale = (MAX_SIDE as f32 / longest as f32).min(1.0);
    let (bw, bh) = scaled(w, h, scale);
    (bw.clamp(MIN_SIDE, MAX_SIDE), bh.clamp(MIN_SIDE, MAX_SIDE))
}

/// `image` within the output bounds; an empty image becomes a white [`MIN_SIDE`] square.
pub(super) fn bound(image: RgbImage) -> RgbImage {
    if image.width() == 0 || image.height() == 0 {
        return RgbImage::from_pixel(MIN_SIDE, MIN_SIDE, WHITE);
    }
    let (w, h) = bounded_size(image.width(), image.height());
    if (w, h) == image.dimensions() {
        image
    } else {
        resize(&image, w, h)
    }
}

/// An RGBA source shrunk to at most [`MAX_SIDE`] (not enlarged: its alpha is still wanted as is). The resizer
/// premultiplies by alpha, so transparent pixels' colours do not bleed into the object's edge.
pub(super) fn shrink_rgba(source: &RgbaImage) -> RgbaImage {
    let (w, h) = source.dimensions();
    if w.max(h) <= MAX_SIDE {
        return source.clone();
    }
    let (bw, bh) = bounded_size(w, h);
    let mut out = RgbaImage::new(bw, bh);
    match convolve(source, &mut out) {
        Ok(()) => out,
        Err(_) => imageops::resize(source, bw, bh, FilterType::Triangle),
    }
}

/// `image` rotated by `radians` about its centre on a canvas of the same size, bilinear, with everything
/// outside the source white (so the photo's edge blends into the white corners without a dark seam).
pub(super) fn rotate_on_white(image: &RgbImage, radians: f32) -> RgbImage {
    let (w, h) = image.dimensions();
    let rotated = rotate_raw::<3>(image.as_raw(), w, h, radians, 255);
    RgbImage::from_raw(w, h, rotated).expect("rotation keeps the buffer's size; this is a bug")
}

/// A coverage mask rotated by `radians` about its centre, zero outside.
pub(super) fn rotate_mask(mask: &GrayImage, radians: f32) -> GrayImage {
    let (w, h) = mask.dimensions();
    let rotated = rotate_raw::<1>(mask.as_raw(), w, h, radians, 0);
    GrayImage::from_raw(w, h, rotated).expect("rotation keeps the buffer's size; this is a bug")
}

/// The bilinear rotation of an interleaved `N`-channel `w` x `h` buffer, `fill` outside the source.
fn rotate_raw<const N: usize>(src: &[u8], w: u32, h: u32, radians: f32, fill: u8) -> Vec<u8> {
    let (sin, cos) = radians.sin_cos();
    let (cx, cy) = ((w as f32 - 1.0) / 2.0, (h as f32 - 1.0) / 2.0);
    let (wi, hi) = (i64::from(w), i64::from(h));
    let fetch = |x: i64, y: i64| -> [f32; N] {
        if (0..wi).contains(&x) && (0..hi).contains(&y) {
            let i = N * (y * wi + x) as usize;
            std::array::from_fn(|k| f32::from(src[i + k]))
        } else {
            [f32::from(fill); N]
        }
    };
    let mut out = vec![0u8; src.len()];
    for (i, p) in out.chunks_exact_mut(N).enumerate() {
        // The inverse rotation: where in the source this output pixel comes from.
        let (dx, dy) = ((i as i64 % wi) as f32 - cx, (i as i64 / wi) as f32 - cy);
        let (sx, sy) = (cos * dx + sin * dy + cx, -sin * dx + cos * dy + cy);
        // Floor by truncation, one lower for negatives: `f32::floor` is a library call without SSE4.1.
        let (x0, y0) = (sx as i64 - i64::from(sx < 0.0), sy as i64 - i64::from(sy < 0.0));
        let (fx, fy) = (sx - x0 as f32, sy - y0 as f32);
        let (a, b, c, d) = (
            fetch(x0, y0),
            fetch(x0 + 1, y0),
            fetch(x0, y0 + 1),
            fetch(x0 + 1, y0 + 1),
        );
        for k in 0..N {
            let top = a[k] + (b[k] - a[k]) * fx;
            let bottom = c[k] + (d[k] - c[k]) * fx;
            p[k] = to_byte(top + (bottom - top) * fy);
        }
    }
    out
}

/// `v` rounded to the nearest byte, saturating at 0 and 255. Cheaper than `f32::round` in per-pixel loops,
/// which without SSE4.1 is a library call.
#[inline]
pub(super) fn to_byte(v: f32) -> u8 {
    (v + 0.5) as u8 // `as` saturates, and maps NaN to 0
}

/// A separable gaussian blur of `sigma` px, edges replicated. Each pass accumulates whole rows, so the
/// inner loops vectorise.
pub(super) fn gaussian_blur(image: &RgbImage, sigma: f32) -> RgbImage {
    let (w, h) = (image.width() as usize, image.height() as usize);
    if w == 0 || h == 0 || sigma <= 0.0 {
        return image.clone();
    }
    let radius = (3.0 * sigma).ceil().max(1.0) as usize;
    let mut kernel: Vec<f32> = (0..=2 * radius)
        .map(|i| (-((i as f32 - radius as f32).powi(2)) / (2.0 * sigma * sigma)).exp())
        .collect();
    let total: f32 = kernel.iter().sum();
    kernel.iter_mut().for_each(|k| *k /= total);
    let src = image.as_raw();
    let stride = 3 * w;
    // Horizontal: each row padded by replicating its end pixels, then a weighted sum of shifted copies.
    let mut across = vec![0f32; stride * h];
    let mut padded = vec![0f32; 3 * (w + 2 * radius)];
    for (y, out_row) in across.chunks_exact_mut(stride).enumerate() {
        let row = &src[y * stride..(y + 1) * stride];
        for (i, px) in padded.chunks_exact_mut(3).enumerate() {
            let x = i.saturating_sub(radius).min(w - 1);
            px.iter_mut()
                .zip(&row[3 * x..3 * x + 3])
                .for_each(|(p, &v)| *p = f32::from(v));
        }
        for (k, &weight) in kernel.iter().enumerate() {
            let shifted = &padded[3 * k..3 * k + stride];
            out_row.iter_mut().zip(shifted).for_each(|(o, &v)| *o += weight * v);
        }
    }
    // Vertical: each output row a weighted sum of the (clamped) neighbouring rows.
    let mut out = vec![0u8; stride * h];
    let mut acc = vec![0f32; stride];
    for (y, out_row) in out.chunks_exact_mut(stride).enumerate() {
        acc.iter_mut().for_each(|a| *a = 0.0);
        for (k, &weight) in kernel.iter().enumerate() {
            let yy = (y + k).saturating_sub(radius).min(h - 1);
            let row = &across[yy * stride..(yy + 1) * stride];
            acc.iter_mut().zip(row).for_each(|(a, &v)| *a += weight * v);
        }
        out_row.iter_mut().zip(&acc).for_each(|(o, &a)| *o = to_byte(a));
    }
    RgbImage::from_raw(w as u32, h as u32, out).expect("a buffer of w * h * 3 bytes makes a w x h image; this is a bug")
}

/// Copies `top` onto `canvas` with its top-left corner at `(x, y)`, clipped to the canvas.
pub(super) fn paste(canvas: &mut RgbImage, top: &RgbImage, x: i64, y: i64) {
    imageops::replace(canvas, top, x, y);
}

/// Fills the rectangle at `(x, y)` of `w` x `h`, clipped to the image.
pub(super) fn fill_rect(image: &mut RgbImage, x: i64, y: i64, w: u32, h: u32, colour: Rgb<u8>) {
    let (iw, ih) = (i64::from(image.width()), i64::from(image.height()));
    let (x0, y0) = (x.clamp(0, iw), y.clamp(0, ih));
    let (x1, y1) = ((x + i64::from(w)).clamp(0, iw), (y + i64::from(h)).clamp(0, ih));
    for yy in y0..y1 {
        for xx in x0..x1 {
            image.put_pixel(xx as u32, yy as u32, colour);
        }
    }
}

/// Fills the disc of `radius` about `(cx, cy)`, clipped to the image.
pub(super) fn fill_disc(image: &mut RgbImage, cx: i64, cy: i64, radius: i64, colour: Rgb<u8>) {
    let (iw, ih) = (i64::from(image.width()), i64::from(image.height()));
    for y in (cy - radius).max(0)..(cy + radius + 1).min(ih) {
        for x in (cx - radius).max(0)..(cx + radius + 1).min(iw) {
            if (x - cx).pow(2) + (y - cy).pow(2) <= radius * radius {
                image.put_pixel(x as u32, y as u32, colour);
            }
        }
    }
}

/// `a` blended towards `b` by `t` (0 keeps `a`).
pub(super) fn mix(a: Rgb<u8>, b: Rgb<u8>, t: f32) -> Rgb<u8> {
    let channel = |i: usize| to_byte(f32::from(a[i]) + (f32::from(b[i]) - f32::from(a[i])) * t);
    Rgb([channel(0), channel(1), channel(2)])
}

/// Rec. 601 luma of `p`, 0 to 255.
pub(super) fn luma(p: Rgb<u8>) -> f32 {
    0.299 * f32::from(p[0]) + 0.587 * f32::from(p[1]) + 0.114 * f32::from(p[2])
}

/// Black or white, whichever reads better on `background`.
pub(super) fn ink_for(background: Rgb<u8>) -> Rgb<u8> {
    if luma(background) > 150.0 {
        Rgb([20, 20, 20])
    } else {
        WHITE
    }
}

/// HSV (all 0 to 1) to RGB.
pub(super) fn hsv(h: f32, s: f32, v: f32) -> Rgb<u8> {
    let h6 = (h.rem_euclid(1.0)) * 6.0;
    let c = v * s;
    let x = c * (1.0 - ((h6 % 2.0) - 1.0).abs());
    let (r, g, b) = match h6 as u32 {
        0 => (c, x, 0.0),
        1 => (x, c, 0.0),
        2 => (0.0, c, x),
        3 => (0.0, x, c),
        4 => (x, 0.0, c),
        _ => (c, 0.0, x),
    };
    let m = v - c;
    let byte = |f: f32| ((f + m) * 255.0).round().clamp(0.0, 255.0) as u8;
    Rgb([byte(r), byte(g), byte(b)])
}

/// A saturated colour, as marketing banners and logos use.
pub(super) fn vivid<R: Rng + ?Sized>(rng: &mut R) -> Rgb<u8> {
    hsv(rng.gen(), rng.gen_range(0.6..=1.0), rng.gen_range(0.55..=1.0))
}

/// A colour clearly not white: coloured, or dark enough.
pub(super) fn not_white<R: Rng + ?Sized>(rng: &mut R) -> Rgb<u8> {
    if rng.gen_bool(0.5) {
        hsv(rng.gen(), rng.gen_range(0.3..=1.0), rng.gen_range(0.2..=0.95))
    } else {
        hsv(rng.gen(), rng.gen_range(0.0..=0.3), rng.gen_range(0.1..=0.75))
    }
}

/// A light page colour: white-ish with a faint tint.
pub(super) fn light<R: Rng + ?Sized>(rng: &mut R) -> Rgb<u8> {
    hsv(rng.gen(), rng.gen_range(0.0..=0.08), rng.gen_range(0.93..=1.0))
}

/// A mid-to-light grey, the colour of placeholder text lines.
pub(super) fn grey<R: Rng + ?Sized>(rng: &mut R) -> Rgb<u8> {
    let v = rng.gen_range(120..=200);
    Rgb([v, v, v])
}

/// A xorshift64* generator seeded from the caller's RNG: per-pixel noise needs a cheap draw, and seeding it
/// from the RNG keeps every edit a function of the seed.
pub(super) struct FastNoise(u64);

impl FastNoise {
    /// A generator whose state is drawn from `rng`.
    pub(super) fn from_rng<R: Rng + ?Sized>(rng: &mut R) -> Self {
        Self(rng.gen::<u64>() | 1)
    }

    /// The next 32 random bits.
    pub(super) fn next_u32(&mut self) -> u32 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 32) as u32
    }

    /// Uniform on `[-1, 1)`.
    pub(super) fn symmetric(&mut self) -> f32 {
        self.next_u32() as f32 / 2_147_483_648.0 - 1.0
    }

    /// Roughly standard normal: the sum of four uniforms, rescaled to unit variance (its tails stop at
    /// ±3.5, which is all noise on 8-bit pixels needs).
    pub(super) fn normal(&mut self) -> f32 {
        const UNIT: f32 = 0.866_025_4; // sqrt(3/4): four uniforms on [-1, 1) have variance 4/3
        (self.symmetric() + self.symmetric() + self.symmetric() + self.symmetric()) * UNIT
    }
}

/// The bundled DejaVu Sans Bold, parsed once.
pub(super) fn font() -> &'static FontRef<'static> {
    static FONT: OnceLock<FontRef<'static>> = OnceLock::new();
    FONT.get_or_init(|| {
        FontRef::try_from_slice(dejavu::sans::bold()).expect("the bundled DejaVu font parses; this is a bug")
    })
}

/// Height of capitals over the font scale, for DejaVu Sans.
const CAP_HEIGHT: f32 = 0.73;

/// The largest font scale at which `text` fits `max_w` wide with capitals `max_h` high.
pub(super) fn fit_scale(text: &str, max_w: f32, max_h: f32) -> f32 {
    const PROBE: f32 = 100.0;
    let (probe_w, _) = text_size(PROBE, font(), text);
    let by_width = max_w * PROBE / probe_w.max(1) as f32;
    (max_h / CAP_HEIGHT).min(by_width).max(1.0)
}

/// The width of `text` at `scale`, in pixels.
pub(super) fn text_width(text: &str, scale: f32) -> u32 {
    text_size(scale, font(), text).0
}

/// Where to put the top of `text`'s line so its capitals are centred on `(cx, cy)`.
fn centred_origin(text: &str, scale: f32, cx: f32, cy: f32) -> (i32, i32) {
    let ascent = font().as_scaled(scale).ascent();
    let x = cx - text_width(text, scale) as f32 / 2.0;
    let y = cy - ascent + CAP_HEIGHT * scale / 2.0;
    (x.round() as i32, y.round() as i32)
}

/// Draws `text` in `colour` with its capitals centred on `(cx, cy)`.
pub(super) fn draw_centred(image: &mut RgbImage, colour: Rgb<u8>, cx: f32, cy: f32, scale: f32, text: &str) {
    let (x, y) = centred_origin(text, scale, cx, cy);
    draw_text_mut(image, colour, x, y, scale, font(), text);
}

/// Draws `text` into a coverage mask (255 where the glyphs are), capitals centred on `(cx, cy)`.
pub(super) fn draw_centred_mask(mask: &mut GrayImage, cx: f32, cy: f32, scale: f32, text: &str) {
    let (x, y) = centred_origin(text, scale, cx, cy);
    draw_text_mut(mask, Luma([255]), x, y, scale, font(), text);
}
