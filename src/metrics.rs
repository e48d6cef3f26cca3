//! The service's Prometheus metrics: one registry, every metric DESIGN.md names, and the text exposition.
//!
//! Every label takes values from a small fixed set (routes, status codes, decisions, reasons, loaded
//! models), so no caller input can grow the number of series. Names follow Prometheus conventions
//! (base units as suffixes: `_seconds`, `_bytes`; counters end in `_total`); `tests/api/metrics_promtool.rs`
//! holds a live scrape to `promtool check metrics`.

use prometheus::process_collector::ProcessCollector;
use prometheus::{
    exponential_buckets, Encoder, GaugeVec, Histogram, HistogramOpts, HistogramVec, IntCounterVec, IntGaugeVec, Opts,
    Registry, TextEncoder,
};

mod model;

pub(crate) use model::ModelMetrics;

/// Cheap to clone: prometheus metrics are reference-counted handles onto shared state.
#[derive(Clone)]
pub struct Metrics {
    /// Owns every metric below; `render` walks it.
    pub(crate) registry: Registry,
    /// Whole-request latency, labelled by the route template (never the raw path) and status code.
    pub(crate) http_request_duration_seconds: HistogramVec,
    /// By model: from submission to a worker taking the batch: the cost of batching and of a busy pool.
    pub(crate) queue_wait_seconds: HistogramVec,
    /// By model: one forward pass over one batch, stacking and copying back included.
    pub(crate) inference_duration_seconds: HistogramVec,
    /// By model: images per batch; shows whether the fill window actually fills batches.
    pub(crate) batch_size: HistogramVec,
    /// By model: the largest batch the queue sends, so that dashboards can draw batch fill as a ratio.
    pub(crate) batch_size_limit: IntGaugeVec,
    /// By model: images admitted to the queue and not yet taken by a worker.
    pub(crate) queue_depth: IntGaugeVec,
    /// The distances the service answers with, by model, route and decision: the drift signal.
    pub(crate) distance: HistogramVec,
    /// By model: the card's calibrated threshold, drawn over the distance distribution.
    pub(crate) model_threshold: GaugeVec,
    /// Answers by model, route and decision (`match`/`no_match`, `verified`/`rejected`).
    pub(crate) decisions_total: IntCounterVec,
    /// Requests refused, by a stable reason code (overload, deadline, too large, ...).
    pub(crate) rejected_total: IntCounterVec,
    /// Decoding and preprocessing one image.
    pub(crate) image_decode_duration_seconds: Histogram,
    /// The encoded size of each image received (uploaded, base64 or fetched), before decoding.
    pub(crate) image_size_bytes: Histogram,
    /// Always 1 per loaded model; its labels say which weights run where.
    pub(crate) model_info: IntGaugeVec,
    /// Requests let in, by API key name (names come from the key file: a small set, never the key).
    pub(crate) requests_by_key_total: IntCounterVec,
    /// Enrolled images in the search index, by model (models come from the store: a small set).
    pub(crate) enrolled_images: IntGaugeVec,
    /// One catalogue search: the scan of a model's index, without decoding or embedding the query.
    pub(crate) search_duration_seconds: Histogram,
    /// Store operations that failed, by operation (`open`, `read`, `write`, `follow`).
    pub(crate) store_errors_total: IntCounterVec,
}

fn histogram(name: &str, help: &str, buckets: Vec<f64>) -> Histogram {
    Histogram::with_opts(HistogramOpts::new(name, help).buckets(buckets)).expect("valid metric; this is a bug")
}

fn histogram_vec(name: &str, help: &str, buckets: Vec<f64>, labels: &[&str]) -> HistogramVec {
    HistogramVec::new(HistogramOpts::new(name, help).buckets(buckets), labels).expect("valid metric; this is a bug")
}

fn int_gauge_vec(name: &str, help: &str, labels: &[&str]) -> IntGaugeVec {
    IntGaugeVec::new(Opts::new(name, help), labels).expect("valid metric; this is a bug")
}

fn int_counter_vec(name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    IntCounterVec::new(Opts::new(name, help), labels).expect("valid metric; this is a bug")
}

/// Latency buckets from 0.5 ms to about 16 s, doubling: covers a cached CPU forward pass and a request
/// stuck behind a full queue alike.
fn latency() -> Vec<f64> {
    exponential_buckets(0.0005, 2.0, 16).expect("valid buckets; this is a bug")
}

