//! Tests of the edit families on a synthetic transparent cut-out: size bounds, determinism, visible change.

use image::{imageops, Rgba};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::recipe::{MAX_SIDE, MIN_SIDE};
use super::*;

/// A textured, asymmetric object on a transparent background: an off-centre striped ellipse and a small
/// square in one corner, so that flips, crops and mattes all show.
fn source() -> RgbaImage {
    RgbaImage::from_fn(160, 120, |x, y| {
        let (dx, dy) = ((x as f32 - 62.0) / 44.0, (y as f32 - 64.0) / 38.0);
        if dx * dx + dy * dy <= 1.0 {
            let stripe = if (x + 2 * y) / 9 % 2 == 0 { 60 } else { 0 };
            Rgba([200 - stripe, (x % 64 + 60) as u8, 40 + stripe, 255])
        } else if (118..146).contains(&x) && (12..40).contains(&y) {
            Rgba([30, 90, 200, 255])
        } else {
            Rgba([0, 0, 0, 0])
        }
    })
}

/// The same object flattened onto a white backdrop, with no alpha (a plain product photo).
fn opaque_source() -> RgbaImage {
    let flat = flatten(&source());
    RgbaImage::from_fn(flat.width(), flat.height(), |x, y| {
        let p = flat.get_pixel(x, y);
        Rgba([p[0], p[1], p[2], 255])
    })
}

/// Mean absolute difference per channel (0 to 255). Images of different sizes are both letterboxed onto a
/// white 96 px square first, as a model that keeps the aspect ratio would see them.
fn difference(a: &RgbImage, b: &RgbImage) -> f64 {
    let (a, b) = if a.dimensions() == b.dimensions() {
        (a.clone(), b.clone())
    } else {
        (letterboxed(a, 96), letterboxed(b, 96))
    };
    let total: u64 = a.iter().zip(b.iter()).map(|(x, y)| u64::from(x.abs_diff(*y))).sum();
    total as f64 / a.as_raw().len() as f64
}

fn letterboxed(image: &RgbImage, side: u32) -> RgbImage {
    let scale = side as f32 / image.width().max(image.height()) as f32;
    let (w, h) = (
        (image.width() as f32 * scale) as u32,
        (image.height() as f32 * scale) as u32,
    );
    let mut square = RgbImage::from_pixel(side, side, image::Rgb([255, 255, 255]));
    let fitted = imageops::resize(image, w.max(1), h.max(1), imageops::FilterType::Triangle);
    imageops::replace(
        &mut square,
        &fitted,
        i64::from((side - w) / 2),
        i64::from((side - h) / 2),
    );
    square
}

fn edit(family: EditFamily, source: &RgbaImage, seed: u64) -> RgbImage {
    apply(family, source, &mut ChaCha8Rng::seed_from_u64(seed))
}

fn assert_sane_size(image: &RgbImage, what: &str) {
    let (w, h) = image.dimensions();
    assert!(
        (MIN_SIDE..=MAX_SIDE).contains(&w) && (MIN_SIDE..=MAX_SIDE).contains(&h),
        "{what}: {w}x{h} is outside {MIN_SIDE}..={MAX_SIDE}"
    );
}

const SEEDS: std::ops::Range<u64> = 0..12;

/// The smallest mean absolute difference an edit of each family must make on the test source, per seed.
/// Mirror and overlay touch few pixels of a mostly white image, so their floor is lower.
fn minimum_change(family: EditFamily) -> f64 {
    match family {
        EditFamily::Overlay | EditFamily::Recompress => 1.0,
        _ => 2.0,
    }
}

#[test]
fn every_family_is_bounded_deterministic_and_visible() {
    let source = source();
    let original = flatten(&source);
    for family in EditFamily::ALL {
        let mut changes = Vec::new();
        for seed in SEEDS {
            let edited = edit(family, &source, seed);
            assert_sane_size(&edited, family.name());
            assert_eq!(
                edited,
                edit(family, &source, seed),
                "{family} is not deterministic under seed {seed}"
            );
            changes.push(difference(&edited, &original));
        }
        let least = changes.iter().copied().fold(f64::INFINITY, f64::min);
        let mean = changes.iter().sum::<f64>() / changes.len() as f64;
        assert!(
            least >= minimum_change(family),
            "{family} barely changes the image: {changes:?}"
        );
        assert!(
            mean >= 2.0 * minimum_change(family),
            "{family} changes too little on average: {changes:?}"
        );
    }
}

