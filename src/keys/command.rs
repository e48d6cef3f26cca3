//! `simverify keys add NAME`: mints a key, prints it once on stdout, appends its hash to the key file.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::{Args, Subcommand};

use super::{hash_hex, mint, valid_name, ApiKeys};

/// The `keys` subcommands.
#[derive(Debug, Clone, Subcommand)]
pub enum KeysCommand {
    /// Mint a new API key, print it once, and append its SHA-256 to the key file.
    Add(AddArgs),
}

#[derive(Debug, Clone, Args)]
pub struct AddArgs {
    /// A name for the key (1 to 64 letters, digits, `_`, `-`, `.`); it labels the per-key request counter.
    pub name: String,
    /// The key file the server reads (`--api-keys-file`); created when missing.
    #[arg(long, env = "SIMVERIFY_API_KEYS_FILE")]
    pub file: PathBuf,
}

pub fn run(command: KeysCommand) -> anyhow::Result<()> {
    match command {
        KeysCommand::Add(args) => {
            let key = add(&args.file, &args.name)?;
            // The key goes to stdout alone, so that `KEY=$(simverify keys add NAME)` works.
            println!("{key}");
            eprintln!(
                "added key {:?} to {}; this is the only time it is shown",
                args.name,
                args.file.display()
            );
            Ok(())
        }
    }
}

/// Appends a new key named `name` to the file at `path` and returns the key.
fn add(path: &Path, name: &str) -> anyhow::Result<String> {
    anyhow::ensure!(
        valid_name(name),
        "a key name is 1 to 64 letters, digits, `_`, `-` or `.`"
    );
    let existing = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(err) => return Err(err).with_context(|| format!("cannot read {}", path.display())),
    };
    let keys = ApiKeys::parse(&existing).with_context(|| format!("in {}", path.display()))?;
    anyhow::ensure!(
        keys.names().all(|n| n != name),
        "{} already has a key named {name}",
        path.display()
    );
    let key = mint();
    let separator = if existing.is_empty() || existing.ends_with('\n') {
        ""
    } else {
        "\n"
    };
    let mut file = open_for_append(path).with_context(|| format!("cannot write {}", path.display()))?;
    writeln!(file, "{separator}{name} {}", hash_hex(&key))
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(key)
}

/// Opens for appending, creating the file readable by its owner only: the hashes do not unlock the
/// service, but the names and their number are nobody else's business.
fn open_for_append(path: &Path) -> std::io::Result<std::fs::File> {
    let mut options = std::fs::OpenOptions::new();
    options.create(true).append(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn added_keys_are_accepted_by_the_file_they_were_added_to() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys");
        std::fs::write(&path, "# header without a newline at the end").unwrap();

        let first = add(&path, "first").unwrap();
        let second = add(&path, "second").unwrap();

        let keys = ApiKeys::load(&path).unwrap();
        assert_eq!(keys.identify(first.as_bytes()), Some("first"));
        assert_eq!(keys.identify(second.as_bytes()), Some("second"));
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(!text.contains(&first), "the key itself is never stored");
        assert!(add(&path, "first").unwrap_err().to_string().contains("already"));
        assert!(add(&path, "bad name").is_err());
    }
}