impl Metrics {
    pub fn new() -> Metrics {
        let registry = Registry::new();
        let http_request_duration_seconds = histogram_vec(
            "simverify_http_request_duration_seconds",
            "HTTP request latency by route and status",
            latency(),
            &["route", "status"],
        );
        let queue_wait_seconds = histogram_vec(
            "simverify_queue_wait_seconds",
            "Time from submission to a worker taking the batch, by model",
            latency(),
            &["model"],
        );
        let inference_duration_seconds = histogram_vec(
            "simverify_inference_duration_seconds",
            "Forward pass duration per batch, by model",
            latency(),
            &["model"],
        );
        let batch_size = histogram_vec(
            "simverify_batch_size",
            "Images per inference batch, by model",
            exponential_buckets(1.0, 2.0, 10).expect("valid buckets; this is a bug"),
            &["model"],
        );
        let batch_size_limit = int_gauge_vec(
            "simverify_batch_size_limit",
            "The most images one batch holds (--max-batch-size), by model",
            &["model"],
        );
        let queue_depth = int_gauge_vec(
            "simverify_queue_depth",
            "Images waiting in the inference queue, by model",
            &["model"],
        );
        // Distances of unit-length embeddings lie in [0, 2]; 0.05 steps resolve the region around
        // a threshold. Larger distances (unnormalised models) land in +Inf.
        let distance = histogram_vec(
            "simverify_distance",
            "Distances answered, by model, route and decision",
            // i / 20 rather than repeated addition, so that bounds print as 0.3, not 0.30000000000000004.
            (1..=40).map(|i| f64::from(i) / 20.0).collect(),
            &["model", "route", "decision"],
        );
        let model_threshold = GaugeVec::new(
            Opts::new(
                "simverify_model_threshold",
                "The model card's calibrated distance threshold, by model",
            ),
            &["model"],
        )
        .expect("valid metric; this is a bug");
        let decisions_total = int_counter_vec(
            "simverify_decisions_total",
            "Decisions answered, by model, route and decision",
            &["model", "route", "decision"],
        );
        let rejected_total = int_counter_vec("simverify_rejected_total", "Requests refused, by reason", &["reason"]);
        let image_decode_duration_seconds = histogram(
            "simverify_image_decode_duration_seconds",
            "Time to decode and preprocess one image",
            latency(),
        );
        // 1 KiB to 64 MiB, quadrupling: a thumbnail to far past any sane body limit.
        let image_size_bytes = histogram(
            "simverify_image_size_bytes",
            "Encoded size of each image received, before decoding",
            exponential_buckets(1024.0, 4.0, 9).expect("valid buckets; this is a bug"),
        );
        let model_info = int_gauge_vec(
            "simverify_model_info",
            "Loaded models: always 1, the labels carry the facts",
            &["model", "sha256", "device"],
        );
        let requests_by_key_total = int_counter_vec(
            "simverify_requests_by_key_total",
            "Requests let in, by API key name",
            &["key"],
        );
        let enrolled_images = int_gauge_vec(
            "simverify_enrolled_images",
            "Enrolled images in the search index, by model",
            &["model"],
        );
        let search_duration_seconds = histogram(
            "simverify_search_duration_seconds",
            "Time to scan a model's index for one catalogue search",
            latency(),
        );
        let store_errors_total = int_counter_vec(
            "simverify_store_errors_total",
            "Failed store operations, by operation",
            &["operation"],
        );

        let collectors: Vec<Box<dyn prometheus::core::Collector>> = vec![
            Box::new(http_request_duration_seconds.clone()),
            Box::new(queue_wait_seconds.clone()),
            Box::new(inference_duration_seconds.clone()),
            Box::new(batch_size.clone()),
            Box::new(batch_size_limit.clone()),
            Box::new(queue_depth.clone()),
            Box::new(distance.clone()),
            Box::new(model_threshold.clone()),
            Box::new(decisions_total.clone()),
            Box::new(rejected_total.clone()),
            Box::new(image_decode_duration_seconds.clone()),
            Box::new(image_size_bytes.clone()),
            Box::new(model_info.clone()),
            Box::new(requests_by_key_total.clone()),
            Box::new(enrolled_images.clone()),
            Box::new(search_duration_seconds.clone()),
            Box::new(store_errors_total.clone()),
            // process_resident_memory_bytes, CPU seconds, open fds, threads: the memory panel reads them.
            Box::new(ProcessCollector::for_self()),
        ];
        for collector in collectors {
            registry
                .register(collector)
                .expect("metric names are unique; this is a bug");
        }
        Metrics {
            registry,
            http_request_duration_seconds,
            queue_wait_seconds,
            inference_duration_seconds,
            batch_size,
            batch_size_limit,
            queue_depth,
            distance,
            model_threshold,
            decisions_total,
            rejected_total,
            image_decode_duration_seconds,
            image_size_bytes,
            model_info,
            requests_by_key_total,
            enrolled_images,
            search_duration_seconds,
            store_errors_total,
        }
    }

    /// Starts each served model's `simverify_enrolled_images` at 0, so that a dashboard reads 0 rather
    /// than no data before the first enrolment; the catalogue sets the stored counts, whichever loads first.
    pub(crate) fn serve_models(&self, models: &[String]) {
        for model in models {
            let _ = self.enrolled_images.with_label_values(&[model.as_str()]);
        }
    }

    /// The Prometheus text exposition format (`text/plain; version=0.0.4`) of every metric.
    pub(crate) fn render(&self) -> String {
        let mut buf = Vec::new();
        TextEncoder::new()
            .encode(&self.registry.gather(), &mut buf)
            .expect("encoding metrics into memory cannot fail; this is a bug");
        String::from_utf8(buf).expect("the text encoder writes UTF-8; this is a bug")
    }

    /// The `Content-Type` that goes with `render`'s output.
    pub(crate) fn content_type(&self) -> &'static str {
        prometheus::TEXT_FORMAT
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests;
