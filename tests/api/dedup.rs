//! Duplicate clusters: `simverify dedup DIR` (the real binary, the bundled product model) on a folder made
//! from real photos (byte copies, a reseller edit, a resized and a recompressed copy, unrelated photos, a
//! corrupt file and a text file) finds exactly the planted clusters, reuses its cache on a re-run, and
//! writes an HTML report with no external URL that a headless browser opens; `POST /duplicates` finds
//! the images enrolled twice, a page at a time.

use std::io::Cursor;
use std::path::Path;
use std::process::Command;

use crate::common::browser::Browser;
use crate::common::{digit, repo_path, DataDir, Server};
use image::{imageops::FilterType, ImageFormat};
use serde_json::{json, Value};

fn read(relative: &str) -> Vec<u8> {
    let path = repo_path(relative);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn encode(bytes: &[u8], scale: f32, format: ImageFormat) -> Vec<u8> {
    let image = image::load_from_memory(bytes).unwrap();
    let (w, h) = (
        (image.width() as f32 * scale) as u32,
        (image.height() as f32 * scale) as u32,
    );
    let image = image.resize_exact(w, h, FilterType::Triangle).to_rgb8();
    let mut out = Cursor::new(Vec::new());
    image.write_to(&mut out, format).unwrap();
    out.into_inner()
}

fn put(root: &Path, relative: &str, bytes: &[u8]) {
    let path = root.join(relative);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, bytes).unwrap();
}

/// Runs `simverify dedup` with the bundled models on `args`; answers its JSON (from `--json`).
fn dedup(args: &[&str], json_path: &Path) -> Value {
    let output = Command::new(env!("CARGO_BIN_EXE_simverify"))
        .arg("dedup")
        .args(args)
        .args(["--model-dir", repo_path("models").to_str().unwrap()])
        .args(["--device", "cpu", "--model", "product", "--json"])
        .arg(json_path)
        .env("RUST_LOG", "warn")
        .output()
        .expect("the simverify binary runs");
    assert!(
        output.status.success(),
        "dedup failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&std::fs::read(json_path).unwrap()).unwrap()
}

fn cluster_paths(found: &Value) -> Vec<Vec<String>> {
    found["clusters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            c["members"]
                .as_array()
                .unwrap()
                .iter()
                .map(|m| m["path"].as_str().unwrap().to_string())
                .collect()
        })
        .collect()
}

