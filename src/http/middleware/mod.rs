//! The layers every request passes through: request ids, metrics and the log line, API keys, the in-flight
//! limit, the deadline, the body read timeout, and one error shape.

pub(crate) mod admission;
pub(crate) mod auth;
pub(crate) mod body_timeout;
pub(crate) mod deadline;
pub(crate) mod observe;
pub(crate) mod request_id;
pub(crate) mod shape;
