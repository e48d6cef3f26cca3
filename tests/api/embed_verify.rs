//! `POST /embed` and `POST /verify` end to end, checked against each other and against `/compare`.

use crate::common::{assert_close, b64, digit, form, Server};
use serde_json::{json, Value};

fn embeddings(answer: &Value) -> Vec<Vec<f32>> {
    answer["embeddings"]
        .as_array()
        .expect("an embeddings array")
        .iter()
        .map(|e| {
            e.as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_f64().unwrap() as f32)
                .collect()
        })
        .collect()
}

fn assert_same_vector(a: &[f32], b: &[f32], what: &str) {
    assert_eq!(a.len(), b.len(), "{what}");
    for (x, y) in a.iter().zip(b) {
        assert_close(*x, *y, 1e-5, what);
    }
}

#[tokio::test]
async fn embed_answers_one_vector_per_image_in_order() {
    let server = Server::start(&[]).await;
    let images = [digit(0, 0), digit(1, 0), digit(2, 0)];
    let info = server.get("/info").await.ok();
    let mnist = info["models"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == "mnist")
        .expect("mnist in /info")
        .clone();

    let forward = server
        .post_form(
            "/embed",
            form(&[("images", &images[0]), ("images", &images[1]), ("images", &images[2])]),
        )
        .await
        .ok();
    let backward = server
        .post_json(
            "/embed",
            &json!({ "images": [b64(&images[2]), b64(&images[1]), b64(&images[0])], "model": "mnist" }),
        )
        .await
        .ok();
    let alone = server.post_form("/embed", form(&[("images", &images[1])])).await.ok();

    let (forward_vectors, backward_vectors) = (embeddings(&forward), embeddings(&backward));
    assert_eq!(forward_vectors.len(), 3);
    assert_eq!(backward_vectors.len(), 3);
    assert_eq!(forward["dimension"], mnist["embedding_dim"]);
    assert_eq!(
        forward_vectors[0].len() as i64,
        mnist["embedding_dim"].as_i64().unwrap()
    );
    assert_eq!(forward["model"], "mnist");
    assert_eq!(forward["sha256"], mnist["sha256"]);
    for i in 0..3 {
        assert_same_vector(
            &forward_vectors[i],
            &backward_vectors[2 - i],
            "the same image, wherever it is in the list",
        );
    }
    assert_same_vector(
        &embeddings(&alone)[0],
        &forward_vectors[1],
        "an image alone and in a batch",
    );
    assert_ne!(
        forward_vectors[0], forward_vectors[1],
        "different digits embed differently"
    );
}

#[tokio::test]
async fn verify_aggregates_the_per_reference_distances_with_min_or_mean() {
    let server = Server::start(&[]).await;
    let candidate = digit(6, 0);
    let references = [digit(6, 1), digit(6, 2), digit(0, 0)];
    let mut expected = Vec::new();
    for reference in &references {
        expected.push(server.compare(&candidate, reference).await.f32("distance"));
    }

    let min = server
        .post_form(
            "/verify",
            form(&[
                ("candidate", &candidate),
                ("references", &references[0]),
                ("references", &references[1]),
                ("references", &references[2]),
            ]),
        )
        .await
        .ok();
    let mean = server
        .post_json(
            "/verify",
            &json!({
                "candidate": b64(&candidate),
                "references": references.iter().map(|r| b64(r)).collect::<Vec<_>>(),
                "aggregate": "mean",
            }),
        )
        .await
        .ok();

    for (answer, aggregate) in [(&min, "min"), (&mean, "mean")] {
        let distances: Vec<f32> = answer["distances"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d.as_f64().unwrap() as f32)
            .collect();
        assert_same_vector(
            &distances,
            &expected,
            "per-reference distances equal /compare's, in order",
        );
        assert_eq!(answer["aggregate"], aggregate);
        let (distance, threshold) = (
            answer["distance"].as_f64().unwrap() as f32,
            answer["threshold"].as_f64().unwrap() as f32,
        );
        let want = if aggregate == "min" {
            expected.iter().copied().fold(f32::INFINITY, f32::min)
        } else {
            expected.iter().sum::<f32>() / 3.0
        };
        assert_close(distance, want, 1e-5, aggregate);
        let verified = distance < threshold;
        assert_eq!(answer["verified"], verified, "{answer}");
        assert_eq!(answer["decision"], if verified { "verified" } else { "rejected" });
        assert_eq!(answer["model"], "mnist");
    }
}

#[tokio::test]
async fn verify_accepts_a_candidate_among_its_own_digits_and_rejects_it_among_others() {
    let server = Server::start(&[]).await;
    let candidate = digit(1, 0);
    let own = [digit(1, 1), digit(1, 2), digit(1, 3)];
    let others = [digit(0, 0), digit(8, 0), digit(6, 0)];

    let genuine = server
        .post_form(
            "/verify",
            form(&[
                ("candidate", &candidate),
                ("references", &own[0]),
                ("references", &own[1]),
                ("references", &own[2]),
            ]),
        )
        .await
        .ok();
    let impostor = server
        .post_form(
            "/verify",
            form(&[
                ("candidate", &candidate),
                ("references", &others[0]),
                ("references", &others[1]),
                ("references", &others[2]),
            ]),
        )
        .await
        .ok();

    assert_eq!(genuine["verified"], true, "{genuine}");
    assert_eq!(impostor["verified"], false, "{impostor}");
}
