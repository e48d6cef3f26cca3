//! The `simverify serve` settings: every one a flag and an environment variable, defaults here, logged once at start.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, ValueEnum};

use crate::infer::{Engine, EngineConfig};
use crate::metrics::Metrics;
use crate::model::DeviceSetting;
use crate::preprocess::DecodeLimits;

/// How the server is run. One value, passed whole; never a long argument list.
#[derive(Debug, Clone, Args)]
pub struct ServeConfig {
    /// Address and port to listen on (port 0 picks a free one).
    #[arg(long, env = "SIMVERIFY_LISTEN", default_value = "0.0.0.0:8080")]
    pub listen: SocketAddr,

    /// Directory holding one sub-directory per model (model.json + weights); every one is loaded.
    #[arg(long, env = "SIMVERIFY_MODEL_DIR", default_value = "models")]
    pub model_dir: PathBuf,

    /// Model used when a request names none.
    #[arg(long, env = "SIMVERIFY_DEFAULT_MODEL", default_value = "mnist")]
    pub default_model: String,

    /// Where the models run: auto (first GPU if any), cpu, cuda or cuda:N.
    #[arg(long, env = "SIMVERIFY_DEVICE", default_value = "auto")]
    pub device: DeviceSetting,

    /// Inference worker threads per model, each owning a replica of the model. Two: while one runs a
    /// forward pass the other takes the next batch, which served every bundled model 21% to 70% more
    /// compares under load on two cores than one worker did (`scripts/bench-defaults`).
    #[arg(long, env = "SIMVERIFY_WORKERS", default_value_t = 2, value_parser = clap::value_parser!(u64).range(1..=256))]
    pub workers: u64,

    /// libtorch intra-op threads per worker; 0 leaves one core for HTTP and decoding and shares the rest among the workers.
    #[arg(long, env = "SIMVERIFY_TORCH_THREADS", default_value_t = 0)]
    pub torch_threads: usize,

    /// Most images in one forward pass.
    #[arg(long, env = "SIMVERIFY_MAX_BATCH_SIZE", default_value_t = 32, value_parser = clap::value_parser!(u64).range(1..=4096))]
    pub max_batch_size: u64,

    /// How long a batch waits for more images once its first one arrived, in milliseconds. With 0 a
    /// batch takes what is waiting when a worker frees up: batches still form under load, and a lone
    /// request never waits.
    #[arg(long, env = "SIMVERIFY_MAX_BATCH_WAIT_MS", default_value_t = 0)]
    pub max_batch_wait_ms: u64,

    /// Images waiting for a worker beyond which new requests are refused at once (503 + Retry-After).
    #[arg(long, env = "SIMVERIFY_QUEUE_CAPACITY", default_value_t = 1024, value_parser = clap::value_parser!(u64).range(1..))]
    pub queue_capacity: u64,

    /// Time a request may take from arrival to answer, in milliseconds; past it the answer is 504.
    #[arg(long, env = "SIMVERIFY_REQUEST_DEADLINE_MS", default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub request_deadline_ms: u64,

    /// Largest request body accepted, in bytes, on every input form (multipart and JSON).
    #[arg(long, env = "SIMVERIFY_BODY_LIMIT", default_value_t = 16 * 1024 * 1024)]
    pub body_limit: usize,

    /// Most pixels (width × height) one image may have; larger ones are refused before decoding.
    #[arg(long, env = "SIMVERIFY_MAX_IMAGE_PIXELS", default_value_t = 4096 * 4096, value_parser = clap::value_parser!(u64).range(1..))]
    pub max_image_pixels: u64,

    /// Most images in one request (/embed images, /verify references).
    #[arg(long, env = "SIMVERIFY_MAX_IMAGES", default_value_t = 32, value_parser = clap::value_parser!(u64).range(1..=4096))]
    pub max_images: u64,

    /// Image decodes running at once on the blocking pool; more wait their turn.
    #[arg(long, env = "SIMVERIFY_DECODE_POOL", default_value_t = default_decode_pool())]
    pub decode_pool: usize,

    /// Images waiting for a decode slot beyond which new requests are refused at once (503 + Retry-After);
    /// default: --queue-capacity. Bounds the wait in front of the decoders, as --queue-capacity bounds the
    /// one in front of the model, so that a burst is refused rather than left to time out.
    #[arg(long, env = "SIMVERIFY_MAX_PENDING_DECODES", value_parser = clap::value_parser!(u64).range(1..))]
    pub max_pending_decodes: Option<u64>,

