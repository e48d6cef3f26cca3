//! simverify: decides whether two images show the same thing, with a Siamese embedding network.
//!
//! # Layout
//!
//! Dependencies point one way, `http -> infer -> model`, and `model` knows nothing of HTTP.
//!
//! - [`model`]: the embedding network, its model card, loading and saving, device selection.
//! - [`preprocess`]: untrusted bytes → limited decode → model-ready input; shared by training and serving.
//! - [`train`]: data sets, pair sampling, the contrastive loss, the training loop, evaluation and plots.

pub mod model;
pub mod preprocess;
pub mod train;
