//! SIGKILL in the middle of a burst of enrolments: after a restart every acknowledged image is there, and
//! no enrolment is half-written (each request's images are stored all or none).

use std::sync::Arc;
use std::time::Duration;

use crate::common::{b64, digit, spawn_binary, DataDir, Server};
use serde_json::json;
use tokio::sync::Mutex;

#[tokio::test]
async fn a_killed_server_keeps_every_acknowledged_enrolment() {
    let data = DataDir::default();
    let (mut child, base) = spawn_binary(&["--data-dir", data.path()]);
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    for _ in 0..3000 {
        if client
            .get(format!("{base}/ready"))
            .send()
            .await
            .is_ok_and(|r| r.status() == 200)
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        client
            .put(format!("{base}/subjects/burst"))
            .send()
            .await
            .unwrap()
            .status(),
        201
    );
    let body = json!({ "images": [b64(&digit(1, 0)), b64(&digit(2, 0))] });
    let acknowledged = Arc::new(Mutex::new(Vec::<String>::new()));

    // Four clients enrol as fast as they can; the process is killed once some enrolments are answered,
    // with others in flight.
    let mut clients = Vec::new();
    for _ in 0..4 {
        let (client, base, body, acknowledged) =
            (client.clone(), base.clone(), body.clone(), Arc::clone(&acknowledged));
        clients.push(tokio::spawn(async move {
            loop {
                let Ok(reply) = client
                    .post(format!("{base}/subjects/burst/images"))
                    .json(&body)
                    .send()
                    .await
                else {
                    return;
                };
                let Ok(answer) = reply.json::<serde_json::Value>().await else {
                    return;
                };
                let ids = answer["image_ids"].as_array().expect("an enrolment answer");
                let mut acknowledged = acknowledged.lock().await;
                acknowledged.extend(ids.iter().map(|id| id.as_str().unwrap().to_string()));
            }
        }));
    }
    while acknowledged.lock().await.len() < 20 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    child.kill().expect("SIGKILL");
    child.wait().unwrap();
    for task in clients {
        task.await.unwrap();
    }
    let acknowledged = acknowledged.lock().await.clone();

    let server = Server::start(&["--data-dir", data.path()]).await;

    let subject = server.get("/subjects/burst").await.ok();
    let stored: Vec<&str> = subject["images"]
        .as_array()
        .unwrap()
        .iter()
        .map(|image| image["id"].as_str().unwrap())
        .collect();
    for id in &acknowledged {
        assert!(stored.contains(&id.as_str()), "acknowledged image {id} was lost");
    }
    assert_eq!(
        stored.len() % 2,
        0,
        "an enrolment of two images was half-written: {}",
        stored.len()
    );
    let search = server
        .post_json("/search", &json!({ "image": b64(&digit(2, 0)), "k": 1 }))
        .await
        .ok();
    assert_eq!(search["results"][0]["subject"], "burst");
    println!("{} acknowledged, {} stored", acknowledged.len(), stored.len());
}
