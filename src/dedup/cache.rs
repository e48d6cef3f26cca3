//! The embedding cache of `simverify dedup`: one append-only file per (model weights, preprocessing),
//! keyed by the SHA-256 of each file's bytes, so that a re-run embeds only new or changed files, wherever
//! they sit and whatever they are called.
//!
//! A file is a header (magic and vector length) followed by fixed-size records: the content hash, the
//! image's width and height, and the embedding. A record cut short (a run stopped mid-write) is ignored.

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::{BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use sha2::{Digest, Sha256};

use crate::model::ModelCard;

const MAGIC: &[u8; 16] = b"simverify-embed1";

/// A file's content hash.
pub(crate) type ContentHash = [u8; 32];

/// What the cache keeps of an image.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Cached {
    pub(crate) width: u32,
    pub(crate) height: u32,
    pub(crate) embedding: Vec<f32>,
}

/// The embeddings one model (weights and preprocessing) made, by content hash.
pub(crate) struct EmbeddingCache {
    dim: usize,
    /// What earlier runs kept (shared with the decoding threads, read-only).
    known: Arc<HashMap<ContentHash, Cached>>,
    /// Where new records go; `None` without a cache directory.
    file: Option<BufWriter<File>>,
}

impl EmbeddingCache {
    /// A cache that keeps nothing.
    pub(crate) fn disabled(dim: usize) -> Self {
        Self {
            dim,
            known: Arc::default(),
            file: None,
        }
    }

    /// Opens (or starts) `card`'s cache file under `dir`, for embeddings of `dim` floats.
    pub(crate) fn open(dir: &Path, card: &ModelCard, dim: usize) -> anyhow::Result<Self> {
        fs::create_dir_all(dir).with_context(|| format!("cannot create the cache directory {}", dir.display()))?;
        let path = file_for(dir, card);
        let (known, whole) = read(&path, dim).unwrap_or_default();
        let mut file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .with_context(|| format!("cannot write the embedding cache {}", path.display()))?;
        // Cut a torn record (or a file of another length) away, so that new records line up.
        file.set_len(whole)?;
        file.seek(SeekFrom::End(0))?;
        if whole == 0 {
            file.write_all(MAGIC)?;
            file.write_all(&(dim as u32).to_le_bytes())?;
        }
        Ok(Self {
            dim,
            known: Arc::new(known),
            file: Some(BufWriter::new(file)),
        })
    }

    /// What earlier runs kept, by content hash.
    pub(crate) fn known(&self) -> Arc<HashMap<ContentHash, Cached>> {
        Arc::clone(&self.known)
    }

    /// Keeps `cached` under `hash` for later runs (on disk at the next `flush`).
    pub(crate) fn put(&mut self, hash: &ContentHash, cached: &Cached) -> anyhow::Result<()> {
        anyhow::ensure!(
            cached.embedding.len() == self.dim,
            "an embedding of the wrong length; this is a bug"
        );
        if let Some(file) = &mut self.file {
            file.write_all(hash)?;
            file.write_all(&cached.width.to_le_bytes())?;
            file.write_all(&cached.height.to_le_bytes())?;
            for value in &cached.embedding {
                file.write_all(&value.to_le_bytes())?;
            }
        }
        Ok(())
    }

    /// Writes what `put` kept since the last flush.
    pub(crate) fn flush(&mut self) -> anyhow::Result<()> {
        if let Some(file) = &mut self.file {
            file.flush().context("cannot write the embedding cache")?;
        }
        Ok(())
    }
}

/// The SHA-256 of `bytes`.
pub(crate) fn content_hash(bytes: &[u8]) -> ContentHash {
    Sha256::digest(bytes).into()
}

/// The default cache directory: `$XDG_CACHE_HOME/simverify/embeddings`, else `~/.cache/...`.
pub(crate) fn default_dir() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cache")))?;
    Some(base.join("simverify").join("embeddings"))
}

/// `<model>-<16 hex digits>.bin`: the digits hash the weights and the preprocessing, both of which
/// change what an image embeds to.
fn file_for(dir: &Path, card: &ModelCard) -> PathBuf {
    let mut hasher = Sha256::new();
    hasher.update(card.weights.sha256.as_bytes());
    hasher.update(serde_json::to_vec(&card.preprocessing).unwrap_or_default());
    let key = hex::encode(&hasher.finalize()[..8]);
    let name: String = card
        .name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    dir.join(format!("{name}-{key}.bin"))
}

/// The records of a cache file and the length of its whole records; `None` when it is missing or not a
/// cache of `dim`-float embeddings.
fn read(path: &Path, dim: usize) -> Option<(HashMap<ContentHash, Cached>, u64)> {
    let mut bytes = Vec::new();
    File::open(path).ok()?.read_to_end(&mut bytes).ok()?;
    let header = MAGIC.len() + 4;
    if bytes.len() < header || &bytes[..MAGIC.len()] != MAGIC {
        return None;
    }
    if u32::from_le_bytes(bytes[MAGIC.len()..header].try_into().ok()?) as usize != dim {
        return None;
    }
    let record = 32 + 8 + dim * 4;
    let mut known = HashMap::new();
    let records = bytes[header..].chunks_exact(record);
    let whole = (header + records.len() * record) as u64;
    for chunk in records {
        let hash: ContentHash = chunk[..32].try_into().ok()?;
        let word = |at: usize| u32::from_le_bytes(chunk[at..at + 4].try_into().expect("four bytes"));
        let embedding = chunk[40..]
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes(b.try_into().expect("four bytes")))
            .collect();
        known.insert(
            hash,
            Cached {
                width: word(32),
                height: word(36),
                embedding,
            },
        );
    }
    Some((known, whole))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_survive_a_reopen_and_a_torn_tail_is_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let card = crate::model::testing::card("m", 8, 2);
        let cached = Cached {
            width: 3,
            height: 4,
            embedding: vec![0.5, -1.0],
        };
        let mut cache = EmbeddingCache::open(dir.path(), &card, 2).unwrap();
        cache.put(&content_hash(b"one"), &cached).unwrap();
        cache.flush().unwrap();
        drop(cache);
        let path = file_for(dir.path(), &card);
        let mut file = OpenOptions::new().append(true).open(&path).unwrap();
        file.write_all(&[1, 2, 3]).unwrap();

        let cache = EmbeddingCache::open(dir.path(), &card, 2).unwrap();

        assert_eq!(cache.known().get(&content_hash(b"one")), Some(&cached));
        assert!(cache.known().get(&content_hash(b"two")).is_none());
        let mut cache = cache;
        cache.put(&content_hash(b"two"), &cached).unwrap();
        cache.flush().unwrap();
        drop(cache);
        let cache = EmbeddingCache::open(dir.path(), &card, 2).unwrap();
        assert_eq!(cache.known().len(), 2, "a record after a torn tail lines up");
        let other_length = EmbeddingCache::open(dir.path(), &card, 3).unwrap();
        assert!(other_length.known().is_empty(), "another length starts afresh");
    }
}
