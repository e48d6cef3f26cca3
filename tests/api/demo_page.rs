//! The demo page at `/` in a real headless Chromium (Debian's `chromium` and `chromium-driver`, driven
//! through WebDriver): it shows the decisions `/compare` and `/verify` answer, renders the model card
//! with its plots, works behind an API key and explains errors in words. Screenshots land in
//! `target/demo-page/`.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::common::browser::{Browser, ANSWER_WAIT};
use crate::common::{form, repo_path, Server};
use serde_json::{json, Value};

/// WebDriver's codes for the arrow keys.
const ARROW_LEFT: &str = "\u{E012}";
const ARROW_RIGHT: &str = "\u{E014}";

#[tokio::test]
async fn the_page_shows_the_decision_that_compare_answers_and_verifies() {
    let (server, _store) = start_server(&[]).await;
    let browser = open_demo(&server.url("/")).await;

    // Accessible basics: every control has a name, and the tabs follow the arrow keys.
    let unnamed = browser
        .execute(
            "return [...document.querySelectorAll('input, select, button')]\
             .filter(e => !(e.labels && e.labels.length) && !e.getAttribute('aria-label') && !e.textContent.trim())\
             .map(e => e.id)",
        )
        .await;
    assert_eq!(unnamed, json!([]), "controls without an accessible name");
    let tab = browser.find("#tab-compare").await;
    tab.send_keys(ARROW_RIGHT).await.unwrap();
    assert_eq!(browser.selected_tab().await, "tab-verify");
    browser.find("#tab-verify").await.send_keys(ARROW_LEFT).await.unwrap();
    assert_eq!(browser.selected_tab().await, "tab-compare");

    // Product photos first: they make the better screenshot.
    browser.select("model", "product").await;
    let (a, b) = (
        "examples/images/product-indycar.jpg",
        "examples/images/product-indycar-edited.jpg",
    );
    browser.upload("image-a", &[a]).await;
    browser.upload("image-b", &[b]).await;
    let page = browser.answer("compare", "product", &[a, b]).await;
    let api = server
        .post_form(
            "/compare",
            form(&[("image_a", &read(a)), ("image_b", &read(b)), ("model", b"product")]),
        )
        .await
        .ok();
    assert_same_decision(&page, &api["match"], &api["distance"]);
    // The product model also shows where the photos match: both heatmaps drawn over their photos.
    browser
        .wait_until("[...document.querySelectorAll('.match-frame img')].filter(i => i.complete && i.naturalWidth > 0).length === 4")
        .await;
    assert_eq!(browser.count(".match-box").await, 2);
    browser.screenshot("compare-product.png").await;

    // Digits: the same decision, and a changed model re-runs the comparison.
    browser.select("model", "mnist").await;
    let (a, b) = ("examples/images/3-a.png", "examples/images/3-b.png");
    browser.upload("image-a", &[a]).await;
    browser.upload("image-b", &[b]).await;
    let page = browser.answer("compare", "mnist", &[a, b]).await;
    let api = server
        .post_form("/compare", form(&[("image_a", &read(a)), ("image_b", &read(b))]))
        .await
        .ok();
    assert_same_decision(&page, &api["match"], &api["distance"]);
    assert_eq!(browser.count(".match-box").await, 0, "the digit model does not explain");
    browser.screenshot("compare-mnist.png").await;

    // Verify: a candidate against two references.
    browser.click("tab-verify").await;
    let (candidate, references) = (
        "examples/images/3-a.png",
        ["examples/images/3-b.png", "examples/images/8-a.png"],
    );
    browser.upload("candidate", &[candidate]).await;
    browser.upload("references", &references).await;
    browser.click("verify-run").await;
    let page = browser
        .answer("verify", "mnist", &[candidate, references[0], references[1]])
        .await;
    let api = server
        .post_form(
            "/verify",
            form(&[
                ("candidate", &read(candidate)),
                ("references", &read(references[0])),
                ("references", &read(references[1])),
            ]),
        )
        .await
        .ok();
    assert_same_decision(&page, &api["verified"], &api["distance"]);
    assert_eq!(browser.count(".references li").await, 2);
    browser.screenshot("verify-mnist.png").await;

    browser.close().await;
}

