//! Names people give: contact nicknames and display names.
//!
//! A name is 1 to [`MAX_CONTACT_NAME_CHARS`] characters, not only
//! whitespace, with no leading or trailing whitespace, and with no control
//! characters or bidirectional controls (names are printed to terminals).
//! An Account ID is 66 characters, longer than any name, so a name can
//! never be mistaken for one. The contacts themselves live in the shared
//! account state (`crate::book`).

use super::error::{HomeError, Result, echo};

/// Longest contact name, in characters.
pub const MAX_CONTACT_NAME_CHARS: usize = 64;
/// Most contacts an account keeps: each takes up to six keys of the
/// synced state, which holds at most 20,000
/// (`allium_common::account::state::MAX_ENTRIES`), with room left for
/// removals.
pub const MAX_CONTACTS: usize = 2_500;

/// Checks a contact name; the error says what is wrong.
pub fn validate_name(name: &str) -> Result<()> {
    let invalid = |reason| HomeError::InvalidContactName {
        name: echo(name),
        reason,
    };
    let chars = name.chars().count();
    if chars == 0 {
        return Err(invalid("it is empty"));
    }
    if chars > MAX_CONTACT_NAME_CHARS {
        return Err(invalid("it is longer than 64 characters"));
    }
    if name.chars().all(char::is_whitespace) {
        return Err(invalid("it is only whitespace"));
    }
    if name.starts_with(char::is_whitespace) || name.ends_with(char::is_whitespace) {
        return Err(invalid("it starts or ends with whitespace"));
    }
    if name.chars().any(char::is_control) {
        return Err(invalid("it contains control characters"));
    }
    if name.chars().any(is_bidi_control) {
        return Err(invalid("it contains bidirectional text controls"));
    }
    Ok(())
}

/// Unicode bidirectional controls, which can make a name display as
/// another one.
fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn invalid_names_are_refused() {
        let long = "x".repeat(MAX_CONTACT_NAME_CHARS + 1);
        for name in [
            "",
            " ",
            " \t\n",
            " bob",
            "bob ",
            "bo\nb",
            "bo\u{1b}[31mb",
            "bob\u{202e}",
            long.as_str(),
        ] {
            let err = validate_name(name).unwrap_err();
            assert!(matches!(err, HomeError::InvalidContactName { .. }), "{name:?}: {err}");
            assert!(!err.to_string().contains('\u{1b}'), "control characters are escaped");
        }
        for name in ["bob", "Alice Smith", "émile", &"é".repeat(MAX_CONTACT_NAME_CHARS)] {
            assert!(validate_name(name).is_ok(), "{name}");
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn accepted_names_are_printable_and_trimmed(name in "\\PC{0,70}") {
            if validate_name(&name).is_ok() {
                prop_assert!(name.chars().count() <= MAX_CONTACT_NAME_CHARS);
                prop_assert!(!name.chars().any(char::is_control));
                prop_assert_eq!(name.trim(), name.as_str());
            }
        }
    }
}
