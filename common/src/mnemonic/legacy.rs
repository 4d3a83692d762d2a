//! Legacy Session 13-word recovery phrases (placeholder, being written).

use zeroize::Zeroizing;

/// Words in a legacy phrase: 12 data words and one checksum word.
pub const PHRASE_WORDS: usize = 13;

/// Why a legacy phrase was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LegacyError {
    /// Placeholder.
    #[error("not implemented yet")]
    Unimplemented,
}

/// Decodes 13 words to the 16-byte seed.
pub fn decode(_words: &[&str]) -> Result<Zeroizing<[u8; 16]>, LegacyError> {
    Err(LegacyError::Unimplemented)
}

/// Encodes a 16-byte seed as 13 words.
pub fn encode(_seed: &[u8; 16]) -> Vec<&'static str> {
    Vec::new()
}
