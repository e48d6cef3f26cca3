//! Training and evaluation: two pipelines over shared measuring code.
//!
//! - [`supervised`]: labelled classes (MNIST, an ImageFolder) and the contrastive loss over sampled pairs;
//! - [`photos`]: unlabelled photos, near-duplicates made by edits, NT-Xent, measured against perceptual hashes;
//! - at this level, what both use: data sets and pairs, the losses, metrics, calibration, evaluation and plots.
//!
//! The modules behind the `train` feature are the ones only a training run needs (the edits, the loops,
//! the plots), with their drawing and progress-bar dependencies; the rest also serves the server's tests,
//! the perceptual-hash example and the evaluation code.

pub mod calibrate;
pub mod dataset;
pub mod evaluate;
pub mod hashes;
pub mod loss;
pub mod metrics;
#[cfg(feature = "train")]
pub mod model_eval;
#[cfg(feature = "train")]
pub mod network_options;
pub mod pairs;
pub mod photos;
#[cfg(feature = "train")]
pub mod plots;
pub mod supervised;

pub use dataset::{Dataset, Split};

/// A model's name: the last component of the directory it is written to.
#[cfg(feature = "train")]
fn model_name(out: &std::path::Path) -> anyhow::Result<String> {
    use anyhow::Context;
    Ok(out
        .file_name()
        .context("--out needs a directory name")?
        .to_string_lossy()
        .into_owned())
}
