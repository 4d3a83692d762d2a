//! Legacy Session 13-word recovery phrases (Electrum/Monero style).
//!
//! Session encoded its 16-byte seed with Monero's "electrum words" scheme
//! over a fixed list of 1626 English words. Allium reads and writes these
//! phrases so that a Session user keeps the same Account ID.
//!
//! Format:
//!
//! - The seed is read 4 bytes at a time as a little-endian `u32` `x`; each
//!   `x` becomes 3 words `w1 = x % n`, `w2 = (x / n + w1) % n`,
//!   `w3 = (x / n² + w2) % n` with `n = 1626`. 16 bytes give 12 words.
//! - A 13th checksum word repeats data word `crc % 12`, where `crc` is the
//!   CRC-32 (IEEE) of the concatenated 3-character prefixes of the 12 data
//!   words.
//! - A word is identified by its first 3 characters, which are unique in
//!   the list. As in Monero, a typed word longer than 3 characters matches
//!   by its 3-character prefix alone ("abbreviation" is read as "abbey"),
//!   and a typed word shorter than 3 characters must equal a list word
//!   exactly (the list has none, so it is always refused).
//!
//! Turning the 16 bytes into the 32-byte Ed25519 seed (appending 16 zero
//! bytes) is done by the parent module.

use std::collections::HashMap;
use std::sync::OnceLock;

use zeroize::Zeroizing;

/// Words in a legacy phrase: 12 data words and one checksum word.
pub const PHRASE_WORDS: usize = 13;

/// Words in the legacy English word list.
pub const WORD_LIST_LEN: usize = 1626;

/// Characters of a word that identify it (unique within the word list).
pub const UNIQUE_PREFIX_CHARS: usize = 3;

/// Bytes of seed a legacy phrase stands for.
const SEED_BYTES: usize = 16;

/// Data words, i.e. all words but the checksum word.
const DATA_WORDS: usize = PHRASE_WORDS - 1;

/// The word list size as the modulus of the encoding arithmetic.
const N: u64 = WORD_LIST_LEN as u64;

/// The word list, one lowercase word per line.
const WORD_LIST_TEXT: &str = include_str!("../../data/session-mnemonic-english.txt");

// Checked at compile time so that parsing the list at run time cannot come
// up short, and every index below `WORD_LIST_LEN` names a word.
const _: () = assert!(
    is_well_formed(WORD_LIST_TEXT, WORD_LIST_LEN),
    "the legacy word list must hold exactly 1626 non-empty lines of a-z, each ending in a newline"
);

/// Whether `text` is exactly `lines` non-empty lines of `a`-`z`, each
/// terminated by `\n`.
const fn is_well_formed(text: &str, lines: usize) -> bool {
    let bytes = text.as_bytes();
    let mut count = 0;
    let mut line_len = 0;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\n' if line_len > 0 => {
                count += 1;
                line_len = 0;
            }
            b'a'..=b'z' => line_len += 1,
            _ => return false,
        }
        i += 1;
    }
    line_len == 0 && count == lines
}

/// Why a legacy phrase was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LegacyError {
    /// The phrase does not have 13 words.
    #[error("a legacy Session phrase has exactly 13 words; this one has {0}")]
    WordCount(usize),
    /// A word whose first 3 characters match no word of the list.
    #[error("word {position} ({word:?}) is not in the Session word list (only its first 3 letters are compared)")]
    UnknownWord {
        /// 1-based position of the word in the phrase.
        position: usize,
        /// The word as given.
        word: String,
    },
    /// The 13th word is not the checksum of the first 12.
    #[error(
        "the 13th word ({word:?}) does not match the checksum of the first 12 words: a word is wrong or words are out of order"
    )]
    Checksum {
        /// The 13th word as given.
        word: String,
    },
    /// Three data words that together stand for a number above
    /// `u32::MAX`, which no seed encodes to.
    ///
    /// Monero tells this case by `x % n != w1` in wrapping 32-bit
    /// arithmetic; that test and "out of range" are the same condition, so
    /// there is one error for both.
    #[error(
        "words {first}, {} and {} do not form a valid group (their value is out of range): one of them is wrong",
        .first + 1,
        .first + 2
    )]
    InvalidGroup {
        /// 1-based position of the first word of the group of three.
        first: usize,
    },
}

