//! The photo pipeline: unlabelled sources, two random marketplace edits of each as a pair (NT-Xent), and a
//! card measured against pHash and dHash per edit family.

pub(crate) mod crops;
pub mod edits;
pub(crate) mod near_duplicates;
pub mod options;
pub mod pipeline;
pub(crate) mod plots;
pub(crate) mod sources;
pub(crate) mod trainer;
