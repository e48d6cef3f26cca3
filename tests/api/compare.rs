//! `POST /compare` end to end: the real server, the real `mnist` model, held-out test digits.

use crate::common::{assert_close, b64, digit, form, inverted_digit, Server};
use serde_json::json;

/// Same-digit pairs match and different-digit pairs do not, on held-out digits (the model is about 98%
/// accurate there, so a few of the 40 pairs may fall on the wrong side, not more).
#[tokio::test]
async fn same_digits_match_and_different_digits_do_not() {
    let server = Server::start(&[]).await;
    let mut same_matched = 0;
    let mut different_matched = 0;

    for label in 0..10 {
        for nth in 0..2 {
            let same = server
                .compare(&digit(label, 2 * nth), &digit(label, 2 * nth + 1))
                .await
                .ok();
            let different = server
                .compare(&digit(label, nth), &digit((label + 1 + nth) % 10, nth))
                .await
                .ok();
            same_matched += usize::from(same["match"] == true);
            different_matched += usize::from(different["match"] == true);
            for answer in [&same, &different] {
                let (distance, threshold) = (
                    answer["distance"].as_f64().unwrap(),
                    answer["threshold"].as_f64().unwrap(),
                );
                assert_eq!(answer["match"], distance < threshold, "{answer}");
                assert_eq!(answer["model"], "mnist");
                let score = answer["score"].as_f64().unwrap();
                assert!((0.0..=1.0).contains(&score), "{answer}");
            }
        }
    }

    assert!(same_matched >= 18, "only {same_matched}/20 same-digit pairs matched");
    assert!(
        different_matched <= 2,
        "{different_matched}/20 different-digit pairs matched"
    );
}

#[tokio::test]
async fn multipart_and_base64_json_give_the_same_answer() {
    let server = Server::start(&[]).await;
    let (a, b) = (digit(3, 0), digit(3, 1));

    let multipart = server.compare(&a, &b).await.ok();
    let json = server
        .post_json("/compare", &json!({ "image_a": b64(&a), "image_b": b64(&b) }))
        .await
        .ok();

    assert_close(
        multipart["distance"].as_f64().unwrap() as f32,
        json["distance"].as_f64().unwrap() as f32,
        1e-5,
        "distance",
    );
    assert_eq!(multipart["match"], json["match"]);
    assert_eq!(multipart["threshold"], json["threshold"]);
}

#[tokio::test]
async fn a_dark_on_light_digit_gets_the_same_decision_as_the_original() {
    let server = Server::start(&[]).await;

    for (a, b) in [((7, 0), (7, 1)), ((2, 0), (5, 0))] {
        let original = server.compare(&digit(a.0, a.1), &digit(b.0, b.1)).await.ok();
        let inverted = server.compare(&inverted_digit(a.0, a.1), &digit(b.0, b.1)).await.ok();

        assert_eq!(original["match"], inverted["match"], "{original} vs {inverted}");
        assert_close(
            original["distance"].as_f64().unwrap() as f32,
            inverted["distance"].as_f64().unwrap() as f32,
            1e-4,
            "distance after inversion",
        );
    }
}

#[tokio::test]
async fn a_threshold_override_decides_and_is_reported() {
    let server = Server::start(&[]).await;
    let (a, b) = (digit(4, 0), digit(9, 0));

    let lenient = server
        .post_form(
            "/compare",
            form(&[
                ("image_a", &a),
                ("image_b", &b),
                ("threshold", b"1000"),
                ("model", b"mnist"),
            ]),
        )
        .await
        .ok();
    let strict = server
        .post_json(
            "/compare",
            &json!({ "image_a": b64(&a), "image_b": b64(&b), "threshold": 0.0 }),
        )
        .await
        .ok();

    assert_eq!(lenient["threshold"], 1000.0);
    assert_eq!(lenient["match"], true);
    assert_eq!(strict["threshold"], 0.0);
    assert_eq!(strict["match"], false);
    let number = |v: &serde_json::Value, k: &str| v[k].as_f64().unwrap() as f32;
    assert_close(
        number(&lenient, "distance"),
        number(&strict, "distance"),
        1e-5,
        "the threshold leaves the distance alone",
    );
    assert_close(
        number(&lenient, "score"),
        number(&strict, "score"),
        1e-5,
        "and the calibrated score",
    );
}
