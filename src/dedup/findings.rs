//! What a duplicate search found, in the shape both `simverify dedup` (JSON, CSV) and `POST /duplicates`
//! answer: clusters with their members, each member's distance and score against the representative,
//! and the near pairs inside each cluster.

use serde::Serialize;
use utoipa::ToSchema;

use super::clusters::Cluster;
use crate::model::card::Calibration;
use crate::model::distance::{from_squared, squared_euclidean};

/// One image of a cluster: a file (`path`) or an enrolled image (`subject` and `image`).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub(crate) struct Member {
    /// The file, relative to the folder (`simverify dedup DIR`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// The enrolled subject the image belongs to (catalogue searches).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// The enrolled image's id (catalogue searches).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub width: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub height: Option<u32>,
    /// Euclidean distance to the cluster's representative (0 for the representative itself).
    pub distance: f32,
    /// The model's calibrated match probability for that distance.
    pub score: f32,
}

/// Two members closer than the threshold, by their `path` (files) or `image` id (catalogue).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub(crate) struct NearPairOut {
    pub a: String,
    pub b: String,
    pub distance: f32,
    pub score: f32,
}

/// One group of duplicates: the representative first.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub(crate) struct DuplicateCluster {
    pub size: usize,
    /// The representative's `path` or `image` id.
    pub representative: String,
    pub members: Vec<Member>,
    /// The near pairs that joined the cluster, closest first.
    pub pairs: Vec<NearPairOut>,
}

/// What identifies an item in the answer.
pub(crate) struct Label {
    pub(crate) path: Option<String>,
    pub(crate) subject: Option<String>,
    pub(crate) image: Option<String>,
    pub(crate) size: Option<(u32, u32)>,
}

impl Label {
    fn name(&self) -> &str {
        self.path.as_deref().or(self.image.as_deref()).unwrap_or_default()
    }
}

/// The answer's clusters from the clustering's, with distances measured on `rows` (`dim` floats each);
/// `label` names an item (only the clusters' members are asked for).
pub(crate) fn describe(
    clusters: &[Cluster],
    label: impl Fn(usize) -> Label,
    rows: &[f32],
    dim: usize,
    calibration: &Calibration,
) -> Vec<DuplicateCluster> {
    let row = |i: usize| &rows[i * dim..(i + 1) * dim];
    clusters
        .iter()
        .map(|cluster| {
            let first = cluster.members[0];
            let members = cluster
                .members
                .iter()
                .map(|&m| {
                    let distance = if m == first {
                        0.0
                    } else {
                        from_squared(squared_euclidean(row(m), row(first)))
                    };
                    let label = label(m);
                    Member {
                        path: label.path,
                        subject: label.subject,
                        image: label.image,
                        width: label.size.map(|s| s.0),
                        height: label.size.map(|s| s.1),
                        distance,
                        score: calibration.score(distance),
                    }
                })
                .collect();
            DuplicateCluster {
                size: cluster.members.len(),
                representative: label(first).name().to_string(),
                members,
                pairs: cluster
                    .pairs
                    .iter()
                    .map(|p| NearPairOut {
                        a: label(p.a).name().to_string(),
                        b: label(p.b).name().to_string(),
                        distance: p.distance,
                        score: calibration.score(p.distance),
                    })
                    .collect(),
            }
        })
        .collect()
}

/// The clusters as CSV: one line per member, the representative first in each cluster.
pub(crate) fn csv(clusters: &[DuplicateCluster]) -> String {
    let mut out = String::from("cluster,size,path,subject,image,representative,distance,score\n");
    for (number, cluster) in clusters.iter().enumerate() {
        for (at, member) in cluster.members.iter().enumerate() {
            let field = |value: &Option<String>| escape(value.as_deref().unwrap_or_default());
            out.push_str(&format!(
                "{},{},{},{},{},{},{},{}\n",
                number + 1,
                cluster.size,
                field(&member.path),
                field(&member.subject),
                field(&member.image),
                at == 0,
                member.distance,
                member.score
            ));
        }
    }
    out
}

/// A CSV field, quoted when it holds a comma, a quote or a line break (RFC 4180).
fn escape(value: &str) -> String {
    if value.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", value.replace('"', "\"\""))
    } else {
        value.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_quotes_what_needs_quoting() {
        assert_eq!(escape("plain.png"), "plain.png");
        assert_eq!(escape("a,b \"c\".png"), "\"a,b \"\"c\"\".png\"");
    }
}
