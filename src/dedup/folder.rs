//! A folder's images into embeddings: every file under it (recursively, in path order), read and hashed,
//! looked up in the embedding cache, else decoded and preprocessed on the blocking pool (as `serve`
//! does, within the same limits) and embedded by the engine a batch at a time. A file that cannot be
//! read or decoded is listed with its reason; it never stops the run.

use std::collections::HashMap;
use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use futures::StreamExt;

use super::cache::{content_hash, Cached, ContentHash, EmbeddingCache};
use super::progress::Progress;
use crate::infer::Engine;
use crate::model::{ModelCard, Preprocessing};
use crate::preprocess::{preprocess, DecodeLimits};

/// Files larger than this are listed as skipped rather than read into memory.
const MAX_FILE_BYTES: u64 = 256 * 1024 * 1024;

/// How long one batch may wait for the engine: nobody waits on an answer, only a stuck engine trips it.
const BATCH_DEADLINE: Duration = Duration::from_secs(600);

/// An image of the folder that embedded.
#[derive(Debug, Clone)]
pub(crate) struct FolderImage {
    /// Relative to the folder, with `/` separators.
    pub(crate) path: String,
    pub(crate) width: u32,
    pub(crate) height: u32,
}

/// A file left out, and why.
#[derive(Debug, Clone, serde::Serialize)]
pub(crate) struct Skipped {
    pub(crate) path: String,
    pub(crate) reason: String,
}

/// The folder's embeddings, row `i` for `images[i]`.
pub(crate) struct FolderEmbeddings {
    pub(crate) images: Vec<FolderImage>,
    pub(crate) rows: Vec<f32>,
    pub(crate) skipped: Vec<Skipped>,
    /// Embedded by this run (the rest came from the cache).
    pub(crate) embedded: usize,
}

/// A file to read, and its path relative to the folder.
pub(crate) type FolderFile = (PathBuf, String);

/// Every file under `root`, sorted, as (absolute, relative) paths; unreadable folders are skipped.
pub(crate) fn list_files(root: &Path) -> anyhow::Result<(Vec<FolderFile>, Vec<Skipped>)> {
    anyhow::ensure!(root.is_dir(), "{} is not a folder", root.display());
    let mut files = Vec::new();
    let mut skipped = Vec::new();
    let mut pending = vec![root.to_path_buf()];
    while let Some(dir) = pending.pop() {
        let entries = match std::fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(err) => {
                skipped.push(Skipped {
                    path: relative(root, &dir),
                    reason: format!("cannot list the folder: {err}"),
                });
                continue;
            }
        };
        for entry in entries.flatten() {
            let path = entry.path();
            // `metadata` follows symbolic links to files; links to folders are not followed (no loops).
            match entry.file_type() {
                Ok(kind) if kind.is_dir() => pending.push(path),
                Ok(kind) if kind.is_symlink() && path.is_dir() => {}
                Ok(_) => files.push((path.clone(), relative(root, &path))),
                Err(err) => skipped.push(Skipped {
                    path: relative(root, &path),
                    reason: err.to_string(),
                }),
            }
        }
    }
    files.sort_by(|a, b| a.1.cmp(&b.1));
    Ok((files, skipped))
}

fn relative(root: &Path, path: &Path) -> String {
    let rel = path.strip_prefix(root).unwrap_or(path);
    rel.components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join("/")
}

/// One file after the blocking step: from the cache, ready for the model, or skipped.
enum Prepared {
    Cached(FolderImage, Cached),
    Input(FolderImage, ContentHash, Vec<f32>),
    Skipped(Skipped),
}

