//! Shared by the integration tests: the real server with the real `models/` on 127.0.0.1:0, held-out
//! MNIST test digits as in-memory PNGs, and request and assertion helpers.

use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

use base64::Engine as _;
use image::{GrayImage, ImageFormat};
use reqwest::header::{HeaderMap, CONTENT_TYPE};
use reqwest::multipart::{Form, Part};
use reqwest::StatusCode;
use serde_json::{json, Value};
use simverify::config::ServeConfig;
use simverify::http::App;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub mod browser;
pub mod stand_in;
pub mod traffic;

pub fn repo_path(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(relative)
}

/// Settings for a test server: loopback, an ephemeral port, the bundled models on the CPU with one
/// single-threaded worker (the test machine has two cores), and a data directory of its own (see
/// `scratch_data_dir`) unless `extra` names one; `extra` flags override these.
/// `SIMVERIFY_TEST_MODEL_DIR` points the tests at another model directory (e.g. a freshly trained one).
pub fn config(extra: &[&str]) -> ServeConfig {
    let models = std::env::var_os("SIMVERIFY_TEST_MODEL_DIR").map_or_else(|| repo_path("models"), PathBuf::from);
    let models = models.to_str().expect("the repository path is UTF-8");
    let defaults = [
        ("--listen", "127.0.0.1:0"),
        ("--model-dir", models),
        ("--device", "cpu"),
        ("--workers", "1"),
        ("--torch-threads", "1"),
        ("--decode-pool", "2"),
    ];
    // Never the repository's `data/store`: tests running at once would share one catalogue.
    let scratch = (!extra.contains(&"--data-dir")).then(scratch_data_dir);
    // `extra` is flag/value pairs; a flag given there replaces the default (clap refuses a flag twice).
    let mut args: Vec<&str> = defaults
        .iter()
        .filter(|(flag, _)| !extra.contains(flag))
        .flat_map(|(flag, value)| [*flag, *value])
        .collect();
    if let Some(scratch) = &scratch {
        args.extend([
            "--data-dir",
            scratch.to_str().expect("the target directory path is UTF-8"),
        ]);
    }
    args.extend_from_slice(extra);
    ServeConfig::try_from_args(args).expect("test settings parse")
}

/// Where `config` puts the data directories it makes: cargo's scratch directory for integration tests.
fn scratch_root() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("data-dirs")
}

/// A fresh, empty data directory under `scratch_root`; the `Server` using it removes it when dropped.
fn scratch_data_dir() -> PathBuf {
    std::fs::create_dir_all(scratch_root()).expect("the scratch directory is writable");
    tempfile::Builder::new()
        .prefix("store-")
        .tempdir_in(scratch_root())
        .expect("a scratch data directory")
        .keep()
}

/// A running server, stopped when dropped (its task is aborted) or gracefully with `stop`.
pub struct Server {
    pub base: String,
    pub addr: std::net::SocketAddr,
    pub client: reqwest::Client,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<anyhow::Result<()>>>,
    /// The data directory `config` made for this server (none when the test chose one): removed on drop.
    scratch: Option<PathBuf>,
}

impl Server {
    /// Starts a server with `extra` flags and waits until `/ready` says the models are warm.
    pub async fn start(extra: &[&str]) -> Server {
        let server = Server::spawn(config(extra)).await;
        server.wait_ready().await;
        server
    }

    /// Starts a server with `extra` flags on `stand_in` instead of the bundled models, and waits until it
    /// is ready.
    pub async fn start_on(stand_in: &stand_in::StandIn, extra: &[&str]) -> Server {
        let server = Server::spawn_on(config(extra), Some(stand_in)).await;
        server.wait_ready().await;
        server
    }

    /// Starts a server and returns at once, while the models load.
    pub async fn spawn(config: ServeConfig) -> Server {
        Server::spawn_on(config, None).await
    }

