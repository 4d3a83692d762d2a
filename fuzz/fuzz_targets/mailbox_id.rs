//! Parsing arbitrary text as a mailbox ID, directly and as a JSON value,
//! never panics; what parses prints back as the input, in lowercase (the
//! hex may come in either case); both parsers take the same strings; and
//! `allows` agrees with `from_stored` for namespaces on either side of the
//! group range 11–15.
#![no_main]

use allium_common::MailboxId;
use allium_common::rpc::Namespace;
use libfuzzer_sys::fuzz_target;

/// The edges of the group range, the ends of `i16`, and the account
/// namespaces in use (inbox, published keys, device records).
const NAMESPACES: [i16; 12] = [i16::MIN, -22, -21, -1, 0, 1, 10, 11, 13, 15, 16, i16::MAX];

/// What a parsed ID must satisfy, given the text it was parsed from.
fn check(id: MailboxId, text: &str) {
    let printed = id.to_string();
    assert!(printed.eq_ignore_ascii_case(text), "{text:?} printed as {printed:?}");
    assert_eq!(printed, printed.to_ascii_lowercase());
    assert_eq!(printed.parse::<MailboxId>(), Ok(id));
    let kind_prefix = if id.group().is_some() { "03" } else { "05" };
    assert!(printed.starts_with(kind_prefix), "{printed}");
    assert_eq!(id.account().is_some(), id.group().is_none());
    for ns in NAMESPACES.map(Namespace) {
        // A row stored under this key and namespace belongs to a mailbox
        // of the kind the namespace allows, with the same key.
        let stored = MailboxId::from_stored(*id.key(), ns);
        assert!(stored.allows(ns), "{stored:?} refuses {ns:?}, where it was stored");
        assert_eq!(stored.key(), id.key());
        assert_eq!(id.allows(ns), stored == id, "{id:?} in {ns:?}");
        assert_eq!(id.allows(ns), ns.is_group() == id.group().is_some());
    }
}

fuzz_target!(|text: &str| {
    let direct = text.parse::<MailboxId>();
    if let Ok(id) = direct {
        check(id, text);
    }
    // The same text as a JSON string parses exactly when it parses directly.
    let quoted = serde_json::to_string(text).unwrap_or_default();
    let from_json = serde_json::from_str::<MailboxId>(&quoted).ok();
    assert_eq!(from_json, direct.ok(), "JSON {quoted:?} and text disagree");

    // The text as JSON itself: what parses is a string that parses directly.
    if let Ok(id) = serde_json::from_str::<MailboxId>(text) {
        let inner = serde_json::from_str::<String>(text);
        assert!(inner.is_ok(), "{text:?} parsed as a mailbox ID but not as a string");
        let inner = inner.unwrap_or_default();
        assert_eq!(inner.parse::<MailboxId>(), Ok(id));
        check(id, &inner);
    }
});
