//! Loads user data in the ImageFolder layout, `root/<class>/<image>`: one folder per product, signer or digit.

use std::path::Path;

use anyhow::{ensure, Context, Result};

use super::dataset::Dataset;
use crate::model::card::Preprocessing;
use crate::preprocess::{self, DecodeLimits};

const IMAGE_EXTENSIONS: [&str; 6] = ["png", "jpg", "jpeg", "webp", "gif", "bmp"];

/// Reads every image under `root/<class>/`, classes sorted by name, files sorted within a class,
/// each decoded and preprocessed as the server will. Unreadable files are an error that names them.
pub fn load(root: &Path, pp: &Preprocessing) -> Result<Dataset> {
    let mut classes: Vec<_> = std::fs::read_dir(root)
        .with_context(|| format!("reading {}", root.display()))?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| path.is_dir())
        .collect();
    classes.sort();
    ensure!(
        classes.len() >= 2,
        "{} needs at least two class folders",
        root.display()
    );

    let limits = DecodeLimits::default();
    let (mut inputs, mut labels, mut names) = (Vec::new(), Vec::new(), Vec::new());
    for (label, class_dir) in classes.iter().enumerate() {
        let mut files: Vec<_> = std::fs::read_dir(class_dir)?
            .filter_map(|entry| entry.ok().map(|e| e.path()))
            .filter(|path| has_image_extension(path))
            .collect();
        files.sort();
        for file in files {
            let bytes = std::fs::read(&file).with_context(|| format!("reading {}", file.display()))?;
            let input = preprocess::preprocess(&bytes, &limits, pp).with_context(|| format!("{}", file.display()))?;
            inputs.push(input);
            labels.push(label);
        }
        names.push(
            class_dir
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
        );
    }
    ensure!(!inputs.is_empty(), "no images under {}", root.display());
    let shape = [pp.color.channels() as i64, i64::from(pp.height), i64::from(pp.width)];
    Ok(Dataset::from_inputs(&inputs, shape, labels, names))
}

fn has_image_extension(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| IMAGE_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
}