/// Embeds `files` with `card`'s model, `batch` images per engine call, reading through `cache`.
pub(crate) async fn embed(
    files: Vec<FolderFile>,
    engine: &Engine,
    card: &ModelCard,
    limits: DecodeLimits,
    cache: &mut EmbeddingCache,
    batch: usize,
) -> anyhow::Result<FolderEmbeddings> {
    let dim = card.architecture.embedding_dim as usize;
    let progress = Progress::new(files.len() as u64);
    let mut out = FolderEmbeddings {
        images: Vec::with_capacity(files.len()),
        rows: Vec::with_capacity(files.len() * dim),
        skipped: Vec::new(),
        embedded: 0,
    };
    let chunks: Vec<Vec<FolderFile>> = files.chunks(batch.max(1)).map(<[_]>::to_vec).collect();
    let decoders = std::thread::available_parallelism().map_or(1, |t| t.get());
    // Each chunk's files are hashed, looked up and decoded on the blocking pool while the engine embeds
    // the chunk before (spawned eagerly, as `buffered` pulls them).
    let known = cache.known();
    let mut prepared = futures::stream::iter(chunks)
        .map(|chunk| {
            let (known, pp) = (Arc::clone(&known), card.preprocessing.clone());
            tokio::task::spawn_blocking(move || chunk.into_iter().map(|f| prepare(f, &known, &limits, &pp)).collect())
        })
        .buffered(decoders);
    while let Some(chunk) = prepared.next().await {
        let chunk: Vec<Prepared> = chunk.context("image preprocessing panicked")?;
        let count = chunk.len() as u64;
        let mut inputs = Vec::new();
        let mut waiting = Vec::new();
        for item in chunk {
            match item {
                Prepared::Cached(image, cached) => {
                    out.rows.extend_from_slice(&cached.embedding);
                    out.images.push(image);
                }
                Prepared::Input(image, hash, input) => {
                    inputs.push(input);
                    waiting.push((image, hash));
                }
                Prepared::Skipped(skipped) => out.skipped.push(skipped),
            }
        }
        if !inputs.is_empty() {
            let deadline = tokio::time::Instant::now() + BATCH_DEADLINE;
            let embeddings = engine.embed(&card.name, inputs, deadline).await?;
            out.embedded += embeddings.len();
            for ((image, hash), embedding) in waiting.into_iter().zip(embeddings) {
                out.rows.extend_from_slice(&embedding);
                let cached = Cached {
                    width: image.width,
                    height: image.height,
                    embedding,
                };
                cache.put(&hash, &cached)?;
                out.images.push(image);
            }
            cache.flush()?;
        }
        progress.advance(count);
    }
    progress.finish();
    Ok(out)
}

/// Reads, hashes and (unless `known` has it) decodes and preprocesses one file.
fn prepare(
    (path, name): FolderFile,
    known: &HashMap<ContentHash, Cached>,
    limits: &DecodeLimits,
    pp: &Preprocessing,
) -> Prepared {
    let skip = |reason: String| {
        Prepared::Skipped(Skipped {
            path: name.clone(),
            reason,
        })
    };
    let bytes = match read_capped(&path) {
        Ok(bytes) => bytes,
        Err(reason) => return skip(reason),
    };
    let hash = content_hash(&bytes);
    if let Some(cached) = known.get(&hash) {
        let image = FolderImage {
            path: name.clone(),
            width: cached.width,
            height: cached.height,
        };
        return Prepared::Cached(image, cached.clone());
    }
    let (width, height) = match dimensions(&bytes) {
        Ok(size) => size,
        Err(reason) => return skip(reason),
    };
    match preprocess(&bytes, limits, pp) {
        Ok(input) => Prepared::Input(
            FolderImage {
                path: name.clone(),
                width,
                height,
            },
            hash,
            input,
        ),
        Err(err) => skip(err.to_string()),
    }
}

fn read_capped(path: &Path) -> Result<Vec<u8>, String> {
    let size = std::fs::metadata(path).map_err(|e| format!("cannot read: {e}"))?.len();
    if size > MAX_FILE_BYTES {
        return Err(format!("{size} bytes, more than the {MAX_FILE_BYTES} read"));
    }
    std::fs::read(path).map_err(|e| format!("cannot read: {e}"))
}

/// Width and height from the header, without decoding.
fn dimensions(bytes: &[u8]) -> Result<(u32, u32), String> {
    image::ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| e.to_string())?
        .into_dimensions()
        .map_err(|e| format!("not an image this service decodes: {e}"))
}
