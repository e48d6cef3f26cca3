//! Loads user data in the ImageFolder layout, `root/<class>/<image>`: one folder per product, signer or digit.

use std::path::Path;

use anyhow::{ensure, Context, Result};

use crate::model::card::Preprocessing;
use crate::preprocess::{self, DecodeLimits};
use crate::train::dataset::Dataset;

const IMAGE_EXTENSIONS: [&str; 6] = ["png", "jpg", "jpeg", "webp", "gif", "bmp"];

/// Reads every image under `root/<class>/`, classes sorted by name, files sorted within a class,
/// each decoded and preprocessed as the server will. Unreadable files are an error that names them.
pub(crate) fn load(root: &Path, pp: &Preprocessing) -> Result<Dataset> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::card::{ColorMode, Polarity, ResizeMode};

    fn rgb_pp() -> Preprocessing {
        Preprocessing {
            color: ColorMode::Rgb,
            width: 16,
            height: 16,
            resize: ResizeMode::Stretch,
            content_box: None,
            mean: vec![0.5; 3],
            std: vec![0.5; 3],
            polarity: Polarity::AsIs,
            trim_border: false,
        }
    }

    #[test]
    fn loads_one_class_per_folder_in_name_order() {
        let root = tempfile::tempdir().unwrap();
        for (class, shade, count) in [("shoes", 250u8, 3), ("bags", 10, 2)] {
            let dir = root.path().join(class);
            std::fs::create_dir(&dir).unwrap();
            for i in 0..count {
                let image = image::RgbImage::from_pixel(20 + i, 30, image::Rgb([shade, shade, shade]));
                image.save(dir.join(format!("{i}.png"))).unwrap();
            }
            std::fs::write(dir.join("notes.txt"), "not an image").unwrap();
        }

        let data = load(root.path(), &rgb_pp()).unwrap();

        assert_eq!(data.class_names, vec!["bags", "shoes"]);
        assert_eq!(data.labels, vec![0, 0, 1, 1, 1]);
        assert_eq!(data.sample_shape(), [3, 16, 16]);
        let first = data.images.get(0).mean(tch::Kind::Float).double_value(&[]);
        let last = data.images.get(4).mean(tch::Kind::Float).double_value(&[]);
        assert!(first < -0.9 && last > 0.9, "dark bags, light shoes: {first} {last}");
    }

    #[test]
    fn a_broken_image_is_named_in_the_error() {
        let root = tempfile::tempdir().unwrap();
        for class in ["a", "b"] {
            std::fs::create_dir(root.path().join(class)).unwrap();
            image::RgbImage::new(4, 4)
                .save(root.path().join(class).join("ok.png"))
                .unwrap();
        }
        std::fs::write(root.path().join("b").join("broken.png"), b"\x89PNG\r\n\x1a\n truncated").unwrap();

        let err = format!("{:#}", load(root.path(), &rgb_pp()).unwrap_err());

        assert!(err.contains("broken.png"), "{err}");
    }
}
