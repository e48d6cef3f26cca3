//! The supervised pipeline's options, as `train` reads them from its command line.

use std::path::PathBuf;

use clap::{ArgAction, Args, ValueEnum};

use crate::model::card::{ColorMode, RESNET, SEED_CNN};
use crate::model::DeviceSetting;
use crate::train::network_options::ResidualOptions;

/// Where labelled data comes from.
#[derive(Debug, Clone, Args)]
pub struct DataOptions {
    /// `mnist` (the digits `scripts/setup` fetched) or an ImageFolder directory: `root/<class>/<image>`.
    #[arg(long, default_value = "mnist")]
    pub data: String,
    /// Where `mnist` lives.
    #[arg(long, default_value = "data/mnist")]
    pub mnist_dir: PathBuf,
    /// Classes to use, e.g. `0-6` or `shoes,bags`; default all.
    #[arg(long)]
    pub classes: Option<String>,
    /// auto, cpu, cuda or cuda:N.
    #[arg(long, default_value = "auto")]
    pub device: DeviceSetting,
}

impl DataOptions {
    pub fn is_mnist(&self) -> bool {
        self.data == "mnist"
    }
}

/// The network a supervised model is built on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Network {
    /// The seed's small convolutional network.
    #[value(name = SEED_CNN)]
    SeedCnn,
    /// The compact residual network, shaped by the residual options.
    #[value(name = RESNET)]
    Resnet,
}

/// The defaults are the project's best recipe (see the README). The seed's own recipe is
/// `--l2-normalize false --final-relu true --augment false --all-pairs false`.
#[derive(Debug, Clone, Args)]
pub struct SupervisedOptions {
    #[command(flatten)]
    pub data: DataOptions,
    /// The model directory to write; its last component names the model.
    #[arg(long, default_value = "models/mnist")]
    pub out: PathBuf,
    /// Classes held out of training entirely, evaluated as unseen (e.g. `7-9`).
    #[arg(long)]
    pub unseen_classes: Option<String>,
    #[arg(long, default_value_t = 12)]
    pub epochs: usize,
    /// Pairs per optimiser step.
    #[arg(long, default_value_t = 128)]
    pub batch_size: usize,
    #[arg(long, default_value_t = 1e-3)]
    pub lr: f64,
    #[arg(long, default_value_t = 0.0)]
    pub weight_decay: f64,
    /// Contrastive margin: dissimilar pairs are pushed at least this far apart.
    #[arg(long, default_value_t = 1.0)]
    pub margin: f64,
    /// Similar pairs closer than this are not pulled closer (0: the seed's loss).
    #[arg(long, default_value_t = 0.0)]
    pub positive_margin: f64,
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Random rotation, scale and shift of training images.
    #[arg(long, default_value_t = true, action = ArgAction::Set)]
    pub augment: bool,
    /// Dissimilar pairs per similar pair.
    #[arg(long, default_value_t = 1)]
    pub negatives: usize,
    /// Use every pair within a batch (many more negatives), not only the sampled pairs.
    #[arg(long, default_value_t = true, action = ArgAction::Set)]
    pub all_pairs: bool,
    /// Add mirrored and transposed copies of every training class as extra classes.
    #[arg(long, default_value_t = false, action = ArgAction::Set)]
    pub mirror_classes: bool,
    /// Scale embeddings to unit length.
    #[arg(long, default_value_t = true, action = ArgAction::Set)]
    pub l2_normalize: bool,
    /// Keep the seed's ReLU on the embedding layer.
    #[arg(long, default_value_t = false, action = ArgAction::Set)]
    pub final_relu: bool,
    #[arg(long, default_value_t = 0.0)]
    pub dropout: f64,
    #[arg(long, default_value_t = 128)]
    pub embedding_dim: i64,
    #[arg(long, value_enum, default_value_t = Network::SeedCnn)]
    pub architecture: Network,
    #[command(flatten)]
    pub residual: ResidualOptions,
    /// Use at most this many training samples per class (quick trials); default all.
    #[arg(long)]
    pub samples_per_class: Option<usize>,
    /// ImageFolder only: colour mode of the input.
    #[arg(long, value_enum, default_value_t = ColorMode::Rgb)]
    pub color: ColorMode,
    /// ImageFolder only: input side length in pixels.
    #[arg(long, default_value_t = 64)]
    pub size: u32,
}
