//! Search and verify by subject on a real server with its own SQLite store: the enrolled duplicate comes
//! first, verifying by subject equals verifying by the same references, stale embeddings are refused
//! until `simverify reindex` re-embeds the kept images (or they are re-enrolled), concurrent enrolments
//! and searches all land, and the metrics count them.

use crate::common::{assert_close, b64, config, digit, form, DataDir, Server};
use serde_json::json;

async fn server(data: &DataDir) -> Server {
    Server::start(&["--data-dir", data.path()]).await
}

#[tokio::test]
async fn search_answers_the_enrolled_duplicate_first() {
    let data = DataDir::default();
    let server = server(&data).await;
    let mut enrolled = Vec::new();
    for label in 0..10 {
        let ids = server
            .enrol(&format!("digit-{label}"), &[&digit(label, 0), &digit(label, 1)])
            .await;
        enrolled.push(ids);
    }

    let reply = server
        .post_json("/search", &json!({ "image": b64(&digit(7, 1)), "k": 5 }))
        .await;

    let body = reply.ok();
    assert_eq!(body["model"], "mnist");
    let results = body["results"].as_array().unwrap();
    assert_eq!(results.len(), 5);
    assert_eq!(results[0]["subject"], "digit-7");
    assert_eq!(results[0]["image_id"], enrolled[7][1].as_str());
    assert!(results[0]["distance"].as_f64().unwrap() < 1e-3, "{body}");
    assert_eq!(results[0]["match"], true);
    let distances: Vec<f64> = results.iter().map(|r| r["distance"].as_f64().unwrap()).collect();
    assert!(
        distances.windows(2).all(|w| w[0] <= w[1]),
        "nearest first: {distances:?}"
    );

    // Multipart, with a subject filter and a threshold.
    let filtered = server
        .post_form(
            "/search",
            form(&[
                ("image", &digit(7, 1)),
                ("subjects", b"digit-2, digit-3"),
                ("k", b"10"),
                ("threshold", b"0"),
            ]),
        )
        .await
        .ok();
    let results = filtered["results"].as_array().unwrap();
    assert_eq!(results.len(), 4);
    assert!(results
        .iter()
        .all(|r| r["subject"] == "digit-2" || r["subject"] == "digit-3"));
    assert!(results.iter().all(|r| r["match"] == false));

    // Bad searches.
    for (body, code) in [
        (json!({ "image": b64(&digit(1, 0)), "k": 0 }), "invalid_request"),
        (json!({ "image": b64(&digit(1, 0)), "k": 101 }), "invalid_request"),
        (json!({ "k": 3 }), "missing_image"),
        (json!({ "image": b64(&digit(1, 0)), "subjects": ["a b"] }), "invalid_id"),
        (
            json!({ "image": b64(&digit(1, 0)), "threshold": -1 }),
            "invalid_threshold",
        ),
    ] {
        server.post_json("/search", &body).await.assert_problem(422, code);
    }
    server
        .post_json("/search", &json!({ "image": b64(&digit(1, 0)), "model": "faces" }))
        .await
        .assert_problem(404, "unknown_model");

    // The metrics count the catalogue and time the searches.
    let metrics = server.get("/metrics").await.text;
    assert!(
        metrics.contains("simverify_enrolled_images{model=\"mnist\"} 20"),
        "{metrics}"
    );
    assert!(
        metrics.contains("simverify_search_duration_seconds_count 2"),
        "{metrics}"
    );
}

#[tokio::test]
async fn verifying_by_subject_equals_verifying_by_the_same_references() {
    let data = DataDir::default();
    let server = server(&data).await;
    let references = [digit(6, 1), digit(6, 2), digit(0, 0)];
    let ids = server
        .enrol("signer", &references.iter().map(Vec::as_slice).collect::<Vec<_>>())
        .await;

    for aggregate in ["min", "mean"] {
        let inline = server
            .post_json(
                "/verify",
                &json!({
                    "candidate": b64(&digit(6, 0)),
                    "references": references.iter().map(|r| b64(r)).collect::<Vec<_>>(),
                    "aggregate": aggregate,
                }),
            )
            .await
            .ok();
        let by_subject = server
            .post_json(
                "/verify",
                &json!({ "candidate": b64(&digit(6, 0)), "subject": "signer", "aggregate": aggregate }),
            )
            .await
            .ok();

        assert_eq!(inline["verified"], by_subject["verified"]);
        assert_eq!(by_subject["subject"], "signer");
        assert_close(
            inline["distance"].as_f64().unwrap() as f32,
            by_subject["distance"].as_f64().unwrap() as f32,
            1e-6,
            aggregate,
        );
        for (i, id) in ids.iter().enumerate() {
            let a = inline["distances"][i].as_f64().unwrap() as f32;
            assert_close(a, by_subject["distances"][i].as_f64().unwrap() as f32, 1e-6, "in order");
            assert_close(
                a,
                by_subject["distances_by_image"][id].as_f64().unwrap() as f32,
                1e-6,
                "by id",
            );
        }
    }

    // Multipart takes the subject as a text field.
    let multipart = server
        .post_form("/verify", form(&[("candidate", &digit(6, 0)), ("subject", b"signer")]))
        .await
        .ok();
    assert_eq!(multipart["subject"], "signer");

    // Exactly one of subject and references; the subject must exist and have images of the model.
    let candidate = b64(&digit(6, 0));
    server
        .post_json(
            "/verify",
            &json!({ "candidate": candidate, "subject": "signer", "references": [b64(&digit(6, 1))] }),
        )
        .await
        .assert_problem(422, "invalid_request");
    server
        .post_json("/verify", &json!({ "candidate": candidate }))
        .await
        .assert_problem(422, "missing_image");
    server
        .post_json("/verify", &json!({ "candidate": candidate, "subject": "nobody" }))
        .await
        .assert_problem(404, "unknown_subject");
    server
        .post_json("/verify", &json!({ "candidate": candidate, "subject": "no/body" }))
        .await
        .assert_problem(422, "invalid_id");
    server.put_empty("/subjects/empty").await;
    server
        .post_json("/verify", &json!({ "candidate": candidate, "subject": "empty" }))
        .await
        .assert_problem(422, "no_enrolled_images");
}

