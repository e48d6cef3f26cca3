//! The engine's batching, deadlines, overload and failures seen through the real server and real HTTP,
//! on a stand-in for the network whose speed and failures each test decides (`common::stand_in`).

use std::time::{Duration, Instant};

use crate::common::stand_in::StandIn;
use crate::common::{b64, digit, Server};
use futures::future::join_all;
use serde_json::json;

/// Requests that arrive while a batch fills travel in one batch, and each caller gets the rows of its
/// own image: the same answer it gets alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_requests_share_batches_and_each_gets_its_own_answer() {
    let stand_in = StandIn::mnist(Duration::from_millis(50));
    let server = Server::start_on(&stand_in, &["--max-batch-size", "8", "--max-batch-wait-ms", "200"]).await;
    let embed = |n: usize| {
        let server = &server;
        async move {
            server
                .post_json("/embed", &json!({ "images": [b64(&digit(n, 0))] }))
                .await
                .ok()
        }
    };
    let warmed = stand_in.batch_sizes().len();

    let together = join_all((0..8).map(embed)).await;
    let batched = stand_in.batch_sizes()[warmed..].to_vec();
    let alone = embed(3).await;

    assert!(
        batched.len() < 8 && batched.iter().sum::<usize>() == 8,
        "batch sizes: {batched:?}"
    );
    assert_eq!(together[3]["embeddings"], alone["embeddings"]);
    for (i, a) in together.iter().enumerate() {
        for b in &together[i + 1..] {
            assert_ne!(a["embeddings"], b["embeddings"], "each caller has its own rows");
        }
    }
}

/// A batch that fails or panics answers 500 `inference_failed` to its callers; the worker lives on and
/// the next batch is served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_or_panicking_batch_answers_500_and_the_next_is_served() {
    let stand_in = StandIn::mnist(Duration::ZERO);
    let server = Server::start_on(&stand_in, &[]).await;
    let (a, b) = (digit(1, 0), digit(7, 0));

    stand_in.fail();
    server.compare(&a, &b).await.assert_problem(500, "inference_failed");
    stand_in.panic();
    server.compare(&a, &b).await.assert_problem(500, "inference_failed");
    stand_in.work();
    let served = server.compare(&a, &b).await.ok();

    assert_eq!(served["model"], "mnist");
    assert!(server.get("/ready").await.status.is_success(), "still ready");
}

/// A forward pass slower than the request's deadline answers 504 `deadline_exceeded` at the deadline,
/// without waiting for the pass to end.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forward_pass_past_the_deadline_answers_504_at_the_deadline() {
    let stand_in = StandIn::mnist(Duration::from_millis(2000));
    // The warm-up batch takes the 2 s too; only then is the server ready.
    let server = Server::start_on(&stand_in, &["--request-deadline-ms", "500"]).await;

    let started = Instant::now();
    let reply = server.compare(&digit(1, 0), &digit(2, 0)).await;
    let took = started.elapsed();

    reply.assert_problem(504, "deadline_exceeded");
    assert!(
        took < Duration::from_millis(1500),
        "answered at the deadline, not after the pass: {took:?}"
    );
}

/// The queue holds one pair while a slow batch runs: every other request finds it full and is refused
/// at once with 503 `overloaded` and a `Retry-After`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_queue_answers_503_with_retry_after_at_once() {
    let stand_in = StandIn::mnist(Duration::from_millis(300));
    let server = Server::start_on(&stand_in, &["--queue-capacity", "2", "--max-batch-size", "2"]).await;
    let (a, b) = (digit(1, 0), digit(1, 1));

    let replies = join_all((0..16).map(|_| server.compare(&a, &b))).await;

    let refused: Vec<_> = replies.iter().filter(|r| r.status == 503).collect();
    assert!(
        replies.iter().all(|r| r.status == 200 || r.status == 503),
        "{replies:?}"
    );
    assert!(replies.iter().any(|r| r.status == 200), "the first pair is served");
    assert!(!refused.is_empty(), "a full queue refuses");
    for reply in refused {
        reply.assert_problem(503, "overloaded");
        let retry_after: u64 = reply.headers["retry-after"].to_str().unwrap().parse().unwrap();
        assert!(retry_after >= 1);
    }
}