#[test]
fn different_seeds_give_different_edits() {
    let source = source();
    for family in EditFamily::ALL.into_iter().filter(|&f| f != EditFamily::Mirror) {
        assert_ne!(
            edit(family, &source, 1),
            edit(family, &source, 2),
            "{family} ignores the RNG"
        );
    }
}

#[test]
fn families_work_on_opaque_tiny_and_flat_sources() {
    let tiny = RgbaImage::from_pixel(3, 5, Rgba([10, 200, 30, 255]));
    let flat = RgbaImage::from_pixel(40, 30, Rgba([128, 128, 128, 255]));
    let empty = RgbaImage::new(0, 0);
    let large = RgbaImage::from_pixel(700, 360, Rgba([10, 20, 30, 255]));
    for (source, seeds) in [(opaque_source(), 3), (tiny, 3), (flat, 3), (empty, 3), (large, 1)] {
        for family in EditFamily::ALL {
            for seed in 0..seeds {
                assert_sane_size(&edit(family, &source, seed), family.name());
            }
        }
    }
}

#[test]
fn cutout_replaces_the_white_backdrop_with_or_without_alpha() {
    for source in [source(), opaque_source()] {
        for seed in SEEDS {
            let out = edit(EditFamily::Cutout, &source, seed);
            let white = out.pixels().filter(|p| p.0.iter().all(|&c| c > 245)).count();
            assert!(
                white * 10 < out.pixels().len(),
                "seed {seed}: {white} white pixels left"
            );
            // The object itself stays where it was: the middle of the ellipse keeps its colour.
            let original = flatten(&source);
            let (p, q) = (out.get_pixel(62, 64), original.get_pixel(62, 64));
            assert!(
                p.0.iter().zip(q.0).all(|(a, b)| a.abs_diff(b) <= 2),
                "seed {seed}: {p:?} vs {q:?}"
            );
        }
    }
}

#[test]
fn flatten_puts_transparency_over_white() {
    let mut source = RgbaImage::from_pixel(2, 1, Rgba([0, 0, 0, 0]));
    source.put_pixel(1, 0, Rgba([10, 20, 30, 255]));
    let flat = flatten(&source);
    assert_eq!(flat.get_pixel(0, 0).0, [255, 255, 255]);
    assert_eq!(flat.get_pixel(1, 0).0, [10, 20, 30]);
    let half = flatten(&RgbaImage::from_pixel(1, 1, Rgba([0, 0, 0, 128])));
    assert_eq!(half.get_pixel(0, 0).0, [127, 127, 127]);
}

#[test]
fn random_views_are_deterministic_bounded_and_varied() {
    let source = source();
    let original = flatten(&source);
    let mut unchanged = 0;
    for seed in 0..40 {
        let view = random_view(&source, &mut ChaCha8Rng::seed_from_u64(seed));
        assert_sane_size(&view, "random_view");
        assert_eq!(
            view,
            random_view(&source, &mut ChaCha8Rng::seed_from_u64(seed)),
            "seed {seed}"
        );
        unchanged += usize::from(view == original);
    }
    assert!(unchanged <= 12, "{unchanged} of 40 views are the source itself");
    // Two views drawn in a row from one RNG (as training draws them) differ.
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let pairs = (0..10)
        .filter(|_| random_view(&source, &mut rng) != random_view(&source, &mut rng))
        .count();
    assert!(pairs >= 8, "only {pairs} of 10 view pairs differ");
}

#[test]
fn names_are_snake_case_and_serialised_as_such() {
    let names: Vec<&str> = EditFamily::ALL.iter().map(|f| f.name()).collect();
    let mut unique = names.clone();
    unique.sort_unstable();
    unique.dedup();
    assert_eq!(unique.len(), names.len());
    for family in EditFamily::ALL {
        assert_eq!(
            serde_json::to_string(&family).expect("serialises"),
            format!("\"{}\"", family.name())
        );
        assert!(family.name().chars().all(|c| c.is_ascii_lowercase() || c == '_'));
    }
    assert_eq!(EditFamily::BlurNoise.name(), "blur_noise");
}

#[test]
fn write_grid_writes_a_png_of_the_expected_size() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let path = dir.path().join("augment.png");
    let sources = [source(), opaque_source()];
    write_grid(&path, &sources, 5, 64).expect("the grid is written");
    let written = image::open(&path).expect("the grid reads back as an image");
    assert_eq!((written.width(), written.height()), grid::grid_size(2, 64));
    assert_eq!(written.width(), 12 * 64);
    assert!(write_grid(&path, &[], 5, 64).is_err());
    assert!(write_grid(&path, &sources, 5, 4).is_err());
}
