//! Training and evaluation: two pipelines over shared measuring code.
//!
//! - [`supervised`]: labelled classes (MNIST, an ImageFolder) and the contrastive loss over sampled pairs;
//! - [`photos`]: unlabelled photos, near-duplicates made by edits, NT-Xent, measured against perceptual hashes;
//! - at this level, what both use: data sets and pairs, the losses, metrics, calibration, evaluation and plots.
//!
//! The whole module is behind the `train` feature, with its drawing dependencies: the server is built
//! without it.

pub(crate) mod calibrate;
pub(crate) mod dataset;
pub(crate) mod evaluate;
pub mod hashes;
pub(crate) mod loss;
pub(crate) mod metrics;
pub mod model_eval;
pub(crate) mod network_options;
pub(crate) mod pairs;
pub mod photos;
pub(crate) mod plots;
pub mod supervised;

pub(crate) use dataset::{Dataset, Split};

/// A model's name: the last component of the directory it is written to.
fn model_name(out: &std::path::Path) -> anyhow::Result<String> {
    use anyhow::Context;
    Ok(out
        .file_name()
        .context("--out needs a directory name")?
        .to_string_lossy()
        .into_owned())
}