/// The parsed word list with its prefix index.
struct WordList {
    /// The words in list order; a word's index is its numeric value.
    words: [&'static str; WORD_LIST_LEN],
    /// Index of each word by its unique prefix.
    by_prefix: HashMap<&'static str, u16>,
}

impl WordList {
    /// Parses [`WORD_LIST_TEXT`], which the compile-time check guarantees
    /// holds exactly [`WORD_LIST_LEN`] words.
    fn parse() -> Self {
        let mut lines = WORD_LIST_TEXT.lines();
        let words: [&'static str; WORD_LIST_LEN] = std::array::from_fn(|_| lines.next().unwrap_or_default());
        let by_prefix = (0u16..).zip(words).map(|(index, word)| (prefix(word), index)).collect();
        Self { words, by_prefix }
    }

    /// The word at an index below [`WORD_LIST_LEN`].
    fn word(&self, index: u16) -> &'static str {
        // Indices only come from `% N` or from `by_prefix`, so are in range.
        self.words[usize::from(index)]
    }

    /// The index of a typed word, matched by its first 3 characters.
    fn index_of(&self, typed: &str) -> Option<u16> {
        self.by_prefix.get(prefix(typed)).copied()
    }
}

/// The word list, parsed on first use.
fn word_list() -> &'static WordList {
    static LIST: OnceLock<WordList> = OnceLock::new();
    LIST.get_or_init(WordList::parse)
}

/// The first [`UNIQUE_PREFIX_CHARS`] characters of a word, or the whole
/// word if shorter. Cuts at a character boundary, so never panics on
/// non-ASCII input.
fn prefix(word: &str) -> &str {
    match word.char_indices().nth(UNIQUE_PREFIX_CHARS) {
        Some((end, _)) => word.get(..end).unwrap_or(word),
        None => word,
    }
}

/// Which data word the checksum word repeats: CRC-32 of the concatenated
/// prefixes, modulo 12.
fn checksum_position(list: &WordList, data: &[u16; DATA_WORDS]) -> usize {
    let mut crc = crc32fast::Hasher::new();
    for &index in data {
        crc.update(prefix(list.word(index)).as_bytes());
    }
    // A `u32` modulo 12 always fits in `usize`.
    (crc.finalize() % DATA_WORDS as u32) as usize
}

/// The 3 word indices of one little-endian 4-byte chunk.
fn encode_group(x: u32) -> [u16; 3] {
    let x = u64::from(x);
    let w1 = x % N;
    let w2 = (x / N + w1) % N;
    let w3 = (x / N / N + w2) % N;
    // Each is below N = 1626, so fits in `u16`.
    [w1, w2, w3].map(|w| w as u16)
}

/// `(b - a) mod N` for word indices, without underflow.
fn diff_mod_n(a: u16, b: u16) -> u64 {
    (u64::from(b) + N - u64::from(a) % N) % N
}

/// The value of 3 word indices, or `None` if it exceeds `u32::MAX`.
///
/// Computed in `u64`: 1626³ > 2³², and wrapping (as Monero does) would hide
/// the overflow.
fn decode_group([w1, w2, w3]: [u16; 3]) -> Option<u32> {
    let x = u64::from(w1) + N * diff_mod_n(w1, w2) + N * N * diff_mod_n(w2, w3);
    u32::try_from(x).ok()
}

/// Encodes a 16-byte seed as 13 words.
pub fn encode(seed: &[u8; 16]) -> Vec<&'static str> {
    let list = word_list();
    let mut data = Zeroizing::new([0u16; DATA_WORDS]);
    let (chunks, _) = seed.as_chunks::<4>();
    let (groups, _) = data.as_chunks_mut::<3>();
    for (group, chunk) in groups.iter_mut().zip(chunks) {
        *group = encode_group(u32::from_le_bytes(*chunk));
    }
    let check = data[checksum_position(list, &data)];
    data.iter().chain([&check]).map(|&index| list.word(index)).collect()
}

