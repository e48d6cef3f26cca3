//! Prometheus' own linter on what the server really exports, and on the scrape configuration that ships
//! with it: `promtool check metrics` on a live `/metrics` after traffic, `promtool check config` on
//! `deploy/prometheus/prometheus.yml`. `scripts/setup-tests` installs promtool (Debian's `prometheus`).

use std::io::Write;
use std::process::{Command, Output, Stdio};

use crate::common::{repo_path, Server};

/// Runs `promtool` with `args`, feeding it `stdin`; fails with a pointer to the fix when it is missing.
fn promtool(args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new("promtool")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run promtool ({e}): run scripts/setup-tests, or `apt-get install prometheus`, which ships it"
            )
        });
    child
        .stdin
        .take()
        .expect("stdin is piped")
        .write_all(stdin.as_bytes())
        .expect("promtool reads its input");
    child.wait_with_output().expect("promtool finishes")
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

#[tokio::test]
async fn a_live_scrape_passes_promtool_check_metrics() {
    let server = Server::start(&[]).await;
    let exposition = server.scrape_after_traffic().await;

    let output = promtool(&["check", "metrics"], &exposition);

    // promtool exits 0 with no output when it has nothing to say; a lint finding prints and exits 3.
    let said = text(&output);
    println!(
        "promtool check metrics: {} (exit {:?})",
        said.trim(),
        output.status.code()
    );
    assert!(
        output.status.success() && said.trim().is_empty(),
        "promtool check metrics:\n{said}"
    );
    // The per-model dimension is there, on the series the issue names.
    for series in [
        "simverify_distance_count{decision=\"match\",model=\"mnist\",route=\"/compare\"}",
        "simverify_decisions_total{decision=\"verified\",model=\"mnist\",route=\"/verify\"}",
        "simverify_batch_size_count{model=\"mnist\"}",
        "simverify_queue_depth{model=\"mnist\"}",
        "simverify_queue_wait_seconds_count{model=\"mnist\"}",
        "simverify_inference_duration_seconds_count{model=\"mnist\"}",
        "simverify_http_request_duration_seconds_count{route=\"/compare\",status=\"200\"}",
        "simverify_image_size_bytes_count ",
        "process_resident_memory_bytes ",
    ] {
        assert!(exposition.contains(series), "no {series} in:\n{exposition}");
    }
}

#[test]
fn the_shipped_prometheus_configuration_passes_promtool_check_config() {
    let config = repo_path("deploy/prometheus/prometheus.yml");

    let output = promtool(&["check", "config", config.to_str().expect("UTF-8 path")], "");

    let said = text(&output);
    println!("{}", said.trim());
    assert!(output.status.success(), "promtool check config:\n{said}");
    assert!(said.contains("SUCCESS"), "{said}");
}
