//! API keys: the key file (one `NAME SHA256HEX` line per key, `#` comments), the constant-time check of
//! a presented key against every stored hash, and minting new keys.
//!
//! Only hashes are stored, so the file is not a secret that unlocks the service; a key itself exists
//! only in the output of `simverify keys add` and in the clients that hold it.

mod command;

use std::path::Path;

use anyhow::Context;
use base64::Engine as _;
use rand::RngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

pub use command::{run, KeysCommand};

/// What every minted key starts with, so that a leaked key is recognisable (secret scanners, logs).
const KEY_PREFIX: &str = "sv_";

/// The keys a server accepts: names with the SHA-256 of each key.
#[derive(Debug)]
pub(crate) struct ApiKeys {
    entries: Vec<Entry>,
}

#[derive(Debug)]
struct Entry {
    /// Labels the per-key request counter; never the key.
    name: String,
    hash: [u8; 32],
}

impl ApiKeys {
    /// Reads and checks a key file; a file without any key is an error (it would lock every client out).
    pub(crate) fn load(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the API key file {}", path.display()))?;
        let keys = Self::parse(&text).with_context(|| format!("in the API key file {}", path.display()))?;
        anyhow::ensure!(
            !keys.entries.is_empty(),
            "the API key file {} holds no key; add one with `simverify keys add NAME --file {}`",
            path.display(),
            path.display()
        );
        Ok(keys)
    }

    /// Parses the file's text: blank lines and `#` comments are skipped; names and hashes are unique.
    pub(crate) fn parse(text: &str) -> anyhow::Result<Self> {
        let mut entries: Vec<Entry> = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let number = i + 1;
            let mut words = line.split_whitespace();
            let (Some(name), Some(hex_hash), None) = (words.next(), words.next(), words.next()) else {
                anyhow::bail!("line {number}: expected `NAME SHA256HEX`");
            };
            anyhow::ensure!(
                valid_name(name),
                "line {number}: a key name is 1 to 64 letters, digits, `_`, `-` or `.`"
            );
            let mut hash = [0u8; 32];
            hex::decode_to_slice(hex_hash, &mut hash)
                .ok()
                .with_context(|| format!("line {number}: the hash is not 64 hexadecimal digits"))?;
            anyhow::ensure!(
                entries.iter().all(|e| e.name != name),
                "line {number}: the name {name} is used twice"
            );
            anyhow::ensure!(
                entries.iter().all(|e| e.hash != hash),
                "line {number}: the same key is listed twice"
            );
            entries.push(Entry {
                name: name.to_string(),
                hash,
            });
        }
        Ok(Self { entries })
    }

    pub(crate) fn names(&self) -> impl Iterator<Item = &str> {
        self.entries.iter().map(|e| e.name.as_str())
    }

    /// The name of the key `presented`, if it is one. Every stored hash is compared, each in constant
    /// time, so the time taken says nothing about how close a guess came.
    pub(crate) fn identify(&self, presented: &[u8]) -> Option<&str> {
        let digest: [u8; 32] = Sha256::digest(presented).into();
        let mut found = None;
        for entry in &self.entries {
            if bool::from(entry.hash.ct_eq(&digest)) {
                found = Some(entry.name.as_str());
            }
        }
        found
    }
}

/// A key name: short, and safe as a Prometheus label value and in the file's format.
pub(crate) fn valid_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
}

/// A new key: the prefix and 32 random bytes from the OS, base64url without padding.
pub(crate) fn mint() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    format!(
        "{KEY_PREFIX}{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    )
}

/// The line the key file stores for a key.
pub(crate) fn hash_hex(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_is_found_by_its_hash_and_nothing_else_is() {
        let key = mint();
        let text = format!(
            "# ops keys\n\nalice {}\n  bob {}  \n",
            hash_hex(&key),
            hash_hex("another")
        );

        let keys = ApiKeys::parse(&text).unwrap();

        assert_eq!(keys.identify(key.as_bytes()), Some("alice"));
        assert_eq!(keys.identify(b"another"), Some("bob"));
        assert_eq!(keys.identify(b""), None);
        assert_eq!(keys.identify(hash_hex(&key).as_bytes()), None, "the hash is not a key");
        assert_eq!(keys.names().collect::<Vec<_>>(), ["alice", "bob"]);
    }

    #[test]
    fn minted_keys_are_prefixed_random_and_url_safe() {
        let (a, b) = (mint(), mint());

        assert_ne!(a, b);
        assert!(a.starts_with("sv_"));
        assert_eq!(a.len(), 3 + 43);
        assert!(a[3..]
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_'));
    }

    #[test]
    fn malformed_lines_are_refused_with_their_number() {
        let hash = hash_hex("k");
        for (text, says) in [
            ("alice".to_string(), "line 1: expected"),
            (format!("# c\nalice {hash} extra"), "line 2: expected"),
            ("alice abc".to_string(), "line 1: the hash"),
            (format!("al ice{hash}"), "line 1: the hash"),
            (format!("al\"ice {hash}"), "line 1: a key name"),
            (format!("a {hash}\na {}", hash_hex("j")), "line 2: the name a"),
            (format!("a {hash}\nb {hash}"), "line 2: the same key"),
        ] {
            let err = ApiKeys::parse(&text).unwrap_err().to_string();
            assert!(err.contains(says), "{text:?}: {err}");
        }
    }
}
