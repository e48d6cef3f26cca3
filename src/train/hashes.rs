//! Perceptual hashes (pHash, dHash): the baseline every photo model is measured against.
//!
//! A port of Python `imagehash` 4.3 (`phash`, `dhash` with the default `hash_size=8`), so that the numbers we
//! report for the baseline are the numbers anyone gets from the library everyone uses. Each step copies what
//! imagehash does through PIL and scipy:
//!
//! - grayscale as PIL's `convert("L")`: the ITU-R 601-2 luma in PIL's 16-bit fixed point;
//! - resize as PIL's `resize(.., LANCZOS)`: a port of Pillow's `Resample.c` (horizontal pass first, 8-bit
//!   intermediate, 22-bit fixed-point weights), so the small grid is bit for bit PIL's; `image`'s Lanczos3
//!   (vertical pass first, float intermediate) rounds differently, and one grey level flips a dHash bit
//!   wherever neighbours are close;
//! - the DCT as `scipy.fftpack.dct` (type II, unnormalised), along axis 0 then axis 1;
//! - bits packed row-major, first value in the most significant bit, so `format!("{:016x}", h)` is
//!   `str(imagehash.phash(img))`.
//!
//! The one thing not copied is the DCT's floating-point round-off. It matters on images constant along an
//! axis (flat fields, one-dimensional gradients): there most low-frequency coefficients are zero in exact
//! arithmetic, as is their median, and a bit would follow the sign of 1e-13 noise. Our DCT gives exact zeros
//! where scipy's does (see `dct_ii`), so these match too; a tie between two non-zero coefficients at the
//! median could still split the two, and has not been seen (`tests/api/hash_crosscheck.rs`,
//! `scripts/hash-crosscheck`).

use std::f64::consts::PI;

use image::{GrayImage, RgbImage};

/// Side of the hash grid (imagehash's `hash_size`): 8 x 8 = 64 bits.
const HASH_SIZE: usize = 8;
/// pHash takes the DCT of a grid `HIGHFREQ_FACTOR` times finer than the hash (imagehash's `highfreq_factor`).
const HIGHFREQ_FACTOR: usize = 4;
/// Pillow's fixed-point precision for 8-bit resampling weights: 32 bits less 8 for the pixel and 2 for
/// overshoot of the negative-lobed filters.
const PRECISION_BITS: u32 = 32 - 8 - 2;
/// Lanczos support in input pixels (Pillow's `LANCZOS` filter, a = 3).
const LANCZOS_SUPPORT: f64 = 3.0;

/// The perceptual hashes the photo model is compared with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PerceptualHash {
    /// DCT hash: the signs of the 8 x 8 lowest frequencies against their median.
    Phash,
    /// Difference hash: whether each of 8 x 8 cells is brighter than its left neighbour.
    Dhash,
}

impl PerceptualHash {
    /// Every hash, in report order.
    pub const ALL: [PerceptualHash; 2] = [PerceptualHash::Phash, PerceptualHash::Dhash];

    /// The name used in reports and on the command line ("phash", "dhash").
    pub fn name(self) -> &'static str {
        match self {
            PerceptualHash::Phash => "phash",
            PerceptualHash::Dhash => "dhash",
        }
    }

    /// The 64-bit hash of `image`.
    pub fn hash(self, image: &RgbImage) -> u64 {
        match self {
            PerceptualHash::Phash => phash(image),
            PerceptualHash::Dhash => dhash(image),
        }
    }
}

/// imagehash's `phash(image)`: grayscale, Lanczos to 32 x 32, 2-D DCT-II, bits of the top-left 8 x 8
/// coefficients that exceed their median.
pub fn phash(image: &RgbImage) -> u64 {
    let side = HASH_SIZE * HIGHFREQ_FACTOR;
    let small = resize_lanczos(&grayscale(image), side as u32, side as u32);
    let pixels: Vec<f64> = small.as_raw().iter().map(|&p| f64::from(p)).collect();

    // Axis 0 (down each column) first, as scipy.fftpack.dct(pixels, axis=0); only the first HASH_SIZE rows of
    // the result feed the low frequencies.
    let mut columns = vec![0.0; HASH_SIZE * side];
    for x in 0..side {
        let column: Vec<f64> = (0..side).map(|y| pixels[y * side + x]).collect();
        for (k, value) in dct_ii(&column).into_iter().take(HASH_SIZE).enumerate() {
            columns[k * side + x] = value;
        }
    }
    let mut low = Vec::with_capacity(HASH_SIZE * HASH_SIZE);
    for row in columns.chunks(side) {
        low.extend(dct_ii(row).into_iter().take(HASH_SIZE));
    }

    let median = median(&low);
    pack_bits(low.iter().map(|&v| v > median))
}