    /// Requests doing work at once (every method but GET and HEAD) beyond which new ones are refused at
    /// once (503 + Retry-After), before their bodies are read: on a CPU-starved server too many admitted
    /// requests would all miss their deadline.
    #[arg(long, env = "SIMVERIFY_MAX_IN_FLIGHT", default_value_t = 64, value_parser = clap::value_parser!(u64).range(1..))]
    pub max_in_flight: u64,

    /// On SIGTERM or Ctrl-C, how long /ready answers 503 before the listener closes, in milliseconds,
    /// so that a load balancer stops sending traffic first.
    #[arg(long, env = "SIMVERIFY_DRAIN_DELAY_MS", default_value_t = 0)]
    pub drain_delay_ms: u64,

    /// Time a client has to send a request's headers, in milliseconds; slower connections are closed. It
    /// also bounds how long an idle keep-alive connection is kept (a load balancer's idle timeout should be shorter).
    #[arg(long, env = "SIMVERIFY_HEADER_READ_TIMEOUT_MS", default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub header_read_timeout_ms: u64,

    /// Time a client has to send a request's whole body once its headers arrived, in milliseconds; past it
    /// the answer is 408 `body_timeout` and the connection is closed.
    #[arg(long, env = "SIMVERIFY_BODY_READ_TIMEOUT_MS", default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub body_read_timeout_ms: u64,

    /// Open client connections beyond which new ones wait in the listen backlog until one closes.
    #[arg(long, env = "SIMVERIFY_MAX_CONNECTIONS", default_value_t = 1024, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub max_connections: u64,

    /// Requests one HTTP/1 keep-alive connection may carry; the last answer says `Connection: close`
    /// (1 turns keep-alive off), so that no client holds a connection, and its server, for ever.
    #[arg(long, env = "SIMVERIFY_MAX_REQUESTS_PER_CONNECTION", default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..))]
    pub max_requests_per_connection: u64,

    /// Accept JSON images as `{"url": ...}`, fetched by the service: http(s) only, public addresses only
    /// (checked when resolved, then connected to exactly), at most 3 redirects, within --body-limit.
    #[arg(long, env = "SIMVERIFY_ALLOW_URL_INPUTS")]
    pub allow_url_inputs: bool,

    /// Ports an image URL may use (comma-separated).
    #[arg(long, env = "SIMVERIFY_URL_ALLOW_PORTS", value_delimiter = ',', default_values_t = [80, 443])]
    pub url_allow_ports: Vec<u16>,

    /// When set, the only hosts image URLs may name (comma-separated), trusted wherever they resolve,
    /// loopback and private addresses included.
    #[arg(long, env = "SIMVERIFY_URL_ALLOW_HOSTS", value_delimiter = ',')]
    pub url_allow_hosts: Vec<String>,

    /// Time one image URL may take, redirects and body included, in milliseconds.
    #[arg(long, env = "SIMVERIFY_URL_FETCH_TIMEOUT_MS", default_value_t = 5_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub url_fetch_timeout_ms: u64,

    /// API key file (`NAME SHA256HEX` lines; `simverify keys add` writes it). When set, every request but
    /// /health and /ready needs a key; when not, the API is open to anyone who can reach it.
    #[arg(long, env = "SIMVERIFY_API_KEYS_FILE")]
    pub api_keys_file: Option<PathBuf>,

    /// Serve /metrics without an API key (for a Prometheus that sends none).
    #[arg(long, env = "SIMVERIFY_PUBLIC_METRICS")]
    pub public_metrics: bool,

    /// Serve /docs and /openapi.json without an API key.
    #[arg(long, env = "SIMVERIFY_PUBLIC_DOCS")]
    pub public_docs: bool,

    /// Where enrolled subjects and their embeddings are kept: `sqlite:PATH` or `postgres://...` (several
    /// replicas sharing one catalogue). Default: an SQLite file in --data-dir.
    #[arg(long, env = "SIMVERIFY_STORE")]
    pub store: Option<Secret<String>>,

    /// Directory of the default SQLite store (created if missing).
    #[arg(long, env = "SIMVERIFY_DATA_DIR", default_value = "data/store")]
    pub data_dir: PathBuf,

    /// Store each enrolled image's bytes beside its embedding, so that `simverify reindex` can re-embed it
    /// when a model's weights change. Off by default: images (signatures above all) are personal data,
    /// and without them only embeddings are stored; re-enrolment is then the way after a weights change.
    #[arg(long, env = "SIMVERIFY_KEEP_IMAGES")]
    pub keep_images: bool,