#[tokio::test]
async fn the_model_card_shows_its_figures_and_every_report_plot() {
    let (server, _store) = start_server(&[]).await;
    let browser = open_demo(&server.url("/")).await;
    let info = server.get("/info").await.ok();
    browser.click("tab-card").await;

    for model in ["mnist", "product"] {
        let card = info["models"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["name"] == model)
            .unwrap()
            .clone();
        let plots = server.get(&format!("/models/{model}/report")).await.ok()["plots"]
            .as_array()
            .unwrap()
            .len();
        assert!(plots >= 3, "the bundled {model} model has its report plots");

        browser.select("model", model).await;
        browser
            .wait_until(&format!(
                "document.querySelector('#card h2').textContent.endsWith(': {model}') && \
                 document.querySelectorAll('#card .plots img').length === {plots} && \
                 [...document.querySelectorAll('#card .plots img')].every(i => i.complete && i.naturalWidth > 0)"
            ))
            .await;

        let shown = browser.text("#card").await;
        let threshold = format!("{:.3}", card["threshold"].as_f64().unwrap());
        for expected in [
            card["sha256"].as_str().unwrap(),
            threshold.as_str(),
            card["training"]["data"].as_str().unwrap(),
            "ROC AUC",
        ] {
            assert!(
                shown.contains(expected),
                "the {model} card shows {expected:?}:\n{shown}"
            );
        }
        browser.screenshot(&format!("card-{model}.png")).await;
    }
    browser.close().await;
}

#[tokio::test]
async fn the_page_asks_for_a_key_and_explains_refusals_in_words() {
    let keys = tempfile::tempdir().unwrap();
    let key = "sv_demo-page-test-key";
    let key_file = keys.path().join("keys");
    std::fs::write(&key_file, format!("demo {}\n", sha256_hex(key))).unwrap();
    let (server, _store) = start_server(&["--api-keys-file", key_file.to_str().unwrap()]).await;
    let browser = open_demo(&server.url("/")).await;

    // Without a key, /info is refused: the page says so in words and what to do.
    browser.wait_until("!!document.querySelector('#notice .problem')").await;
    let notice = browser.text("#notice").await;
    assert!(
        notice.contains("Unauthorized") && notice.contains("API key"),
        "{notice}"
    );

    // With the key (typed, then focus moves on), the models load and requests carry it.
    let field = browser.find("#api-key").await;
    field.send_keys(key).await.unwrap();
    field.send_keys("\u{E004}").await.unwrap(); // Tab: the field's change event.
    browser.wait_until("!document.getElementById('model').disabled").await;
    assert_eq!(browser.text("#notice").await, "");

    // A file that is not an image: the page shows the problem's title and detail, as the API words them.
    let not_an_image = "Cargo.toml";
    let image = "examples/images/3-a.png";
    browser.upload("image-a", &[not_an_image]).await;
    browser.upload("image-b", &[image]).await;
    browser
        .wait_until("document.getElementById('compare-result').dataset.state === 'error'")
        .await;
    let shown = browser.text("#compare-result").await;
    let response = server
        .client
        .post(server.url("/compare"))
        .bearer_auth(key)
        .multipart(form(&[("image_a", &read(not_an_image)), ("image_b", &read(image))]))
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let problem: Value = response.json().await.unwrap();
    assert!((400..500).contains(&status), "{problem}");
    for field in ["title", "detail"] {
        let text = problem[field].as_str().unwrap();
        assert!(shown.contains(text), "the page shows the {field} {text:?}:\n{shown}");
    }
    // The key stayed in the page: nothing in storage, cookies or the address.
    let stored = browser
        .execute("return [localStorage.length, sessionStorage.length, document.cookie, location.href]")
        .await;
    assert_eq!(stored, json!([0, 0, "", server.url("/")]));
    browser.screenshot("error.png").await;
    browser.close().await;
}

