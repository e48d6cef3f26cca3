//! The supervised pipeline: labelled classes (MNIST digits or an ImageFolder), sampled similar and dissimilar
//! pairs, the contrastive loss, and a card calibrated on validation pairs and measured on test pairs.

pub(crate) mod augment;
pub(crate) mod classes;
pub(crate) mod image_folder;
pub mod mnist;
pub mod options;
pub mod pipeline;
pub(crate) mod trainer;