/// Decodes 13 words to the 16-byte seed.
///
/// The words must already be lowercased. Each is matched by its first 3
/// characters, so a word typed in full or with a typo after the third
/// letter is accepted.
pub fn decode(words: &[&str]) -> Result<Zeroizing<[u8; 16]>, LegacyError> {
    let words: &[&str; PHRASE_WORDS] = words.try_into().map_err(|_| LegacyError::WordCount(words.len()))?;
    let list = word_list();
    let data = look_up_data_words(list, words)?;
    check_checksum(list, &data, words[DATA_WORDS])?;
    seed_of(&data)
}

/// Indices of the 12 data words, checking that the 13th is a list word too
/// (so a typo there is reported as such, not as a checksum mismatch).
fn look_up_data_words(
    list: &WordList,
    words: &[&str; PHRASE_WORDS],
) -> Result<Zeroizing<[u16; DATA_WORDS]>, LegacyError> {
    let mut data = Zeroizing::new([0u16; DATA_WORDS]);
    let mut slots = data.iter_mut();
    for (i, word) in words.iter().enumerate() {
        let index = list.index_of(word).ok_or_else(|| LegacyError::UnknownWord {
            position: i + 1,
            word: (*word).to_owned(),
        })?;
        if let Some(slot) = slots.next() {
            *slot = index;
        }
    }
    Ok(data)
}

/// Checks that the checksum word repeats the data word the CRC selects.
fn check_checksum(list: &WordList, data: &[u16; DATA_WORDS], checksum_word: &str) -> Result<(), LegacyError> {
    let expected = data[checksum_position(list, data)];
    // Prefixes are unique, so equal indices mean equal prefixes.
    if list.index_of(checksum_word) == Some(expected) {
        Ok(())
    } else {
        Err(LegacyError::Checksum {
            word: checksum_word.to_owned(),
        })
    }
}