#[tokio::test]
async fn the_page_enrols_subjects_then_searches_and_verifies_against_them() {
    let (server, _store) = start_server(&[]).await;
    let browser = open_demo(&server.url("/")).await;
    browser.select("model", "mnist").await;

    browser.click("tab-subjects").await;
    for (subject, images) in [
        ("three", &["examples/images/3-b.png"][..]),
        ("eight", &["examples/images/8-a.png", "examples/images/8-b.png"][..]),
    ] {
        let field = browser.find("#subject-id").await;
        field.clear().await.unwrap();
        field.send_keys(subject).await.unwrap();
        browser.upload("enrol-images", images).await;
        browser.click("enrol-run").await;
        browser
            .settled("enrol-result", &format!("mnist:{subject}:{}", names(images)))
            .await;
        browser
            .wait_until(&format!(
                "document.querySelector('#subjects-table tr[data-subject=\"{subject}\"]')"
            ))
            .await;
    }
    browser.screenshot("subjects-mnist.png").await;

    browser.click("tab-search").await;
    let query = "examples/images/3-a.png";
    browser.upload("query", &[query]).await;
    browser.click("search-run").await;
    browser
        .settled("search-result", &format!("mnist:{}", names(&[query])))
        .await;
    let shown = browser
        .execute(
            "return [...document.querySelectorAll('#search-hits tbody tr')]\
             .map(r => [r.dataset.subject, Number(r.dataset.distance), r.dataset.match === 'true'])",
        )
        .await;
    let api = server
        .post_form(
            "/search",
            form(&[("image", &read(query)), ("k", b"5"), ("model", b"mnist")]),
        )
        .await
        .ok();
    let hits = api["results"].as_array().unwrap();
    assert_eq!(hits.len(), 3, "{api}");
    assert_eq!(hits[0]["subject"], "three", "{api}");
    for (i, hit) in hits.iter().enumerate() {
        let row = &shown[i];
        assert_eq!(row[0], hit["subject"], "{shown} vs {api}");
        assert_eq!(row[2], hit["match"], "{shown} vs {api}");
        let distance = hit["distance"].as_f64().unwrap();
        assert!((row[1].as_f64().unwrap() - distance).abs() < 1e-4, "{shown} vs {api}");
    }
    browser.screenshot("search-mnist.png").await;

    // Verify against the enrolled subject instead of reference images.
    browser.click("tab-verify").await;
    browser.upload("candidate", &[query]).await;
    browser.find("#verify-subject").await.send_keys("three").await.unwrap();
    browser.click("verify-run").await;
    let page = browser.answer("verify", "mnist", &[query, "subject three"]).await;
    let api = server
        .post_form("/verify", form(&[("candidate", &read(query)), ("subject", b"three")]))
        .await
        .ok();
    assert_same_decision(&page, &api["verified"], &api["distance"]);
    assert_eq!(api["verified"], true, "{api}");
    browser.close().await;
}

#[tokio::test]
async fn report_files_are_served_by_plot_name_only() {
    let (server, _store) = start_server(&[]).await;

    let plot = server.get("/models/mnist/report/roc.png").await;
    assert_eq!(plot.status, 200);
    assert_eq!(plot.headers["content-type"], "image/png");
    for path in [
        "/models/mnist/report/model.json",
        "/models/mnist/report/history.json",
        "/models/mnist/report/..%2Fmodel.json",
        "/models/mnist/report/%2E%2E%2Fmodel.safetensors",
        "/models/mnist/report/../model.json",
    ] {
        server.get(path).await.assert_problem(404, "not_found");
    }
    server
        .get("/models/..%2Fmnist/report/roc.png")
        .await
        .assert_problem(404, "unknown_model");
    let page = server.get("/").await;
    assert_eq!(page.status, 200);
    assert!(page.headers["content-security-policy"]
        .to_str()
        .unwrap()
        .contains("script-src 'self'"));
}

/// The real server with the bundled models and a subject store of its own (the page never touches it).
async fn start_server(extra: &[&str]) -> (Server, tempfile::TempDir) {
    let store = tempfile::tempdir().unwrap();
    let mut args = vec!["--data-dir", store.path().to_str().expect("a UTF-8 temp path")];
    args.extend_from_slice(extra);
    (Server::start(&args).await, store)
}

