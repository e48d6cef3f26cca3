//! Parses a class selection such as `0-6`, `7,8,9` or `shoes,bags` against a data set's class names.

use anyhow::{bail, Result};

/// Class indices named by `spec`: comma-separated names, and `a-b` ranges of numeric names, inclusive.
pub fn parse(spec: &str, names: &[String]) -> Result<Vec<usize>> {
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

/// The selection written back compactly for the model card, e.g. `0-6`.
pub fn describe(classes: &[usize], names: &[String]) -> String {
    let all_numeric_run =
        classes.windows(2).all(|w| w[1] == w[0] + 1) && classes.iter().all(|&c| names[c].parse::<usize>() == Ok(c));
    match (classes.first(), classes.last()) {
        (Some(&a), Some(&b)) if all_numeric_run && b > a => format!("{a}-{b}"),
        _ => classes.iter().map(|&c| names[c].as_str()).collect::<Vec<_>>().join(","),
    }
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
}
