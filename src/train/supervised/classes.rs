//! Parses a class selection such as `0-6`, `7,8,9` or `shoes,bags` against a data set's class names.

use anyhow::{bail, Result};

/// Class indices named by `spec`: comma-separated names, and `a-b` ranges of numeric names, inclusive.
pub(crate) fn parse(spec: &str, names: &[String]) -> Result<Vec<usize>> {
    let mut selected = Vec::new();
    for part in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let wanted: Vec<String> = match part.split_once('-') {
            Some((a, b)) if a.parse::<u32>().is_ok() && b.parse::<u32>().is_ok() => {
                let (a, b): (u32, u32) = (a.parse()?, b.parse()?);
                if a > b {
                    bail!("empty class range {part}");
                }
                (a..=b).map(|n| n.to_string()).collect()
            }
            _ => vec![part.to_string()],
        };
        for name in wanted {
            match names.iter().position(|n| *n == name) {
                Some(i) if !selected.contains(&i) => selected.push(i),
                Some(_) => {}
                None => bail!("no class {name:?}; classes: {}", names.join(", ")),
            }
        }
    }
    if selected.is_empty() {
        bail!("the class selection {spec:?} is empty");
    }
    selected.sort_unstable();
    Ok(selected)
}

/// Longer class lists are summarised as their count and the first few names.
const NAMES_SHOWN: usize = 5;

/// The selection written back compactly for the model card and the log, e.g. `0-6`, or
/// `412 classes: bags, belts, boots, caps, coats, …` rather than hundreds of names on one line.
pub(crate) fn describe(classes: &[usize], names: &[String]) -> String {
    let all_numeric_run =
        classes.windows(2).all(|w| w[1] == w[0] + 1) && classes.iter().all(|&c| names[c].parse::<usize>() == Ok(c));
    match (classes.first(), classes.last()) {
        (Some(&a), Some(&b)) if all_numeric_run && b > a => format!("{a}-{b}"),
        _ if classes.len() > NAMES_SHOWN => {
            let shown: Vec<&str> = classes.iter().take(NAMES_SHOWN).map(|&c| names[c].as_str()).collect();
            format!("{} classes: {}, …", classes.len(), shown.join(", "))
        }
        _ => classes.iter().map(|&c| names[c].as_str()).collect::<Vec<_>>().join(","),
    }
}

/// The classes to train on: those `spec` names (all when `None`), never one of `held_out`.
pub(crate) fn training_classes(spec: Option<&str>, held_out: &[usize], names: &[String]) -> Result<Vec<usize>> {
    let chosen = match spec {
        Some(spec) => parse(spec, names)?,
        None => (0..names.len()).collect(),
    };
    let kept: Vec<usize> = chosen.into_iter().filter(|c| !held_out.contains(c)).collect();
    if kept.is_empty() {
        bail!("every selected class is held out as unseen; nothing is left to train on");
    }
    Ok(kept)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digits() -> Vec<String> {
        (0..10).map(|d| d.to_string()).collect()
    }

    #[test]
    fn ranges_lists_and_names() {
        assert_eq!(parse("0-6", &digits()).unwrap(), vec![0, 1, 2, 3, 4, 5, 6]);
        assert_eq!(parse("9, 7,8", &digits()).unwrap(), vec![7, 8, 9]);
        let names = vec!["bags".to_string(), "shoes".to_string()];
        assert_eq!(parse("shoes", &names).unwrap(), vec![1]);
        assert!(parse("hats", &names).is_err());
        assert!(parse("5-3", &digits()).is_err());
        assert_eq!(describe(&[0, 1, 2], &digits()), "0-2");
        assert_eq!(describe(&[7, 9], &digits()), "7,9");
    }

    #[test]
    fn long_lists_are_summarised() {
        let names: Vec<String> = (0..300).map(|i| format!("product{i:03}")).collect();
        let all: Vec<usize> = (0..300).collect();
        assert_eq!(
            describe(&all, &names),
            "300 classes: product000, product001, product002, product003, product004, …"
        );
    }

    #[test]
    fn held_out_classes_are_never_trained_on() {
        assert_eq!(
            training_classes(None, &[7, 8, 9], &digits()).unwrap(),
            (0..7).collect::<Vec<_>>()
        );
        assert_eq!(
            training_classes(Some("5-9"), &[7, 8, 9], &digits()).unwrap(),
            vec![5, 6]
        );
        assert!(training_classes(Some("7-9"), &[7, 8, 9], &digits()).is_err());
    }
}
