//! `train eval`: measures a saved model on held-out data, the way its own pipeline measured it.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;

use crate::model::{load_model, select_device};
use crate::train::photos::options::PHOTO_MAX_SIDE;
use crate::train::photos::pipeline::{evaluate_crop_matching, evaluate_product_model, PhotoData};
use crate::train::supervised::options::DataOptions;
use crate::train::supervised::pipeline::evaluate_supervised;

#[derive(Debug, Clone, Args)]
pub struct EvalOptions {
    /// The model directory to evaluate.
    #[arg(long)]
    pub model: PathBuf,
    #[command(flatten)]
    pub data: DataOptions,
    /// Evaluate on every sample instead of the held-out test split (for a separate test folder).
    #[arg(long)]
    pub all_samples: bool,
    /// Seed of the evaluation pairs.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Photo models: at most this many test sources, each against every other's edits (as in training).
    #[arg(long, default_value_t = 400)]
    pub eval_sources: usize,
    /// Photo models: measure crop matching too (each image also embedded as crops), with thresholds chosen on
    /// validation, and print validation and test figures of both ways.
    #[arg(long)]
    pub crops: bool,
}

/// The model's figures on held-out data, as JSON.
pub fn evaluate_model(options: &EvalOptions) -> Result<serde_json::Value> {
    let device = select_device(options.data.device).map_err(anyhow::Error::msg)?;
    let model = load_model(&options.model, device)?;
    if model.card.training.self_supervised.is_none() {
        let figures = evaluate_supervised(
            &model.net,
            &model.card,
            &options.data,
            options.all_samples,
            options.seed,
            device,
        )?;
        return Ok(serde_json::to_value(figures)?);
    }
    // A photo model is measured on its folder's held-out sources, with every detector's recorded threshold.
    let root = if options.data.is_mnist() {
        "data/photos"
    } else {
        &options.data.data
    };
    let data = PhotoData {
        root: root.into(),
        max_side: PHOTO_MAX_SIDE,
        eval_sources: options.eval_sources,
        threads: 2,
    };
    if options.crops {
        let figures = evaluate_crop_matching(&model.net, &model.card, &data, device)?;
        let named = figures
            .iter()
            .map(|(validation, test)| serde_json::json!({"validation": validation, "test": test}));
        return Ok(serde_json::Value::Array(named.collect()));
    }
    Ok(serde_json::to_value(evaluate_product_model(
        &model.net,
        &model.card,
        &data,
        device,
    )?)?)
}
