//! Runs the real `train photos` on a tiny generated folder of pictures: the loss falls, and the model
//! directory it writes loads, serves `/compare`, and is measured again by `train eval`.

use std::path::Path;
use std::process::Command;

use image::{Rgba, RgbaImage};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use simverify::model::load_model;

/// `count` different pictures: coloured shapes and stripes on a transparent background, as product cut-outs.
fn write_pictures(dir: &Path, count: usize) {
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    for i in 0..count {
        let mut image = RgbaImage::new(72, 56);
        let colour = Rgba([rng.gen(), rng.gen(), rng.gen(), 255]);
        let other = Rgba([rng.gen(), rng.gen(), rng.gen(), 255]);
        let (cx, cy, r): (i32, i32, i32) = (rng.gen_range(20..52), rng.gen_range(18..38), rng.gen_range(10..18));
        let stripes = rng.gen_range(3..9);
        for (x, y, p) in image.enumerate_pixels_mut() {
            let (dx, dy) = (x as i32 - cx, y as i32 - cy);
            let inside = if i % 2 == 0 {
                dx * dx + dy * dy < r * r
            } else {
                dx.abs() < r && dy.abs() < r / 2 + 4
            };
            if inside {
                *p = if (x as i32 + y as i32) / stripes % 2 == 0 {
                    colour
                } else {
                    other
                };
            }
        }
        let sub = dir.join(format!("set{}", i % 3));
        std::fs::create_dir_all(&sub).unwrap();
        image.save(sub.join(format!("picture{i:03}.png"))).unwrap();
    }
}

/// The compact residual network from scratch, shrunk to train in seconds.
const RESNET_FLAGS: &[&str] = &[
    "--backbone",
    "resnet",
    "--size",
    "32",
    "--embedding-dim",
    "32",
    "--stem-width",
    "8",
    "--stem-stride",
    "2",
    "--stage-widths",
    "8,16",
    "--blocks-per-stage",
    "1,1",
    "--steps",
    "40",
    "--sources-per-step",
    "16",
];

/// The pretrained EfficientNet-Lite0 (the weights `scripts/setup` converted), at a small input.
const PRETRAINED_FLAGS: &[&str] = &[
    "--backbone",
    "efficientnet-lite0",
    "--size",
    "64",
    "--embedding-dim",
    "32",
    "--steps",
    "40",
    "--sources-per-step",
    "8",
];

#[tokio::test(flavor = "multi_thread")]
async fn a_short_resnet_run_lowers_the_loss_and_writes_a_model_that_serves() {
    train_check_and_serve(RESNET_FLAGS, &["model", "phash", "dhash"]).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_short_fine_tuning_of_the_pretrained_trunk_lowers_the_loss_and_writes_a_model_that_serves() {
    train_check_and_serve(PRETRAINED_FLAGS, &["model", "frozen trunk", "phash", "dhash"]).await;
}

/// Trains with `flags` on a generated folder, then checks the history, the card (its detectors named
/// `detectors`), the report, `train eval` and a served `/compare`.
async fn train_check_and_serve(flags: &[&str], detectors: &[&str]) {
    // Arrange
    let data = tempfile::tempdir().unwrap();
    write_pictures(data.path(), 60);
    let models = tempfile::tempdir().unwrap();
    let model_dir = models.path().join("tinyphotos");

    // Act
    let output = Command::new(env!("CARGO_BIN_EXE_train"))
        .args(["photos", "--device", "cpu"])
        .args(flags)
        .args(["--validate-every", "10", "--eval-sources", "8"])
        // A memory of two steps' views, full from the third step on: a memory still filling adds
        // negatives from round to round, which raises the loss it is compared by.
        .args(["--negative-memory", &(4 * sources_per_step(flags)).to_string()])
        .args(["--max-side", "64"])
        .arg("--data")
        .arg(data.path())
        .arg("--out")
        .arg(&model_dir)
        .output()
        .expect("the train binary runs");

    // Assert
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let history: Vec<serde_json::Value> =
        serde_json::from_slice(&std::fs::read(model_dir.join("report/history.json")).unwrap()).unwrap();
    let loss = |round: &serde_json::Value| round["train_loss"].as_f64().unwrap();
    assert_eq!(history.len(), 4);
    assert!(
        loss(&history[3]) < loss(&history[0]),
        "loss went {} -> {}",
        loss(&history[0]),
        loss(&history[3])
    );

    let model = load_model(&model_dir, tch::Device::Cpu).expect("the written model loads");
    let near = model
        .card
        .evaluation
        .near_duplicates
        .as_ref()
        .expect("a photo card has near-duplicate figures");
    let names: Vec<&str> = near.detectors.iter().map(|d| d.detector.as_str()).collect();
    assert_eq!(names, detectors);
    assert_eq!(
        near.detectors[0].tar_by_family.len(),
        simverify::train::photos::edits::EditFamily::ALL.len()
    );
    for plot in [
        "augment.png",
        "training.png",
        "roc.png",
        "tar_by_family.png",
        "distances.png",
    ] {
        let bytes = std::fs::read(model_dir.join("report").join(plot)).unwrap();
        assert!(image::load_from_memory(&bytes).is_ok(), "{plot} is a readable image");
    }

    let eval = Command::new(env!("CARGO_BIN_EXE_train"))
        .args(["eval", "--device", "cpu", "--eval-sources", "8", "--model"])
        .arg(&model_dir)
        .arg("--data")
        .arg(data.path())
        .output()
        .unwrap();
    assert!(eval.status.success(), "{}", String::from_utf8_lossy(&eval.stderr));
    let again: serde_json::Value = serde_json::from_slice(&eval.stdout).unwrap();
    assert_eq!(again["sources"].as_u64().unwrap() as usize, near.sources);
    let phash = names.iter().position(|&n| n == "phash").unwrap();
    assert_eq!(
        again["detectors"][phash]["roc_auc"].as_f64().unwrap(),
        near.detectors[phash].roc_auc,
        "the same seeded test pairs give pHash the same figures"
    );

    let model_dir_arg = models.path().to_str().unwrap();
    let server = crate::common::Server::start(&["--model-dir", model_dir_arg, "--default-model", "tinyphotos"]).await;
    let png = std::fs::read(data.path().join("set0/picture000.png")).unwrap();
    let answer = server.compare(&png, &png).await.ok();
    assert_eq!(answer["model"], "tinyphotos");
    assert_eq!(answer["match"], true, "{answer}");
}

/// The `--sources-per-step` value of `flags`.
fn sources_per_step(flags: &[&str]) -> usize {
    let at = flags.iter().position(|f| *f == "--sources-per-step").unwrap();
    flags[at + 1].parse().unwrap()
}
