//! Duplicate clusters: every group of near-identical images in a folder (`simverify dedup DIR`) or in the
//! enrolled catalogue (`simverify dedup --catalogue`, `POST /duplicates`).
//!
//! - `pairs.rs`, `cells.rs`: every pair closer than the threshold: an exact scan, or k-means cells
//!   compared by matrix products above a size.
//! - `clusters.rs`: pairs into clusters (closest first, with a size guard) and their representatives.
//! - `findings.rs`: the answer's shape (JSON, CSV, HTTP).
//! - `folder.rs`, `cache.rs`, `progress.rs`: a folder's files into embeddings, through a cache keyed by
//!   content and weights, with progress.
//! - `catalogue.rs`: the enrolled embeddings, read from the store without re-embedding.
//! - `report.rs`: the HTML report (thumbnails side by side, the nearest-distance histogram).

mod cache;
mod catalogue;
mod cells;
mod clusters;
mod findings;
mod folder;
mod pairs;
mod progress;
mod report;

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;
use clap::Args;
use serde::Serialize;

pub(crate) use findings::DuplicateCluster;
pub(crate) use pairs::Method;

use crate::config::ServeConfig;
use crate::model::distance::{from_squared, squared_euclidean};
use crate::model::ModelCard;
pub(crate) use clusters::Clustering;
pub(crate) use findings::{describe, Label};
pub(crate) use pairs::NearPairs;

/// `simverify dedup` settings: what to search, how, where the answer goes; and `serve`'s own settings,
/// so that the models, the device and the store are found exactly as the server finds them.
#[derive(Debug, Clone, Args)]
pub struct DedupConfig {
    /// The folder to search, recursively (leave it out with --catalogue).
    #[arg(required_unless_present = "catalogue", conflicts_with = "catalogue")]
    pub folder: Option<PathBuf>,

    /// Search the enrolled catalogue (the store `serve` uses: --store or --data-dir) instead of a
    /// folder, with the embeddings stored at enrolment.
    #[arg(long)]
    pub catalogue: bool,

    /// With --catalogue: only this subject's images (repeat for several).
    #[arg(long = "subject", requires = "catalogue")]
    pub subjects: Vec<String>,

    /// The model, as a request's `model` field; default: --default-model.
    #[arg(long)]
    pub model: Option<String>,

    /// Distance under which two images are duplicates; default: the model card's calibrated threshold.
    #[arg(long, value_parser = positive)]
    pub threshold: Option<f32>,

    /// Largest cluster: pairs are joined closest first, and a join past this size is refused (and
    /// counted), so that a chain of near pairs cannot sweep everything into one cluster.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(2..))]
    pub max_cluster: u64,

    /// How pairs are found: exact up to 20,000 images and approximate (k-means cells) above, or either
    /// always.
    #[arg(long, value_enum, default_value_t = Method::Auto)]
    pub method: Method,

    /// Write the JSON answer here rather than to standard output.
    #[arg(long)]
    pub json: Option<PathBuf>,

    /// Also write the clusters as CSV (one line per member).
    #[arg(long)]
    pub csv: Option<PathBuf>,

    /// Also write an HTML report (index.html and thumbnails) into this folder.
    #[arg(long, conflicts_with = "catalogue")]
    pub report: Option<PathBuf>,

    /// Where embeddings are cached between runs, keyed by file content and model weights; default:
    /// $XDG_CACHE_HOME/simverify/embeddings (~/.cache/... without it).
    #[arg(long)]
    pub cache_dir: Option<PathBuf>,

    /// Embed every file again and keep nothing.
    #[arg(long)]
    pub no_cache: bool,

    #[command(flatten)]
    pub serve: ServeConfig,
}

fn positive(text: &str) -> Result<f32, String> {
    match text.parse::<f32>() {
        Ok(value) if value.is_finite() && value > 0.0 => Ok(value),
        _ => Err(format!("{text:?} is not a positive number")),
    }
}

/// The whole answer of `simverify dedup`.
#[derive(Serialize)]
struct Findings {
    model: String,
    weights_sha256: String,
    threshold: f32,
    method: Method,
    max_cluster: u64,
    /// Images searched.
    images: usize,
    /// Embedded by this run; the others came from the cache (folders) or the store (catalogue).
    embedded: usize,
    /// Files that are not images this service decodes, or could not be read.
    skipped: Vec<folder::Skipped>,
    near_pairs: usize,
    /// Near pairs left out by the cluster size guard.
    refused_pairs: usize,
    seconds: Seconds,
    clusters: Vec<DuplicateCluster>,
}

#[derive(Serialize, Default)]
struct Seconds {
    embed: f64,
    search: f64,
}

impl Findings {
    /// The answer for `card`'s images: what the search found, nothing embedded or skipped yet.
    fn new(
        card: &ModelCard,
        config: &DedupConfig,
        threshold: f32,
        images: usize,
        (pairs, clustering): (&NearPairs, &Clustering),
        clusters: Vec<DuplicateCluster>,
    ) -> Self {
        Self {
            model: card.name.clone(),
            weights_sha256: card.weights.sha256.clone(),
            threshold,
            method: pairs.method,
            max_cluster: config.max_cluster,
            images,
            embedded: 0,
            skipped: Vec::new(),
            near_pairs: pairs.pairs.len(),
            refused_pairs: clustering.refused_pairs,
            seconds: Seconds::default(),
            clusters,
        }
    }
}

