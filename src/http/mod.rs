//! The HTTP service: the router, its layers, one module per endpoint (the subjects API in one), input
//! extraction, errors, OpenAPI, and `App` (bind, load the models in the background, serve, shut down gracefully).

mod admission;
mod app;
mod auth;
mod body_timeout;
mod catalogue_loader;
pub mod compare;
mod connections;
mod contract;
mod deadline;
mod demo;
pub mod embed;
mod embedding;
pub mod error;
pub mod health;
pub mod images;
pub mod info;
pub mod input;
mod kept;
mod linger;
mod metrics;
mod observe;
pub mod openapi;
mod problem_kind;
pub mod request_id;
mod router;
pub mod search;
mod shape;
pub mod state;
pub mod subjects;
pub mod verify;

pub use app::App;
pub use router::{openapi_spec, router, served_openapi_spec};
pub use state::AppState;
