//! The endpoints: one module per endpoint (the subjects API in one), and the demo page.

pub(crate) mod compare;
pub(crate) mod demo;
pub(crate) mod duplicates;
pub(crate) mod embed;
pub(crate) mod health;
pub(crate) mod info;
pub(crate) mod metrics;
pub(crate) mod search;
pub(crate) mod subjects;
pub(crate) mod verify;
