//! A folder of unlabelled photos: every image is a source of its own, split by source.
//!
//! Self-supervised training has no classes: the near-duplicates it learns from are edits of one source, so
//! the only thing that must not leak between train, validation and test is the source itself and its
//! near-copies (see [`split_key`]).

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use anyhow::{ensure, Context, Result};
use fast_image_resize::{FilterType, ResizeAlg, ResizeOptions, Resizer};
use image::RgbaImage;
use sha2::{Digest, Sha256};

use crate::preprocess::{self, DecodeLimits};

const IMAGE_EXTENSIONS: [&str; 6] = ["png", "jpg", "jpeg", "webp", "gif", "bmp"];
/// Images with a side under this many pixels carry too little to edit and learn from.
pub(crate) const MIN_SIDE: u32 = 16;
/// Pixels with less alpha than this count as transparent when judging blankness.
const TRANSPARENT_BELOW: u8 = 32;
/// An image whose most common colour (transparent counting as one) covers this share of its pixels is blank:
/// a dot on an empty canvas or a plain flag teaches nothing about what makes two pictures the same.
const BLANK_SHARE: f64 = 0.99;

/// One source image, shrunk so that its longest side is at most `max_side`, alpha kept.
#[derive(Debug, Clone)]
pub struct Source {
    /// The path relative to the loaded root, '/'-separated, e.g. `animals/birds/owl_01.png`.
    pub name: String,
    pub image: RgbaImage,
}

/// Sources split so that each one (and its near-copies, see [`split_key`]) is in exactly one part;
/// each part keeps the loader's name order.
#[derive(Debug, Clone, Default)]
pub struct SourceSplit {
    pub train: Vec<Source>,
    pub validation: Vec<Source>,
    pub test: Vec<Source>,
}

/// What [`load_sources`] found and did: `found == loaded + duplicates + skipped.len()`.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct LoadReport {
    /// Files with an image extension under the root.
    pub found: usize,
    /// Sources returned.
    pub loaded: usize,
    /// Files dropped because an earlier file (in name order) had the same pixels after shrinking.
    pub duplicates: usize,
    /// Files not used, each with its name and why: unreadable, undecodable, over the decode limits, tiny, blank.
    pub skipped: Vec<(String, String)>,
}

/// Every image under `root`, recursively (png, jpg, jpeg, webp, gif, bmp, any case), sorted by relative path.
///
/// Each file is decoded as the server decodes uploads ([`preprocess::decode`] with the default
/// [`DecodeLimits`]) and converted to RGBA; its fully transparent margins are cut (clip art is often a small
/// drawing on a whole empty page); then it is shrunk with a triangle filter on premultiplied alpha (no dark
/// fringes around transparent clip art) so that its longest side is at most `max_side`, aspect kept;
/// smaller images are kept as they are.
///
/// Files that cannot be read or decoded, or are over the limits, are skipped and reported, never fatal; so
/// are tiny images (a side under [`MIN_SIDE`] px, before or after trimming and shrinking) and nearly blank
/// ones (almost all pixels transparent or one colour). Exact duplicates (same size and SHA-256 of the final
/// RGBA bytes) are kept once, the first in name order. Symlinked files are read; symlinked directories are
/// not followed, so that a link cycle cannot trap the walk.
///
/// Decoding runs on up to `threads` OS threads (at least one). Errors only when `root` or a directory
/// under it cannot be listed, or `max_side < MIN_SIDE`.
pub(crate) fn load_sources(root: &Path, max_side: u32, threads: usize) -> Result<(Vec<Source>, LoadReport)> {
    ensure!(
        max_side >= MIN_SIDE,
        "max_side {max_side} is under the minimum side {MIN_SIDE}"
    );
    let mut files = Vec::new();
    collect_images(root, Path::new(""), &mut files)?;
    files.sort();

    let outcomes = decode_all(root, &files, max_side, threads.max(1));

    let mut report = LoadReport {
        found: files.len(),
        ..LoadReport::default()
    };
    let mut seen: HashSet<[u8; 32]> = HashSet::new();
    let mut sources = Vec::new();
    for (relative, outcome) in files.iter().zip(outcomes) {
        let name = slash_name(relative);
        match outcome {
            Outcome::Loaded { image, digest } => {
                if seen.insert(digest) {
                    sources.push(Source { name, image });
                } else {
                    report.duplicates += 1;
                }
            }
            Outcome::Skipped(reason) => report.skipped.push((name, reason)),
        }
    }
    report.loaded = sources.len();
    Ok((sources, report))
}

