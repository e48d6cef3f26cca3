//! The HTTP service, by role:
//!
//! - `routes/`: one module per endpoint (the subjects API in one) and the demo page;
//! - `middleware/`: the layers every request passes through (ids, metrics and logs, keys, admission,
//!   deadline, body timeout, one error shape);
//! - `server/`: `App` (bind, load the models in the background, serve, shut down gracefully), the router,
//!   the connection loop, start-up of the catalogue, the shared state;
//! - `extract/`: reading image requests (multipart or JSON), decoding uploads, the embedding path;
//! - `problem/`: `ApiError` and the list of problem kinds;
//! - `openapi/`: the OpenAPI document and its served, specialised copy.

pub(crate) mod extract;
pub(crate) mod middleware;
pub(crate) mod openapi;
pub(crate) mod problem;
pub(crate) mod routes;
pub(crate) mod server;

pub use problem::error::CODES;
pub use server::app::App;
pub use server::router::{openapi_spec, router, served_openapi_spec};
pub use server::state::AppState;
