//! Start-up and serving: `App` (bind, load in the background, serve, drain), the router and its layers, the
//! connection loop and its lingering close, the catalogue's start-up, the shared state, and what the state
//! and the middleware share (the in-flight counter, the request's model slot).

pub(crate) mod app;
pub(crate) mod catalogue_loader;
pub(crate) mod connections;
pub(crate) mod in_flight;
pub(crate) mod linger;
pub(crate) mod request_model;
pub(crate) mod router;
pub(crate) mod state;