#[tokio::test]
async fn a_folder_gives_exactly_its_planted_clusters_and_a_report_a_browser_opens() {
    let work = tempfile::tempdir().unwrap();
    let root = work.path().join("photos");
    let car = read("examples/images/product-indycar.jpg");
    let toolbox = read("examples/images/product-toolbox.jpg");
    put(&root, "shop-a/indycar.jpg", &car);
    put(&root, "shop-b/indycar copy.jpg", &car);
    put(
        &root,
        "shop-b/indycar-reseller.jpg",
        &read("examples/images/product-indycar-edited.jpg"),
    );
    put(&root, "shop-c/indycar-small.png", &encode(&car, 0.5, ImageFormat::Png));
    put(&root, "toolbox.jpg", &toolbox);
    put(
        &root,
        "shop-c/toolbox-recompressed.jpg",
        &encode(&toolbox, 0.8, ImageFormat::Jpeg),
    );
    for unrelated in [
        "data/photos/tuxpaint/animals/amphibians/frog-1.png",
        "data/photos/tuxpaint/food/fruit/orange_seville.png",
        "data/photos/tuxpaint/space/moon/moon_crescent.png",
    ] {
        put(
            &root,
            &format!("misc/{}", Path::new(unrelated).file_name().unwrap().to_str().unwrap()),
            &read(unrelated),
        );
    }
    // Cut inside its headers: no decoder makes a picture of it.
    put(&root, "misc/corrupt.jpg", &car[..200]);
    put(&root, "notes.txt", b"not an image");
    let cache = work.path().join("cache");
    let (json_path, csv_path, report) = (
        work.path().join("found.json"),
        work.path().join("found.csv"),
        work.path().join("report"),
    );
    let args = [
        root.to_str().unwrap(),
        "--cache-dir",
        cache.to_str().unwrap(),
        "--csv",
        csv_path.to_str().unwrap(),
        "--report",
        report.to_str().unwrap(),
    ];

    let found = dedup(&args, &json_path);

    assert_eq!(
        cluster_paths(&found),
        vec![
            vec![
                "shop-a/indycar.jpg",
                "shop-b/indycar copy.jpg",
                "shop-b/indycar-reseller.jpg",
                "shop-c/indycar-small.png"
            ],
            vec!["toolbox.jpg", "shop-c/toolbox-recompressed.jpg"],
        ],
        "{found:#}"
    );
    assert_eq!(found["images"], 9);
    assert_eq!(found["embedded"], 9);
    assert_eq!(found["method"], "exact");
    let skipped: Vec<&str> = found["skipped"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["path"].as_str().unwrap())
        .collect();
    assert_eq!(skipped, vec!["misc/corrupt.jpg", "notes.txt"]);
    let first = &found["clusters"][0];
    assert_eq!(
        first["representative"], "shop-a/indycar.jpg",
        "the largest image, first by path"
    );
    assert_eq!(first["members"][0]["distance"], 0.0);
    let byte_copy = &first["members"][1];
    assert!(byte_copy["distance"].as_f64().unwrap() < 1e-3, "{byte_copy}");
    for pair in first["pairs"].as_array().unwrap() {
        assert!(pair["distance"].as_f64().unwrap() < found["threshold"].as_f64().unwrap());
    }
    let csv = std::fs::read_to_string(&csv_path).unwrap();
    assert_eq!(csv.lines().count(), 1 + 6, "{csv}");
    assert!(
        csv.lines()
            .nth(1)
            .unwrap()
            .starts_with("1,4,shop-a/indycar.jpg,,,true,0,"),
        "{csv}"
    );

    // A re-run embeds nothing: every file is in the cache.
    let again = dedup(&args, &json_path);
    assert_eq!(again["embedded"], 0);
    assert_eq!(cluster_paths(&again), cluster_paths(&found));

    // The report: self-contained, and the browser shows both clusters with their thumbnails.
    let html = std::fs::read_to_string(report.join("index.html")).unwrap();
    for external in ["http:", "https:", "//cdn", "src=\"//"] {
        assert!(!html.contains(external), "the report refers to {external}");
    }
    let browser = Browser::open(&format!("file://{}", report.join("index.html").display())).await;
    browser.find("svg rect").await;
    assert_eq!(browser.count("section").await, 2);
    let loaded = browser
        .execute("return [...document.images].filter(i => i.complete && i.naturalWidth > 0).length")
        .await;
    assert_eq!(loaded, json!(6), "every thumbnail loads");
    browser.close().await;
}