/// Every near pair and the clusters they make: `representative` picks each cluster's first member.
pub(crate) fn find(
    dim: usize,
    rows: &[f32],
    threshold: f32,
    method: Method,
    max_cluster: usize,
    representative: impl Fn(&[usize]) -> usize,
) -> Result<(NearPairs, Clustering), tch::TchError> {
    let pairs = pairs::near_pairs(dim, rows, threshold, method)?;
    let clustering = clusters::cluster(rows.len() / dim.max(1), &pairs.pairs, max_cluster, representative);
    Ok((pairs, clustering))
}

/// The member nearest all the others (the least sum of distances; ties: the first): the catalogue's
/// representative, as its images carry no sizes.
pub(crate) fn medoid(members: &[usize], rows: &[f32], dim: usize) -> usize {
    let row = |i: usize| &rows[i * dim..(i + 1) * dim];
    let total = |m: usize| -> f64 {
        members
            .iter()
            .map(|&o| f64::from(from_squared(squared_euclidean(row(m), row(o)))))
            .sum()
    };
    let mut best = (members[0], f64::INFINITY);
    for &m in members {
        let t = total(m);
        if t < best.1 {
            best = (m, t);
        }
    }
    best.0
}

/// Runs `simverify dedup`.
pub fn run(config: DedupConfig) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async {
        if config.catalogue {
            catalogue::run(config).await
        } else {
            run_folder(config).await
        }
    })
}

async fn run_folder(config: DedupConfig) -> anyhow::Result<()> {
    let root = config.folder.clone().context("a folder, or --catalogue")?;
    let (files, mut skipped) = folder::list_files(&root)?;
    let serve = &config.serve;
    let engine = serve.load_engine().await?;
    let model = config.model.clone().unwrap_or_else(|| serve.default_model.clone());
    let card = engine.card(&model)?.clone();
    let dim = card.architecture.embedding_dim as usize;
    let mut cache = match (config.no_cache, config.cache_dir.clone().or_else(cache::default_dir)) {
        (false, Some(dir)) => cache::EmbeddingCache::open(&dir, &card, dim)?,
        _ => cache::EmbeddingCache::disabled(dim),
    };
    let started = Instant::now();
    let batch = serve.max_batch_size.min(serve.queue_capacity) as usize;
    let embedded = folder::embed(files, &engine, &card, serve.decode_limits(), &mut cache, batch).await?;
    let embed_seconds = started.elapsed().as_secs_f64();
    skipped.extend(embedded.skipped.iter().cloned());
    let threshold = config.threshold.unwrap_or(card.decision.threshold);
    let images = &embedded.images;
    // The largest image (most pixels) is the one to keep; ties go to the first path.
    let largest = |members: &[usize]| {
        *members
            .iter()
            .max_by_key(|&&m| {
                (
                    u64::from(images[m].width) * u64::from(images[m].height),
                    std::cmp::Reverse(m),
                )
            })
            .expect("a cluster has members")
    };
    let started = Instant::now();
    let (pairs, clustering) = find(
        dim,
        &embedded.rows,
        threshold,
        config.method,
        config.max_cluster as usize,
        largest,
    )?;
    let search_seconds = started.elapsed().as_secs_f64();
    let label = |i: usize| Label {
        path: Some(images[i].path.clone()),
        subject: None,
        image: None,
        size: Some((images[i].width, images[i].height)),
    };
    let clusters = describe(&clustering.clusters, label, &embedded.rows, dim, &card.calibration);
    if let Some(dir) = &config.report {
        report::write(dir, &root, &clusters, &pairs.nearest, threshold, &card.name)?;
    }
    let findings = Findings {
        embedded: embedded.embedded,
        skipped,
        seconds: Seconds {
            embed: embed_seconds,
            search: search_seconds,
        },
        ..Findings::new(&card, &config, threshold, images.len(), (&pairs, &clustering), clusters)
    };
    write(&config, &findings)
}

/// The JSON (to `--json` or standard output), the CSV when asked, and a summary on standard error.
fn write(config: &DedupConfig, findings: &Findings) -> anyhow::Result<()> {
    let json = serde_json::to_string_pretty(findings)?;
    match &config.json {
        Some(path) => std::fs::write(path, json).with_context(|| format!("cannot write {}", path.display()))?,
        None => println!("{json}"),
    }
    if let Some(path) = &config.csv {
        std::fs::write(path, findings::csv(&findings.clusters))
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    let in_clusters: usize = findings.clusters.iter().map(|c| c.size).sum();
    eprintln!(
        "{} images ({} embedded now, {} skipped): {} near pairs, {} clusters holding {} images ({} search, threshold {})",
        findings.images,
        findings.embedded,
        findings.skipped.len(),
        findings.near_pairs,
        findings.clusters.len(),
        in_clusters,
        findings.method,
        findings.threshold
    );
    Ok(())
}