fn assert_same_decision(page: &(bool, f64), api_decision: &Value, api_distance: &Value) {
    assert_eq!(
        Some(page.0),
        api_decision.as_bool(),
        "page {page:?}, API {api_decision} {api_distance}"
    );
    let distance = api_distance.as_f64().unwrap();
    assert!(
        (page.1 - distance).abs() < 1e-4,
        "page {page:?}, API distance {distance}"
    );
}

/// The file names, as the page lists them in a result's `data-inputs`.
fn names(files: &[&str]) -> String {
    let names: Vec<&str> = files.iter().map(|f| f.rsplit('/').next().unwrap()).collect();
    names.join("|")
}

fn read(relative: &str) -> Vec<u8> {
    std::fs::read(repo_path(relative)).unwrap_or_else(|e| panic!("{relative}: {e}"))
}

fn sha256_hex(text: &str) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(Sha256::digest(text.as_bytes()))
}

/// Where the screenshots go: `target/demo-page/`.
fn output_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .expect("the target tmp dir is inside the target dir")
        .join("demo-page");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The demo page in a fresh browser, once its tabs are there.
async fn open_demo(url: &str) -> Browser {
    let browser = Browser::open(url).await;
    browser.find("#tab-compare").await;
    browser
}

impl Browser {
    async fn click(&self, id: &str) {
        self.find(&format!("#{id}")).await.click().await.unwrap();
    }

    /// Waits until the JavaScript expression is true.
    async fn wait_until(&self, expression: &str) {
        let start = Instant::now();
        while self.execute(&format!("return Boolean({expression})")).await != json!(true) {
            assert!(
                start.elapsed() < ANSWER_WAIT,
                "the page never got to {expression}; it shows:\n{}",
                self.text("main").await
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The id of the tab that is selected, and the one the keyboard is on.
    async fn selected_tab(&self) -> String {
        let ids = self
            .execute("return [document.querySelector('[role=tab][aria-selected=true]').id, document.activeElement.id]")
            .await;
        assert_eq!(ids[0], ids[1], "the selected tab has the focus");
        ids[0].as_str().unwrap().to_string()
    }

    /// Picks a model once the page has loaded the list.
    async fn select(&self, id: &str, value: &str) {
        self.wait_until(&format!(
            "!document.getElementById('{id}').disabled && document.querySelector('#{id} option[value=\"{value}\"]')"
        ))
        .await;
        self.find(&format!("#{id}")).await.select_by_value(value).await.unwrap();
    }

    /// Chooses files in a file input, as a person using the file dialog does.
    async fn upload(&self, id: &str, files: &[&str]) {
        let paths: Vec<String> = files
            .iter()
            .map(|f| repo_path(f).to_str().expect("a UTF-8 path").to_string())
            .collect();
        self.find(&format!("#{id}"))
            .await
            .send_keys(&paths.join("\n"))
            .await
            .unwrap();
    }

    /// Waits until the result box `id` holds the answer to the request on `inputs` (as the page labels
    /// it), and fails with what it shows unless that answer is a success.
    async fn settled(&self, id: &str, inputs: &str) {
        self.wait_until(&format!(
            "(r => r.dataset.inputs === {inputs:?} && r.dataset.state !== 'busy')(document.getElementById('{id}'))"
        ))
        .await;
        let state = self
            .execute(&format!("return document.getElementById('{id}').dataset.state"))
            .await;
        assert_eq!(state, "done", "{}", self.text(&format!("#{id}")).await);
    }

    /// The decision (`data-match`) and distance the page shows for the request on `model` and `files`.
    async fn answer(&self, kind: &str, model: &str, files: &[&str]) -> (bool, f64) {
        self.settled(&format!("{kind}-result"), &format!("{model}:{}", names(files)))
            .await;
        let decision = self.find(&format!("#{kind}-decision")).await;
        let matched = decision.attr("data-match").await.unwrap().expect("data-match");
        let distance = decision.attr("data-distance").await.unwrap().expect("data-distance");
        (matched == "true", distance.parse().unwrap())
    }

    async fn screenshot(&self, name: &str) {
        // No focus ring on whatever the test touched last; let the last layout and image decodes settle.
        self.execute("document.activeElement && document.activeElement.blur()")
            .await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        let png = self.client.screenshot().await.unwrap();
        std::fs::write(output_dir().join(name), png).unwrap();
    }
}