/// The group a source is split with: its file stem, lower-cased, with trailing `_NN` / `-NN` numbers and
/// separators stripped, and WITHOUT its directory. `animals/owl_01.png`, `animals/owl_02.png` and
/// `birds/Owl-3.png` all give `owl`.
///
/// The directory is left out on purpose: openclipart files the same drawing under several categories
/// (`science/astronomy/jupiter_dan_gerhards_01.png` and `geography/astronomy/jupiter_dan_gerhards_01.png`,
/// the same Jupiter at two sizes on the page), and tuxpaint draws the same letter for several alphabets; keyed by
/// directory too, those near-copies would land in different splits. The price is that unrelated images
/// with the same name (`tv.png` in two icon themes) share a split, which only makes the split slightly
/// lumpier: on the packaged data the largest group has 28 images out of about 7,500.
pub(crate) fn split_key(name: &str) -> String {
    let file = name.rsplit('/').next().unwrap_or(name);
    let stem = match file.rfind('.') {
        Some(dot) if dot > 0 => &file[..dot],
        _ => file,
    };
    let mut key = stem.to_lowercase();
    loop {
        let trimmed = key.trim_end_matches(['_', '-']);
        let without_digits = trimmed.trim_end_matches(|c: char| c.is_ascii_digit());
        // Digits count only when a separator precedes them: `rana01` stays, `rana_01` becomes `rana`.
        let stripped = if without_digits.len() < trimmed.len() && without_digits.ends_with(['_', '-']) {
            without_digits.trim_end_matches(['_', '-'])
        } else {
            trimmed
        };
        if stripped.len() == key.len() || stripped.is_empty() {
            break;
        }
        key.truncate(stripped.len());
    }
    key
}

/// Splits by source, seeded: a source is in exactly one split, and so is every source with its
/// [`split_key`], so that near-copies such as `x_01.png` and `x_02.png` never straddle two splits.
///
/// The key and the seed alone decide (SHA-256 of both → uniform in [0, 1), below `validation_fraction` →
/// validation, below `validation_fraction + test_fraction` → test, else train), so adding files never moves
/// others between splits. Each split keeps the order of `sources`.
///
/// # Panics
/// If a fraction is outside [0, 1] or their sum is over 1: the callers pass constants.
pub(crate) fn split_sources(
    sources: Vec<Source>,
    validation_fraction: f64,
    test_fraction: f64,
    seed: u64,
) -> SourceSplit {
    assert!(
        (0.0..=1.0).contains(&validation_fraction)
            && (0.0..=1.0).contains(&test_fraction)
            && validation_fraction + test_fraction <= 1.0,
        "split fractions {validation_fraction} and {test_fraction} must be in [0, 1] and sum to at most 1"
    );
    let mut split = SourceSplit::default();
    for source in sources {
        let u = unit_hash(&split_key(&source.name), seed);
        if u < validation_fraction {
            split.validation.push(source);
        } else if u < validation_fraction + test_fraction {
            split.test.push(source);
        } else {
            split.train.push(source);
        }
    }
    split
}

/// A uniform number in [0, 1) from a key and a seed, the same on every platform and Rust version
/// (which `DefaultHasher` does not promise).
fn unit_hash(key: &str, seed: u64) -> f64 {
    let digest = Sha256::new()
        .chain_update(seed.to_le_bytes())
        .chain_update(key.as_bytes())
        .finalize();
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    // 53 bits: exactly representable in an f64, so the result is below 1.
    (u64::from_le_bytes(first) >> 11) as f64 / (1u64 << 53) as f64
}

enum Outcome {
    Loaded { image: RgbaImage, digest: [u8; 32] },
    Skipped(String),
}

/// Appends the image files under `root/relative`, as paths relative to `root`.
fn collect_images(root: &Path, relative: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    let dir = root.join(relative);
    let entries = std::fs::read_dir(&dir).with_context(|| format!("listing {}", dir.display()))?;
    for entry in entries {
        let entry = entry.with_context(|| format!("listing {}", dir.display()))?;
        let path = relative.join(entry.file_name());
        let file_type = entry
            .file_type()
            .with_context(|| format!("reading the type of {}", root.join(&path).display()))?;
        if file_type.is_dir() {
            collect_images(root, &path, out)?;
        } else if has_image_extension(&path) {
            // Symlinks are not followed here; one to a directory fails to read and is reported as skipped.
            out.push(path);
        }
    }
    Ok(())
}