    async fn spawn_on(config: ServeConfig, stand_in: Option<&stand_in::StandIn>) -> Server {
        let scratch = config
            .data_dir
            .starts_with(scratch_root())
            .then(|| config.data_dir.clone());
        let mut app = App::build(config).await.expect("the test server binds");
        if let Some(stand_in) = stand_in {
            app = app.on_backends(stand_in.models());
        }
        let addr = app.local_addr();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(app.run_until_stopped(async {
            let _ = stopped.await;
        }));
        Server {
            base: format!("http://{addr}"),
            addr,
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(60))
                .build()
                .expect("a reqwest client builds"),
            stop: Some(stop),
            task: Some(task),
            scratch,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Polls `/ready` until it answers 200; fails if the server stops first (e.g. the models did not load).
    pub async fn wait_ready(&self) {
        for _ in 0..3000 {
            let task = self.task.as_ref().expect("the server is running");
            assert!(!task.is_finished(), "the server stopped before it was ready");
            if let Ok(response) = self.client.get(self.url("/ready")).send().await {
                if response.status() == StatusCode::OK {
                    return;
                }
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("the server was not ready after a minute");
    }

    /// Asks the server to stop, as SIGTERM does, without waiting for it.
    pub fn begin_shutdown(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }

    /// The server task's outcome, once it has stopped on its own or after `begin_shutdown`.
    pub async fn join(&mut self) -> anyhow::Result<()> {
        let task = self.task.take().expect("joined once");
        tokio::time::timeout(Duration::from_secs(60), task)
            .await
            .expect("the server stops within a minute")
            .expect("the server task does not panic")
    }

    pub async fn get(&self, path: &str) -> Reply {
        Reply::from(self.client.get(self.url(path)).send().await.expect("GET is answered")).await
    }

    pub async fn post_json(&self, path: &str, body: &Value) -> Reply {
        let response = self
            .client
            .post(self.url(path))
            .json(body)
            .send()
            .await
            .expect("POST is answered");
        Reply::from(response).await
    }

    pub async fn post_form(&self, path: &str, form: Form) -> Reply {
        let response = self
            .client
            .post(self.url(path))
            .multipart(form)
            .send()
            .await
            .expect("POST is answered");
        Reply::from(response).await
    }

    pub async fn post_raw(&self, path: &str, content_type: Option<&str>, body: Vec<u8>) -> Reply {
        let mut request = self.client.post(self.url(path)).body(body);
        if let Some(content_type) = content_type {
            request = request.header(CONTENT_TYPE, content_type);
        }
        Reply::from(request.send().await.expect("POST is answered")).await
    }

    /// `POST /compare` with two images as multipart files.
    pub async fn compare(&self, a: &[u8], b: &[u8]) -> Reply {
        self.post_form("/compare", form(&[("image_a", a), ("image_b", b)]))
            .await
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(task) = &self.task {
            task.abort();
        }
        if let Some(dir) = &self.scratch {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// A response, read whole.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub text: String,
}

impl Reply {
    pub async fn from(response: reqwest::Response) -> Reply {
        let status = response.status();
        let headers = response.headers().clone();
        let text = response.text().await.expect("the body arrives");
        Reply { status, headers, text }
    }

    pub fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text))
    }

    /// Asserts a 200 and returns the JSON body.
    pub fn ok(&self) -> Value {
        assert_eq!(self.status, StatusCode::OK, "{}", self.text);
        self.json()
    }

    pub fn f32(&self, field: &str) -> f32 {
        let body = self.ok();
        body[field]
            .as_f64()
            .unwrap_or_else(|| panic!("no number {field} in {body}")) as f32
    }

    /// Asserts the problem shape: status, `code`, the media type, and the request id in header and body.
    pub fn assert_problem(&self, status: u16, code: &str) -> Value {
        assert_eq!(self.status.as_u16(), status, "{}", self.text);
        assert_eq!(self.headers[CONTENT_TYPE], "application/problem+json", "{}", self.text);
        let body = self.json();
        assert_eq!(body["code"], code, "{body}");
        assert_eq!(body["status"], status, "{body}");
        assert_eq!(body["type"], format!("urn:simverify:problem:{code}"), "{body}");
        assert!(body["title"].as_str().is_some_and(|t| !t.is_empty()), "{body}");
        assert!(body["detail"].as_str().is_some_and(|t| !t.is_empty()), "{body}");
        let id = self.headers["x-request-id"].to_str().expect("an ASCII request id");
        assert!(!id.is_empty());
        assert_eq!(body["request_id"], id, "{body}");
        body
    }
}

/// A multipart form of files (and text fields, which are files' bytes too).
pub fn form(parts: &[(&str, &[u8])]) -> Form {
    parts.iter().fold(Form::new(), |form, (name, bytes)| {
        form.part(name.to_string(), Part::bytes(bytes.to_vec()).file_name("upload"))
    })
}

/// `{"base64": ...}`, an image as JSON carries it.
pub fn b64(bytes: &[u8]) -> Value {
    json!({ "base64": base64::engine::general_purpose::STANDARD.encode(bytes) })
}

/// The held-out MNIST test digits (never trained on) and their labels, grouped by label.
pub fn test_digits() -> &'static [Vec<GrayImage>; 10] {
    static DIGITS: OnceLock<[Vec<GrayImage>; 10]> = OnceLock::new();
    DIGITS.get_or_init(|| {
        let digits = simverify::train::supervised::mnist::test_digits(&repo_path("data/mnist"))
            .expect("MNIST data is in data/mnist (scripts/setup puts it there)");
        let mut by_label: [Vec<GrayImage>; 10] = Default::default();
        for (image, label) in digits {
            by_label[label].push(image);
        }
        by_label
    })
}

/// The `nth` held-out test digit showing `label`, as PNG bytes.
pub fn digit(label: usize, nth: usize) -> Vec<u8> {
    png(&test_digits()[label][nth])
}

/// The same digit, dark on light (as a scan of ink on paper would be), as PNG bytes.
pub fn inverted_digit(label: usize, nth: usize) -> Vec<u8> {
    let mut image = test_digits()[label][nth].clone();
    image::imageops::invert(&mut image);
    png(&image)
}

pub fn png(image: &GrayImage) -> Vec<u8> {
    let mut bytes = Vec::new();
    image
        .write_to(&mut Cursor::new(&mut bytes), ImageFormat::Png)
        .expect("PNG encoding into memory works");
    bytes
}

/// Asserts two numbers agree to `tolerance`.
pub fn assert_close(a: f32, b: f32, tolerance: f32, what: &str) {
    assert!((a - b).abs() <= tolerance, "{what}: {a} vs {b}");
}

/// Requests the subject endpoints need beyond POST.
impl Server {
    pub async fn put_json(&self, path: &str, body: &Value) -> Reply {
        let response = self
            .client
            .put(self.url(path))
            .json(body)
            .send()
            .await
            .expect("PUT is answered");
        Reply::from(response).await
    }

