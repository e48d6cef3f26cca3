//! The OpenAPI document: generated from the handlers, tightened where attributes cannot say it, and
//! specialised to the running server.

pub(crate) mod contract;
pub(crate) mod document;
pub(crate) mod form_schema;
