//! The embedding network, its model card, loading and saving, and device selection; knows nothing of HTTP.

pub mod card;
pub mod device;
pub mod distance;
pub mod net;
pub mod pretrained;
pub mod store;
#[cfg(test)]
pub(crate) mod testing;

pub use card::{Architecture, ModelCard, Preprocessing};
pub use device::{device_label, select_device, DeviceSetting};
pub use net::EmbeddingNet;
pub use store::{load_model, load_model_unfolded, save_model, LoadedModel, ModelError};
