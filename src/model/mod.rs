//! The embedding network, its model card, loading and saving, and device selection; knows nothing of HTTP.

pub mod card;
pub(crate) mod device;
pub(crate) mod distance;
pub mod net;
pub mod pretrained;
pub mod store;
#[cfg(test)]
pub(crate) mod testing;

pub(crate) use card::{ModelCard, Preprocessing};
pub use device::{device_label, select_device, DeviceSetting};
pub use net::EmbeddingNet;
#[cfg(any(test, feature = "train"))]
pub(crate) use store::save_model;
pub use store::{load_model, load_model_unfolded};
pub(crate) use store::{LoadedModel, ModelError};
