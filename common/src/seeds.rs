//! `seed-nodes.toml`: the seeds a client or node trusts.
//!
//! ```toml
//! [[seed]]
//! address = "seed1.example.org:22020"
//! ed25519 = "<64 hex characters>"
//! ```
//!
//! Parsing only; reading the file is the caller's job.

use serde::Deserialize;

use crate::encoding::{self, DecodeError};

/// A trusted seed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seed {
    /// `host:port` of the seed's HTTP server.
    pub address: String,
    /// The key its node lists are signed with.
    pub ed25519: [u8; 32],
}

/// Why a seed file was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SeedFileError {
    /// Not TOML of the expected shape.
    #[error("not a valid seed file: {0}")]
    Syntax(String),
    /// No `[[seed]]` entry.
    #[error("the seed file names no seed")]
    Empty,
    /// A seed's key is not 64 hex characters.
    #[error("seed {index} ({address}): ed25519 key: {source}")]
    Key {
        /// 1-based position of the `[[seed]]` table.
        index: usize,
        /// Its address.
        address: String,
        /// What is wrong with the key.
        source: DecodeError,
    },
    /// A seed's address is not `host:port`.
    #[error("seed {index}: address {address:?} is not host:port")]
    Address {
        /// 1-based position of the `[[seed]]` table.
        index: usize,
        /// The address given.
        address: String,
    },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SeedFile {
    #[serde(default)]
    seed: Vec<RawSeed>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSeed {
    address: String,
    ed25519: String,
}

/// Parses the text of a seed file.
pub fn parse(text: &str) -> Result<Vec<Seed>, SeedFileError> {
    let file: SeedFile = toml::from_str(text).map_err(|e| SeedFileError::Syntax(e.message().to_owned()))?;
    if file.seed.is_empty() {
        return Err(SeedFileError::Empty);
    }
    file.seed
        .into_iter()
        .enumerate()
        .map(|(i, raw)| {
            let index = i + 1;
            let port_ok = raw
                .address
                .rsplit_once(':')
                .is_some_and(|(h, p)| !h.is_empty() && p.parse::<u16>().is_ok_and(|p| p != 0));
            if !port_ok {
                return Err(SeedFileError::Address {
                    index,
                    address: raw.address,
                });
            }
            let ed25519 = encoding::hex_array(&raw.ed25519).map_err(|source| SeedFileError::Key {
                index,
                address: raw.address.clone(),
                source,
            })?;
            Ok(Seed {
                address: raw.address,
                ed25519,
            })
        })
        .collect()
}

/// Writes a seed file for `seeds` (used by the local devnet).
pub fn render(seeds: &[Seed]) -> String {
    seeds
        .iter()
        .map(|s| {
            format!(
                "[[seed]]\naddress = \"{}\"\ned25519 = \"{}\"\n",
                s.address,
                hex::encode(s.ed25519)
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_renders() {
        let seeds = vec![
            Seed {
                address: "127.0.0.1:22020".into(),
                ed25519: [1; 32],
            },
            Seed {
                address: "[::1]:22021".into(),
                ed25519: [2; 32],
            },
        ];
        assert_eq!(parse(&render(&seeds)), Ok(seeds));
    }

    #[test]
    fn errors_name_the_seed() {
        assert_eq!(parse(""), Err(SeedFileError::Empty));
        assert!(matches!(parse("[[seed]]\naddress = 1"), Err(SeedFileError::Syntax(_))));
        let bad_key = "[[seed]]\naddress = \"h:1\"\ned25519 = \"abcd\"\n";
        assert!(matches!(parse(bad_key), Err(SeedFileError::Key { index: 1, .. })));
        let bad_addr = format!("[[seed]]\naddress = \"h\"\ned25519 = \"{}\"\n", "00".repeat(32));
        assert!(matches!(parse(&bad_addr), Err(SeedFileError::Address { index: 1, .. })));
        let unknown = format!(
            "[[seed]]\naddress = \"h:1\"\ned25519 = \"{}\"\nport = 3\n",
            "00".repeat(32)
        );
        assert!(matches!(parse(&unknown), Err(SeedFileError::Syntax(_))));
    }
}
