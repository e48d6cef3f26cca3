//! The seam between the engine and the network, as text-embeddings-inference's `Backend`: a worker runs
//! its batches on a [`Backend`], which a [`LoadBackend`] makes on the worker's own thread. The libtorch
//! model of a model directory is the one the server runs ([`Torch`]); the engine's tests about batching,
//! deadlines, overload and failures run on a small deterministic one.

use std::path::PathBuf;

use tch::{Device, Kind, Tensor};

use super::EngineError;
use crate::model::{device_label, load_model, LoadedModel};

/// One replica of one model, owned by one worker thread.
pub trait Backend {
    /// The embeddings of `images` inputs laid end to end in `inputs` (each the card's `C×H×W` floats,
    /// already checked), one row per image, in order. An error or a panic fails this batch only.
    fn embed(&self, inputs: &[f32], images: usize) -> Result<Vec<Vec<f32>>, String>;

    /// The located contributions of `images` inputs of the card's `location_input` size (the card's
    /// `location_grid`, row by row, `D` floats a cell): what `/compare` explains a match with.
    fn locations(&self, _inputs: &[f32], _images: usize) -> Result<Vec<Vec<f32>>, String> {
        Err("this model has no located contributions".into())
    }
}

/// Makes the replicas of one model: `load` runs once on each worker's thread, because a replica may
/// hold what cannot cross threads (libtorch tensors are `Send`, not `Sync`).
pub trait LoadBackend: Send + Sync + 'static {
    fn load(&self) -> Result<Box<dyn Backend>, EngineError>;

    /// Where the replicas compute, as the `device` label of `simverify_model_info` reads it.
    fn device(&self) -> String;
}

/// The libtorch network saved in a model directory, loaded with its weights' hash checked.
pub(super) struct Torch {
    pub dir: PathBuf,
    pub device: Device,
    /// libtorch intra-op threads of each worker.
    pub threads: usize,
}

impl LoadBackend for Torch {
    fn load(&self) -> Result<Box<dyn Backend>, EngineError> {
        // Intra-op threads are per calling thread (OpenMP), so each worker sets its own.
        tch::set_num_threads(self.threads as i32);
        Ok(Box::new(load_model(&self.dir, self.device)?))
    }

    fn device(&self) -> String {
        device_label(self.device)
    }
}

impl Backend for LoadedModel {
    fn embed(&self, inputs: &[f32], images: usize) -> Result<Vec<Vec<f32>>, String> {
        let out = LoadedModel::embed(self, &self.batch(inputs, images));
        rows(&out, images)
    }

    fn locations(&self, inputs: &[f32], images: usize) -> Result<Vec<Vec<f32>>, String> {
        let arch = &self.card.architecture;
        let (height, width) = arch.location_input().ok_or("this model has no located contributions")?;
        let batch = Tensor::from_slice(inputs).view([images as i64, arch.in_channels, height, width]);
        let out = LoadedModel::locations(self, &batch).ok_or("this model has no located contributions")?;
        rows(&out, images)
    }
}

impl LoadedModel {
    /// `images` inputs of the card's size laid end to end as a `[N, C, H, W]` batch.
    fn batch(&self, inputs: &[f32], images: usize) -> Tensor {
        let arch = &self.card.architecture;
        Tensor::from_slice(inputs).view([images as i64, arch.in_channels, arch.height, arch.width])
    }
}

/// The `[N, ...]` tensor `out` as `images` rows of floats on the CPU.
fn rows(out: &Tensor, images: usize) -> Result<Vec<Vec<f32>>, String> {
    let out = out
        .to_device(Device::Cpu)
        .to_kind(Kind::Float)
        .contiguous()
        .view([images as i64, -1]);
    let width = out.size()[1] as usize;
    let values = Vec::<f32>::try_from(out.view([-1])).map_err(|e| e.to_string())?;
    Ok(values.chunks(width.max(1)).map(<[f32]>::to_vec).collect())
}
