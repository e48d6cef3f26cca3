//! Images by URL end to end: the real server fetching from a loopback HTTP server that serves images,
//! redirects (to itself and to forbidden places), trickles bytes, streams without end and serves text;
//! and the SSRF guard refusing loopback in every spelling when no allow-list vouches for it.

use std::future::IntoFuture;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::common::{assert_close, b64, digit, Server};
use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde_json::{json, Value};

/// A loopback HTTP server with the pages the tests fetch; counts the requests it is sent.
struct ImageServer {
    port: u16,
    hits: Arc<AtomicUsize>,
}

#[derive(Clone)]
struct Pages {
    a: Bytes,
    b: Bytes,
}

impl ImageServer {
    async fn start() -> ImageServer {
        let hits = Arc::new(AtomicUsize::new(0));
        let pages = Pages {
            a: digit(3, 0).into(),
            b: digit(3, 1).into(),
        };
        let app =
            Router::new()
                .route("/a.png", get(|State(p): State<Pages>| async move { p.a }))
                .route("/b.png", get(|State(p): State<Pages>| async move { p.b }))
                .route("/redirect/{hops}", get(redirect_chain))
                .route("/to", get(redirect_to))
                .route("/trickle", get(trickle))
                .route("/endless", get(endless))
                .route("/text", get(|| async { "secret-internal-text: this is not an image" }))
                .route("/missing", get(|| async { StatusCode::NOT_FOUND }))
                .layer(axum::middleware::from_fn_with_state(
                    Arc::clone(&hits),
                    |State(hits): State<Arc<AtomicUsize>>,
                     req: axum::extract::Request,
                     next: axum::middleware::Next| async move {
                        hits.fetch_add(1, Ordering::SeqCst);
                        next.run(req).await
                    },
                ))
                .with_state(pages);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(axum::serve(listener, app).into_future());
        ImageServer { port, hits }
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    fn port(&self) -> String {
        self.port.to_string()
    }

    fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

/// `/redirect/N`: N redirects in all, the last to `/b.png`.
async fn redirect_chain(Path(hops): Path<u32>) -> Response {
    let next = if hops <= 1 {
        "/b.png".to_string()
    } else {
        format!("/redirect/{}", hops - 1)
    };
    (StatusCode::FOUND, [(header::LOCATION, next)]).into_response()
}

/// `/to?location=...`: one redirect to anywhere.
async fn redirect_to(Query(query): Query<std::collections::HashMap<String, String>>) -> Response {
    (StatusCode::FOUND, [(header::LOCATION, query["location"].clone())]).into_response()
}

/// A PNG signature, then one byte every 200 ms, for ever.
async fn trickle() -> Response {
    let stream = futures::stream::unfold(0u64, |n| async move {
        if n > 0 {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        Some((Ok::<_, std::io::Error>(Bytes::from_static(b"\x89")), n + 1))
    });
    ([(header::CONTENT_TYPE, "image/png")], Body::from_stream(stream)).into_response()
}

/// 64 KiB chunks without end, and no Content-Length.
async fn endless() -> Response {
    let chunk = Bytes::from(vec![0u8; 64 * 1024]);
    let stream = futures::stream::repeat_with(move || Ok::<_, std::io::Error>(chunk.clone()));
    ([(header::CONTENT_TYPE, "image/png")], Body::from_stream(stream)).into_response()
}

fn url(u: &str) -> Value {
    json!({ "url": u })
}

/// A server that fetches URLs from the image server (and nothing else) within 1.5 s and 1 MB.
async fn fetching_server(images: &ImageServer) -> Server {
    Server::start(&[
        "--allow-url-inputs",
        "--url-allow-hosts",
        "127.0.0.1",
        "--url-allow-ports",
        &images.port(),
        "--url-fetch-timeout-ms",
        "1500",
        "--body-limit",
        "1000000",
    ])
    .await
}

#[tokio::test]
async fn an_image_by_url_gets_the_same_answer_as_the_same_image_uploaded() {
    let images = ImageServer::start().await;
    let server = fetching_server(&images).await;
    let (a, b) = (digit(3, 0), digit(3, 1));

    let uploaded = server.compare(&a, &b).await.ok();
    let by_url = server
        .post_json(
            "/compare",
            &json!({ "image_a": url(&images.url("/a.png")), "image_b": url(&images.url("/b.png")) }),
        )
        .await
        .ok();
    let mixed = server
        .post_json(
            "/compare",
            &json!({ "image_a": b64(&a), "image_b": url(&images.url("/redirect/3")) }),
        )
        .await
        .ok();
    let embedded = server
        .post_json("/embed", &json!({ "images": [url(&images.url("/a.png")), b64(&a)] }))
        .await
        .ok();

    for answer in [&by_url, &mixed] {
        assert_close(
            uploaded["distance"].as_f64().unwrap() as f32,
            answer["distance"].as_f64().unwrap() as f32,
            1e-5,
            "distance",
        );
        assert_eq!(uploaded["match"], answer["match"]);
    }
    assert_eq!(embedded["embeddings"][0], embedded["embeddings"][1], "{embedded}");
}

#[tokio::test]
async fn every_redirect_hop_is_checked_and_at_most_three_are_followed() {
    let images = ImageServer::start().await;
    let server = fetching_server(&images).await;
    let port = images.port;

    for (target, code) in [
        (format!("http://localhost:{port}/a.png"), "url_forbidden"),
        (format!("http://127.0.0.2:{port}/a.png"), "url_forbidden"),
        (
            format!("http://169.254.169.254:{port}/latest/meta-data/"),
            "url_forbidden",
        ),
        ("http://169.254.169.254/latest/meta-data/".to_string(), "url_forbidden"),
        ("file:///etc/passwd".to_string(), "url_forbidden"),
    ] {
        let via = images.url(&format!("/to?location={}", urlencode(&target)));
        let reply = server.post_json("/embed", &json!({ "images": [url(&via)] })).await;

        let body = reply.assert_problem(422, code);
        assert!(body["detail"].as_str().unwrap().starts_with("images[0]"), "{body}");
    }

    let reply = server
        .post_json("/embed", &json!({ "images": [url(&images.url("/redirect/4"))] }))
        .await;
    let body = reply.assert_problem(422, "url_fetch_failed");
    assert!(body["detail"].as_str().unwrap().contains("redirects"), "{body}");
}

#[tokio::test]
async fn slow_endless_missing_and_non_image_bodies_are_refused() {
    let images = ImageServer::start().await;
    let server = fetching_server(&images).await;
    let fetch = |path: &str| {
        let body = json!({ "image_a": url(&images.url(path)), "image_b": url(&images.url("/a.png")) });
        let server = &server;
        async move { server.post_json("/compare", &body).await }
    };

    let started = std::time::Instant::now();
    fetch("/trickle").await.assert_problem(422, "url_timeout");
    assert!(started.elapsed() < Duration::from_secs(5), "{:?}", started.elapsed());

    fetch("/endless").await.assert_problem(422, "url_too_large");
    fetch("/missing").await.assert_problem(422, "url_fetch_failed");
    let text = fetch("/text").await;
    assert!(text.status == 422, "{}", text.text);
    let body = text.json();
    assert!(
        ["undecodable_image", "unsupported_image_format"].contains(&body["code"].as_str().unwrap()),
        "{body}"
    );
    assert!(!text.text.contains("secret-internal-text"), "{body}");
}

#[tokio::test]
async fn without_an_allow_list_loopback_is_refused_in_every_spelling_and_nothing_is_fetched() {
    let images = ImageServer::start().await;
    let port = images.port;
    let server = Server::start(&["--allow-url-inputs", "--url-allow-ports", &images.port()]).await;

    for target in [
        format!("http://127.0.0.1:{port}/a.png"),
        format!("http://2130706433:{port}/a.png"),
        format!("http://0177.0.0.1:{port}/a.png"),
        format!("http://127.1:{port}/a.png"),
        format!("http://[::ffff:127.0.0.1]:{port}/a.png"),
        format!("http://[::1]:{port}/a.png"),
        format!("http://0.0.0.0:{port}/a.png"),
        format!("http://[::]:{port}/a.png"),
        // Names are checked by what they resolve to: this one resolves to loopback only.
        format!("http://localhost:{port}/a.png"),
        format!("http://LOCALHOST.:{port}/a.png"),
        // Ports outside the allow-list, before any address is looked at.
        "http://example.com:22/a.png".to_string(),
    ] {
        let reply = server
            .post_json("/compare", &json!({ "image_a": url(&target), "image_b": url(&target) }))
            .await;

        assert_eq!(reply.json()["code"], "url_forbidden", "{target}: {}", reply.text);
        let body = reply.assert_problem(422, "url_forbidden");
        assert!(!body["detail"].as_str().unwrap().contains("127."), "{body}");
    }
    assert_eq!(images.hits(), 0, "the guard let a request through");

    drop(server);
    let closed = Server::start(&[]).await;
    let reply = closed
        .post_json(
            "/compare",
            &json!({ "image_a": url("https://example.com/a.png"), "image_b": b64(&digit(1, 0)) }),
        )
        .await;
    reply.assert_problem(422, "url_forbidden");
}

#[tokio::test]
async fn an_image_is_base64_or_a_url_not_both() {
    let server = Server::start(&[]).await;

    let reply = server
        .post_json(
            "/embed",
            &json!({ "images": [{ "base64": "aGk=", "url": "https://example.com/a.png" }] }),
        )
        .await;

    reply.assert_problem(422, "invalid_request");
}

/// Percent-encodes a URL for a query string (enough for the characters these tests use).
fn urlencode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}
