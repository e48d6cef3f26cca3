//! The service's Prometheus metrics: one registry, every metric DESIGN.md names, and the text exposition.
//!
//! Every label takes values from a small fixed set (routes, status codes, decisions, reasons, loaded
//! models), so no caller input can grow the number of series.

use prometheus::{
    exponential_buckets, Encoder, Histogram, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry, TextEncoder,
};

/// Cheap to clone: prometheus metrics are reference-counted handles onto shared state.
#[derive(Clone)]
pub struct Metrics {
    /// Owns every metric below; `render` walks it.
    pub registry: Registry,
    /// Whole-request latency, labelled by the route template (never the raw path) and status code.
    pub http_request_duration_seconds: HistogramVec,
    /// From submission to a worker taking the batch: the cost of batching and of a busy pool.
    pub queue_wait_seconds: Histogram,
    /// One forward pass over one batch, stacking and copying back included.
    pub inference_duration_seconds: Histogram,
    /// Images per batch: shows whether the fill window actually fills batches.
    pub batch_size: Histogram,
    /// Images admitted to the queues and not yet taken by a worker, over every model.
    pub queue_depth: IntGauge,
    /// The distances the service answers with, by route and decision: the drift signal.
    pub distance: HistogramVec,
    /// Answers by route and decision (`match`/`no_match`, `verified`/`rejected`).
    pub decisions_total: IntCounterVec,
    /// Requests refused, by a stable reason code (overload, deadline, too large, ...).
    pub rejected_total: IntCounterVec,
    /// Decoding and preprocessing one image.
    pub image_decode_duration_seconds: Histogram,
    /// Always 1 per loaded model; its labels say which weights run where.
    pub model_info: IntGaugeVec,
}

impl Metrics {
    pub fn new() -> Metrics {
        let registry = Registry::new();
        // Latency buckets from 0.5 ms to about 16 s, doubling: covers a cached CPU forward pass
        // and a request stuck behind a full queue alike.
        let latency = || exponential_buckets(0.0005, 2.0, 16).expect("valid buckets; this is a bug");
        let http_request_duration_seconds = HistogramVec::new(
            HistogramOpts::new(
                "simverify_http_request_duration_seconds",
                "HTTP request latency by route and status",
            )
            .buckets(latency()),
            &["route", "status"],
        )
        .expect("valid metric; this is a bug");
        let queue_wait_seconds = Histogram::with_opts(
            HistogramOpts::new(
                "simverify_queue_wait_seconds",
                "Time from submission to a worker taking the batch",
            )
            .buckets(latency()),
        )
        .expect("valid metric; this is a bug");
        let inference_duration_seconds = Histogram::with_opts(
            HistogramOpts::new(
                "simverify_inference_duration_seconds",
                "Forward pass duration per batch",
            )
            .buckets(latency()),
        )
        .expect("valid metric; this is a bug");
        let batch_size = Histogram::with_opts(
            HistogramOpts::new("simverify_batch_size", "Images per inference batch")
                .buckets(exponential_buckets(1.0, 2.0, 10).expect("valid buckets; this is a bug")),
        )
        .expect("valid metric; this is a bug");
        let queue_depth = IntGauge::new("simverify_queue_depth", "Images waiting in the inference queues")
            .expect("valid metric; this is a bug");
        // Distances of unit-length embeddings lie in [0, 2]; 0.05 steps resolve the region around
        // a threshold. Larger distances (unnormalised models) land in +Inf.
        let distance = HistogramVec::new(
            HistogramOpts::new("simverify_distance", "Distances answered, by route and decision")
                // i / 20 rather than repeated addition, so that bounds print as 0.3, not 0.30000000000000004.
                .buckets((1..=40).map(|i| f64::from(i) / 20.0).collect()),
            &["route", "decision"],
        )
        .expect("valid metric; this is a bug");
        let decisions_total = IntCounterVec::new(
            Opts::new("simverify_decisions_total", "Decisions answered, by route and decision"),
            &["route", "decision"],
        )
        .expect("valid metric; this is a bug");
        let rejected_total = IntCounterVec::new(
            Opts::new("simverify_rejected_total", "Requests refused, by reason"),
            &["reason"],
        )
        .expect("valid metric; this is a bug");
        let image_decode_duration_seconds = Histogram::with_opts(
            HistogramOpts::new(
                "simverify_image_decode_duration_seconds",
                "Time to decode and preprocess one image",
            )
            .buckets(latency()),
        )
        .expect("valid metric; this is a bug");
        let model_info = IntGaugeVec::new(
            Opts::new(
                "simverify_model_info",
                "Loaded models: always 1, the labels carry the facts",
            ),
            &["model", "sha256", "device"],
        )
        .expect("valid metric; this is a bug");

        let collectors: [Box<dyn prometheus::core::Collector>; 10] = [
            Box::new(http_request_duration_seconds.clone()),
            Box::new(queue_wait_seconds.clone()),
            Box::new(inference_duration_seconds.clone()),
            Box::new(batch_size.clone()),
            Box::new(queue_depth.clone()),
            Box::new(distance.clone()),
            Box::new(decisions_total.clone()),
            Box::new(rejected_total.clone()),
            Box::new(image_decode_duration_seconds.clone()),
            Box::new(model_info.clone()),
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
            queue_depth,
            distance,
            decisions_total,
            rejected_total,
            image_decode_duration_seconds,
            model_info,
        }
    }

