//! The registry renders every metric under its conventional name, with its labels.

use super::*;

#[test]
fn renders_every_metric_by_name_once_observed() {
    let metrics = Metrics::new();
    metrics
        .http_request_duration_seconds
        .with_label_values(&["/compare", "200"])
        .observe(0.01);
    let mnist = metrics.for_model("mnist");
    mnist.queue_wait_seconds.observe(0.001);
    mnist.inference_duration_seconds.observe(0.002);
    mnist.batch_size.observe(8.0);
    mnist.queue_depth.set(3);
    metrics.batch_size_limit.with_label_values(&["mnist"]).set(32);
    metrics
        .distance
        .with_label_values(&["mnist", "/compare", "match"])
        .observe(0.3);
    metrics.model_threshold.with_label_values(&["mnist"]).set(0.5);
    metrics
        .decisions_total
        .with_label_values(&["mnist", "/compare", "match"])
        .inc();
    metrics.rejected_total.with_label_values(&["overloaded"]).inc();
    metrics.image_decode_duration_seconds.observe(0.0001);
    metrics.image_size_bytes.observe(5000.0);
    metrics.model_info.with_label_values(&["mnist", "abc", "cpu"]).set(1);
    metrics.enrolled_images.with_label_values(&["mnist"]).set(7);
    metrics.search_duration_seconds.observe(0.003);
    metrics.store_errors_total.with_label_values(&["write"]).inc();

    let text = metrics.render();

    for name in [
        "simverify_http_request_duration_seconds_bucket{route=\"/compare\",status=\"200\"",
        "simverify_queue_wait_seconds_count{model=\"mnist\"} 1",
        "simverify_inference_duration_seconds_count{model=\"mnist\"} 1",
        "simverify_batch_size_sum{model=\"mnist\"} 8",
        "simverify_batch_size_limit{model=\"mnist\"} 32",
        "simverify_queue_depth{model=\"mnist\"} 3",
        "simverify_distance_bucket{decision=\"match\",model=\"mnist\",route=\"/compare\",le=\"0.3",
        "simverify_model_threshold{model=\"mnist\"} 0.5",
        "simverify_decisions_total{decision=\"match\",model=\"mnist\",route=\"/compare\"} 1",
        "simverify_rejected_total{reason=\"overloaded\"} 1",
        "simverify_image_decode_duration_seconds_count 1",
        "simverify_image_size_bytes_bucket{le=\"16384\"} 1",
        "simverify_model_info{device=\"cpu\",model=\"mnist\",sha256=\"abc\"} 1",
        "simverify_enrolled_images{model=\"mnist\"} 7",
        "simverify_search_duration_seconds_count 1",
        "simverify_store_errors_total{operation=\"write\"} 1",
        "process_resident_memory_bytes ",
    ] {
        assert!(text.contains(name), "missing {name} in:\n{text}");
    }
}

#[test]
fn distance_buckets_span_zero_to_two() {
    let metrics = Metrics::new();
    metrics
        .distance
        .with_label_values(&["mnist", "/verify", "rejected"])
        .observe(1.97);

    let text = metrics.render();

    assert!(text.contains("le=\"2\"} 1"), "{text}");
    assert!(text.contains("le=\"1.95\"} 0"), "{text}");
}

#[test]
fn clones_share_state_and_models_keep_their_own_series() {
    let metrics = Metrics::new();
    let clone = metrics.clone();

    clone.for_model("a").queue_depth.add(2);
    metrics.for_model("b").queue_depth.add(5);

    assert_eq!(metrics.queue_depth.with_label_values(&["a"]).get(), 2);
    assert_eq!(metrics.queue_depth.with_label_values(&["b"]).get(), 5);
}
