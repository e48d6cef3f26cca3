//! The engine end to end: on real libtorch (models saved to a temporary directory, loaded by worker
//! threads, fed through the real queue) where the answers matter, and on a deterministic stand-in backend
//! where batching, deadlines, overload and failures do.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tokio::time::Instant;

use super::super::backend::Backend;
use super::*;
use crate::model::distance::euclidean_vec;
use crate::model::DeviceSetting;

const SIDE: i64 = 12;
const INPUT_LEN: usize = (SIDE * SIDE) as usize;

/// Saves a randomly initialised model named `name` into `dir/name`.
fn save_random_model(dir: &Path, name: &str, seed: i64) {
    crate::model::testing::save_random(&dir.join(name), name, SIDE, 16, seed);
}

fn config(max_batch_size: usize, workers: usize) -> EngineConfig {
    EngineConfig {
        device: DeviceSetting::Cpu,
        workers,
        torch_threads: 1,
        max_batch_size,
        max_batch_wait: Duration::from_millis(5),
        queue_capacity: 1024,
    }
}

async fn start(dir: &Path, config: EngineConfig, metrics: &Metrics) -> Result<Engine, EngineError> {
    let (dir, metrics) = (dir.to_path_buf(), metrics.clone());
    tokio::task::spawn_blocking(move || Engine::start(&dir, &config, &metrics))
        .await
        .unwrap()
}

/// A stand-in for a network: an image's embedding is its first `EMBEDDING_DIM` values, so each caller
/// can recognise its rows. An image starting with `FAIL` fails its batch, one starting with `PANIC`
/// panics in it (as a libtorch error would); every batch takes `delay` and has its size recorded.
struct StandIn {
    delay: Duration,
    sizes: Arc<Mutex<Vec<usize>>>,
    /// Rows per image: the card's embedding size, or another to break the warm-up.
    dim: usize,
}

const EMBEDDING_DIM: usize = 4;
const FAIL: f32 = -1.0;
const PANIC: f32 = -2.0;

impl Backend for StandIn {
    fn embed(&self, inputs: &[f32], images: usize) -> Result<Vec<Vec<f32>>, String> {
        std::thread::sleep(self.delay);
        self.sizes.lock().unwrap().push(images);
        let rows: Vec<Vec<f32>> = inputs
            .chunks(inputs.len() / images)
            .map(|i| i[..self.dim].to_vec())
            .collect();
        if rows.iter().any(|r| r[0] == PANIC) {
            panic!("the stand-in panics");
        }
        if rows.iter().any(|r| r[0] == FAIL) {
            return Err("the stand-in fails".into());
        }
        Ok(rows)
    }
}

#[derive(Clone)]
struct StandInLoader {
    delay: Duration,
    sizes: Arc<Mutex<Vec<usize>>>,
    dim: usize,
}

impl StandInLoader {
    fn new(delay: Duration) -> Self {
        Self {
            delay,
            sizes: Arc::default(),
            dim: EMBEDDING_DIM,
        }
    }

    /// The batch sizes run so far, warm-up batches included.
    fn sizes(&self) -> Vec<usize> {
        self.sizes.lock().unwrap().clone()
    }
}

impl LoadBackend for StandInLoader {
    fn load(&self) -> Result<Box<dyn Backend>, EngineError> {
        Ok(Box::new(StandIn {
            delay: self.delay,
            sizes: Arc::clone(&self.sizes),
            dim: self.dim,
        }))
    }

    fn device(&self) -> String {
        "stand-in".into()
    }
}

/// The engine with one model, "tiny" (`SIDE`×`SIDE` inputs), on `loader`.
async fn start_stand_in(
    loader: &StandInLoader,
    config: EngineConfig,
    metrics: &Metrics,
) -> Result<Engine, EngineError> {
    let card = crate::model::testing::card("tiny", SIDE, EMBEDDING_DIM as i64);
    let (backend, metrics): (Arc<dyn LoadBackend>, _) = (Arc::new(loader.clone()), metrics.clone());
    tokio::task::spawn_blocking(move || Engine::with_backends(vec![(card, backend)], &config, &metrics))
        .await
        .unwrap()
}

/// One image whose values all equal `value`.
fn image(value: f32) -> Vec<f32> {
    vec![value; INPUT_LEN]
}

/// Seeded pseudo-images in [0, 1).
fn inputs(n: usize, seed: u64) -> Vec<Vec<f32>> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    (0..n)
        .map(|_| (0..INPUT_LEN).map(|_| rng.gen::<f32>()).collect())
        .collect()
}

fn later() -> Instant {
    Instant::now() + Duration::from_secs(60)
}