#[tokio::test]
async fn duplicates_over_the_catalogue_are_the_images_enrolled_twice_a_page_at_a_time() {
    let data = DataDir::default();
    let server = Server::start(&["--data-dir", data.path()]).await;
    let empty = server
        .post_json("/duplicates", &json!({ "model": "product" }))
        .await
        .ok();
    assert_eq!(
        (empty["images"].clone(), empty["total_clusters"].clone()),
        (json!(0), json!(0))
    );
    // Three images enrolled twice (under other subjects), and six enrolled once.
    for label in 0..6 {
        server.enrol(&format!("once-{label}"), &[&digit(label, 0)]).await;
    }
    let mut twice = Vec::new();
    for label in 6..9 {
        let a = server.enrol(&format!("a-{label}"), &[&digit(label, 3)]).await;
        let b = server.enrol(&format!("b-{label}"), &[&digit(label, 3)]).await;
        twice.push([a[0].clone(), b[0].clone()]);
    }
    // Exact copies only: the MNIST model's own threshold groups a digit's every drawing.
    let settings = json!({ "threshold": 0.01, "page_size": 2 });

    let first = server.post_json("/duplicates", &settings).await.ok();

    assert_eq!(first["model"], "mnist");
    assert_eq!(first["images"], 12);
    assert_eq!(first["total_clusters"], 3);
    assert_eq!(first["near_pairs"], 3);
    assert_eq!(first["clusters"].as_array().unwrap().len(), 2);
    assert_eq!(first["next_page"], 1);
    let mut page = settings.clone();
    page["page"] = json!(1);
    let second = server.post_json("/duplicates", &page).await.ok();
    assert_eq!(second["clusters"].as_array().unwrap().len(), 1);
    assert!(second.get("next_page").is_none(), "{second}");
    let mut found: Vec<[String; 2]> = first["clusters"]
        .as_array()
        .unwrap()
        .iter()
        .chain(second["clusters"].as_array().unwrap())
        .map(|c| {
            assert_eq!(c["size"], 2);
            let mut ids: Vec<String> = c["members"]
                .as_array()
                .unwrap()
                .iter()
                .map(|m| m["image"].as_str().unwrap().to_string())
                .collect();
            ids.sort();
            [ids[0].clone(), ids[1].clone()]
        })
        .collect();
    found.sort();
    for pair in &mut twice {
        pair.sort();
    }
    twice.sort();
    assert_eq!(found, twice);

    // A subject filter, an empty body, and refusals.
    let only = server
        .post_json(
            "/duplicates",
            &json!({ "threshold": 0.01, "subjects": ["a-6", "b-6", "once-1"] }),
        )
        .await
        .ok();
    assert_eq!(
        (only["images"].clone(), only["total_clusters"].clone()),
        (json!(3), json!(1))
    );
    let everything = server.post_raw("/duplicates", None, Vec::new()).await.ok();
    assert!(everything["total_clusters"].as_u64().unwrap() >= 1, "{everything}");
    assert_eq!(everything["threshold"], first_threshold(&server).await);
    for (body, code) in [
        (json!({ "page_size": 0 }), "invalid_request"),
        (json!({ "max_cluster": 1 }), "invalid_request"),
        (json!({ "page": 1.5 }), "invalid_request"),
        (json!({ "page": 1_000_001 }), "invalid_request"),
        (json!({ "threshold": -1 }), "invalid_threshold"),
        (json!({ "subjects": ["a b"] }), "invalid_id"),
        (json!({ "sideways": true }), "invalid_request"),
    ] {
        server.post_json("/duplicates", &body).await.assert_problem(422, code);
    }
    server
        .post_json("/duplicates", &json!({ "model": "faces" }))
        .await
        .assert_problem(404, "unknown_model");
    server
        .post_raw("/duplicates", Some("application/json"), b"{".to_vec())
        .await
        .assert_problem(400, "malformed_json");
    server
        .post_raw("/duplicates", Some("text/plain"), b"{}".to_vec())
        .await
        .assert_problem(415, "unsupported_media_type");
}

#[tokio::test]
async fn the_catalogue_form_of_dedup_reads_the_stored_embeddings() {
    let data = DataDir::default();
    let server = Server::start(&["--data-dir", data.path()]).await;
    server.enrol("a", &[&digit(1, 0), &digit(2, 0)]).await;
    let copy = server.enrol("b", &[&digit(1, 0)]).await;
    let json_path = tempfile::NamedTempFile::new().unwrap();

    let output = Command::new(env!("CARGO_BIN_EXE_simverify"))
        .args(["dedup", "--catalogue", "--threshold", "0.01", "--data-dir", data.path()])
        .args(["--model-dir", repo_path("models").to_str().unwrap(), "--json"])
        .arg(json_path.path())
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();

    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let found: Value = serde_json::from_slice(&std::fs::read(json_path.path()).unwrap()).unwrap();
    assert_eq!(found["images"], 3);
    assert_eq!(found["embedded"], 0, "nothing is re-embedded");
    let members = found["clusters"][0]["members"].as_array().unwrap();
    assert_eq!(found["clusters"].as_array().unwrap().len(), 1, "{found}");
    let subjects: Vec<&str> = members.iter().map(|m| m["subject"].as_str().unwrap()).collect();
    assert!(subjects.contains(&"a") && subjects.contains(&"b"), "{found}");
    assert!(members.iter().any(|m| m["image"] == copy[0].as_str()));
}

/// The default model's calibrated threshold, as `/info` reports it.
async fn first_threshold(server: &Server) -> Value {
    let info = server.get("/info").await.ok();
    let models = info["models"].as_array().unwrap();
    let default = models.iter().find(|m| m["name"] == "mnist").unwrap();
    default["threshold"].clone()
}
