//! Every way a client can get a request wrong gets its status and stable `code` in the problem shape,
//! from the real server (with lowered limits so that "too large" is cheap to send).

use crate::common::{b64, digit, form, png, Reply, Server};
use image::GrayImage;
use serde_json::json;

/// Limits low enough to cross in a test, high enough for 28×28 digits.
const LIMITS: &[&str] = &[
    "--max-image-pixels",
    "4096",
    "--body-limit",
    "65536",
    "--max-images",
    "4",
];

async fn limited_server() -> Server {
    Server::start(LIMITS).await
}

/// PNG's CRC-32 (ISO 3309), for hand-made chunks.
fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for &byte in bytes {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// A valid PNG header that claims `width`×`height` pixels, with no pixel data behind it.
fn png_claiming(width: u32, height: u32) -> Vec<u8> {
    let mut ihdr = b"IHDR".to_vec();
    ihdr.extend_from_slice(&width.to_be_bytes());
    ihdr.extend_from_slice(&height.to_be_bytes());
    ihdr.extend_from_slice(&[8, 0, 0, 0, 0]);
    let mut bytes = b"\x89PNG\r\n\x1a\n".to_vec();
    bytes.extend_from_slice(&13u32.to_be_bytes());
    bytes.extend_from_slice(&ihdr);
    bytes.extend_from_slice(&crc32(&ihdr).to_be_bytes());
    bytes
}

/// A little-endian TIFF header: a real image format, just not one we accept.
const TIFF: &[u8] = b"II*\x00\x08\x00\x00\x00\x00\x00\x00\x00";

#[tokio::test]
async fn bad_images_are_refused_with_their_code() {
    let server = limited_server().await;
    let good = digit(5, 0);
    let mut truncated = good.clone();
    truncated.truncate(good.len() / 2);
    let mut png_garbage = b"\x89PNG\r\n\x1a\n".to_vec();
    png_garbage.extend_from_slice(&[0x42; 64]);
    let large = png(&GrayImage::new(100, 100));

    let cases: [(&str, &[u8], u16, &str); 8] = [
        ("empty part", b"", 422, "empty_image"),
        (
            "garbage bytes",
            b"\x00\x01\x02 definitely not an image \xff\xfe",
            422,
            "unsupported_image_format",
        ),
        (
            "text file",
            b"hello, I am a text file\n",
            422,
            "unsupported_image_format",
        ),
        ("TIFF", TIFF, 422, "unsupported_image_format"),
        ("PNG signature then garbage", &png_garbage, 422, "undecodable_image"),
        ("truncated PNG", &truncated, 422, "undecodable_image"),
        (
            "header claiming 100000x100000",
            &png_claiming(100_000, 100_000),
            422,
            "image_too_large",
        ),
        (
            "real 100x100 image over a 4096-pixel limit",
            &large,
            422,
            "image_too_large",
        ),
    ];
    for (name, bytes, status, code) in cases {
        let multipart = server.compare(&good, bytes).await;
        let json = server
            .post_json("/compare", &json!({ "image_a": b64(&good), "image_b": b64(bytes) }))
            .await;

        for reply in [multipart, json] {
            let problem = reply.assert_problem(status, code);
            assert!(
                problem["detail"].as_str().unwrap().contains("image_b"),
                "{name}: the detail names the image: {problem}"
            );
        }
    }
}

#[tokio::test]
async fn malformed_requests_are_refused_with_their_code() {
    let server = limited_server().await;
    let good = digit(5, 0);
    let big = vec![7u8; 100_000];
    let five: Vec<(&str, &[u8])> = (0..5).map(|_| ("images", good.as_slice())).collect();

    let cases: Vec<(&str, Reply, u16, &str)> = vec![
        (
            "missing part",
            server.post_form("/compare", form(&[("image_a", &good)])).await,
            422,
            "missing_image",
        ),
        (
            "missing JSON image",
            server.post_json("/compare", &json!({ "image_a": b64(&good) })).await,
            422,
            "missing_image",
        ),
        (
            "unknown part",
            server
                .post_form(
                    "/compare",
                    form(&[("image_a", &good), ("image_b", &good), ("imagec", &good)]),
                )
                .await,
            422,
            "invalid_request",
        ),
        (
            "repeated single part",
            server
                .post_form(
                    "/compare",
                    form(&[("image_a", &good), ("image_a", &good), ("image_b", &good)]),
                )
                .await,
            422,
            "invalid_request",
        ),
        (
            "multipart body over the limit",
            server
                .post_form("/compare", form(&[("image_a", &good), ("image_b", &big)]))
                .await,
            413,
            "body_too_large",
        ),
        (
            "JSON body over the limit",
            server
                .post_json("/compare", &json!({ "image_a": b64(&good), "image_b": b64(&big) }))
                .await,
            413,
            "body_too_large",
        ),
        (
            "text/plain",
            server.post_raw("/compare", Some("text/plain"), b"hi".to_vec()).await,
            415,
            "unsupported_media_type",
        ),
        (
            "no content type",
            server.post_raw("/embed", None, b"{}".to_vec()).await,
            415,
            "unsupported_media_type",
        ),
        (
            "image/png body",
            server.post_raw("/compare", Some("image/png"), good.clone()).await,
            415,
            "unsupported_media_type",
        ),
        (
            "malformed JSON",
            server
                .post_raw(
                    "/compare",
                    Some("application/json"),
                    b"{\"image_a\": {\"base64\": ".to_vec(),
                )
                .await,
            400,
            "malformed_json",
        ),
        (
            "JSON of the wrong shape",
            server
                .post_json("/compare", &json!({ "image_a": 5, "image_b": b64(&good) }))
                .await,
            422,
            "invalid_request",
        ),
        (
            "unknown JSON field",
            server
                .post_json(
                    "/compare",
                    &json!({ "image_a": b64(&good), "image_b": b64(&good), "imagec": 1 }),
                )
                .await,
            422,
            "invalid_request",
        ),
        (
            "bad base64",
            server
                .post_json(
                    "/compare",
                    &json!({ "image_a": b64(&good), "image_b": { "base64": "@@not base64@@" } }),
                )
                .await,
            400,
            "invalid_base64",
        ),
        (
            "multipart without a boundary",
            server
                .post_raw("/compare", Some("multipart/form-data"), b"--x\r\n".to_vec())
                .await,
            400,
            "malformed_multipart",
        ),
        (
            "negative threshold",
            server
                .post_form(
                    "/compare",
                    form(&[("image_a", &good), ("image_b", &good), ("threshold", b"-1")]),
                )
                .await,
            422,
            "invalid_threshold",
        ),
        (
            "threshold not a number",
            server
                .post_form(
                    "/verify",
                    form(&[("candidate", &good), ("references", &good), ("threshold", b"NaN")]),
                )
                .await,
            422,
            "invalid_threshold",
        ),
        (
            "unknown aggregate",
            server
                .post_json(
                    "/verify",
                    &json!({ "candidate": b64(&good), "references": [b64(&good)], "aggregate": "max" }),
                )
                .await,
            422,
            "invalid_request",
        ),
        (
            "verify without references",
            server.post_json("/verify", &json!({ "candidate": b64(&good) })).await,
            422,
            "missing_image",
        ),
        (
            "verify with an empty reference list",
            server.post_form("/verify", form(&[("candidate", &good)])).await,
            422,
            "missing_image",
        ),
        (
            "embed without images",
            server.post_json("/embed", &json!({ "images": [] })).await,
            422,
            "missing_image",
        ),
        (
            "too many multipart images",
            server.post_form("/embed", form(&five)).await,
            422,
            "too_many_images",
        ),
        (
            "too many JSON images",
            server
                .post_json("/embed", &json!({ "images": vec![b64(&good); 5] }))
                .await,
            422,
            "too_many_images",
        ),
        ("unknown route", server.get("/nope").await, 404, "not_found"),
        ("wrong method", server.get("/compare").await, 405, "method_not_allowed"),
    ];
    for (name, reply, status, code) in cases {
        eprintln!("case: {name}");
        reply.assert_problem(status, code);
    }
}

#[tokio::test]
async fn an_unknown_model_is_404_naming_the_models_that_exist() {
    let server = limited_server().await;
    let good = digit(5, 0);

    let multipart = server
        .post_form(
            "/compare",
            form(&[("image_a", &good), ("image_b", &good), ("model", b"faces")]),
        )
        .await;
    let json = server
        .post_json("/embed", &json!({ "images": [b64(&good)], "model": "faces" }))
        .await;

    for reply in [multipart, json] {
        let problem = reply.assert_problem(404, "unknown_model");
        let detail = problem["detail"].as_str().unwrap();
        assert!(detail.contains("faces") && detail.contains("mnist"), "{detail}");
    }
}

#[tokio::test]
async fn request_ids_are_echoed_and_refusals_counted() {
    let server = limited_server().await;

    let reply = server
        .client
        .post(server.url("/compare"))
        .header("x-request-id", "client-chosen-id-42")
        .header("content-type", "text/plain")
        .body("hi")
        .send()
        .await
        .unwrap();
    let echoed = reply.headers()["x-request-id"].to_str().unwrap().to_string();
    let body: serde_json::Value = reply.json().await.unwrap();
    let hostile = server
        .client
        .get(server.url("/nope"))
        .header("x-request-id", "a\"b<script>")
        .send()
        .await
        .unwrap();
    let metrics = server.get("/metrics").await;

    assert_eq!(echoed, "client-chosen-id-42");
    assert_eq!(body["request_id"], "client-chosen-id-42");
    let replaced = hostile.headers()["x-request-id"].to_str().unwrap();
    assert!(
        !replaced.contains('<') && !replaced.is_empty(),
        "an unsafe id is replaced: {replaced}"
    );
    assert!(
        metrics
            .text
            .contains("simverify_rejected_total{reason=\"unsupported_media_type\"} 1"),
        "{}",
        metrics.text
    );
    assert!(
        metrics
            .text
            .contains("simverify_http_request_duration_seconds_count{route=\"/compare\",status=\"415\"} 1"),
        "{}",
        metrics.text
    );
    assert!(
        metrics.text.contains("route=\"unmatched\",status=\"404\""),
        "{}",
        metrics.text
    );
}
