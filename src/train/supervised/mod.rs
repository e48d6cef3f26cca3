//! The supervised pipeline: labelled classes (MNIST digits or an ImageFolder), sampled similar and dissimilar
//! pairs, the contrastive loss, and a card calibrated on validation pairs and measured on test pairs.

pub mod augment;
pub mod classes;
pub mod image_folder;
pub mod mnist;
#[cfg(feature = "train")]
pub mod options;
#[cfg(feature = "train")]
pub mod pipeline;
#[cfg(feature = "train")]
pub mod trainer;