/// imagehash's `dhash(image)`: grayscale, Lanczos to 9 wide x 8 high, bit = pixel brighter than its left
/// neighbour.
pub fn dhash(image: &RgbImage) -> u64 {
    let small = resize_lanczos(&grayscale(image), HASH_SIZE as u32 + 1, HASH_SIZE as u32);
    pack_bits(small.rows().flat_map(|row| {
        let row: Vec<u8> = row.map(|p| p.0[0]).collect();
        (0..HASH_SIZE).map(move |x| row[x + 1] > row[x])
    }))
}

/// The number of bits in which two hashes differ (imagehash's `hash1 - hash2`).
pub fn hamming(a: u64, b: u64) -> u32 {
    (a ^ b).count_ones()
}

/// Hamming distance over the 64 bits, in [0, 1]: smaller is more similar, like an embedding distance, so the
/// same ROC code scores hashes and models.
pub fn hash_distance(a: u64, b: u64) -> f64 {
    f64::from(hamming(a, b)) / 64.0
}

/// Bits in reading order, the first in the most significant place (imagehash's hex order).
fn pack_bits(bits: impl IntoIterator<Item = bool>) -> u64 {
    bits.into_iter().fold(0, |hash, bit| (hash << 1) | u64::from(bit))
}

/// numpy.median: the mean of the two middle values of an even-length sample.
fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let mid = sorted.len() / 2;
    if sorted.len() % 2 == 0 {
        (sorted[mid - 1] + sorted[mid]) / 2.0
    } else {
        sorted[mid]
    }
}

/// PIL's `convert("L")` of an RGB image: L = (R * 19595 + G * 38470 + B * 7471 + 0x8000) >> 16, the 601-2 luma
/// (R * 299/1000 + G * 587/1000 + B * 114/1000) in 16-bit fixed point, rounded; gray input (R = G = B) is kept.
fn grayscale(image: &RgbImage) -> GrayImage {
    let luma = image.pixels().map(|p| {
        let [r, g, b] = p.0.map(u32::from);
        ((r * 19595 + g * 38470 + b * 7471 + 0x8000) >> 16) as u8
    });
    GrayImage::from_vec(image.width(), image.height(), luma.collect()).expect("one byte per pixel")
}

/// scipy.fftpack.dct(x) (type II, norm=None): y[k] = 2 * sum_n x[n] * cos(pi * k * (2n + 1) / (2N)).
///
/// Computed by the even/odd split rather than the O(N^2) sum: the even outputs are the half-length DCT of
/// x[n] + x[N-1-n], the odd ones a sum over x[n] - x[N-1-n]. Besides halving the work at each level, a
/// coefficient that vanishes by symmetry (every odd one of a constant signal) comes out exactly 0.0, as
/// scipy's FFT gives it, rather than round-off that would decide a pHash bit against a median of 0.
fn dct_ii(x: &[f64]) -> Vec<f64> {
    let n = x.len();
    if n == 1 {
        return vec![2.0 * x[0]];
    }
    if n % 2 == 1 {
        return (0..n)
            .map(|k| 2.0 * (0..n).map(|i| x[i] * dct_cos(k, i, n)).sum::<f64>())
            .collect();
    }
    let half = n / 2;
    let sums: Vec<f64> = (0..half).map(|i| x[i] + x[n - 1 - i]).collect();
    let differences: Vec<f64> = (0..half).map(|i| x[i] - x[n - 1 - i]).collect();
    let even = dct_ii(&sums);
    let mut out = vec![0.0; n];
    for k in 0..n {
        out[k] = if k % 2 == 0 {
            even[k / 2]
        } else {
            2.0 * differences
                .iter()
                .enumerate()
                .map(|(i, d)| d * dct_cos(k, i, n))
                .sum::<f64>()
        };
    }
    out
}

/// cos(pi * k * (2i + 1) / (2n)), with the angle reduced modulo 2 pi first so that large k * i lose nothing.
fn dct_cos(k: usize, i: usize, n: usize) -> f64 {
    let m = (k * (2 * i + 1)) % (4 * n);
    (PI * m as f64 / (2 * n) as f64).cos()
}

