//! The endpoints: one module per endpoint (the subjects API in one), and the demo page.

pub mod compare;
pub(crate) mod demo;
pub mod duplicates;
pub mod embed;
pub mod health;
pub mod info;
pub(crate) mod metrics;
pub mod search;
pub mod subjects;
pub mod verify;
