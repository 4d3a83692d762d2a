//! Recovery phrases: 24-word BIP39 for new identities, and the legacy
//! 13-word Session phrase so that Session users keep their Account ID.
//!
//! A phrase is told apart by its word count: 13 words is a legacy Session
//! phrase; 12, 15, 18, 21 or 24 words is BIP39 English.

pub mod legacy;

use zeroize::Zeroizing;

use crate::identity::Identity;

pub use legacy::LegacyError;

/// Word count of a new identity's phrase (256 bits of entropy).
pub const NEW_PHRASE_WORDS: usize = 24;

/// Why a recovery phrase was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MnemonicError {
    /// Neither a BIP39 nor a legacy Session word count.
    #[error("a recovery phrase has 12, 15, 18, 21 or 24 BIP39 words, or 13 legacy Session words; this one has {0}")]
    WordCount(usize),
    /// A word that is not in the BIP39 English list.
    #[error("word {position} ({word:?}) is not in the BIP39 English word list")]
    UnknownWord {
        /// 1-based position of the word in the phrase.
        position: usize,
        /// The word as given.
        word: String,
    },
    /// All words are known but the BIP39 checksum does not match.
    #[error("the BIP39 checksum does not match: a word is wrong or two words are swapped")]
    Checksum,
    /// A legacy Session phrase was refused.
    #[error("legacy Session phrase: {0}")]
    Legacy(#[from] LegacyError),
    /// Legacy Session phrases have no passphrase.
    #[error("a legacy Session phrase takes no passphrase")]
    PassphraseWithLegacy,
}

/// What kind of phrase was given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PhraseKind {
    /// BIP39 English, with this many words.
    Bip39(usize),
    /// Legacy Session 13-word phrase.
    LegacySession,
}

/// A new BIP39 English phrase of 24 words from 32 bytes of entropy.
pub fn new_phrase(entropy: &[u8; 32]) -> Zeroizing<String> {
    // from_entropy only fails for lengths other than 16..=32 in steps of 4.
    match bip39::Mnemonic::from_entropy(entropy) {
        Ok(m) => Zeroizing::new(m.to_string()),
        Err(_) => unreachable!("32 bytes is a valid BIP39 entropy length"),
    }
}

/// Normalises a phrase as typed: lowercase, single spaces.
fn words_of(phrase: &str) -> Vec<String> {
    phrase.split_whitespace().map(str::to_lowercase).collect()
}

/// Tells what kind of phrase this is, by its word count alone.
pub fn kind_of(phrase: &str) -> Result<PhraseKind, MnemonicError> {
    let n = phrase.split_whitespace().count();
    match n {
        legacy::PHRASE_WORDS => Ok(PhraseKind::LegacySession),
        12 | 15 | 18 | 21 | 24 => Ok(PhraseKind::Bip39(n)),
        _ => Err(MnemonicError::WordCount(n)),
    }
}

/// The 32-byte Ed25519 seed a phrase stands for.
///
/// BIP39: the first 32 bytes of `PBKDF2-HMAC-SHA512(phrase, "mnemonic" ‖
/// passphrase, 2048)`. Legacy Session: the 16 decoded bytes followed by 16
/// zero bytes.
pub fn seed_from_phrase(phrase: &str, passphrase: &str) -> Result<Zeroizing<[u8; 32]>, MnemonicError> {
    let words = Zeroizing::new(words_of(phrase));
    match kind_of(phrase)? {
        PhraseKind::LegacySession => {
            if !passphrase.is_empty() {
                return Err(MnemonicError::PassphraseWithLegacy);
            }
            let refs: Vec<&str> = words.iter().map(String::as_str).collect();
            let seed16 = legacy::decode(&refs)?;
            let mut seed = Zeroizing::new([0u8; 32]);
            seed[..16].copy_from_slice(&*seed16);
            Ok(seed)
        }
        PhraseKind::Bip39(_) => {
            let normalised = Zeroizing::new(words.join(" "));
            let mnemonic = bip39::Mnemonic::parse_in_normalized(bip39::Language::English, &normalised)
                .map_err(|e| bip39_error(e, &words))?;
            let full = Zeroizing::new(mnemonic.to_seed_normalized(passphrase));
            let mut seed = Zeroizing::new([0u8; 32]);
            seed.copy_from_slice(&full[..32]);
            Ok(seed)
        }
    }
}

/// The identity a phrase stands for.
pub fn identity_from_phrase(phrase: &str, passphrase: &str) -> Result<Identity, MnemonicError> {
    let seed = seed_from_phrase(phrase, passphrase)?;
    Ok(Identity::from_ed25519_seed(&seed))
}

fn bip39_error(e: bip39::Error, words: &[String]) -> MnemonicError {
    match e {
        bip39::Error::UnknownWord(i) => MnemonicError::UnknownWord {
            position: i + 1,
            word: words.get(i).cloned().unwrap_or_default(),
        },
        bip39::Error::BadWordCount(n) => MnemonicError::WordCount(n),
        _ => MnemonicError::Checksum,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn word_count_decides_the_kind() {
        assert_eq!(kind_of(&"abandon ".repeat(12)), Ok(PhraseKind::Bip39(12)));
        assert_eq!(kind_of(&"abbey ".repeat(13)), Ok(PhraseKind::LegacySession));
        assert_eq!(kind_of("one two"), Err(MnemonicError::WordCount(2)));
    }

    #[test]
    fn new_phrase_has_24_words_and_round_trips() {
        let phrase = new_phrase(&[0x5a; 32]);
        assert_eq!(phrase.split(' ').count(), NEW_PHRASE_WORDS);
        let a = identity_from_phrase(&phrase, "").unwrap();
        let b = identity_from_phrase(&phrase.to_uppercase().replace(' ', "  \n"), "").unwrap();
        assert_eq!(a.account_id(), b.account_id());
        let c = identity_from_phrase(&phrase, "TREZOR").unwrap();
        assert_ne!(
            a.account_id(),
            c.account_id(),
            "the passphrase must change the identity"
        );
    }

    #[test]
    fn unknown_bip39_word_is_named() {
        let phrase = "abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandonx about";
        assert_eq!(
            seed_from_phrase(phrase, "").map(|_| ()),
            Err(MnemonicError::UnknownWord {
                position: 11,
                word: "abandonx".into()
            })
        );
    }

    #[test]
    fn bad_bip39_checksum_is_reported() {
        let phrase = "abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon";
        assert_eq!(seed_from_phrase(phrase, "").map(|_| ()), Err(MnemonicError::Checksum));
    }

    #[test]
    fn legacy_phrase_refuses_passphrase() {
        let phrase = "amaze buffet cake entrance symptoms tiger lamb maze nestle python dusted faxed faxed";
        assert_eq!(
            seed_from_phrase(phrase, "x").map(|_| ()),
            Err(MnemonicError::PassphraseWithLegacy)
        );
    }
}
