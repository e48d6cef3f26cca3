//! The log a machine reads: the real binary with `--log-format json` writes one JSON object a line on
//! stderr, one line per loaded model at start (name, architecture, threshold, hash prefix), and one line
//! per request with its request id, method, route, status, latency and model.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::common::{digit, form, repo_path};
use serde_json::Value;

/// The server process, killed when dropped so that a failing test leaves nothing running.
struct Process(Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn json_logs_carry_a_summary_per_model_and_every_request_with_its_dimensions() {
    let data = tempfile::tempdir().expect("a scratch directory");
    let mut child = Command::new(env!("CARGO_BIN_EXE_simverify"))
        .args(["serve", "--listen", "127.0.0.1:0", "--device", "cpu", "--workers", "1"])
        .args(["--torch-threads", "1", "--log-format", "json"])
        .arg("--model-dir")
        .arg(repo_path("models"))
        .arg("--data-dir")
        .arg(data.path())
        .env_remove("RUST_LOG")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the server binary starts");
    let stdout = child.stdout.take().expect("stdout is piped");
    let stderr = child.stderr.take().expect("stderr is piped");
    let mut process = Process(child);
    // Read as it is written: every `/ready` poll below logs, and a server whose stderr pipe is full
    // blocks on its next log line, so its answers would stop until the pipe is read.
    let log = std::thread::spawn(move || BufReader::new(stderr).lines().map_while(Result::ok).collect::<Vec<_>>());
    // "simverify listening on http://ADDR (API docs at ...)" on stdout.
    let mut banner = String::new();
    BufReader::new(stdout).read_line(&mut banner).expect("the banner");
    let base = banner
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .unwrap_or_else(|| panic!("no address in {banner:?}"))
        .to_string();
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .expect("a client");
    let mut ready = false;
    for _ in 0..3000 {
        if let Ok(r) = client.get(format!("{base}/ready")).send().await {
            if r.status().is_success() {
                ready = true;
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(ready, "the server was not ready after a minute");

    let reply = client
        .post(format!("{base}/compare"))
        .multipart(form(&[("image_a", &digit(2, 0)), ("image_b", &digit(2, 1))]))
        .send()
        .await
        .expect("compare is answered");
    assert!(reply.status().is_success());
    let request_id = reply.headers()["x-request-id"].to_str().unwrap().to_string();
    // Give the line a moment to be written after the answer, then stop the server and read everything.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let _ = process.0.kill();
    let lines = log.join().expect("the log reader ends with the server");

    let events: Vec<Value> = lines
        .iter()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}")))
        .collect();
    let ready_lines: Vec<&Value> = events.iter().filter(|e| e["message"] == "model ready").collect();
    let bundled = std::fs::read_dir(repo_path("models"))
        .unwrap()
        .filter(|entry| entry.as_ref().unwrap().path().join("model.json").is_file())
        .count();
    assert_eq!(ready_lines.len(), bundled, "one line per bundled model:\n{lines:#?}");
    for line in &ready_lines {
        assert!(line["model"].is_string() && line["architecture"].is_string(), "{line}");
        assert!(line["threshold"].is_number(), "{line}");
        assert_eq!(line["sha256"].as_str().map(str::len), Some(12), "{line}");
    }
    let request = events
        .iter()
        .find(|e| e["message"] == "request" && e["route"] == "/compare")
        .unwrap_or_else(|| panic!("no request line for /compare in:\n{lines:#?}"));
    assert_eq!(request["request_id"], request_id.as_str(), "{request}");
    assert_eq!(request["method"], "POST", "{request}");
    assert_eq!(request["status"], 200, "{request}");
    assert_eq!(request["model"], "mnist", "{request}");
    assert!(request["latency_ms"].as_f64().is_some_and(|ms| ms > 0.0), "{request}");
    assert_eq!(request["level"], "INFO", "{request}");
}
