//! Slow and abusive clients: connections that trickle their headers are closed by the header read timeout
//! without slowing a normal client; a trickled body gets 408; the connection limit holds new clients in
//! the backlog; a keep-alive connection closes after its request limit and when idle too long.

use std::time::{Duration, Instant};

use crate::common::{digit, Server};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const TRICKLERS: usize = 200;

/// `POST /compare` with two digits; returns how long the answer took.
async fn timed_compare(server: &Server, a: &[u8], b: &[u8]) -> Duration {
    let started = Instant::now();
    let reply = server.compare(a, b).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    started.elapsed()
}

fn percentile(samples: &mut [Duration], p: f64) -> Duration {
    samples.sort();
    samples[((samples.len() - 1) as f64 * p).round() as usize]
}

/// Opens a connection, then sends a request head one byte per second until the server closes it;
/// returns how long after connecting it was closed, or `None` if it was still open after `give_up`.
async fn trickle(addr: std::net::SocketAddr, give_up: Duration) -> Option<Duration> {
    let mut stream = TcpStream::connect(addr).await.expect("the server accepts");
    let started = Instant::now();
    let head = b"POST /compare HTTP/1.1\r\nHost: simverify\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    let mut buf = [0u8; 1024];
    for byte in head.iter().cycle() {
        if started.elapsed() > give_up {
            return None;
        }
        if stream.write_all(&[*byte]).await.is_err() {
            return Some(started.elapsed());
        }
        // A closed connection reads as end of stream (or a reset) at once; an open one times out.
        match tokio::time::timeout(Duration::from_secs(1), stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return Some(started.elapsed()),
            Ok(Ok(_)) | Err(_) => {}
        }
    }
    unreachable!("the head cycles for ever")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trickling_connections_are_closed_by_the_header_timeout_and_do_not_slow_a_normal_client() {
    let header_timeout = Duration::from_secs(2);
    let server = Server::start(&["--header-read-timeout-ms", "2000"]).await;
    let (a, b) = (digit(3, 0), digit(3, 1));
    for _ in 0..5 {
        timed_compare(&server, &a, &b).await; // Warm the client's connection and the allocator.
    }
    let mut before: Vec<Duration> = Vec::new();
    for _ in 0..20 {
        before.push(timed_compare(&server, &a, &b).await);
    }

    let tricklers: Vec<_> = (0..TRICKLERS)
        .map(|_| tokio::spawn(trickle(server.addr, Duration::from_secs(10))))
        .collect();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut during: Vec<Duration> = Vec::new();
    let measuring = Instant::now();
    while measuring.elapsed() < Duration::from_millis(1200) {
        during.push(timed_compare(&server, &a, &b).await);
    }
    let mut closed = Vec::new();
    for trickler in tricklers {
        closed.push(trickler.await.expect("the trickler does not panic"));
    }

    let (p50_before, p99_before) = (percentile(&mut before, 0.5), percentile(&mut before, 0.99));
    let (p50_during, p99_during) = (percentile(&mut during, 0.5), percentile(&mut during, 0.99));
    let closed: Vec<Duration> = closed
        .into_iter()
        .map(|c| c.expect("every trickling connection is closed within 10 s"))
        .collect();
    let (first, last) = (closed.iter().min().unwrap(), closed.iter().max().unwrap());
    println!(
        "normal client, /compare: alone p50 {p50_before:?} p99 {p99_before:?}; beside {TRICKLERS} trickling \
         connections p50 {p50_during:?} p99 {p99_during:?} ({} requests); tricklers closed after {first:?} to {last:?}",
        during.len()
    );
    assert!(
        p50_during <= p50_before * 3 + Duration::from_millis(20),
        "the normal client slowed from {p50_before:?} to {p50_during:?}"
    );
    assert!(
        *first >= header_timeout - Duration::from_millis(100),
        "closed before the timeout: {first:?}"
    );
    assert!(
        *last <= header_timeout + Duration::from_millis(1500),
        "closed late: {last:?}"
    );
}

/// Sends `request` on a fresh connection and reads until the server closes it.
async fn exchange(stream: &mut TcpStream, request: &[u8]) -> String {
    stream.write_all(request).await.unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut answer))
        .await
        .expect("the server closes the connection")
        .expect("the answer reads");
    String::from_utf8_lossy(&answer).into_owned()
}

#[tokio::test]
async fn a_trickled_body_is_answered_408_and_the_connection_closed() {
    let server = Server::start(&["--body-read-timeout-ms", "300"]).await;
    let mut stream = TcpStream::connect(server.addr).await.unwrap();

    let started = Instant::now();
    let answer = exchange(
        &mut stream,
        b"POST /compare HTTP/1.1\r\nHost: simverify\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"image_a\"",
    )
    .await;

    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("\"code\":\"body_timeout\""), "{answer}");
    assert!(started.elapsed() < Duration::from_secs(3), "{:?}", started.elapsed());
}

#[tokio::test]
async fn a_keep_alive_connection_closes_after_its_request_limit() {
    let server = Server::start(&["--max-requests-per-connection", "2"]).await;
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    let one = "GET /health HTTP/1.1\r\nHost: simverify\r\n\r\n";

    let answer = exchange(&mut stream, one.repeat(3).as_bytes()).await;

    assert_eq!(answer.matches("HTTP/1.1 200").count(), 2, "{answer}");
    assert_eq!(
        answer.to_ascii_lowercase().matches("connection: close").count(),
        1,
        "{answer}"
    );
}

#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed_after_the_header_timeout() {
    let server = Server::start(&["--header-read-timeout-ms", "500"]).await;
    let mut stream = TcpStream::connect(server.addr).await.unwrap();

    let started = Instant::now();
    let answer = exchange(&mut stream, b"GET /health HTTP/1.1\r\nHost: simverify\r\n\r\n").await;

    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    let idle = started.elapsed();
    assert!(
        idle >= Duration::from_millis(450) && idle < Duration::from_secs(3),
        "{idle:?}"
    );
}

#[tokio::test]
async fn past_the_connection_limit_new_clients_wait_until_one_closes() {
    let server = Server::start(&["--max-connections", "3"]).await;
    // A client of its own, with no pooled connection; `server.client`'s, left from the readiness polls,
    // may hold a slot too: then three more fill the server all the more.
    let client = reqwest::Client::builder()
        .timeout(Duration::from_millis(500))
        .build()
        .unwrap();
    let idle: Vec<TcpStream> = futures::future::join_all((0..3).map(|_| TcpStream::connect(server.addr)))
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    let blocked = client.get(server.url("/health")).send().await;

    drop(idle);
    let served = client.get(server.url("/health")).send().await;

    assert!(blocked.is_err(), "a fourth connection was served: {blocked:?}");
    assert_eq!(served.expect("served once a slot is free").status(), 200);
}
