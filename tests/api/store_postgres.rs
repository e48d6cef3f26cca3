//! Two servers sharing one PostgreSQL catalogue (each in a schema of its own test): each sees the other's
//! enrolments and deletions within a second, through the change log; in one test process, and as two
//! processes of the real binary.

use std::time::Duration;

use crate::common::{b64, digit, spawn_binary, PgSchema, Server};
use serde_json::{json, Value};
use tokio::time::Instant;

/// Searches `server` until `done` holds for the results, for at most `within`; answers how long it took.
async fn until(server: &Server, query: &Value, within: Duration, done: impl Fn(&Value) -> bool) -> Duration {
    let start = Instant::now();
    loop {
        let results = server.post_json("/search", query).await.ok()["results"].clone();
        if done(&results) {
            return start.elapsed();
        }
        assert!(start.elapsed() < within, "not seen within {within:?}: {results}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn two_servers_on_one_postgres_see_each_others_enrolments() {
    let schema = PgSchema::create().await;
    // A keeps the enrolled images (`--keep-images`), B does not: one store serves both.
    let a = Server::start(&["--store", &schema.url, "--keep-images"]).await;
    let b = Server::start(&["--store", &schema.url]).await;
    let query = json!({ "image": b64(&digit(4, 0)), "k": 1 });

    let ids = a.enrol("shared", &[&digit(4, 0)]).await;
    let pool = sqlx::PgPool::connect(&schema.url).await.unwrap();
    let kept: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM kept_images WHERE image_id = $1")
        .bind(&ids[0])
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(kept, 1);
    pool.close().await;

    // B reads the subject straight from the store, and its index follows within a second.
    assert_eq!(b.get("/subjects/shared").await.ok()["image_count"], 1);
    let seen = until(&b, &query, Duration::from_secs(1), |r| {
        r[0]["image_id"] == ids[0].as_str()
    })
    .await;
    println!("replica saw the enrolment after {seen:?}");

    // And back: B deletes, A's index drops the image.
    assert_eq!(b.delete("/subjects/shared").await.status, 204);
    until(&a, &query, Duration::from_secs(1), |r| {
        r.as_array().is_some_and(Vec::is_empty)
    })
    .await;
    a.get("/subjects/shared").await.assert_problem(404, "unknown_subject");

    // A restarted server loads what is there.
    b.enrol("later", &[&digit(5, 0)]).await;
    drop(a);
    let c = Server::start(&["--store", &schema.url]).await;
    let results = c
        .post_json("/search", &json!({ "image": b64(&digit(5, 0)), "k": 5 }))
        .await
        .ok()["results"]
        .clone();
    assert_eq!(results.as_array().unwrap().len(), 1);
    assert_eq!(results[0]["subject"], "later");

    drop((b, c));
    schema.drop_schema().await;
}

/// Two processes of the real binary on one catalogue: an enrolment through one is found by a search
/// through the other within a second.
#[tokio::test]
async fn two_server_processes_share_one_catalogue() {
    let schema = PgSchema::create().await;
    let (mut a, a_url) = spawn_binary(&["--store", &schema.url]);
    let (mut b, b_url) = spawn_binary(&["--store", &schema.url]);
    let client = reqwest::Client::new();
    for url in [&a_url, &b_url] {
        let ready = Instant::now();
        while !client
            .get(format!("{url}/ready"))
            .send()
            .await
            .is_ok_and(|r| r.status() == 200)
        {
            assert!(ready.elapsed() < Duration::from_secs(120), "{url} never became ready");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    let image = b64(&digit(6, 0));
    let put = client.put(format!("{a_url}/subjects/across")).send().await.unwrap();
    assert_eq!(put.status(), 201);
    let enrolled: Value = client
        .post(format!("{a_url}/subjects/across/images"))
        .json(&json!({ "images": [image] }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = enrolled["image_ids"][0].clone();

    let start = Instant::now();
    loop {
        let found: Value = client
            .post(format!("{b_url}/search"))
            .json(&json!({ "image": image, "k": 1 }))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if found["results"][0]["image_id"] == id {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(1),
            "not seen within a second: {found}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    println!("the other process saw the enrolment after {:?}", start.elapsed());
    for child in [&mut a, &mut b] {
        child.kill().unwrap();
        child.wait().unwrap();
    }
    schema.drop_schema().await;
}