    /// Enrolled images of one model (and weights) from which the catalogue also keeps an approximate
    /// index (k-means cells), which then answers `/search` without a subject filter; below it, and with a
    /// filter, every search scans exactly. From the default, a quarter of a million, the cells answer three
    /// times faster than the scan on two cores and still find the near-copies it finds (`scripts/bench-search`).
    #[arg(long, env = "SIMVERIFY_ANN_MIN_IMAGES", default_value_t = crate::store::ANN_FROM)]
    pub ann_min_images: usize,

    /// How many of the approximate index's k-means cells (about √N of them) a `/search` measures, nearest
    /// the query first: more find more of the exact answers and take longer (`scripts/bench-search`).
    #[arg(long, env = "SIMVERIFY_ANN_PROBES", default_value_t = crate::store::ANN_PROBES as u64,
          value_parser = clap::value_parser!(u64).range(1..=65_536))]
    pub ann_probes: u64,

    /// When `/compare` explains a match (`"explain": true`): how far from an image's least matching place
    /// towards its best one (0 to 1) a place must be to count as matching. Chosen on validation pages by
    /// `scripts/explain-iou`.
    #[arg(long, env = "SIMVERIFY_EXPLAIN_LEVEL", default_value_t = 0.1, value_parser = level)]
    pub explain_level: f32,

    /// How often the search index reads the store's change log for other replicas' writes, in milliseconds.
    #[arg(long, env = "SIMVERIFY_STORE_FOLLOW_MS", default_value_t = 250, value_parser = clap::value_parser!(u64).range(10..=60_000))]
    pub store_follow_ms: u64,

    /// Log line format.
    #[arg(long, env = "SIMVERIFY_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line, for log collectors.
    Json,
}

fn default_decode_pool() -> usize {
    available_cores().max(2)
}

fn available_cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// `ServeConfig` on its own, as a command line (for `try_from_args`).
#[derive(clap::Parser)]
struct ServeOnly {
    #[command(flatten)]
    serve: ServeConfig,
}

fn level(text: &str) -> Result<f32, String> {
    match text.parse::<f32>() {
        Ok(value) if (0.0..=1.0).contains(&value) => Ok(value),
        _ => Err(format!("{text:?} is not a number from 0 to 1")),
    }
}

impl ServeConfig {
    /// Loads every model under `--model-dir` on `--device`, as `serve` does, off the async threads: what
    /// the local commands (`dedup`, `reindex`) embed with.
    pub async fn load_engine(&self) -> anyhow::Result<Engine> {
        use anyhow::Context;
        let (model_dir, engine_config) = (self.model_dir.clone(), self.engine_config());
        tokio::task::spawn_blocking(move || Engine::start(&model_dir, &engine_config, &Metrics::new()))
            .await
            .context("model loading panicked")?
            .with_context(|| format!("cannot load the models under {}", self.model_dir.display()))
    }

    /// Parses `simverify serve`'s flags (without the program name or subcommand); environment variables
    /// apply as they do on the command line. For embedding the server, e.g. in tests.
    pub fn try_from_args<I, T>(args: I) -> Result<Self, clap::Error>
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        use clap::Parser;
        let argv = std::iter::once(std::ffi::OsString::from("simverify-serve")).chain(args.into_iter().map(Into::into));
        ServeOnly::try_parse_from(argv).map(|cli| cli.serve)
    }

    /// What the inference engine needs, with the automatic values resolved.
    pub fn engine_config(&self) -> EngineConfig {
        let workers = self.workers as usize;
        let torch_threads = if self.torch_threads == 0 {
            // OpenMP threads that compete with the HTTP and decode threads for every core slow a
            // forward pass many times over; one core kept free avoids that.
            (available_cores().saturating_sub(1) / workers).max(1)
        } else {
            self.torch_threads
        };
        EngineConfig {
            device: self.device,
            workers,
            torch_threads,
            max_batch_size: self.max_batch_size as usize,
            max_batch_wait: Duration::from_millis(self.max_batch_wait_ms),
            queue_capacity: self.queue_capacity as usize,
        }
    }

    /// Images that may wait for a decode slot: --max-pending-decodes, else --queue-capacity.
    pub(crate) fn max_pending_decodes(&self) -> usize {
        usize::try_from(self.max_pending_decodes.unwrap_or(self.queue_capacity)).unwrap_or(usize::MAX)
    }

    /// The decoder's bounds for every uploaded image.
    pub fn decode_limits(&self) -> DecodeLimits {
        // A side is bounded only through the pixel count (a 1×N strip is fine), up to what decoders handle.
        let side = u32::try_from(self.max_image_pixels).unwrap_or(u32::MAX).min(65_535);
        DecodeLimits {
            max_width: side,
            max_height: side,
            max_pixels: self.max_image_pixels,
            // Room for the widest pixel type (16-bit RGBA) plus the decoder's own buffers.
            max_alloc: self.max_image_pixels.saturating_mul(8).saturating_add(64 * 1024 * 1024),
        }
    }

    pub fn request_deadline(&self) -> Duration {
        Duration::from_millis(self.request_deadline_ms)
    }

    pub fn drain_delay(&self) -> Duration {
        Duration::from_millis(self.drain_delay_ms)
    }

    pub fn header_read_timeout(&self) -> Duration {
        Duration::from_millis(self.header_read_timeout_ms)
    }

    pub fn body_read_timeout(&self) -> Duration {
        Duration::from_millis(self.body_read_timeout_ms)
    }

    /// The store's URL: --store, else the SQLite file in --data-dir.
    pub fn store_url(&self) -> String {
        match &self.store {
            Some(Secret(url)) => url.clone(),
            None => format!("sqlite://{}", self.data_dir.join(STORE_FILE).display()),
        }
    }

    pub fn store_follow(&self) -> Duration {
        Duration::from_millis(self.store_follow_ms)
    }

    /// When the catalogue's sets get an approximate index, and how a search uses it.
    pub(crate) fn approximate_search(&self) -> crate::store::Approximate {
        crate::store::Approximate {
            from_images: self.ann_min_images,
            probes: self.ann_probes as usize,
        }
    }
}

