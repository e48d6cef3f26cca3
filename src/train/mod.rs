//! Training and evaluation: data sets, pair sampling, the contrastive loss, the loop, metrics, calibration and plots.

pub mod augment;
pub mod calibrate;
pub mod classes;
pub mod dataset;
pub mod edits;
pub mod evaluate;
pub mod hashes;
pub mod image_folder;
pub mod loss;
pub mod metrics;
pub mod mnist;
pub mod near_duplicates;
pub mod pairs;
pub mod photo_pipeline;
pub mod photo_plots;
pub mod photos;
pub mod plots;
pub mod self_supervised;
pub mod trainer;

pub use dataset::{Dataset, Split};
