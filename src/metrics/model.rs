//! One model's series, resolved once when the model loads, so that the queue and the workers never
//! look a label up on the hot path and never observe into another model's series.

use prometheus::{Histogram, IntGauge};

use super::Metrics;

/// Cheap to clone: handles onto the shared registry's per-model children.
#[derive(Clone)]
pub struct ModelMetrics {
    pub queue_wait_seconds: Histogram,
    pub inference_duration_seconds: Histogram,
    pub batch_size: Histogram,
    /// Raised on admission and lowered when a worker takes the entry (see `infer::queue`).
    pub queue_depth: IntGauge,
}

impl Metrics {
    /// `model`'s series. Creating them makes them visible at zero from the start, so that rates and
    /// the dashboard have a series before the first request.
    pub fn for_model(&self, model: &str) -> ModelMetrics {
        ModelMetrics {
            queue_wait_seconds: self.queue_wait_seconds.with_label_values(&[model]),
            inference_duration_seconds: self.inference_duration_seconds.with_label_values(&[model]),
            batch_size: self.batch_size.with_label_values(&[model]),
            queue_depth: self.queue_depth.with_label_values(&[model]),
        }
    }
}