/// Pillow's `Image.resize((width, height), LANCZOS)` of an "L" image, ported from `libImaging/Resample.c`:
/// horizontal pass then vertical, each skipped when that side keeps its size, rounding to 8 bits in between.
fn resize_lanczos(image: &GrayImage, width: u32, height: u32) -> GrayImage {
    let (in_width, in_height) = image.dimensions();
    let mut current = image.clone();
    if width != in_width {
        let coeffs = Coefficients::new(in_width as usize, width as usize);
        let mut out = GrayImage::new(width, in_height);
        for y in 0..in_height {
            let row: Vec<u8> = (0..in_width).map(|x| current.get_pixel(x, y).0[0]).collect();
            for x in 0..width {
                out.get_pixel_mut(x, y).0[0] = coeffs.apply(x as usize, |i| row[i]);
            }
        }
        current = out;
    }
    if height != in_height {
        let coeffs = Coefficients::new(in_height as usize, height as usize);
        let mut out = GrayImage::new(current.width(), height);
        for x in 0..current.width() {
            let column: Vec<u8> = (0..in_height).map(|y| current.get_pixel(x, y).0[0]).collect();
            for y in 0..height {
                out.get_pixel_mut(x, y).0[0] = coeffs.apply(y as usize, |i| column[i]);
            }
        }
        current = out;
    }
    current
}

/// Pillow's truncated sinc: sinc(x) * sinc(x / 3) on [-3, 3).
fn lanczos(x: f64) -> f64 {
    fn sinc(x: f64) -> f64 {
        if x == 0.0 {
            1.0
        } else {
            (x * PI).sin() / (x * PI)
        }
    }
    if (-LANCZOS_SUPPORT..LANCZOS_SUPPORT).contains(&x) {
        sinc(x) * sinc(x / LANCZOS_SUPPORT)
    } else {
        0.0
    }
}

/// One axis' resampling weights, as Pillow's `precompute_coeffs` then `normalize_coeffs_8bpc`.
struct Coefficients {
    /// Per output pixel: the first input index and the fixed-point weights from there on.
    taps: Vec<(usize, Vec<i64>)>,
}

impl Coefficients {
    fn new(in_size: usize, out_size: usize) -> Self {
        let scale = in_size as f64 / out_size as f64;
        // Downscaling widens the filter by the scale, which is what makes the resize antialiased.
        let filter_scale = scale.max(1.0);
        let support = LANCZOS_SUPPORT * filter_scale;
        // Multiplied by the reciprocal, not divided, as Pillow does: the last bit of a weight can differ.
        let step = 1.0 / filter_scale;
        let taps = (0..out_size)
            .map(|xx| {
                let center = (xx as f64 + 0.5) * scale;
                // C's (int) truncates toward zero, as `as` does; both bounds are clamped into the image.
                let xmin = ((center - support + 0.5) as i64).max(0);
                let xmax = ((center + support + 0.5) as i64).min(in_size as i64);
                let weights: Vec<f64> = (xmin..xmax)
                    .map(|x| lanczos((x as f64 - center + 0.5) * step))
                    .collect();
                let total: f64 = weights.iter().sum();
                let fixed = weights
                    .iter()
                    .map(|&w| {
                        let w = if total != 0.0 { w / total } else { w };
                        // Rounded half away from zero, then truncated, as Pillow does.
                        let scaled = w * f64::from(1u32 << PRECISION_BITS);
                        (if w < 0.0 { scaled - 0.5 } else { scaled + 0.5 }) as i64
                    })
                    .collect();
                (xmin as usize, fixed)
            })
            .collect();
        Coefficients { taps }
    }

