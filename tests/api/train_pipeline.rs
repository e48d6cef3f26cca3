//! Runs the real `train` binary on a tiny MNIST subset: the loss falls and a loadable model comes out.

use std::path::Path;
use std::process::Command;

use simverify::model::{load_model, store};

fn mnist_dir() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/data/mnist"))
}

#[test]
fn a_few_epochs_on_a_tiny_subset_lower_the_loss_and_write_a_loadable_model() {
    // Arrange
    let out = tempfile::tempdir().unwrap();
    let model_dir = out.path().join("tiny");

    // Act
    let status = Command::new(env!("CARGO_BIN_EXE_train"))
        .args([
            "--data",
            "mnist",
            "--classes",
            "0-4",
            "--samples-per-class",
            "60",
            "--epochs",
            "4",
        ])
        .args([
            "--batch-size",
            "32",
            "--device",
            "cpu",
            "--l2-normalize",
            "true",
            "--final-relu",
            "false",
        ])
        .arg("--mnist-dir")
        .arg(mnist_dir())
        .arg("--out")
        .arg(&model_dir)
        .status()
        .expect("the train binary runs");

    // Assert
    assert!(status.success());
    let history: Vec<serde_json::Value> =
        serde_json::from_slice(&std::fs::read(model_dir.join("report/history.json")).unwrap()).unwrap();
    let loss = |epoch: &serde_json::Value| epoch["train_loss"].as_f64().unwrap();
    assert_eq!(history.len(), 4);
    assert!(
        loss(&history[3]) < loss(&history[0]),
        "loss went {} -> {}",
        loss(&history[0]),
        loss(&history[3])
    );

    let model = load_model(&model_dir, tch::Device::Cpu).expect("the written model loads");
    assert_eq!(model.card.name, "tiny");
    assert_eq!(model.card.training.classes, "0-4");
    assert_eq!(
        model.card.weights.sha256,
        store::sha256_file(&model_dir.join(store::WEIGHTS_FILE)).unwrap()
    );
    let threshold = model.card.decision.threshold;
    assert!(threshold.is_finite() && threshold > 0.0, "threshold {threshold}");
    for plot in ["loss.png", "distances.png", "roc.png", "pairs.png"] {
        let bytes = std::fs::read(model_dir.join("report").join(plot)).unwrap();
        assert!(image::load_from_memory(&bytes).is_ok(), "{plot} is a readable image");
    }

    let eval = Command::new(env!("CARGO_BIN_EXE_train"))
        .args(["eval", "--classes", "5-9", "--device", "cpu", "--model"])
        .arg(&model_dir)
        .arg("--mnist-dir")
        .arg(mnist_dir())
        .output()
        .unwrap();
    assert!(eval.status.success(), "{}", String::from_utf8_lossy(&eval.stderr));
    let figures: serde_json::Value = serde_json::from_slice(&eval.stdout).unwrap();
    assert_eq!(figures["classes"], "5-9");
    assert!(figures["pairs"].as_u64().unwrap() > 100);
}
