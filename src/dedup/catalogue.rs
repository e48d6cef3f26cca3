//! `simverify dedup --catalogue`: the duplicate clusters of the enrolled images, from the embeddings the
//! store kept at enrolment (nothing is re-embedded; images embedded by other weights are left out and
//! counted, for `simverify reindex`).

use std::collections::HashSet;
use std::time::Instant;

use anyhow::Context;

use super::{describe, find, medoid, write, DedupConfig, Findings, Label, Seconds};
use crate::model::store::read_card;
use crate::store::{ImageId, Store};

pub(super) async fn run(config: DedupConfig) -> anyhow::Result<()> {
    let serve = &config.serve;
    let model = config.model.clone().unwrap_or_else(|| serve.default_model.clone());
    let card = read_card(&serve.model_dir.join(&model)).with_context(|| {
        format!(
            "cannot read the card of model {model:?} under {}",
            serve.model_dir.display()
        )
    })?;
    let dim = card.architecture.embedding_dim as usize;
    let store = Store::open(&serve.store_url())
        .await
        .context("cannot open the subject store (--store / --data-dir)")?;
    let started = Instant::now();
    let wanted: HashSet<&str> = config.subjects.iter().map(String::as_str).collect();
    // The embeddings one after the other (a million take 1 GB at 256 floats), in the store's order.
    let mut rows: Vec<f32> = Vec::new();
    let mut images: Vec<(ImageId, String)> = Vec::new();
    let mut stale = 0usize;
    store
        .each_image(|row| {
            if row.model != card.name || !(wanted.is_empty() || wanted.contains(row.subject.as_str())) {
                return;
            }
            if row.weights_sha256 != card.weights.sha256 || row.embedding.len() != dim {
                stale += 1;
                return;
            }
            rows.extend_from_slice(&row.embedding);
            images.push((row.id, row.subject));
        })
        .await?;
    store.close().await;
    if stale > 0 {
        eprintln!("{stale} images embedded by other weights are left out: `simverify reindex` re-embeds them");
    }
    let read_seconds = started.elapsed().as_secs_f64();
    let threshold = config.threshold.unwrap_or(card.decision.threshold);
    let started = Instant::now();
    let (pairs, clustering) = find(
        dim,
        &rows,
        threshold,
        config.method,
        config.max_cluster as usize,
        |members| medoid(members, &rows, dim),
    )?;
    let search_seconds = started.elapsed().as_secs_f64();
    let label = |i: usize| Label {
        path: None,
        subject: Some(images[i].1.clone()),
        image: Some(images[i].0.to_string()),
        size: None,
    };
    let clusters = describe(&clustering.clusters, label, &rows, dim, &card.calibration);
    let findings = Findings {
        seconds: Seconds {
            embed: read_seconds,
            search: search_seconds,
        },
        ..Findings::new(&card, &config, threshold, images.len(), (&pairs, &clustering), clusters)
    };
    write(&config, &findings)
}
