//! Training and evaluation: data sets, pair sampling, the contrastive loss, the loop, metrics, calibration and plots.
//!
//! The modules behind the `train` feature are the ones only a training run needs (the edits, the loops,
//! the plots), with their drawing and progress-bar dependencies; the rest also serves the server's tests,
//! the perceptual-hash example and the evaluation code.

pub mod augment;
pub mod calibrate;
pub mod classes;
pub mod dataset;
#[cfg(feature = "train")]
pub mod edits;
pub mod evaluate;
pub mod hashes;
pub mod image_folder;
pub mod loss;
pub mod metrics;
pub mod mnist;
#[cfg(feature = "train")]
pub mod near_duplicates;
pub mod pairs;
#[cfg(feature = "train")]
pub mod photo_pipeline;
#[cfg(feature = "train")]
pub mod photo_plots;
pub mod photos;
#[cfg(feature = "train")]
pub mod plots;
#[cfg(feature = "train")]
pub mod self_supervised;
#[cfg(feature = "train")]
pub mod trainer;

pub use dataset::{Dataset, Split};
