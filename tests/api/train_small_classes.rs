//! `train --data FOLDER` on the shape of a signature set (many writers, few images each), built from real
//! MNIST digits: pairs come from every class that can give them, classes too small to split are reported
//! and kept whole in training, and a folder that cannot give validation pairs stops `train` with a clear
//! error before anything is written.

use std::path::Path;
use std::process::{Command, Output};

use simverify::model::load_model;
use simverify::train::supervised::mnist;

/// A folder `root/<class>/<i>.png` with `sizes[c]` real digits in class `c`, all of the digit `c % 10`.
fn folder(root: &Path, sizes: &[usize]) {
    let digits = mnist::test_digits(&crate::common::repo_path("data/mnist")).expect("scripts/setup fetched MNIST");
    let mut unused: Vec<_> = (0..10)
        .map(|d| {
            digits
                .iter()
                .filter(move |(_, label)| *label == d)
                .map(|(image, _)| image)
        })
        .collect();
    for (class, &size) in sizes.iter().enumerate() {
        let dir = root.join(format!("writer-{class:04}"));
        std::fs::create_dir_all(&dir).unwrap();
        for i in 0..size {
            let image = unused[class % 10].next().expect("enough digits");
            image.save(dir.join(format!("{i}.png"))).unwrap();
        }
    }
}

fn train(data: &Path, out: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_train"))
        .arg("--data")
        .arg(data)
        .args([
            "--color",
            "grayscale",
            "--size",
            "28",
            "--epochs",
            "1",
            "--batch-size",
            "64",
        ])
        .args(["--device", "cpu", "--out"])
        .arg(out)
        .output()
        .expect("the train binary runs")
}

#[test]
fn many_small_classes_train_on_every_class_that_can_pair_and_report_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    // 72 writers of 1 to 12 images each.
    let sizes: Vec<usize> = (0..72).map(|c| 1 + c % 12).collect();
    folder(&dir.path().join("data"), &sizes);
    let out = dir.path().join("writers");

    let run = train(&dir.path().join("data"), &out);

    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "{stderr}");
    // Classes of 1 to 5 images: 30 of the 72.
    assert!(stderr.contains("30 classes have fewer than 6 images"), "{stderr}");
    let card = load_model(&out, tch::Device::Cpu).expect("the model loads").card;
    let test = &card.evaluation.test;
    assert!(
        test.pairs >= 2 * 42,
        "two test images of each of 42 classes: {} pairs",
        test.pairs
    );
    assert!(test.roc_auc > 0.0 && test.roc_auc <= 1.0, "ROC AUC {}", test.roc_auc);
    assert!(card.decision.threshold > 0.0, "threshold {}", card.decision.threshold);
    let history: Vec<serde_json::Value> =
        serde_json::from_slice(&std::fs::read(out.join("report/history.json")).unwrap()).unwrap();
    assert!(history[0]["train_loss"].as_f64().unwrap().is_finite());
}

#[test]
fn classes_too_small_to_validate_on_stop_train_with_a_clear_error_and_no_model() {
    let dir = tempfile::tempdir().unwrap();
    // 66 classes of three images and one of a single image: no class can give validation pairs.
    let mut sizes = vec![3; 66];
    sizes.push(1);
    folder(&dir.path().join("data"), &sizes);
    let out = dir.path().join("writers");

    let run = train(&dir.path().join("data"), &out);

    let stderr = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(1), "an error, not a panic: {stderr}");
    assert!(stderr.contains("the test split (0 images in 0 classes)"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(!out.exists(), "no model is written");
}
