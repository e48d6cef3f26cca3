//! `GET /models/{name}/report[/{file}]`: the report plots `train` wrote beside a loaded model's card,
//! served by name from a fixed list, so that no request can name any other file.

use std::path::{Path, PathBuf};

use axum::extract::{Path as UrlPath, State};
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;

use crate::model::store::{read_card, CARD_FILE};

use crate::http::problem::error::ApiError;
use crate::http::server::state::AppState;

/// The folder beside `model.json` that `train` writes its plots into.
const REPORT_DIR: &str = "report";

/// Every plot `train` writes (seed-style digits and self-supervised photos), with what it shows. A file
/// is served only when its name is one of these: the URL's `{file}` is never joined to a path unchecked.
const PLOTS: &[Plot] = &[
    Plot {
        file: "distances.png",
        title: "Distances of similar and dissimilar test pairs, with the threshold",
    },
    Plot {
        file: "roc.png",
        title: "ROC curve on the test pairs",
    },
    Plot {
        file: "tar_by_family.png",
        title: "True accept rate per kind of edit, beside the pHash and dHash baselines",
    },
    Plot {
        file: "pairs.png",
        title: "Test pairs with their distances (wrong decisions in red)",
    },
    Plot {
        file: "loss.png",
        title: "Training and validation loss per epoch",
    },
    Plot {
        file: "training.png",
        title: "Training loss and validation accept rate",
    },
    Plot {
        file: "augment.png",
        title: "The edits training learnt to see through",
    },
];

#[derive(Debug, Clone, Copy, Serialize)]
pub(crate) struct Plot {
    file: &'static str,
    title: &'static str,
}

#[derive(Debug, Serialize)]
pub(crate) struct Report {
    model: String,
    plots: Vec<Plot>,
}

/// The plots this model's report holds, in the order the page shows them.
pub(crate) async fn list(
    State(state): State<AppState>,
    UrlPath(name): UrlPath<String>,
) -> Result<Json<Report>, ApiError> {
    let dir = report_dir(&state, &name).await?;
    let plots = tokio::task::spawn_blocking(move || {
        PLOTS
            .iter()
            .filter(|plot| dir.as_ref().is_some_and(|dir| dir.join(plot.file).is_file()))
            .copied()
            .collect()
    })
    .await
    .map_err(|e| ApiError::Internal(format!("listing a report panicked: {e}")))?;
    Ok(Json(Report { model: name, plots }))
}

/// One plot, as PNG bytes.
pub(crate) async fn file(
    State(state): State<AppState>,
    UrlPath((name, file)): UrlPath<(String, String)>,
) -> Result<Response, ApiError> {
    let plot = PLOTS.iter().find(|plot| plot.file == file).ok_or(ApiError::NotFound)?;
    let dir = report_dir(&state, &name).await?.ok_or(ApiError::NotFound)?;
    let bytes = tokio::fs::read(dir.join(plot.file))
        .await
        .map_err(|_| ApiError::NotFound)?;
    let headers = [
        (header::CONTENT_TYPE, HeaderValue::from_static("image/png")),
        // A retrained model rewrites its plots under the same names.
        (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
        (header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")),
    ];
    Ok((headers, bytes).into_response())
}

/// The report folder of the loaded model `name` (`None` when it has none); 404 `unknown_model` for a
/// model the server did not load, so that only loaded models' folders are ever read.
async fn report_dir(state: &AppState, name: &str) -> Result<Option<PathBuf>, ApiError> {
    state.engine()?.card(name)?;
    let root = state.config().model_dir.clone();
    let name = name.to_string();
    tokio::task::spawn_blocking(move || model_dir(&root, &name).map(|dir| dir.join(REPORT_DIR)))
        .await
        .map_err(|e| ApiError::Internal(format!("finding a model directory panicked: {e}")))
}

/// The directory whose card names `name`, by the engine's rule: `root` itself when it holds a card, else
/// one of its subdirectories. Cards are read rather than directory names trusted, as the engine does.
fn model_dir(root: &Path, name: &str) -> Option<PathBuf> {
    let candidates: Vec<PathBuf> = if root.join(CARD_FILE).is_file() {
        vec![root.to_path_buf()]
    } else {
        std::fs::read_dir(root)
            .ok()?
            .filter_map(|entry| Some(entry.ok()?.path()))
            .collect()
    };
    candidates
        .into_iter()
        .find(|dir| read_card(dir).is_ok_and(|card| card.name == name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plot_names_are_plain_file_names() {
        for plot in PLOTS {
            assert!(
                plot.file.ends_with(".png")
                    && plot
                        .file
                        .chars()
                        .all(|c| c.is_ascii_lowercase() || c == '_' || c == '.'),
                "{}",
                plot.file
            );
        }
    }

    #[test]
    fn finds_a_model_directory_by_its_card_name() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("models");

        assert_eq!(model_dir(&root, "mnist"), Some(root.join("mnist")));
        assert_eq!(model_dir(&root.join("mnist"), "mnist"), Some(root.join("mnist")));
        assert_eq!(model_dir(&root, "../mnist"), None);
    }
}
