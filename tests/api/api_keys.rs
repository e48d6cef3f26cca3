//! API keys end to end: keys minted by `simverify keys add`, a server reading them, 401s with the problem
//! shape and `WWW-Authenticate`, both ways of sending a key, open probes, and the per-key counter.

use std::path::Path;
use std::process::Command;

use crate::common::{digit, form, Reply, Server};
use reqwest::header::{AUTHORIZATION, WWW_AUTHENTICATE};
use reqwest::{RequestBuilder, StatusCode};

/// `simverify keys add NAME --file PATH`, as an operator runs it; the key it prints.
fn add_key(file: &Path, name: &str) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_simverify"))
        .args(["keys", "add", name, "--file"])
        .arg(file)
        .output()
        .expect("simverify runs");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let key = String::from_utf8(output.stdout).unwrap().trim().to_string();
    assert!(key.starts_with("sv_"), "{key}");
    key
}

async fn send(request: RequestBuilder) -> Reply {
    Reply::from(request.send().await.expect("answered")).await
}

fn compare(server: &Server) -> RequestBuilder {
    server
        .client
        .post(server.url("/compare"))
        .multipart(form(&[("image_a", &digit(4, 0)), ("image_b", &digit(4, 1))]))
}

fn assert_unauthorized(reply: &Reply) {
    reply.assert_problem(401, "unauthorized");
    assert_eq!(reply.headers[WWW_AUTHENTICATE], "Bearer realm=\"simverify\"");
}

#[tokio::test]
async fn requests_need_a_key_from_the_file_sent_either_way() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("api-keys");
    let alice = add_key(&file, "alice");
    let bob = add_key(&file, "bob");
    assert!(
        !std::fs::read_to_string(&file).unwrap().contains(&alice),
        "keys are stored hashed"
    );
    let server = Server::start(&["--api-keys-file", file.to_str().unwrap()]).await;

    assert_unauthorized(&send(compare(&server)).await);
    assert_unauthorized(&send(compare(&server).bearer_auth("sv_not-a-key")).await);
    assert_unauthorized(&send(compare(&server).header("x-api-key", format!("{alice}x"))).await);
    assert_unauthorized(&send(compare(&server).header(AUTHORIZATION, format!("Basic {alice}"))).await);
    let by_bearer = send(compare(&server).bearer_auth(&alice)).await.ok();
    let by_header = send(compare(&server).header("x-api-key", &bob)).await.ok();

    assert_eq!(by_bearer["distance"], by_header["distance"]);
    for path in ["/health", "/ready"] {
        assert_eq!(server.get(path).await.status, StatusCode::OK, "{path}");
    }
    for path in ["/info", "/metrics", "/openapi.json", "/docs/", "/no-such-route"] {
        assert_unauthorized(&server.get(path).await);
    }
    let metrics = send(server.client.get(server.url("/metrics")).bearer_auth(&bob)).await;
    assert_eq!(metrics.status, StatusCode::OK);
    assert!(
        metrics
            .text
            .contains("simverify_requests_by_key_total{key=\"alice\"} 1"),
        "{}",
        metrics.text
    );
    // bob: the compare, then this scrape.
    assert!(metrics.text.contains("simverify_requests_by_key_total{key=\"bob\"} 2"));
    assert!(metrics
        .text
        .contains("simverify_rejected_total{reason=\"unauthorized\"}"));
    assert!(!metrics.text.contains(&alice) && !metrics.text.contains(&bob));
}

#[tokio::test]
async fn metrics_and_docs_can_be_opened_but_the_api_cannot() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("api-keys");
    add_key(&file, "ops");
    let server = Server::start(&[
        "--api-keys-file",
        file.to_str().unwrap(),
        "--public-metrics",
        "--public-docs",
    ])
    .await;

    for path in ["/metrics", "/openapi.json", "/docs/"] {
        assert_eq!(server.get(path).await.status, StatusCode::OK, "{path}");
    }
    // With keys required, the served document says so on every operation but the probes.
    let spec = server.get("/openapi.json").await.json();
    assert_eq!(
        spec["paths"]["/compare"]["post"]["security"].as_array().map(Vec::len),
        Some(2)
    );
    assert!(spec["paths"]["/compare"]["post"]["responses"]["401"].is_object());
    assert!(spec["components"]["securitySchemes"]["bearer"].is_object());
    assert_unauthorized(&server.get("/info").await);
    assert_unauthorized(&send(compare(&server)).await);
}

#[tokio::test]
async fn a_key_file_that_cannot_be_used_stops_the_server_from_starting() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty");
    std::fs::write(&empty, "# no keys yet\n").unwrap();
    let broken = dir.path().join("broken");
    std::fs::write(&broken, "alice not-a-hash\n").unwrap();

    for (file, says) in [
        (dir.path().join("missing"), "cannot read"),
        (empty, "holds no key"),
        (broken, "line 1"),
    ] {
        let config = crate::common::config(&["--api-keys-file", file.to_str().unwrap()]);
        let err = simverify::http::App::build(config).await.err().expect("refused");
        assert!(format!("{err:#}").contains(says), "{err:#}");
    }
}

#[tokio::test]
async fn the_command_line_client_sends_its_key() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("api-keys");
    let key = add_key(&file, "cli");
    let (a, b) = (dir.path().join("a.png"), dir.path().join("b.png"));
    std::fs::write(&a, digit(5, 0)).unwrap();
    std::fs::write(&b, digit(5, 1)).unwrap();
    let server = Server::start(&["--api-keys-file", file.to_str().unwrap()]).await;
    let run = |key: Option<String>| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_simverify"));
        command
            .args(["compare", "--server", &server.base])
            .args([&a, &b])
            .env_remove("SIMVERIFY_API_KEY");
        if let Some(key) = key {
            command.args(["--api-key", &key]);
        }
        // On the blocking pool: the server answering it runs on this test's runtime.
        tokio::task::spawn_blocking(move || command.output().expect("simverify runs"))
    };

    let with_key = run(Some(key)).await.unwrap();
    let without = run(None).await.unwrap();

    assert!(
        with_key.status.success(),
        "{}",
        String::from_utf8_lossy(&with_key.stderr)
    );
    assert!(String::from_utf8_lossy(&with_key.stdout).contains("distance"));
    assert!(!without.status.success());
    assert!(String::from_utf8_lossy(&without.stderr).contains("unauthorized"));
}
