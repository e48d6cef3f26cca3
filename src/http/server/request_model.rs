//! The model a request chose, for its log line: the handler notes it (through `AppState::model`), and the
//! `observe` middleware, which runs the handler inside [`scope`], reads it once the answer is ready.

use std::future::Future;
use std::sync::{Arc, OnceLock};

tokio::task_local! {
    /// The model the request being handled chose, set once by `note_model` from inside the handler.
    static MODEL: Arc<OnceLock<String>>;
}

/// Runs `request` with a place for its model; answers its output and the model it noted, if any.
pub(crate) async fn scope<F: Future>(request: F) -> (F::Output, Option<String>) {
    let model = Arc::new(OnceLock::new());
    let output = MODEL.scope(Arc::clone(&model), request).await;
    (output, model.get().cloned())
}

/// Names the model the current request uses. The first call wins; outside `scope` (unit tests calling
/// handlers directly) it does nothing.
pub(crate) fn note_model(model: &str) {
    let _ = MODEL.try_with(|slot| slot.set(model.to_string()));
}
