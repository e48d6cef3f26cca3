//! The HTTP service: the router, its layers, one module per endpoint, input extraction, errors, OpenAPI,
//! and `App` (bind, load the models in the background, serve, shut down gracefully).

mod app;
pub mod compare;
mod deadline;
pub mod embed;
mod embedding;
pub mod error;
pub mod health;
pub mod images;
pub mod info;
pub mod input;
mod metrics;
mod observe;
pub mod openapi;
pub mod request_id;
mod router;
mod shape;
pub mod state;
pub mod verify;

pub use app::App;
pub use router::{openapi_spec, router};
pub use state::AppState;