/// The default store's file name inside --data-dir.
pub const STORE_FILE: &str = "simverify.sqlite";

/// A setting that must never reach a log line; its `Debug` prints a placeholder.
///
/// The store URL is one (a PostgreSQL URL may carry a password); so would be an API key: declared
/// `Secret<String>`, the start-up log of `ServeConfig` (its `Debug`) cannot print it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret<T>(pub T);

impl<T> fmt::Debug for Secret<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl<T: std::str::FromStr> std::str::FromStr for Secret<T> {
    type Err = T::Err;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        s.parse().map(Secret)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_documented_ones() {
        let config = ServeConfig::try_from_args::<[&str; 0], &str>([]).expect("defaults parse");
        assert_eq!(config.listen, "0.0.0.0:8080".parse().unwrap());
        assert_eq!(config.model_dir, PathBuf::from("models"));
        assert_eq!(config.default_model, "mnist");
        assert_eq!(config.device, DeviceSetting::Auto);
        assert_eq!(config.max_batch_size, 32);
        assert_eq!(config.max_images, 32);
        assert_eq!(config.log_format, LogFormat::Text);
        assert_eq!(config.store_url(), "sqlite://data/store/simverify.sqlite");
    }

    #[test]
    fn a_store_url_is_never_logged() {
        let config = ServeConfig::try_from_args(["--store", "postgres://u:hunter2@db/simverify"]).unwrap();

        assert_eq!(config.store_url(), "postgres://u:hunter2@db/simverify");
        assert!(!format!("{config:?}").contains("hunter2"));
    }

    #[test]
    fn flags_override_defaults_and_reach_the_engine_config() {
        let config = ServeConfig::try_from_args([
            "--device",
            "cuda:1",
            "--workers",
            "2",
            "--torch-threads",
            "3",
            "--max-batch-wait-ms",
            "7",
            "--queue-capacity",
            "5",
        ])
        .expect("flags parse");
        let engine = config.engine_config();
        assert_eq!(engine.device, DeviceSetting::Cuda(1));
        assert_eq!(engine.workers, 2);
        assert_eq!(engine.torch_threads, 3);
        assert_eq!(engine.max_batch_wait, Duration::from_millis(7));
        assert_eq!(engine.queue_capacity, 5);
        assert_eq!(
            config.max_pending_decodes(),
            5,
            "the decode backlog follows the queue by default"
        );
        let config = ServeConfig::try_from_args(["--max-pending-decodes", "9"]).expect("flag parses");
        assert_eq!(config.max_pending_decodes(), 9);
    }

    #[test]
    fn bad_values_are_refused_with_the_flag_named() {
        for args in [["--device", "tpu"], ["--workers", "0"], ["--log-format", "xml"]] {
            let err = ServeConfig::try_from_args(args).expect_err("refused");
            assert!(err.to_string().contains(args[0]), "{err}");
        }
    }

    #[test]
    fn secrets_never_print() {
        let secret = Secret("hunter2".to_string());
        assert_eq!(format!("{secret:?}"), "[redacted]");
    }

    #[test]
    fn decode_limits_follow_the_pixel_limit() {
        let mut config = ServeConfig::try_from_args::<[&str; 0], &str>([]).unwrap();
        config.max_image_pixels = 100;
        let limits = config.decode_limits();
        assert_eq!(limits.max_pixels, 100);
        assert_eq!(limits.max_width, 100);
    }
}
