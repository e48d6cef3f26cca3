//! Under load: 200 concurrent compares all answer as they do one at a time; a request whose body does not
//! arrive by its deadline answers 504. (The queue's own overload and deadlines: `inference_over_http`.)

use std::time::Duration;

use crate::common::{assert_close, digit, Server};
use futures::future::join_all;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_concurrent_compares_equal_their_one_at_a_time_answers() {
    // Room for all 200 at once: this is about batching, not about shedding load.
    let server = Server::start(&["--max-in-flight", "1024"]).await;
    let pairs: Vec<(Vec<u8>, Vec<u8>)> = (0..200)
        .map(|i| (digit(i % 10, i / 10), digit((i * 7 + 3) % 10, i / 10 + 1)))
        .collect();
    let mut alone = Vec::new();
    for (a, b) in &pairs {
        alone.push(server.compare(a, b).await.ok());
    }

    let before = server.get("/metrics").await.text;

    let together = join_all(pairs.iter().map(|(a, b)| server.compare(a, b))).await;

    for (i, (one, concurrent)) in alone.iter().zip(&together).enumerate() {
        let concurrent = concurrent.ok();
        let distance = |v: &serde_json::Value| v["distance"].as_f64().unwrap() as f32;
        assert_close(distance(one), distance(&concurrent), 1e-5, &format!("pair {i}"));
        assert_eq!(one["match"], concurrent["match"], "pair {i}");
    }
    let after = server.get("/metrics").await.text;
    let batches = metric(&after, "simverify_batch_size_count") - metric(&before, "simverify_batch_size_count");
    let images = metric(&after, "simverify_batch_size_sum") - metric(&before, "simverify_batch_size_sum");
    assert_eq!(images, 400.0, "every image of the 200 pairs was computed once");
    assert!(
        batches < 200.0,
        "concurrent pairs shared batches: {images} images in {batches} batches"
    );
}

fn metric(text: &str, name: &str) -> f64 {
    // Summed over label sets: the batch series are per model.
    let values: Vec<f64> = text
        .lines()
        .filter_map(|line| {
            let rest = line.strip_prefix(name)?;
            let value = match rest.strip_prefix('{') {
                Some(labelled) => &labelled[labelled.find('}')? + 1..],
                None => rest.strip_prefix(' ')?,
            };
            value.trim().parse::<f64>().ok()
        })
        .collect();
    assert!(!values.is_empty(), "no {name} in\n{text}");
    values.iter().sum()
}

/// The body never finishes arriving, so the request cannot be answered before its deadline.
#[tokio::test]
async fn a_request_past_its_deadline_answers_504() {
    let server = Server::start(&["--request-deadline-ms", "300"]).await;
    let mut stream = tokio::net::TcpStream::connect(server.addr).await.unwrap();

    let head = "POST /compare HTTP/1.1\r\nhost: test\r\ncontent-type: application/json\r\ncontent-length: 1000\r\n\r\n{\"image_a\":";
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut response = Vec::new();
    tokio::time::timeout(Duration::from_secs(30), stream.read_to_end(&mut response))
        .await
        .expect("answered long before 30 s")
        .unwrap();

    let response = String::from_utf8_lossy(&response);
    assert!(response.starts_with("HTTP/1.1 504"), "{response}");
    assert!(response.contains("\"code\":\"deadline_exceeded\""), "{response}");
    assert!(response.contains("application/problem+json"), "{response}");
}
