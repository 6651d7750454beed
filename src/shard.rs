//! Shards: which workload lines one of N copies of llmvolley sends (`--shard I/N`, or `--shards N`
//! with the index from a Kubernetes Indexed Job or a Slurm job array), and its share of the job's
//! totals (concurrency, rates, budget).

use serde::{Deserialize, Serialize};

/// The environment variables a scheduler sets to a copy's index: Kubernetes Indexed Jobs
/// (`JOB_COMPLETION_INDEX`, 0-based) and Slurm job arrays (`SLURM_ARRAY_TASK_ID`).
pub const INDEX_VARIABLES: [&str; 2] = ["JOB_COMPLETION_INDEX", "SLURM_ARRAY_TASK_ID"];

/// Shard `index` of `count` (0-based).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shard {
    pub index: u32,
    pub count: u32,
}

impl Shard {
    /// `I/N`, e.g. `0/4` … `3/4`.
    pub fn parse(text: &str) -> Result<Shard, String> {
        let (index, count) = text
            .split_once('/')
            .ok_or_else(|| format!("{text:?}: expected I/N, e.g. 0/4 (shard 0 of 4)"))?;
        let index: u32 = index
            .trim()
            .parse()
            .map_err(|_| format!("{text:?}: the shard index must be a whole number"))?;
        let count: u32 = count
            .trim()
            .parse()
            .map_err(|_| format!("{text:?}: the shard count must be a whole number"))?;
        Shard::new(index, count)
    }

    pub fn new(index: u32, count: u32) -> Result<Shard, String> {
        if count == 0 {
            return Err("the shard count must be at least 1".into());
        }
        if index >= count {
            return Err(format!(
                "shard index {index} is not below the shard count {count} (indexes run from 0 to {})",
                count - 1
            ));
        }
        Ok(Shard { index, count })
    }

    /// `--shards N`: the index from the first of `INDEX_VARIABLES` that is set.
    pub fn from_env(count: u32, env: impl Fn(&str) -> Option<String>) -> Result<Shard, String> {
        let Some((name, value)) = INDEX_VARIABLES
            .iter()
            .find_map(|name| env(name).map(|value| (*name, value)))
        else {
            return Err(format!(
                "--shards {count} needs this copy's index: set {} (a Kubernetes Indexed Job or a Slurm array sets it), or give --shard I/{count}",
                INDEX_VARIABLES.join(" or ")
            ));
        };
        let index: u32 = value
            .trim()
            .parse()
            .map_err(|_| format!("{name}={value:?} is not a shard index"))?;
        Shard::new(index, count).map_err(|e| format!("{name}={value}: {e}"))
    }

    /// Whether the line with this id (its `custom_id`, else its line number) is this shard's. The
    /// id alone decides, so the shards of any N are disjoint and together hold every line, and a
    /// line keeps its shard when the file is edited elsewhere.
    pub fn owns(&self, id: &str) -> bool {
        self.count == 1
            || xxhash_rust::xxh3::xxh3_64(id.as_bytes()) % u64::from(self.count)
                == u64::from(self.index)
    }

    /// This shard's share of a whole-number job total (concurrency): the total split as evenly as
    /// whole numbers allow (the first `total % N` shards take one more), at least 1.
    pub fn share_of(&self, total: usize) -> usize {
        let (count, index) = (self.count as usize, self.index as usize);
        (total / count + usize::from(index < total % count)).max(1)
    }

    /// This shard's share of a job rate or budget: total / N.
    pub fn share(&self, total: f64) -> f64 {
        total / f64::from(self.count)
    }

    /// The seed of this shard's random schedule, derived from the job's: distinct per shard, the
    /// same for the same job seed and index, so N Poisson shards of rate R/N superpose to one
    /// Poisson process of rate R.
    pub fn seed(&self, job_seed: u64) -> u64 {
        if self.count == 1 {
            return job_seed;
        }
        let mut bytes = [0u8; 16];
        bytes[..8].copy_from_slice(&job_seed.to_le_bytes());
        bytes[8..12].copy_from_slice(&self.index.to_le_bytes());
        bytes[12..].copy_from_slice(&self.count.to_le_bytes());
        xxhash_rust::xxh3::xxh3_64(&bytes)
    }
}

impl std::fmt::Display for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_of_any_count_are_disjoint_and_complete() {
        let ids: Vec<String> = (1..=10_000).map(|i| i.to_string()).collect();
        for count in [1, 2, 3, 4, 7, 16] {
            let mut sizes = vec![0usize; count as usize];
            for id in &ids {
                let owners: Vec<u32> = (0..count)
                    .filter(|i| Shard::new(*i, count).unwrap().owns(id))
                    .collect();
                assert_eq!(owners.len(), 1, "{id} in {count} shards: {owners:?}");
                sizes[owners[0] as usize] += 1;
            }
            // Balanced to within a few percent of the fair share.
            let fair = ids.len() as f64 / f64::from(count);
            assert!(
                sizes
                    .iter()
                    .all(|s| (*s as f64 - fair).abs() < fair * 0.1 + 10.0),
                "{sizes:?}"
            );
        }
    }

    #[test]
    fn job_totals_split_into_shares_that_add_up() {
        let shares: Vec<usize> = (0..4)
            .map(|i| Shard::new(i, 4).unwrap().share_of(10))
            .collect();
        assert_eq!(shares, vec![3, 3, 2, 2]);
        assert_eq!(
            Shard::new(3, 4).unwrap().share_of(2),
            1,
            "at least one each"
        );
        assert_eq!(Shard::new(1, 4).unwrap().share(100.0), 25.0);
        let seeds: std::collections::HashSet<u64> =
            (0..8).map(|i| Shard::new(i, 8).unwrap().seed(42)).collect();
        assert_eq!(seeds.len(), 8);
        assert_eq!(Shard::new(0, 1).unwrap().seed(42), 42);
    }

    #[test]
    fn the_index_comes_from_the_flag_or_the_schedulers_variable() {
        assert_eq!(Shard::parse("2/4").unwrap(), Shard { index: 2, count: 4 });
        for bad in ["4/4", "1", "a/4", "0/0", "-1/4"] {
            assert!(Shard::parse(bad).is_err(), "{bad}");
        }
        let k8s = |name: &str| (name == "JOB_COMPLETION_INDEX").then(|| "3".to_string());
        assert_eq!(Shard::from_env(4, k8s).unwrap().index, 3);
        let slurm = |name: &str| (name == "SLURM_ARRAY_TASK_ID").then(|| "1".to_string());
        assert_eq!(Shard::from_env(4, slurm).unwrap().index, 1);
        let none = |_: &str| None;
        let e = Shard::from_env(4, none).unwrap_err();
        assert!(
            e.contains("JOB_COMPLETION_INDEX") && e.contains("SLURM_ARRAY_TASK_ID"),
            "{e}"
        );
        let big = |name: &str| (name == "JOB_COMPLETION_INDEX").then(|| "9".to_string());
        assert!(Shard::from_env(4, big).is_err());
    }
}