fn has_image_extension(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| IMAGE_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
}

fn slash_name(relative: &Path) -> String {
    relative
        .components()
        .map(|c| c.as_os_str().to_string_lossy())
        .collect::<Vec<_>>()
        .join("/")
}

/// Decodes `files` on `threads` threads, each taking the next file from a shared counter; outcomes in file order.
fn decode_all(root: &Path, files: &[PathBuf], max_side: u32, threads: usize) -> Vec<Outcome> {
    let next = AtomicUsize::new(0);
    let mut numbered: Vec<(usize, Outcome)> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads.min(files.len()))
            .map(|_| {
                scope.spawn(|| {
                    let mut resizer = Resizer::new();
                    let mut done = Vec::new();
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(file) = files.get(i) else { break };
                        done.push((i, load_one(&root.join(file), max_side, &mut resizer)));
                    }
                    done
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic)))
            .collect()
    });
    numbered.sort_unstable_by_key(|(i, _)| *i);
    numbered.into_iter().map(|(_, outcome)| outcome).collect()
}

fn load_one(path: &Path, max_side: u32, resizer: &mut Resizer) -> Outcome {
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) => return Outcome::Skipped(format!("unreadable: {e}")),
    };
    let decoded = match preprocess::decode(&bytes, &DecodeLimits::default()) {
        Ok(image) => image,
        Err(e) => return Outcome::Skipped(e.to_string()),
    };
    drop(bytes);
    let (width, height) = (decoded.width(), decoded.height());
    if width < MIN_SIDE || height < MIN_SIDE {
        return Outcome::Skipped(format!("tiny: {width}x{height} px, a side under {MIN_SIDE}"));
    }
    let Some(trimmed) = trim_invisible_margins(decoded.into_rgba8()) else {
        return Outcome::Skipped("nearly blank: every pixel is transparent".into());
    };
    if trimmed.width() < MIN_SIDE || trimmed.height() < MIN_SIDE {
        return Outcome::Skipped(format!(
            "tiny: the visible part of the {width}x{height} px canvas is {}x{} px, a side under {MIN_SIDE}",
            trimmed.width(),
            trimmed.height()
        ));
    }
    let image = match shrink(trimmed, max_side, resizer) {
        Ok(image) => image,
        Err(e) => return Outcome::Skipped(format!("cannot be resized: {e}")),
    };
    if image.width() < MIN_SIDE || image.height() < MIN_SIDE {
        return Outcome::Skipped(format!(
            "too narrow: the {width}x{height} px image shrinks to {}x{}, a side under {MIN_SIDE}",
            image.width(),
            image.height()
        ));
    }
    if let Some(share) = blank_share(&image) {
        return Outcome::Skipped(format!(
            "nearly blank: {:.1}% of the pixels are transparent or one colour",
            100.0 * share
        ));
    }
    let digest = Sha256::new()
        .chain_update(image.width().to_le_bytes())
        .chain_update(image.height().to_le_bytes())
        .chain_update(image.as_raw())
        .finalize()
        .into();
    Outcome::Loaded { image, digest }
}

/// The image cropped to the bounding box of its pixels with any opacity; `None` when there are none.
///
/// Clip art is often a small drawing on a whole transparent page (openclipart has hundreds on A4 canvases):
/// shrunk as it is, the drawing would be a few pixels wide. Only fully transparent pixels are cut, so
/// nothing visible is lost, and the same drawing on two canvases becomes an exact duplicate.
fn trim_invisible_margins(image: RgbaImage) -> Option<RgbaImage> {
    let (width, height) = image.dimensions();
    let (mut left, mut top, mut right, mut bottom) = (width, height, 0, 0);
    for (x, y, p) in image.enumerate_pixels() {
        if p.0[3] > 0 {
            left = left.min(x);
            right = right.max(x);
            top = top.min(y);
            bottom = bottom.max(y);
        }
    }
    if left > right {
        return None;
    }
    if (left, top, right, bottom) == (0, 0, width - 1, height - 1) {
        return Some(image);
    }
    Some(image::imageops::crop_imm(&image, left, top, right - left + 1, bottom - top + 1).to_image())
}

