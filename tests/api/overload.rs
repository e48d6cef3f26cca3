//! A burst beyond what the decoders clear: the requests that cannot be decoded soon are refused at once
//! with 503 `overloaded` and `Retry-After`, never left waiting for a decode slot until a 504; and a large
//! upload refused before its body is read still gets its answer.

use std::time::{Duration, Instant};

use crate::common::{png, Server};
use futures::future::join_all;
use image::{GrayImage, Luma};
use tokio::io::AsyncWriteExt;

/// A large image of noise: slow to inflate, so that one decode slot stays busy while the burst arrives.
fn slow_png(seed: u32) -> Vec<u8> {
    let mut state = seed.wrapping_mul(2_654_435_761) | 1;
    png(&GrayImage::from_fn(1024, 1024, |_, _| {
        // xorshift: incompressible enough that inflating it is real work.
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        Luma([state as u8])
    }))
}

/// One decode slot and room for one waiting pair: of sixteen compares sent at once, the first is
/// served and most of the rest refused at once; none waits for its deadline.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_beyond_the_decoders_is_refused_with_503_not_504() {
    let server = Server::start(&[
        "--decode-pool",
        "1",
        "--max-pending-decodes",
        "2",
        "--request-deadline-ms",
        "20000",
    ])
    .await;
    let (a, b) = (slow_png(1), slow_png(2));

    let started = Instant::now();
    let replies = join_all((0..16).map(|_| server.compare(&a, &b))).await;
    let took = started.elapsed();

    let statuses: Vec<u16> = replies.iter().map(|r| r.status.as_u16()).collect();
    assert!(
        statuses.iter().all(|s| *s == 200 || *s == 503),
        "only served or refused: {statuses:?}"
    );
    assert!(statuses.contains(&200), "the first pair is served: {statuses:?}");
    let refused: Vec<_> = replies.iter().filter(|r| r.status == 503).collect();
    assert!(
        !refused.is_empty(),
        "a full wait for the decoders refuses: {statuses:?}"
    );
    for reply in &refused {
        reply.assert_problem(503, "overloaded");
        let retry_after: u64 = reply.headers["retry-after"].to_str().unwrap().parse().unwrap();
        assert!(retry_after >= 1);
    }
    assert!(
        took < Duration::from_secs(20),
        "nobody waited for the deadline: {took:?}"
    );
    let metrics = server.get("/metrics").await.text;
    let line = format!("simverify_rejected_total{{reason=\"overloaded\"}} {}", refused.len());
    assert!(metrics.contains(&line), "{line} in\n{metrics}");
}

/// An upload refused before its body is read (here by the in-flight limit) still gets its 503: the server
/// drains the unread body before closing, instead of resetting the connection under the client's upload.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_upload_refused_before_its_body_is_read_still_gets_its_503() {
    let server = Server::start(&["--max-in-flight", "1"]).await;
    // The one place, taken by a request whose body never finishes arriving.
    let mut holder = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    holder
        .write_all(
            b"POST /compare HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: 999\r\n\r\n{",
        )
        .await
        .unwrap();
    let mut held = false;
    for _ in 0..100 {
        if server
            .post_raw("/compare", Some("application/json"), b"{}".to_vec())
            .await
            .status
            == 503
        {
            held = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(held, "the trickling request holds the only place");

    // Far more than the socket buffers hold: without the drain the client's upload meets a reset.
    let upload = vec![b' '; 24 << 20];
    let reply = server.post_raw("/compare", Some("application/json"), upload).await;
    reply.assert_problem(503, "overloaded");
    drop(holder);
}