/// The seed of 12 data word indices.
fn seed_of(data: &[u16; DATA_WORDS]) -> Result<Zeroizing<[u8; SEED_BYTES]>, LegacyError> {
    let mut seed = Zeroizing::new([0u8; SEED_BYTES]);
    let (groups, _) = data.as_chunks::<3>();
    let (chunks, _) = seed.as_chunks_mut::<4>();
    for ((g, group), chunk) in groups.iter().enumerate().zip(chunks) {
        let x = decode_group(*group).ok_or(LegacyError::InvalidGroup { first: 3 * g + 1 })?;
        *chunk = x.to_le_bytes();
    }
    Ok(seed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const VECTOR_PHRASE: &str = "amaze buffet cake entrance symptoms tiger lamb maze nestle python dusted faxed faxed";

    fn split(phrase: &str) -> Vec<&str> {
        phrase.split(' ').collect()
    }

    fn seed_0_to_15() -> [u8; 16] {
        std::array::from_fn(|i| i as u8)
    }

    /// 13 words of arbitrary data indices with a correct checksum word.
    fn phrase_of(data: [u16; DATA_WORDS]) -> Vec<&'static str> {
        let list = word_list();
        let check = data[checksum_position(list, &data)];
        data.iter().chain([&check]).map(|&i| list.word(i)).collect()
    }

    #[test]
    fn word_list_has_1626_words_with_unique_prefixes() {
        let list = word_list();
        assert_eq!(list.words.len(), WORD_LIST_LEN);
        assert_eq!(list.by_prefix.len(), WORD_LIST_LEN, "prefixes not unique");
        assert!(list.words.iter().all(|w| w.len() > UNIQUE_PREFIX_CHARS));
        assert_eq!(list.word(0), "abbey");
        assert_eq!(list.word(1625), "zoom");
    }

    #[test]
    fn public_vector_encodes() {
        assert_eq!(encode(&seed_0_to_15()).join(" "), VECTOR_PHRASE);
    }

    #[test]
    fn public_vector_decodes() {
        assert_eq!(*decode(&split(VECTOR_PHRASE)).unwrap(), seed_0_to_15());
    }

    #[test]
    fn phrase_gives_the_session_account_id() {
        let seed: [u8; 16] = hex::decode("0123456789abcdef0123456789abcdef")
            .unwrap()
            .try_into()
            .unwrap();
        let phrase = encode(&seed).join(" ");
        let identity = crate::mnemonic::identity_from_phrase(&phrase, "").unwrap();
        assert_eq!(
            identity.account_id().to_string(),
            "05d2ad010eeb72d72e561d9de7bd7b6989af77dcabffa03a5111a6c859ae5c3a72"
        );
        // And through the 32-byte padding directly.
        let mut seed32 = [0u8; 32];
        seed32[..16].copy_from_slice(&seed);
        assert_eq!(
            crate::identity::Identity::from_ed25519_seed(&seed32).account_id(),
            identity.account_id()
        );
    }

    #[test]
    fn words_match_by_three_letter_prefix() {
        let mut words = split(VECTOR_PHRASE);
        words[0] = "ama";
        words[1] = "bufferzone";
        words[12] = "faxxx";
        assert_eq!(*decode(&words).unwrap(), seed_0_to_15());
    }

    #[test]
    fn wrong_word_count_is_refused() {
        let words = split(VECTOR_PHRASE);
        assert_eq!(decode(&words[..12]), Err(LegacyError::WordCount(12)));
        assert_eq!(decode(&[]), Err(LegacyError::WordCount(0)));
        let mut more = words.clone();
        more.push("faxed");
        assert_eq!(decode(&more), Err(LegacyError::WordCount(14)));
        assert_eq!(
            LegacyError::WordCount(14).to_string(),
            "a legacy Session phrase has exactly 13 words; this one has 14"
        );
    }

    #[test]
    fn unknown_word_is_named_with_its_position() {
        for (position, bad) in [(1, "xyzzy"), (7, "am"), (13, "zz"), (4, "ämaze"), (5, "")] {
            let mut words = split(VECTOR_PHRASE);
            words[position - 1] = bad;
            let err = decode(&words).unwrap_err();
            assert_eq!(
                err,
                LegacyError::UnknownWord {
                    position,
                    word: bad.into()
                }
            );
            assert!(err.to_string().contains(&format!("word {position} ")));
            assert!(err.to_string().contains(&format!("{bad:?}")));
        }
    }

    #[test]
    fn first_unknown_word_is_reported() {
        let mut words = split(VECTOR_PHRASE);
        words[2] = "qqq";
        words[9] = "www";
        assert!(matches!(
            decode(&words),
            Err(LegacyError::UnknownWord { position: 3, .. })
        ));
    }

    #[test]
    fn wrong_checksum_word_is_refused() {
        let mut words = split(VECTOR_PHRASE);
        words[12] = "amaze";
        let err = decode(&words).unwrap_err();
        assert_eq!(err, LegacyError::Checksum { word: "amaze".into() });
        let message = err.to_string();
        assert!(message.contains("13th word (\"amaze\")"));
        // No other (secret) word of the phrase is quoted.
        for word in &words[1..12] {
            assert!(!message.contains(&format!("{word:?}")), "{message} leaks {word}");
        }
        assert_eq!(message.matches('"').count(), 2);
    }

    #[test]
    fn swapped_words_are_refused() {
        let mut words = split(VECTOR_PHRASE);
        words.swap(0, 1);
        assert!(decode(&words).is_err());
    }

    #[test]
    fn group_above_u32_max_is_refused() {
        // 2^32 itself, split into words as if it fitted.
        let x = 1u64 << 32;
        let w1 = x % N;
        let w2 = (x / N + w1) % N;
        let w3 = (x / N / N + w2) % N;
        let mut data = [0u16; DATA_WORDS];
        data[3..6].copy_from_slice(&[w1 as u16, w2 as u16, w3 as u16]);
        let err = decode(&phrase_of(data)).unwrap_err();
        assert_eq!(err, LegacyError::InvalidGroup { first: 4 });
        assert_eq!(
            err.to_string(),
            "words 4, 5 and 6 do not form a valid group (their value is out of range): one of them is wrong"
        );
    }

    #[test]
    fn group_bounds() {
        assert_eq!(decode_group(encode_group(u32::MAX)), Some(u32::MAX));
        assert_eq!(decode_group(encode_group(0)), Some(0));
        assert_eq!(decode_group([1625, 1625, 1625]), Some(1625));
        assert_eq!(decode_group([1625, 1624, 1623]), None);
        // That is the largest triple value, n³ - 1, above u32::MAX.
        assert_eq!(
            u64::from(1625u16) + N * diff_mod_n(1625, 1624) + N * N * diff_mod_n(1624, 1623),
            N * N * N - 1
        );
    }

    #[test]
    fn prefix_cuts_at_characters() {
        assert_eq!(prefix("abbey"), "abb");
        assert_eq!(prefix("ab"), "ab");
        assert_eq!(prefix(""), "");
        assert_eq!(prefix("äöüß"), "äöü");
        assert_eq!(prefix("a🦀b"), "a🦀b");
        assert_eq!(prefix("a🦀bc"), "a🦀b");
    }

    proptest! {
        #[test]
        fn round_trip(seed in any::<[u8; 16]>()) {
            let words = encode(&seed);
            prop_assert_eq!(words.len(), PHRASE_WORDS);
            prop_assert_eq!(*decode(&words).unwrap(), seed);
        }

        #[test]
        fn arbitrary_words_never_panic(words in proptest::collection::vec(any::<String>(), 0..16)) {
            let refs: Vec<&str> = words.iter().map(String::as_str).collect();
            let _ = decode(&refs);
        }

        #[test]
        fn arbitrary_thirteen_strings_never_panic(words in proptest::array::uniform13("\\PC{0,6}")) {
            let refs: Vec<&str> = words.iter().map(String::as_str).collect();
            let _ = decode(&refs);
        }

        /// Any 13 list words either are refused or are exactly the phrase
        /// of the seed they decode to: decoding accepts only canonical
        /// phrases.
        #[test]
        fn accepted_phrases_are_canonical(
            data in proptest::array::uniform12(0..WORD_LIST_LEN as u16),
            check in 0..WORD_LIST_LEN as u16,
        ) {
            let list = word_list();
            let words: Vec<&str> =
                data.iter().chain([&check]).map(|&i| list.word(i)).collect();
            if let Ok(seed) = decode(&words) {
                prop_assert_eq!(encode(&seed), words);
            }
        }

        /// Replacing one data word by another list word can never give back
        /// the original seed. It is usually refused, but not always: the
        /// new checksum position may point at a word equal to the 13th
        /// (1 in 12 by chance, more with repeated words) and the groups may
        /// be in range, giving a different seed. So only assert what always
        /// holds: never the original seed, and anything accepted is
        /// canonical.
        #[test]
        fn changed_word_never_decodes_to_the_original(
            seed in any::<[u8; 16]>(),
            position in 0..DATA_WORDS,
            replacement in 0..WORD_LIST_LEN as u16,
        ) {
            let list = word_list();
            let mut words = encode(&seed);
            let new_word = list.word(replacement);
            prop_assume!(words[position] != new_word);
            words[position] = new_word;
            match decode(&words) {
                Ok(other) => {
                    prop_assert_ne!(*other, seed);
                    prop_assert_eq!(encode(&other), words);
                }
                Err(e) => {
                    let expected = matches!(
                        e,
                        LegacyError::Checksum { .. } | LegacyError::InvalidGroup { .. }
                    );
                    prop_assert!(expected, "unexpected error {:?}", e);
                }
            }
        }
    }
}
