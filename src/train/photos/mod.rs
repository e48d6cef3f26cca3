//! The photo pipeline: unlabelled sources, two random marketplace edits of each as a pair (NT-Xent), and a
//! card measured against pHash and dHash per edit family.

#[cfg(feature = "train")]
pub mod edits;
#[cfg(feature = "train")]
pub mod near_duplicates;
#[cfg(feature = "train")]
pub mod options;
#[cfg(feature = "train")]
pub mod pipeline;
#[cfg(feature = "train")]
pub mod plots;
pub mod sources;
#[cfg(feature = "train")]
pub mod trainer;