    /// The Prometheus text exposition format (`text/plain; version=0.0.4`) of every metric.
    pub fn render(&self) -> String {
        let mut buf = Vec::new();
        TextEncoder::new()
            .encode(&self.registry.gather(), &mut buf)
            .expect("encoding metrics into memory cannot fail; this is a bug");
        String::from_utf8(buf).expect("the text encoder writes UTF-8; this is a bug")
    }

    /// The `Content-Type` that goes with `render`'s output.
    pub fn content_type(&self) -> &'static str {
        prometheus::TEXT_FORMAT
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_every_metric_by_name_once_observed() {
        let metrics = Metrics::new();
        metrics
            .http_request_duration_seconds
            .with_label_values(&["/compare", "200"])
            .observe(0.01);
        metrics.queue_wait_seconds.observe(0.001);
        metrics.inference_duration_seconds.observe(0.002);
        metrics.batch_size.observe(8.0);
        metrics.queue_depth.set(3);
        metrics.distance.with_label_values(&["/compare", "match"]).observe(0.3);
        metrics.decisions_total.with_label_values(&["/compare", "match"]).inc();
        metrics.rejected_total.with_label_values(&["overloaded"]).inc();
        metrics.image_decode_duration_seconds.observe(0.0001);
        metrics.model_info.with_label_values(&["mnist", "abc", "cpu"]).set(1);

        let text = metrics.render();

        for name in [
            "simverify_http_request_duration_seconds_bucket{route=\"/compare\",status=\"200\"",
            "simverify_queue_wait_seconds_count 1",
            "simverify_inference_duration_seconds_count 1",
            "simverify_batch_size_sum 8",
            "simverify_queue_depth 3",
            "simverify_distance_bucket{decision=\"match\",route=\"/compare\",le=\"0.3",
            "simverify_decisions_total{decision=\"match\",route=\"/compare\"} 1",
            "simverify_rejected_total{reason=\"overloaded\"} 1",
            "simverify_image_decode_duration_seconds_count 1",
            "simverify_model_info{device=\"cpu\",model=\"mnist\",sha256=\"abc\"} 1",
        ] {
            assert!(text.contains(name), "missing {name} in:\n{text}");
        }
    }

    #[test]
    fn distance_buckets_span_zero_to_two() {
        let metrics = Metrics::new();
        metrics
            .distance
            .with_label_values(&["/verify", "rejected"])
            .observe(1.97);

        let text = metrics.render();

        assert!(text.contains("le=\"2\"} 1"), "{text}");
        assert!(text.contains("le=\"1.95\"} 0"), "{text}");
    }

    #[test]
    fn clones_share_state() {
        let metrics = Metrics::new();
        let clone = metrics.clone();

        clone.queue_depth.add(2);

        assert_eq!(metrics.queue_depth.get(), 2);
    }
}