/// Embeds each of 64 images alone, then all 64 in one batch, and holds every neighbouring pair's
/// distance to 1e-5 between the two.
async fn assert_batching_changes_no_distance(model_dir: &Path, model: &str, images: Vec<Vec<f32>>) {
    assert_eq!(images.len(), 64);
    let metrics = Metrics::new();
    let engine = start(model_dir, config(64, 1), &metrics).await.unwrap();

    let mut alone = Vec::new();
    for image in &images {
        alone.push(
            engine
                .embed(model, vec![image.clone()], later())
                .await
                .unwrap()
                .remove(0),
        );
    }
    let batched = engine.embed(model, images, later()).await.unwrap();

    assert_eq!(batched.len(), 64);
    for i in 0..63 {
        let d_alone = euclidean_vec(&alone[i], &alone[i + 1]);
        let d_batched = euclidean_vec(&batched[i], &batched[i + 1]);
        assert!(
            (d_alone - d_batched).abs() <= 1e-5,
            "pair {i}: {d_alone} alone, {d_batched} in the batch"
        );
    }
    // 64 single-image batches, then one of 64.
    assert_eq!(metrics.batch_size.with_label_values(&[model]).get_sample_count(), 65);
    assert_eq!(metrics.batch_size.with_label_values(&[model]).get_sample_sum(), 128.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_distance_in_a_batch_of_64_equals_the_one_computed_alone() {
    let dir = tempfile::tempdir().unwrap();
    save_random_model(dir.path(), "tiny", 7);

    assert_batching_changes_no_distance(dir.path(), "tiny", inputs(64, 1)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bundled_model_gives_held_out_digits_the_same_distances_in_a_batch_of_64() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let models = root.join("models");
    let card = crate::model::store::read_card(&models.join("mnist")).unwrap();
    let digits = crate::train::supervised::mnist::test_digits(&root.join("data/mnist")).unwrap();
    let images = digits
        .into_iter()
        .take(64)
        .map(|(digit, _)| crate::preprocess::prepare(&image::DynamicImage::ImageLuma8(digit), &card.preprocessing))
        .collect();

    assert_batching_changes_no_distance(&models, "mnist", images).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_pairs_get_their_one_at_a_time_answers() {
    let dir = tempfile::tempdir().unwrap();
    save_random_model(dir.path(), "tiny", 8);
    let metrics = Metrics::new();
    let engine = start(dir.path(), config(16, 2), &metrics).await.unwrap();
    let pairs: Vec<Vec<Vec<f32>>> = (0..40).map(|i| inputs(2, 100 + i)).collect();
    let mut solo = Vec::new();
    for pair in &pairs {
        let e = engine.embed("tiny", pair.clone(), later()).await.unwrap();
        solo.push(euclidean_vec(&e[0], &e[1]));
    }

    let tasks: Vec<_> = pairs
        .iter()
        .map(|pair| {
            let (engine, pair) = (engine.clone(), pair.clone());
            tokio::spawn(async move { engine.embed("tiny", pair, later()).await })
        })
        .collect();
    let mut together = Vec::new();
    for task in tasks {
        let e = task.await.unwrap().unwrap();
        together.push(euclidean_vec(&e[0], &e[1]));
    }

    for (i, (a, b)) in solo.iter().zip(&together).enumerate() {
        assert!((a - b).abs() <= 1e-5, "pair {i}: {a} alone, {b} concurrently");
    }
    assert_eq!(
        metrics.queue_depth.with_label_values(&["tiny"]).get(),
        0,
        "every admitted image left the queue"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loads_every_model_under_the_directory_and_names_them_when_asked_for_another() {
    let dir = tempfile::tempdir().unwrap();
    save_random_model(dir.path(), "beta", 1);
    save_random_model(dir.path(), "alpha", 2);
    std::fs::create_dir(dir.path().join("not-a-model")).unwrap();
    let metrics = Metrics::new();

    let engine = start(dir.path(), config(4, 1), &metrics).await.unwrap();
    let unknown = engine.embed("gamma", inputs(1, 0), later()).await;

    let names: Vec<&str> = engine.cards().iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["alpha", "beta"]);
    assert_eq!(engine.card("beta").unwrap().name, "beta");
    assert_eq!(
        unknown,
        Err(InferError::UnknownModel {
            name: "gamma".into(),
            known: vec!["alpha".into(), "beta".into()],
        })
    );
    let text = metrics.render();
    let sha = &engine.card("alpha").unwrap().weights.sha256;
    assert!(
        text.contains(&format!(
            "simverify_model_info{{device=\"cpu\",model=\"alpha\",sha256=\"{sha}\"}} 1"
        )),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_single_model_directory_is_accepted_as_the_model_dir() {
    let dir = tempfile::tempdir().unwrap();
    save_random_model(dir.path(), "solo", 3);

    let engine = start(&dir.path().join("solo"), config(4, 1), &Metrics::new())
        .await
        .unwrap();

    assert_eq!(engine.model_names(), ["solo"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refuses_inputs_of_the_wrong_shape_and_passed_deadlines_without_queueing() {
    let loader = StandInLoader::new(Duration::ZERO);
    let metrics = Metrics::new();
    let engine = start_stand_in(&loader, config(4, 1), &metrics).await.unwrap();

    let mut short = inputs(2, 0);
    short[1].pop();
    assert_eq!(engine.embed("tiny", short, later()).await, Err(InferError::BadInput));
    assert_eq!(engine.embed("tiny", Vec::new(), later()).await, Ok(Vec::new()));
    let passed = Instant::now() - Duration::from_millis(1);
    assert_eq!(
        engine.embed("tiny", inputs(1, 0), passed).await,
        Err(InferError::DeadlineExceeded)
    );

    assert_eq!(loader.sizes(), [4], "only the warm-up batch reached the worker");
    assert_eq!(
        metrics.batch_size.with_label_values(&["tiny"]).get_sample_count(),
        0,
        "nothing reached a worker"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_queue_answers_overloaded_and_a_caller_leaves_at_its_deadline() {
    let loader = StandInLoader::new(Duration::ZERO);
    let mut settings = config(64, 1);
    settings.queue_capacity = 4;
    // A window longer than the test: the first submission stays queued until its caller gives up.
    settings.max_batch_wait = Duration::from_secs(3600);
    let metrics = Metrics::new();
    let engine = start_stand_in(&loader, settings, &metrics).await.unwrap();

    // A submission larger than the queue takes the whole queue; while it waits, nothing else fits.
    let held = engine.embed("tiny", inputs(8, 0), Instant::now() + Duration::from_millis(200));
    let refused = engine.embed("tiny", inputs(1, 1), later());
    let (held, refused) = tokio::join!(held, refused);

    assert!(matches!(refused, Err(InferError::Overloaded { .. })), "{refused:?}");
    assert_eq!(held, Err(InferError::DeadlineExceeded));
    assert_eq!(
        loader.sizes(),
        [MAX_WARMUP_IMAGES],
        "nothing but the warm-up was computed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn busy_workers_fill_batches_up_to_the_limit_and_each_caller_gets_its_own_rows() {
    // Slow forward passes, so that submissions pile up while the two workers are busy.
    let loader = StandInLoader::new(Duration::from_millis(20));
    let metrics = Metrics::new();
    let engine = start_stand_in(&loader, config(8, 2), &metrics).await.unwrap();

    let tasks: Vec<_> = (0..60)
        .map(|caller| {
            let engine = engine.clone();
            let images = vec![image(caller as f32), image(caller as f32 + 0.5)];
            tokio::spawn(async move { (caller, engine.embed("tiny", images, later()).await) })
        })
        .collect();

    for task in tasks {
        let (caller, rows) = task.await.unwrap();
        let caller = caller as f32;
        assert_eq!(
            rows,
            Ok(vec![vec![caller; EMBEDDING_DIM], vec![caller + 0.5; EMBEDDING_DIM]])
        );
    }
    let sizes = loader.sizes();
    let (warmups, batches) = sizes.split_at(2);
    assert_eq!(warmups, [8, 8]);
    assert_eq!(batches.iter().sum::<usize>(), 120, "every image computed once");
    assert!(batches.iter().all(|&n| n <= 8), "{batches:?}");
    assert!(batches.contains(&8), "a backlog fills whole batches: {batches:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_or_panicking_batch_answers_inference_failed_and_the_worker_goes_on() {
    let loader = StandInLoader::new(Duration::ZERO);
    let metrics = Metrics::new();
    let engine = start_stand_in(&loader, config(4, 1), &metrics).await.unwrap();

    for marker in [FAIL, PANIC] {
        let failed = engine.embed("tiny", vec![image(marker)], later()).await;
        let after = engine.embed("tiny", vec![image(3.0)], later()).await;

        assert_eq!(failed, Err(InferError::InferenceFailed), "marker {marker}");
        assert_eq!(after, Ok(vec![vec![3.0; EMBEDDING_DIM]]), "marker {marker}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backend_whose_warm_up_breaks_the_cards_promise_is_refused() {
    let loader = StandInLoader {
        dim: EMBEDDING_DIM - 1,
        ..StandInLoader::new(Duration::ZERO)
    };

    let err = start_stand_in(&loader, config(4, 1), &Metrics::new())
        .await
        .err()
        .unwrap();

    assert!(matches!(err, EngineError::Warmup { .. }), "{err}");
    assert!(err.to_string().contains("[4, 3], the card promises [4, 4]"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refuses_tampered_weights_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    save_random_model(dir.path(), "tiny", 6);
    let weights = dir.path().join("tiny").join("model.safetensors");
    let mut bytes = std::fs::read(&weights).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    std::fs::write(&weights, bytes).unwrap();

    let err = start(dir.path(), config(4, 1), &Metrics::new()).await.err().unwrap();

    assert!(
        matches!(err, EngineError::Model(ModelError::HashMismatch { .. })),
        "{err}"
    );
    assert!(err.to_string().contains("SHA-256"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refuses_an_empty_directory_and_unusable_settings() {
    let dir = tempfile::tempdir().unwrap();

    let empty = start(dir.path(), config(4, 1), &Metrics::new()).await.err().unwrap();
    let no_workers = start(dir.path(), config(4, 0), &Metrics::new()).await.err().unwrap();

    assert!(matches!(empty, EngineError::NoModels(_)), "{empty}");
    assert!(matches!(no_workers, EngineError::Config(_)), "{no_workers}");
}

#[test]
fn refuses_to_start_outside_a_runtime() {
    let dir = tempfile::tempdir().unwrap();
    save_random_model(dir.path(), "tiny", 9);

    let err = Engine::start(dir.path(), &config(4, 1), &Metrics::new()).err().unwrap();

    assert!(matches!(err, EngineError::Config(_)), "{err}");
}

/// `embed_each` (what `simverify reindex` uses): an image that does not decode answers its own error, and
/// the others are embedded, in order, in one submission.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_image_gets_its_own_outcome_and_the_decoded_ones_one_batch() {
    let loader = StandInLoader::new(Duration::ZERO);
    let metrics = Metrics::new();
    let engine = start_stand_in(&loader, config(8, 1), &metrics).await.unwrap();
    let decoder = crate::infer::DecodePool::new(2, 8, crate::preprocess::DecodeLimits::default(), Metrics::new());
    let model = crate::infer::ModelHandle::new(&engine, &decoder, "tiny").unwrap();
    let png = |level: u8| {
        let mut bytes = Vec::new();
        image::GrayImage::from_pixel(SIDE as u32, SIDE as u32, image::Luma([level]))
            .write_to(&mut std::io::Cursor::new(&mut bytes), image::ImageFormat::Png)
            .unwrap();
        crate::infer::Upload::raw(format!("image-{level}"), bytes.into())
    };
    let broken = crate::infer::Upload::raw("broken".into(), b"not an image".to_vec().into());

    let outcomes = model.embed_each(vec![png(0), broken, png(255)], later()).await.unwrap();

    assert_eq!(outcomes.len(), 3);
    let (first, last) = (outcomes[0].as_ref().unwrap(), outcomes[2].as_ref().unwrap());
    assert_ne!(first, last, "each decoded image has its own row");
    assert!(outcomes[1].is_err(), "the broken image answers its error");
    assert_eq!(
        loader.sizes()[1..],
        [2],
        "the two decoded images travelled in one batch"
    );
}

/// A card's `cpu_max_batch_size` lowers `--max-batch-size` for that model on a CPU, never raises it, and a
/// GPU keeps the server's setting.
#[test]
fn a_cards_cpu_batch_cap_applies_on_a_cpu_only() {
    let mut card = crate::model::testing::card("capped", SIDE, 16);
    assert_eq!(
        batch_cap(&card, 32, "cpu"),
        32,
        "no serving section: the server's setting"
    );
    card.serving = Some(crate::model::card::Serving {
        cpu_max_batch_size: std::num::NonZeroUsize::new(2).unwrap(),
    });

    assert_eq!(batch_cap(&card, 32, "cpu"), 2);
    assert_eq!(batch_cap(&card, 1, "cpu"), 1);
    assert_eq!(batch_cap(&card, 32, "cuda:0"), 32);
}

/// A real model whose card caps CPU batches at 2: the engine assembles no larger batch, and says so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_model_with_a_cpu_batch_cap_is_served_in_batches_that_small() {
    let dir = tempfile::tempdir().unwrap();
    let mut card = crate::model::testing::card("capped", SIDE, 16);
    card.serving = Some(crate::model::card::Serving {
        cpu_max_batch_size: std::num::NonZeroUsize::new(2).unwrap(),
    });
    crate::model::testing::save_random_with_card(&dir.path().join("capped"), card, 5);
    let metrics = Metrics::new();
    let engine = start(dir.path(), config(64, 1), &metrics).await.unwrap();

    let calls = (0..16).map(|seed| engine.embed("capped", inputs(1, seed), later()));
    let answers = futures::future::join_all(calls).await;

    assert!(answers.iter().all(|a| a.as_ref().is_ok_and(|rows| rows.len() == 1)));
    assert_eq!(metrics.batch_size_limit.with_label_values(&["capped"]).get(), 2);
    let sizes = metrics.batch_size.with_label_values(&["capped"]);
    assert_eq!(sizes.get_sample_sum(), 16.0);
    assert!(sizes.get_sample_count() >= 8, "16 images in batches of at most 2");
}