#[tokio::test]
async fn embeddings_of_other_weights_are_refused_until_re_enrolled() {
    let data = DataDir::default();
    {
        let server = server(&data).await;
        server.enrol("old", &[&digit(2, 0)]).await;
    }
    retire_weights(&data).await;

    let server = server(&data).await;

    let query = json!({ "image": b64(&digit(2, 0)) });
    let refused = server
        .post_json("/search", &query)
        .await
        .assert_problem(409, "stale_embeddings");
    assert!(refused["detail"].as_str().unwrap().contains("1 of 1"), "{refused}");
    server
        .post_json("/verify", &json!({ "candidate": b64(&digit(2, 0)), "subject": "old" }))
        .await
        .assert_problem(409, "stale_embeddings");
    // Re-enrolment: the stale subject goes, a fresh one comes; search answers again.
    assert_eq!(server.delete("/subjects/old").await.status, 204);
    server.enrol("new", &[&digit(2, 0)]).await;
    let results = server.post_json("/search", &query).await.ok()["results"].clone();
    assert_eq!(results[0]["subject"], "new");
}

/// The model's weights change: here, the stored hash no longer matches the loaded weights.
async fn retire_weights(data: &DataDir) {
    let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", data.store_file().display()))
        .await
        .unwrap();
    sqlx::query("UPDATE images SET weights_sha256 = 'retired-weights'")
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;
}

/// `simverify reindex` on the store in `data_dir` with the test models; answers its exit status and stdout.
fn reindex(data_dir: &str) -> (bool, String) {
    let models = config(&["--data-dir", data_dir]).model_dir;
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_simverify"))
        .args(["reindex", "--model", "mnist", "--data-dir", data_dir, "--device", "cpu"])
        .args(["--workers", "1", "--torch-threads", "1", "--model-dir"])
        .arg(models)
        .env("RUST_LOG", "warn")
        .output()
        .expect("the simverify binary runs");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    eprintln!("{}", String::from_utf8_lossy(&output.stderr));
    (output.status.success(), stdout)
}

#[tokio::test]
async fn reindex_re_embeds_kept_images_after_a_weights_change() {
    let data = DataDir::default();
    let kept = {
        let server = Server::start(&["--data-dir", data.path(), "--keep-images"]).await;
        let mut ids = server.enrol("kept", &[&digit(2, 0)]).await;
        let multipart = server
            .post_form("/subjects/kept/images", form(&[("images", &digit(2, 1))]))
            .await;
        assert_eq!(multipart.status, 201, "{}", multipart.text);
        ids.push(multipart.json()["image_ids"][0].as_str().unwrap().to_string());
        ids
    };
    // Enrolled without --keep-images: only re-enrolment can refresh it.
    server(&data).await.enrol("bare", &[&digit(3, 0)]).await;
    retire_weights(&data).await;
    let server = server(&data).await;
    let query = json!({ "image": b64(&digit(2, 1)), "k": 1 });
    server
        .post_json("/search", &query)
        .await
        .assert_problem(409, "stale_embeddings");

    // Beside the running server, which follows the store's change log.
    let data_dir = data.path().to_string();
    let (ok, report) = tokio::task::spawn_blocking(move || reindex(&data_dir)).await.unwrap();

    assert!(ok, "{report}");
    assert!(
        report.contains("mnist: 2 re-embedded, 1 need re-enrolment (image not kept), 0 failed, 0 already current"),
        "{report}"
    );
    // The server's index takes the new embeddings within its follow interval; the bare image stays stale.
    for attempt in 0.. {
        let refused = server
            .post_json("/search", &query)
            .await
            .assert_problem(409, "stale_embeddings");
        if refused["detail"].as_str().unwrap().contains("1 of 3") {
            break;
        }
        assert!(attempt < 100, "the index did not follow the reindex: {refused}");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(server.delete("/subjects/bare").await.status, 204);
    let results = server.post_json("/search", &query).await.ok()["results"].clone();
    assert_eq!(results[0]["image_id"], kept[1].as_str());
    assert!(results[0]["distance"].as_f64().unwrap() < 1e-3, "{results}");
    server
        .post_json("/verify", &json!({ "candidate": b64(&digit(2, 0)), "subject": "kept" }))
        .await
        .ok();
}

#[tokio::test]
async fn concurrent_enrolments_and_searches_all_land() {
    let data = DataDir::default();
    let server = std::sync::Arc::new(server(&data).await);

    let mut tasks = Vec::new();
    for i in 0..8usize {
        let server = std::sync::Arc::clone(&server);
        tasks.push(tokio::spawn(async move {
            server.enrol(&format!("s{i}"), &[&digit(i, 3)]).await;
            let reply = server
                .post_json("/search", &json!({ "image": b64(&digit(i, 3)), "k": 1 }))
                .await;
            reply.ok()["results"][0]["subject"].as_str().unwrap().to_string()
        }));
    }
    let mut nearest = Vec::new();
    for task in tasks {
        nearest.push(task.await.unwrap());
    }

    // Each search ran after its own enrolment was answered, so it sees at least that image.
    for (i, subject) in nearest.iter().enumerate() {
        assert_eq!(subject, &format!("s{i}"));
    }
    let page = server.get("/subjects").await.ok();
    assert_eq!(page["subjects"].as_array().unwrap().len(), 8);
}
