//! A stand-in for the network, for the tests about batching, deadlines, overload and failures over real
//! HTTP: the bundled mnist model's card (its input shape, threshold and calibration) served by a backend
//! whose answer for an image is its input folded to the embedding's length (value `i` sums the inputs at
//! `i`, `i + dim`, ...), whose every batch takes a set time, and whose batches fail or panic when the test
//! says so.

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use simverify::model::card::ModelCard;
use simverify::testing::{Backend, EngineError, LoadBackend};

use super::repo_path;

const WORKS: u8 = 0;
const FAILS: u8 = 1;
const PANICS: u8 = 2;

/// The model, shared by the test and every replica the server loads.
#[derive(Clone)]
pub struct StandIn {
    card: ModelCard,
    delay: Duration,
    mode: Arc<AtomicU8>,
    sizes: Arc<Mutex<Vec<usize>>>,
}

impl StandIn {
    /// mnist's card, every batch taking `delay`.
    pub fn mnist(delay: Duration) -> Self {
        let card = std::fs::read_to_string(repo_path("models/mnist/model.json")).expect("the bundled card");
        Self {
            card: serde_json::from_str(&card).expect("the bundled card parses"),
            delay,
            mode: Arc::default(),
            sizes: Arc::default(),
        }
    }

    /// What the server loads instead of its model directory.
    pub fn models(&self) -> Vec<(ModelCard, Arc<dyn LoadBackend>)> {
        vec![(self.card.clone(), Arc::new(self.clone()))]
    }

    /// From now on every batch fails (as a libtorch error would).
    pub fn fail(&self) {
        self.mode.store(FAILS, Ordering::SeqCst);
    }

    /// From now on every batch panics.
    pub fn panic(&self) {
        self.mode.store(PANICS, Ordering::SeqCst);
    }

    /// From now on every batch works.
    pub fn work(&self) {
        self.mode.store(WORKS, Ordering::SeqCst);
    }

    /// The size of every batch run so far, the warm-up batches first.
    pub fn batch_sizes(&self) -> Vec<usize> {
        self.sizes.lock().unwrap().clone()
    }
}

impl LoadBackend for StandIn {
    fn load(&self) -> Result<Box<dyn Backend>, EngineError> {
        Ok(Box::new(self.clone()))
    }

    fn device(&self) -> String {
        "stand-in".into()
    }
}

impl Backend for StandIn {
    fn embed(&self, inputs: &[f32], images: usize) -> Result<Vec<Vec<f32>>, String> {
        std::thread::sleep(self.delay);
        self.sizes.lock().unwrap().push(images);
        match self.mode.load(Ordering::SeqCst) {
            FAILS => return Err("the stand-in fails".into()),
            PANICS => panic!("the stand-in panics"),
            _ => {}
        }
        let dim = self.card.architecture.embedding_dim as usize;
        Ok(inputs
            .chunks(inputs.len() / images)
            .map(|input| {
                let mut folded = vec![0.0; dim];
                for (i, value) in input.iter().enumerate() {
                    folded[i % dim] += value;
                }
                folded
            })
            .collect())
    }
}