/// The image with its longest side at most `max_side`, aspect kept (each side at least 1 px).
fn shrink(image: RgbaImage, max_side: u32, resizer: &mut Resizer) -> Result<RgbaImage> {
    let (width, height) = image.dimensions();
    let longest = width.max(height);
    if longest <= max_side {
        return Ok(image);
    }
    let scale = f64::from(max_side) / f64::from(longest);
    let side = |s: u32| ((f64::from(s) * scale).round() as u32).clamp(1, max_side);
    let mut out = RgbaImage::new(side(width), side(height));
    // Premultiplied (the default for RGBA), so that the colour of invisible pixels cannot bleed into edges.
    let options = ResizeOptions::new().resize_alg(ResizeAlg::Convolution(FilterType::Bilinear));
    resizer.resize(&image, &mut out, &options)?;
    Ok(out)
}

/// `Some(share)` when the most common colour class covers at least [`BLANK_SHARE`] of the pixels.
/// Transparent pixels form one class; visible ones are binned at 4 bits per channel so that
/// compression noise or anti-aliasing on a plain image does not make it look busy.
fn blank_share(image: &RgbaImage) -> Option<f64> {
    let transparent = 1 << 12;
    let mut counts = vec![0u32; transparent + 1];
    for p in image.pixels() {
        let [r, g, b, a] = p.0;
        let class = if a < TRANSPARENT_BELOW {
            transparent
        } else {
            (usize::from(r >> 4) << 8) | (usize::from(g >> 4) << 4) | usize::from(b >> 4)
        };
        counts[class] += 1;
    }
    let most = counts.iter().copied().max().unwrap_or(0);
    let total = u64::from(image.width()) * u64::from(image.height());
    let share = f64::from(most) / total.max(1) as f64;
    (share >= BLANK_SHARE).then_some(share)
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::Rgba;

    /// A busy, opaque picture that differs for every `seed`.
    fn picture(width: u32, height: u32, seed: u32) -> RgbaImage {
        RgbaImage::from_fn(width, height, |x, y| {
            let v = x.wrapping_mul(7 + seed) ^ y.wrapping_mul(13 + 3 * seed);
            Rgba([
                (v % 251) as u8,
                ((v / 3 + seed * 40) % 256) as u8,
                ((x + y) * 5 % 256) as u8,
                255,
            ])
        })
    }

    fn save(root: &Path, name: &str, image: &RgbaImage) {
        let path = root.join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        image.save(&path).unwrap();
    }

    fn names(sources: &[Source]) -> Vec<&str> {
        sources.iter().map(|s| s.name.as_str()).collect()
    }

    fn source(name: &str) -> Source {
        Source {
            name: name.to_string(),
            image: RgbaImage::new(1, 1),
        }
    }

    #[test]
    fn loads_recursively_in_path_order() {
        let root = tempfile::tempdir().unwrap();
        save(root.path(), "b/z.png", &picture(40, 30, 1));
        save(root.path(), "a/deeper/y.png", &picture(40, 30, 2));
        save(root.path(), "a/x.PNG", &picture(40, 30, 3));
        save(root.path(), "c.bmp", &picture(40, 30, 4));
        std::fs::write(root.path().join("notes.txt"), "not an image").unwrap();
        let (sources, report) = load_sources(root.path(), 64, 3).unwrap();
        assert_eq!(names(&sources), ["a/deeper/y.png", "a/x.PNG", "b/z.png", "c.bmp"]);
        assert_eq!(
            report,
            LoadReport {
                found: 4,
                loaded: 4,
                duplicates: 0,
                skipped: vec![]
            }
        );
        assert_eq!(
            sources[0].image,
            picture(40, 30, 2),
            "small images are kept as they are"
        );
    }

    #[test]
    fn skips_corrupt_tiny_and_blank_files_with_reasons() {
        let root = tempfile::tempdir().unwrap();
        save(root.path(), "good.png", &picture(32, 32, 1));
        save(root.path(), "tiny.png", &picture(8, 40, 2));
        save(root.path(), "blank.png", &RgbaImage::new(64, 64));
        let mut dot = RgbaImage::new(100, 100);
        dot.put_pixel(50, 50, Rgba([255, 0, 0, 255]));
        save(root.path(), "dot.png", &dot);
        let mut plain = RgbaImage::from_pixel(64, 64, Rgba([250, 250, 250, 255]));
        plain.put_pixel(3, 3, Rgba([0, 0, 0, 255]));
        save(root.path(), "plain.png", &plain);
        std::fs::write(root.path().join("corrupt.png"), b"\x89PNG\r\n\x1a\nnot really").unwrap();
        std::fs::write(root.path().join("text.jpg"), b"hello").unwrap();

        let (sources, report) = load_sources(root.path(), 64, 2).unwrap();
        assert_eq!(names(&sources), ["good.png"]);
        assert_eq!((report.found, report.loaded, report.duplicates), (7, 1, 0));
        let reason = |name: &str| {
            report
                .skipped
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, r)| r.as_str())
                .unwrap_or_else(|| panic!("{name} not reported in {:?}", report.skipped))
        };
        assert!(reason("tiny.png").contains("tiny"), "{}", reason("tiny.png"));
        assert!(reason("blank.png").contains("blank"), "{}", reason("blank.png"));
        assert!(reason("dot.png").contains("tiny"), "{}", reason("dot.png"));
        assert!(reason("plain.png").contains("blank"), "{}", reason("plain.png"));
        assert!(reason("corrupt.png").contains("decode"), "{}", reason("corrupt.png"));
        assert!(reason("text.jpg").contains("unsupported"), "{}", reason("text.jpg"));
        assert_eq!(report.skipped.len(), 6);
    }

    #[test]
    fn keeps_the_first_of_exact_duplicates_even_across_formats() {
        let root = tempfile::tempdir().unwrap();
        save(root.path(), "one.png", &picture(50, 40, 1));
        save(root.path(), "sub/copy.png", &picture(50, 40, 1));
        save(root.path(), "copy.bmp", &picture(50, 40, 1));
        save(root.path(), "other.png", &picture(50, 40, 2));
        let (sources, report) = load_sources(root.path(), 64, 2).unwrap();
        assert_eq!(names(&sources), ["copy.bmp", "other.png"]);
        assert_eq!((report.found, report.loaded, report.duplicates), (4, 2, 2));
    }

    #[test]
    fn shrinks_to_max_side_keeping_aspect_and_alpha() {
        let root = tempfile::tempdir().unwrap();
        // A white ellipse touching every side of a transparent canvas whose invisible pixels are black:
        // nothing to trim, and no dark fringe may appear.
        let disc = RgbaImage::from_fn(400, 200, |x, y| {
            let (dx, dy) = ((x as f64 + 0.5 - 200.0) / 200.0, (y as f64 + 0.5 - 100.0) / 100.0);
            if dx * dx + dy * dy < 1.0 {
                Rgba([255, 255, 255, 255])
            } else {
                Rgba([0, 0, 0, 0])
            }
        });
        save(root.path(), "disc.png", &disc);
        save(root.path(), "tall.png", &picture(90, 300, 3));
        save(root.path(), "thin.png", &picture(1000, 20, 4));
        let (sources, report) = load_sources(root.path(), 100, 1).unwrap();
        assert_eq!(names(&sources), ["disc.png", "tall.png"]);
        assert_eq!(sources[0].image.dimensions(), (100, 50));
        assert_eq!(sources[1].image.dimensions(), (30, 100));
        let disc = &sources[0].image;
        assert_eq!(disc.get_pixel(0, 0).0[3], 0, "transparent corners stay transparent");
        assert_eq!(disc.get_pixel(50, 25).0, [255, 255, 255, 255]);
        for p in disc.pixels().filter(|p| p.0[3] > 0) {
            assert!(p.0[0] >= 250, "edge pixel {p:?} darkened by the invisible black");
        }
        assert!(disc.pixels().any(|p| p.0[3] > 0 && p.0[3] < 255), "anti-aliased edges");
        assert_eq!(report.skipped.len(), 1);
        assert!(report.skipped[0].1.contains("narrow"), "{:?}", report.skipped);
    }

    #[test]
    fn cuts_transparent_margins_so_a_small_drawing_on_a_big_page_survives() {
        let root = tempfile::tempdir().unwrap();
        // A 60x40 drawing at (500, 700) on an A4-sized transparent page, and the same drawing elsewhere.
        let drawing = picture(60, 40, 5);
        let mut page = RgbaImage::new(794, 1123);
        image::imageops::replace(&mut page, &drawing, 500, 700);
        save(root.path(), "page.png", &page);
        let mut other_page = RgbaImage::new(300, 300);
        image::imageops::replace(&mut other_page, &drawing, 10, 200);
        save(root.path(), "same_drawing_moved.png", &other_page);
        let mut speck = RgbaImage::new(400, 400);
        image::imageops::replace(&mut speck, &picture(10, 30, 6), 100, 100);
        save(root.path(), "speck.png", &speck);

        let (sources, report) = load_sources(root.path(), 160, 2).unwrap();
        assert_eq!(names(&sources), ["page.png"]);
        assert_eq!(
            sources[0].image, drawing,
            "cut to the drawing, which needs no shrinking"
        );
        assert_eq!(report.duplicates, 1);
        assert_eq!(report.skipped.len(), 1);
        assert!(report.skipped[0].1.contains("tiny"), "{:?}", report.skipped);
    }

    #[test]
    fn refuses_a_missing_root_and_a_tiny_max_side() {
        let root = tempfile::tempdir().unwrap();
        assert!(load_sources(&root.path().join("absent"), 64, 1).is_err());
        assert!(load_sources(root.path(), 8, 1).is_err());
        let (sources, report) = load_sources(root.path(), 64, 4).unwrap();
        assert!(sources.is_empty());
        assert_eq!(report, LoadReport::default());
    }

    #[test]
    fn split_key_strips_variant_numbers_and_the_directory() {
        assert_eq!(split_key("animals/owl_01.png"), "owl");
        assert_eq!(split_key("birds/Owl-3.png"), "owl");
        assert_eq!(split_key("a/tree_-_rpg_map_elements_03.png"), "tree_-_rpg_map_elements");
        assert_eq!(split_key("x/bat_orlando_karam_.png"), "bat_orlando_karam");
        assert_eq!(split_key("x/rest_025_01.png"), "rest");
        assert_eq!(split_key("rana01.png"), "rana01");
        assert_eq!(split_key("euro_1_euro.png"), "euro_1_euro");
        assert_eq!(split_key("01.png"), "01");
        assert_eq!(split_key("_01.png"), "_01");
        assert_eq!(split_key(".hidden"), ".hidden");
    }

    fn synthetic(n: usize) -> Vec<Source> {
        (0..n).map(|i| source(&format!("dir{}/photo{i}x.png", i % 7))).collect()
    }

    #[test]
    fn split_is_disjoint_complete_and_deterministic() {
        let split = split_sources(synthetic(300), 0.2, 0.2, 42);
        let mut all: Vec<String> = [&split.train, &split.validation, &split.test]
            .iter()
            .flat_map(|part| part.iter().map(|s| s.name.clone()))
            .collect();
        assert_eq!(all.len(), 300);
        all.sort();
        all.dedup();
        assert_eq!(all.len(), 300, "no source in two splits");

        let again = split_sources(synthetic(300), 0.2, 0.2, 42);
        assert_eq!(names(&again.train), names(&split.train));
        assert_eq!(names(&again.validation), names(&split.validation));
        assert_eq!(names(&again.test), names(&split.test));
        let reseeded = split_sources(synthetic(300), 0.2, 0.2, 43);
        assert_ne!(names(&reseeded.test), names(&split.test));
    }

    #[test]
    fn adding_a_source_moves_no_other() {
        let before = split_sources(synthetic(200), 0.1, 0.1, 42);
        let mut more = synthetic(200);
        more.insert(17, source("new/arrival.png"));
        let after = split_sources(more, 0.1, 0.1, 42);
        let without = |part: &[Source]| {
            part.iter()
                .filter(|s| s.name != "new/arrival.png")
                .map(|s| s.name.clone())
                .collect::<Vec<_>>()
        };
        assert_eq!(without(&after.train), without(&before.train));
        assert_eq!(without(&after.validation), without(&before.validation));
        assert_eq!(without(&after.test), without(&before.test));
    }

    #[test]
    fn variants_share_a_split() {
        for seed in 0..50 {
            let split = split_sources(
                vec![source("a/x_01.png"), source("a/x_02.png"), source("b/x.png")],
                0.3,
                0.3,
                seed,
            );
            let parts = [&split.train, &split.validation, &split.test];
            assert_eq!(parts.iter().filter(|p| !p.is_empty()).count(), 1, "seed {seed}");
        }
    }

    #[test]
    fn fractions_are_roughly_respected() {
        let split = split_sources(synthetic(1000), 0.1, 0.1, 42);
        let (v, t) = (split.validation.len(), split.test.len());
        assert!((70..=130).contains(&v), "{v} validation of 1000");
        assert!((70..=130).contains(&t), "{t} test of 1000");
        assert_eq!(split.train.len() + v + t, 1000);
        let everything = split_sources(synthetic(100), 0.0, 1.0, 1);
        assert_eq!(everything.test.len(), 100);
    }
}