    pub async fn put_empty(&self, path: &str) -> Reply {
        Reply::from(self.client.put(self.url(path)).send().await.expect("PUT is answered")).await
    }

    pub async fn delete(&self, path: &str) -> Reply {
        Reply::from(
            self.client
                .delete(self.url(path))
                .send()
                .await
                .expect("DELETE is answered"),
        )
        .await
    }

    /// `PUT /subjects/{id}` then `POST /subjects/{id}/images` (JSON); answers the image ids.
    pub async fn enrol(&self, subject: &str, images: &[&[u8]]) -> Vec<String> {
        let created = self.put_empty(&format!("/subjects/{subject}")).await;
        assert!(created.status.is_success(), "{}", created.text);
        let reply = self
            .post_json(
                &format!("/subjects/{subject}/images"),
                &json!({ "images": images.iter().map(|i| b64(i)).collect::<Vec<_>>() }),
            )
            .await;
        assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text);
        reply.json()["image_ids"]
            .as_array()
            .expect("image ids")
            .iter()
            .map(|id| id.as_str().expect("a string id").to_string())
            .collect()
    }
}

/// A test server's own SQLite store: a fresh data directory, and the flags that point a server at it.
pub struct DataDir {
    pub dir: tempfile::TempDir,
}

impl Default for DataDir {
    fn default() -> Self {
        DataDir {
            dir: tempfile::tempdir().expect("a temporary directory"),
        }
    }
}

impl DataDir {
    pub fn path(&self) -> &str {
        self.dir.path().to_str().expect("temporary paths are UTF-8")
    }

    /// The SQLite file the server keeps there.
    pub fn store_file(&self) -> PathBuf {
        self.dir.path().join(simverify::config::STORE_FILE)
    }
}

/// The PostgreSQL server the tests use: `SIMVERIFY_TEST_POSTGRES`, else the local one `scripts/setup`
/// makes sure of (trust authentication, database `test`, a role named after the user).
pub fn postgres_url() -> String {
    std::env::var("SIMVERIFY_TEST_POSTGRES").unwrap_or_else(|_| {
        let user = std::env::var("USER").unwrap_or_else(|_| "root".to_string());
        format!("postgres://{user}@127.0.0.1:5432/test")
    })
}

/// A schema of its own in the test database, so that tests running at once never see each other's rows;
/// `url` makes it the connection's search path. Dropped by `drop_schema`.
pub struct PgSchema {
    pub name: String,
    pub url: String,
}

impl PgSchema {
    pub async fn create() -> PgSchema {
        use sqlx::Executor as _;
        let base = postgres_url();
        let name = format!(
            "simverify_test_{}_{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos()
        );
        let pool = sqlx::PgPool::connect(&base)
            .await
            .unwrap_or_else(|e| panic!("PostgreSQL at {base} answers (scripts/setup starts one): {e}"));
        pool.execute(format!("CREATE SCHEMA {name}").as_str())
            .await
            .expect("a schema is created");
        pool.close().await;
        let separator = if base.contains('?') { '&' } else { '?' };
        let url = format!("{base}{separator}options=-c%20search_path%3D{name}");
        PgSchema { name, url }
    }

    pub async fn drop_schema(self) {
        use sqlx::Executor as _;
        if let Ok(pool) = sqlx::PgPool::connect(&postgres_url()).await {
            let _ = pool
                .execute(format!("DROP SCHEMA {} CASCADE", self.name).as_str())
                .await;
            pool.close().await;
        }
    }
}

/// The real `simverify` binary serving on an ephemeral port with `extra` flags, in a process of its own;
/// answers the child and its base URL once it listens (not yet ready).
pub fn spawn_binary(extra: &[&str]) -> (std::process::Child, String) {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};
    let mut child = Command::new(env!("CARGO_BIN_EXE_simverify"))
        .args(["serve", "--listen", "127.0.0.1:0", "--device", "cpu", "--workers", "1"])
        .args(["--torch-threads", "1"])
        .arg("--model-dir")
        .arg(repo_path("models"))
        .args(extra)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("the simverify binary starts");
    let stdout = child.stdout.take().expect("piped stdout");
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).expect("the listening line");
    let addr = line
        .split("http://")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("no address in {line:?}"));
    (child, format!("http://{addr}"))
}
