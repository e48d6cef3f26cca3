//! Near pairs into duplicate clusters: connected components, joined closest pair first, with a size
//! guard, so that a chain of near pairs (A like B, B like C, ...) cannot sweep a whole catalogue into one
//! cluster when the threshold is loose.

use super::pairs::NearPair;

/// One group of duplicates.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Cluster {
    /// The representative first, then the others in index order.
    pub(crate) members: Vec<usize>,
    /// The near pairs inside the cluster, closest first.
    pub(crate) pairs: Vec<NearPair>,
}

/// The clusters, largest first (ties: by representative).
#[derive(Debug, Default)]
pub(crate) struct Clustering {
    pub(crate) clusters: Vec<Cluster>,
    /// Near pairs left out because joining them would have made a cluster larger than the guard.
    pub(crate) refused_pairs: usize,
}

/// Clusters of `n` items from their near pairs: pairs are joined closest first (single linkage), and a
/// join that would make a cluster of more than `max_cluster` items is refused. `representative` picks
/// one member of each cluster (given its members in index order).
pub(crate) fn cluster(
    n: usize,
    pairs: &[NearPair],
    max_cluster: usize,
    representative: impl Fn(&[usize]) -> usize,
) -> Clustering {
    let mut sets = DisjointSets::new(n);
    let mut order: Vec<&NearPair> = pairs.iter().collect();
    order.sort_by(|x, y| x.distance.total_cmp(&y.distance).then((x.a, x.b).cmp(&(y.a, y.b))));
    let mut refused_pairs = 0;
    let mut kept = Vec::with_capacity(order.len());
    for pair in order {
        if sets.join(pair.a, pair.b, max_cluster) {
            kept.push(*pair);
        } else {
            refused_pairs += 1;
        }
    }
    let mut members_of: std::collections::HashMap<usize, Vec<usize>> = std::collections::HashMap::new();
    for item in 0..n {
        if sets.size(item) > 1 {
            members_of.entry(sets.root(item)).or_default().push(item);
        }
    }
    let mut pairs_of: std::collections::HashMap<usize, Vec<NearPair>> = std::collections::HashMap::new();
    for pair in kept {
        pairs_of.entry(sets.root(pair.a)).or_default().push(pair);
    }
    let mut clusters: Vec<Cluster> = members_of
        .into_iter()
        .map(|(root, mut members)| {
            let first = representative(&members);
            members.retain(|&m| m != first);
            members.insert(0, first);
            Cluster {
                members,
                // A refused pair's ends lie in two clusters; a kept pair's in one (its root's).
                pairs: pairs_of.remove(&root).unwrap_or_default(),
            }
        })
        .collect();
    clusters.sort_by(|x, y| {
        y.members
            .len()
            .cmp(&x.members.len())
            .then(x.members[0].cmp(&y.members[0]))
    });
    Clustering {
        clusters,
        refused_pairs,
    }
}

/// Union-find with sizes and path halving.
struct DisjointSets {
    parent: Vec<usize>,
    size: Vec<usize>,
}

impl DisjointSets {
    fn new(n: usize) -> Self {
        Self {
            parent: (0..n).collect(),
            size: vec![1; n],
        }
    }

    fn root(&mut self, mut item: usize) -> usize {
        while self.parent[item] != item {
            self.parent[item] = self.parent[self.parent[item]];
            item = self.parent[item];
        }
        item
    }

    fn size(&mut self, item: usize) -> usize {
        let root = self.root(item);
        self.size[root]
    }

    /// Joins the sets of `a` and `b` unless the joined set would exceed `max`; answers whether `a` and
    /// `b` are now in one set.
    fn join(&mut self, a: usize, b: usize, max: usize) -> bool {
        let (mut ra, mut rb) = (self.root(a), self.root(b));
        if ra == rb {
            return true;
        }
        if self.size[ra] + self.size[rb] > max {
            return false;
        }
        if self.size[ra] < self.size[rb] {
            std::mem::swap(&mut ra, &mut rb);
        }
        self.parent[rb] = ra;
        self.size[ra] += self.size[rb];
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair(a: usize, b: usize, distance: f32) -> NearPair {
        NearPair { a, b, distance }
    }

    #[test]
    fn components_with_the_chosen_representative_largest_first() {
        let pairs = [pair(0, 1, 0.1), pair(1, 2, 0.2), pair(4, 5, 0.05)];

        let found = cluster(7, &pairs, 100, |members| *members.iter().max().unwrap());

        assert_eq!(found.clusters.len(), 2);
        assert_eq!(found.clusters[0].members, vec![2, 0, 1]);
        assert_eq!(found.clusters[0].pairs, vec![pair(0, 1, 0.1), pair(1, 2, 0.2)]);
        assert_eq!(found.clusters[1].members, vec![5, 4]);
        assert_eq!(found.refused_pairs, 0);
    }

    #[test]
    fn the_guard_refuses_the_joins_that_would_grow_a_cluster_past_it() {
        // A chain 0-1-2-3 where the middle link is the weakest: the guard of 2 keeps the two strong pairs.
        let pairs = [pair(0, 1, 0.1), pair(1, 2, 0.4), pair(2, 3, 0.2)];

        let found = cluster(4, &pairs, 2, |members| members[0]);

        let members: Vec<Vec<usize>> = found.clusters.iter().map(|c| c.members.clone()).collect();
        assert_eq!(members, vec![vec![0, 1], vec![2, 3]]);
        assert_eq!(found.refused_pairs, 1);
    }
}
