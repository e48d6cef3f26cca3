//! The server's life: /health at once, /ready once warm, /info without internals, a failed load or a
//! store that cannot be opened stops the server with its reason, and a graceful shutdown finishes the
//! request in flight.

use std::time::Duration;

use crate::common::{b64, config, digit, Server};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[tokio::test]
async fn health_answers_at_once_and_ready_turns_200_once_the_models_are_warm() {
    let server = Server::spawn(config(&[])).await;

    let health = server.get("/health").await;
    let mut readiness = Vec::new();
    loop {
        let reply = server.get("/ready").await;
        let ready = reply.status == 200;
        readiness.push(reply);
        if ready {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let info = server.get("/info").await.ok();

    assert_eq!(health.ok()["status"], "ok");
    let (ready, before) = readiness.split_last().unwrap();
    for reply in before {
        reply.assert_problem(503, "not_ready");
        assert_eq!(reply.headers["retry-after"], "1");
    }
    assert!(ready.ok()["models"].as_array().unwrap().contains(&json!("mnist")));
    assert_eq!(info["default_model"], "mnist");
    let mnist = info["models"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == "mnist")
        .unwrap();
    assert!(mnist["threshold"].as_f64().unwrap() > 0.0);
    assert_eq!(mnist["input"]["width"], 28);
    assert_eq!(mnist["input"]["polarity"], "light_on_dark");
    let text = info.to_string();
    assert!(
        !text.contains("safetensors") && !text.contains(env!("CARGO_MANIFEST_DIR")),
        "no internals: {text}"
    );
}

#[tokio::test]
async fn a_model_dir_without_models_stops_the_server_with_the_reason() {
    let empty = tempfile::tempdir().unwrap();
    let mut server = Server::spawn(config(&["--model-dir", empty.path().to_str().unwrap()])).await;

    let outcome = server.join().await;

    let err = format!("{:#}", outcome.expect_err("no models is an error"));
    assert!(err.contains(&empty.path().display().to_string()), "{err}");
}

#[tokio::test]
async fn a_default_model_that_is_not_loaded_stops_the_server() {
    let mut server = Server::spawn(config(&["--default-model", "faces"])).await;

    let err = format!(
        "{:#}",
        server.join().await.expect_err("an unknown default model is an error")
    );

    assert!(err.contains("faces") && err.contains("mnist"), "{err}");
}

#[tokio::test]
async fn a_store_that_cannot_be_opened_stops_the_start_with_the_reason() {
    // A data directory below a regular file cannot be created (even by root).
    let file = tempfile::NamedTempFile::new().unwrap();
    let below_a_file = format!("{}/store", file.path().display());
    // Nothing listens on port 1: PostgreSQL's connection is refused at once.
    let refused = config(&[
        "--store",
        "postgres://nobody@127.0.0.1:1/none",
        "--data-dir",
        &below_a_file,
    ]);
    let unwritable = config(&["--data-dir", &below_a_file]);

    for config in [refused, unwritable] {
        let err = simverify::http::App::build(config)
            .await
            .err()
            .expect("refused at start");

        let err = format!("{err:#}");
        assert!(err.contains("cannot open the subject store"), "{err}");
    }
}

#[test]
fn serve_exits_non_zero_when_the_store_cannot_be_opened() {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_simverify"))
        .args(["serve", "--listen", "127.0.0.1:0", "--device", "cpu"])
        .args(["--store", "postgres://simverify:hunter2@127.0.0.1:1/none"])
        .env("RUST_LOG", "warn")
        .output()
        .expect("the simverify binary runs");

    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{stderr}");
    assert!(stderr.contains("cannot open the subject store"), "{stderr}");
    assert!(!stderr.contains("hunter2"), "the password leaked: {stderr}");
}

/// A request whose body is half sent when the shutdown begins: /ready turns 503 during the drain delay,
/// the listener then closes, and the request still completes with its answer.
#[tokio::test]
async fn a_graceful_shutdown_finishes_the_request_in_flight() {
    let mut server = Server::start(&["--drain-delay-ms", "1500"]).await;
    let body = json!({ "image_a": b64(&digit(3, 0)), "image_b": b64(&digit(3, 1)) }).to_string();
    let (first, rest) = body.as_bytes().split_at(body.len() / 2);
    let mut in_flight = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    let head = format!(
        "POST /compare HTTP/1.1\r\nhost: test\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
        body.len()
    );
    in_flight.write_all(head.as_bytes()).await.unwrap();
    in_flight.write_all(first).await.unwrap();

    server.begin_shutdown();
    let draining = loop {
        let reply = server.get("/ready").await;
        if reply.status != 200 {
            break reply;
        }
    };
    while tokio::net::TcpStream::connect(server.addr).await.is_ok() {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    in_flight.write_all(rest).await.unwrap();
    let mut response = Vec::new();
    tokio::time::timeout(Duration::from_secs(30), in_flight.read_to_end(&mut response))
        .await
        .expect("the in-flight request is answered and its connection closed")
        .unwrap();
    let outcome = server.join().await;

    draining.assert_problem(503, "shutting_down");
    let response = String::from_utf8_lossy(&response);
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(response.contains("\"match\":"), "{response}");
    outcome.expect("a graceful shutdown is a clean exit");
}