    /// Output pixel `index` from the input line read through `pixel`, rounded and clamped as Pillow's `clip8`.
    fn apply(&self, index: usize, pixel: impl Fn(usize) -> u8) -> u8 {
        let (start, weights) = &self.taps[index];
        let sum = weights
            .iter()
            .enumerate()
            .fold(1i64 << (PRECISION_BITS - 1), |acc, (i, &w)| {
                acc + i64::from(pixel(start + i)) * w
            });
        (sum >> PRECISION_BITS).clamp(0, 255) as u8
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{imageops, Rgb};

    fn gray(width: u32, height: u32, f: impl Fn(u32, u32) -> u8) -> RgbImage {
        RgbImage::from_fn(width, height, |x, y| {
            let v = f(x, y);
            Rgb([v, v, v])
        })
    }

    /// A smooth, photo-like scene: a few soft blobs of colour on a tilted background, seeded by `seed`.
    fn scene(width: u32, height: u32, seed: u32) -> RgbImage {
        let s = seed as f64;
        RgbImage::from_fn(width, height, |x, y| {
            let (u, v) = (x as f64 / width as f64, y as f64 / height as f64);
            let mut c = [
                40.0 + 80.0 * u * (1.0 + s * 0.3).sin().abs(),
                60.0 + 60.0 * v,
                90.0 + 40.0 * u * v,
            ];
            for b in 0..4 {
                let bf = b as f64 + s * 4.0;
                let (cx, cy) = (0.5 + 0.4 * (bf * 1.7).sin(), 0.5 + 0.4 * (bf * 2.3).cos());
                let r = 0.08 + 0.06 * (bf * 0.9).sin().abs();
                let d2 = ((u - cx).powi(2) + (v - cy).powi(2)) / (r * r);
                let w = (-d2).exp();
                let tint = [(bf * 1.1).sin(), (bf * 1.9).cos(), (bf * 0.7).sin()];
                for (ch, t) in c.iter_mut().zip(tint) {
                    *ch += w * 150.0 * t;
                }
            }
            Rgb(c.map(|v| v.clamp(0.0, 255.0) as u8))
        })
    }

    #[test]
    fn dct_matches_the_direct_formula_and_scipy() {
        let direct = |x: &[f64]| -> Vec<f64> {
            let n = x.len() as f64;
            (0..x.len())
                .map(|k| {
                    2.0 * x
                        .iter()
                        .enumerate()
                        .map(|(i, v)| v * (PI * k as f64 * (2.0 * i as f64 + 1.0) / (2.0 * n)).cos())
                        .sum::<f64>()
                })
                .collect()
        };
        for x in [
            vec![3.0],
            vec![1.0, -2.0, 5.5],
            vec![4.0, 8.0, 15.0, 16.0, 23.0, 42.0],
            (0..32).map(|i| ((i * 37) % 256) as f64).collect(),
        ] {
            for (a, b) in dct_ii(&x).iter().zip(direct(&x)) {
                assert!((a - b).abs() < 1e-9, "{x:?}: {a} vs {b}");
            }
        }
        // scipy.fftpack.dct([1, 2, 3, 4]) = [20, -6.30864406, 0, -0.44834153].
        let y = dct_ii(&[1.0, 2.0, 3.0, 4.0]);
        for (a, b) in y.iter().zip([20.0, -6.30864406, 0.0, -0.44834153]) {
            assert!((a - b).abs() < 1e-8, "{y:?}");
        }
        // The odd coefficients of a constant vanish exactly, as in scipy, not as round-off.
        assert!(dct_ii(&[77.0; 32])[1..].iter().all(|&v| v == 0.0));
    }

    #[test]
    fn grayscale_is_pils_fixed_point_luma() {
        let image = RgbImage::from_vec(4, 1, vec![255, 0, 0, 0, 255, 0, 0, 0, 255, 10, 200, 37]).unwrap();
        // PIL: Image.frombytes("RGB", (4, 1), ...).convert("L") gives 76, 150, 29, 125.
        assert_eq!(grayscale(&image).into_raw(), vec![76, 150, 29, 125]);
        assert_eq!(
            grayscale(&gray(3, 1, |x, _| x as u8 * 100)).into_raw(),
            vec![0, 100, 200]
        );
    }

    #[test]
    fn resize_matches_pillow() {
        // numpy: (arange(24).reshape(4, 6) * 37 % 256).astype(uint8); PIL's resize(.., LANCZOS) outputs below.
        let source = GrayImage::from_fn(6, 4, |x, y| image::Luma([((y * 6 + x) * 37 % 256) as u8]));
        let resized = |w, h| resize_lanczos(&source, w, h).into_raw();
        assert_eq!(resized(3, 2), vec![71, 60, 151, 193, 74, 71]);
        assert_eq!(
            resized(6, 3),
            vec![57, 6, 73, 106, 143, 180, 221, 114, 7, 60, 97, 134, 155, 222, 171, 14, 51, 88]
        );
        #[rustfmt::skip]
        let upscaled = vec![
            0, 18, 59, 79, 108, 133, 167, 188,
            168, 49, 4, 69, 88, 110, 145, 166,
            247, 181, 55, 0, 48, 87, 114, 136,
            158, 227, 192, 61, 27, 46, 87, 106,
            151, 159, 233, 222, 29, 3, 70, 84,
        ];
        assert_eq!(resized(8, 5), upscaled);
        assert_eq!(resized(6, 4), source.clone().into_raw(), "same size is a copy");
    }

    #[test]
    fn dhash_of_flat_and_gradient_images() {
        assert_eq!(dhash(&gray(64, 48, |_, _| 120)), 0);
        assert_eq!(dhash(&gray(90, 80, |x, _| (x * 255 / 89) as u8)), 0xffff_ffff_ffff_ffff);
        assert_eq!(dhash(&gray(90, 80, |x, _| 255 - (x * 255 / 89) as u8)), 0);
        // A vertical gradient has no horizontal differences.
        assert_eq!(dhash(&gray(90, 80, |_, y| (y * 3) as u8)), 0);
    }

    /// 32 x 32 (pHash resizes nothing): 128 plus each of the 63 low-frequency cosine basis images (u, v < 8, not
    /// the DC term) with amplitude 2 and the sign `sign(u, v)`. The DCT's 8 x 8 corner is then +/-2048 or more,
    /// far beyond the round-off of the 8-bit pixels, and the DC term larger still.
    fn dct_basis_pattern(sign: impl Fn(u32, u32) -> bool) -> RgbImage {
        let basis = |u: u32, x: u32| (PI * f64::from(u) * (2.0 * f64::from(x) + 1.0) / 64.0).cos();
        gray(32, 32, |x, y| {
            let mut value = 128.0;
            for v in 0..8 {
                for u in 0..8 {
                    if (u, v) != (0, 0) {
                        value += if sign(u, v) { 2.0 } else { -2.0 } * basis(u, x) * basis(v, y);
                    }
                }
            }
            value.round().clamp(0.0, 255.0) as u8
        })
    }

    #[test]
    fn phash_of_dct_basis_patterns_is_their_sign_pattern() {
        // With 31 positive AC terms, the DC term and 32 negative ones, the median falls between the largest
        // negative and the smallest positive coefficient: the set bits are the DC term and the positive ones.
        let checkerboard = dct_basis_pattern(|u, v| (u + v) % 2 == 0);
        assert_eq!(phash(&checkerboard), 0xaa55_aa55_aa55_aa55);
        let top_half = dct_basis_pattern(|_, v| v < 4);
        assert_eq!(phash(&top_half), 0xffff_ffff_0000_0000);
        let left_half = dct_basis_pattern(|u, _| u < 4);
        assert_eq!(phash(&left_half), 0xf0f0_f0f0_f0f0_f0f0);
    }

    #[test]
    fn hamming_counts_differing_bits() {
        assert_eq!(hamming(0, 0), 0);
        assert_eq!(hamming(0, u64::MAX), 64);
        assert_eq!(hamming(0b1011, 0b0110), 3);
        assert_eq!(hamming(0xaa55_aa55_aa55_aa55, 0x55aa_55aa_55aa_55aa), 64);
        assert_eq!(hash_distance(0, u64::MAX), 1.0);
        assert_eq!(hash_distance(0xf0, 0x0f), 0.125);
        assert_eq!(hash_distance(42, 42), 0.0);
    }

    #[test]
    fn hashes_survive_a_small_resize_and_tell_unrelated_scenes_apart() {
        for hash in PerceptualHash::ALL {
            for seed in 0..4 {
                let image = scene(240, 180, seed);
                let smaller = imageops::resize(&image, 200, 150, imageops::FilterType::Triangle);
                let changed = hamming(hash.hash(&image), hash.hash(&smaller));
                assert!(
                    changed <= 4,
                    "{} seed {seed}: {changed} bits changed by a resize",
                    hash.name()
                );
                for other in seed + 1..4 {
                    let apart = hamming(hash.hash(&image), hash.hash(&scene(240, 180, other)));
                    assert!(
                        apart >= 16,
                        "{} seeds {seed}, {other}: only {apart} bits apart",
                        hash.name()
                    );
                }
            }
        }
    }

    #[test]
    fn enum_names_and_dispatch() {
        let image = scene(64, 64, 7);
        assert_eq!(PerceptualHash::ALL.map(PerceptualHash::name), ["phash", "dhash"]);
        assert_eq!(PerceptualHash::Phash.hash(&image), phash(&image));
        assert_eq!(PerceptualHash::Dhash.hash(&image), dhash(&image));
    }
}
