//! The subjects API end to end on a real server with its own SQLite store: every endpoint's round trip,
//! cursor pages, and every bad input with its status and code.

use crate::common::{b64, digit, form, DataDir, Server};
use serde_json::json;

async fn server(data: &DataDir) -> Server {
    Server::start(&["--data-dir", data.path(), "--max-images", "4"]).await
}

#[tokio::test]
async fn subjects_round_trip_through_every_endpoint() {
    let data = DataDir::default();
    let server = server(&data).await;
    let metadata = json!({ "name": "Ada", "tags": ["a", 1] });

    // Create; a repeat with the same metadata is harmless; other metadata conflicts.
    let created = server
        .put_json("/subjects/ada-1", &json!({ "metadata": metadata }))
        .await;
    assert_eq!(created.status, 201, "{}", created.text);
    assert_eq!(created.json()["metadata"], metadata);
    let again = server
        .put_json("/subjects/ada-1", &json!({ "metadata": metadata }))
        .await;
    assert_eq!(again.ok()["id"], "ada-1");
    server
        .put_json("/subjects/ada-1", &json!({ "metadata": { "name": "Eve" } }))
        .await
        .assert_problem(409, "subject_exists");

    // Enrol as JSON and as multipart.
    let enrolled = server
        .post_json(
            "/subjects/ada-1/images",
            &json!({ "images": [b64(&digit(3, 0)), b64(&digit(3, 1))], "model": "mnist" }),
        )
        .await;
    assert_eq!(enrolled.status, 201, "{}", enrolled.text);
    let body = enrolled.json();
    assert_eq!(body["model"], "mnist");
    assert_eq!(body["sha256"].as_str().unwrap().len(), 64);
    let ids: Vec<String> = body["image_ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().into())
        .collect();
    assert_eq!(ids.len(), 2);
    let third = server
        .post_form("/subjects/ada-1/images", form(&[("images", &digit(3, 2))]))
        .await;
    assert_eq!(third.status, 201, "{}", third.text);

    // Read back: the images in enrolment order, timestamps in RFC 3339.
    let subject = server.get("/subjects/ada-1").await.ok();
    assert_eq!(subject["image_count"], 3);
    let images = subject["images"].as_array().unwrap();
    assert_eq!(images[0]["id"], ids[0].as_str());
    assert_eq!(images[1]["id"], ids[1].as_str());
    assert_eq!(images[0]["model"], "mnist");
    assert!(subject["created_at"].as_str().unwrap().ends_with('Z'), "{subject}");

    // Delete one image, then the subject.
    assert_eq!(
        server
            .delete(&format!("/subjects/ada-1/images/{}", ids[0]))
            .await
            .status,
        204
    );
    server
        .delete(&format!("/subjects/ada-1/images/{}", ids[0]))
        .await
        .assert_problem(404, "unknown_image");
    assert_eq!(server.get("/subjects/ada-1").await.ok()["image_count"], 2);
    assert_eq!(server.delete("/subjects/ada-1").await.status, 204);
    server
        .get("/subjects/ada-1")
        .await
        .assert_problem(404, "unknown_subject");
    server
        .delete("/subjects/ada-1")
        .await
        .assert_problem(404, "unknown_subject");
}

#[tokio::test]
async fn subjects_are_listed_a_page_at_a_time_in_id_order() {
    let data = DataDir::default();
    let server = server(&data).await;
    for id in ["c", "a", "b", "d", "e"] {
        assert_eq!(server.put_empty(&format!("/subjects/{id}")).await.status, 201);
    }

    let mut seen = Vec::new();
    let mut path = "/subjects?limit=2".to_string();
    loop {
        let page = server.get(&path).await.ok();
        let subjects = page["subjects"].as_array().unwrap();
        assert!(subjects.len() <= 2);
        seen.extend(subjects.iter().map(|s| s["id"].as_str().unwrap().to_string()));
        match page["next_cursor"].as_str() {
            Some(cursor) => path = format!("/subjects?limit=2&cursor={cursor}"),
            None => break,
        }
    }

    assert_eq!(seen, ["a", "b", "c", "d", "e"]);
    assert!(server.get("/subjects").await.ok()["next_cursor"].is_null());
}

#[tokio::test]
async fn bad_subject_requests_answer_their_status_and_code() {
    let data = DataDir::default();
    let server = server(&data).await;
    server.put_empty("/subjects/known").await;
    let long = "x".repeat(129);

    for (path, why) in [
        ("/subjects/bad%20id".to_string(), "a space"),
        ("/subjects/a%2Fb".to_string(), "a slash"),
        (format!("/subjects/{long}"), "129 characters"),
        ("/subjects/..".to_string(), "dots"),
    ] {
        let reply = server.put_empty(&path).await;
        // `..` is resolved by the client to /, never reaching the route: a 405 there is fine too.
        if why == "dots" && reply.status == 405 {
            continue;
        }
        reply.assert_problem(422, "invalid_id");
    }
    let big = json!({ "metadata": { "blob": "x".repeat(5000) } });
    server
        .put_json("/subjects/big", &big)
        .await
        .assert_problem(422, "invalid_request");
    // Metadata is an object, as the document says; a null body or null metadata is none.
    for not_an_object in [json!([null, null]), json!("Ada"), json!(42)] {
        server
            .put_json("/subjects/odd", &json!({ "metadata": not_an_object }))
            .await
            .assert_problem(422, "invalid_request");
    }
    for none in [json!(null), json!({ "metadata": null })] {
        let created = server.put_json("/subjects/none", &none).await;
        assert!(created.status.is_success(), "{created:?}");
        assert_eq!(created.json()["metadata"], json!(null));
    }
    server
        .post_raw("/subjects/x", None, vec![])
        .await
        .assert_problem(405, "method_not_allowed");
    let malformed = server
        .client
        .put(server.url("/subjects/m"))
        .header("content-type", "application/json")
        .body("{")
        .send()
        .await
        .unwrap();
    assert_eq!(malformed.status(), 400);
    let text = server
        .client
        .put(server.url("/subjects/t"))
        .header("content-type", "text/plain")
        .body("hello")
        .send()
        .await
        .unwrap();
    assert_eq!(text.status(), 415);

    // Enrolment: unknown subject, no images, too many images, a bad image.
    let one = json!({ "images": [b64(&digit(1, 0))] });
    server
        .post_json("/subjects/nobody/images", &one)
        .await
        .assert_problem(404, "unknown_subject");
    server
        .post_json("/subjects/known/images", &json!({ "images": [] }))
        .await
        .assert_problem(422, "missing_image");
    let five = json!({ "images": (0..5).map(|i| b64(&digit(1, i))).collect::<Vec<_>>() });
    server
        .post_json("/subjects/known/images", &five)
        .await
        .assert_problem(422, "too_many_images");
    server
        .post_json("/subjects/known/images", &json!({ "images": [b64(b"not an image")] }))
        .await
        .assert_problem(422, "unsupported_image_format");
    server
        .post_json(
            "/subjects/known/images",
            &json!({ "images": [b64(&digit(1, 0))], "model": "faces" }),
        )
        .await
        .assert_problem(404, "unknown_model");
    assert_eq!(
        server.get("/subjects/known").await.ok()["image_count"],
        0,
        "nothing half-written"
    );
    server
        .delete("/subjects/known/images/not-an-image-id")
        .await
        .assert_problem(404, "unknown_image");

    // Listing parameters.
    server
        .get("/subjects?limit=0")
        .await
        .assert_problem(422, "invalid_request");
    server
        .get("/subjects?limit=1001")
        .await
        .assert_problem(422, "invalid_request");
    server
        .get("/subjects?limit=abc")
        .await
        .assert_problem(422, "invalid_request");
    server
        .get("/subjects?cursor=a%20b")
        .await
        .assert_problem(422, "invalid_id");
}
