//! The contact book: contacts as the account's synced state holds them
//! (namespace 3, `docs/account-sync.md`), read into a form that answers
//! "who is this" and "is this a contact" quickly. Pure: built from an
//! [`AccountState`], edited by writing keys of that state.
//!
//! Every device builds the same book from the same state: where two
//! devices gave two accounts one nickname at the same time, the nickname
//! written first keeps it and the other is shown as `NAME (2)`, on every
//! device alike, until the user renames one.

use std::collections::{BTreeMap, HashMap};

use allium_common::AccountId;
use allium_common::account::{AccountState, Stamp};
use allium_common::content::Disappear;
use serde_json::Value;

use crate::home::{HomeError, MAX_CONTACTS, validate_name};

/// The contacts' namespace.
pub const CONTACTS: allium_common::rpc::Namespace = allium_common::rpc::Namespace(3);

/// The fields of a contact's keys (`contact/<account id>/<field>`).
pub mod field {
    /// The local name this account gave the contact (string).
    pub const NICKNAME: &str = "nickname";
    /// The display name the contact chose for itself, as last announced (string).
    pub const NAME: &str = "name";
    /// Messages from the contact go to the inbox, not to requests (bool).
    pub const APPROVED: &str = "approved";
    /// The contact accepted this account (bool).
    pub const APPROVED_ME: &str = "approved_me";
    /// Messages from the contact are dropped unseen (bool).
    pub const BLOCKED: &str = "blocked";
    /// Requests from the contact up to this time (Unix ms) were declined.
    pub const DECLINED: &str = "declined";
    /// The conversation's disappearing setting (`{"after": "send"|"read",
    /// "ms": N}`; absent: off).
    pub const DISAPPEARING: &str = "disappearing";
}

/// The state key of `field` of `account`.
pub fn key(account: &AccountId, field: &str) -> String {
    format!("contact/{account}/{field}")
}

/// One account the book knows.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Contact {
    /// The name it is shown and addressed by here: the nickname (made
    /// unique, see the module docs), if any.
    pub nickname: Option<String>,
    /// The display name it chose, if it announced one.
    pub display_name: Option<String>,
    /// Its messages go to the inbox.
    pub approved: bool,
    /// It accepted this account.
    pub approved_me: bool,
    /// Its messages are dropped unseen.
    pub blocked: bool,
    /// Requests from it up to this time were declined.
    pub declined_ms: Option<u64>,
    /// Messages in the conversation disappear.
    pub disappearing: Option<Disappear>,
}

impl Contact {
    /// The name to show: the nickname, else the display name.
    pub fn shown_name(&self) -> Option<&str> {
        self.nickname.as_deref().or(self.display_name.as_deref())
    }

    /// Whether it is listed by `allium contacts list`.
    pub fn is_listed(&self) -> bool {
        self.approved || self.blocked || self.nickname.is_some()
    }
}

/// The contact book.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Book {
    contacts: BTreeMap<AccountId, Contact>,
    /// Nickname (ASCII lower case) → account.
    by_name: HashMap<String, AccountId>,
}

/// The account and field of a contact key.
fn parse_key(key: &str) -> Option<(AccountId, &str)> {
    let rest = key.strip_prefix("contact/")?;
    let (account, field) = rest.split_once('/')?;
    Some((account.parse().ok()?, field))
}

impl Book {
    /// The book the contacts' state describes. Values of the wrong type
    /// and names that fail [`validate_name`] are ignored (the state comes
    /// only from this account's devices, but a bug there must not put
    /// control characters on a terminal).
    pub fn from_state(state: &AccountState) -> Self {
        let mut contacts: BTreeMap<AccountId, Contact> = BTreeMap::new();
        let mut nicknames: Vec<(Stamp, AccountId, String)> = Vec::new();
        for (key, value) in state.with_prefix("contact/") {
            let Some((account, field)) = parse_key(key) else {
                continue;
            };
            let text = value.as_str().filter(|s| validate_name(s).is_ok()).map(str::to_owned);
            let flag = value.as_bool().unwrap_or(false);
            let contact = contacts.entry(account).or_default();
            match field {
                field::NICKNAME => {
                    if let (Some(name), Some(entry)) = (text, state.entry(key)) {
                        nicknames.push((entry.stamp, account, name));
                    }
                }
                field::NAME => contact.display_name = text,
                field::APPROVED => contact.approved = flag,
                field::APPROVED_ME => contact.approved_me = flag,
                field::BLOCKED => contact.blocked = flag,
                field::DECLINED => contact.declined_ms = value.as_u64(),
                field::DISAPPEARING => {
                    contact.disappearing = serde_json::from_value(value.clone())
                        .ok()
                        .filter(|d: &Disappear| crate::disappear::in_bounds(d.ms));
                }
                _ => {}
            }
        }
        // First written keeps the name; later ones get a number.
        nicknames.sort();
        let mut by_name = HashMap::new();
        for (_, account, name) in nicknames {
            let mut shown = name.clone();
            let mut n = 2;
            while by_name.contains_key(&shown.to_ascii_lowercase()) {
                shown = format!("{name} ({n})");
                n += 1;
            }
            by_name.insert(shown.to_ascii_lowercase(), account);
            if let Some(c) = contacts.get_mut(&account) {
                c.nickname = Some(shown);
            }
        }
        Self { contacts, by_name }
    }

    /// The book `home` holds.
    pub fn of(home: &crate::home::Home) -> Result<Self, HomeError> {
        Ok(Self::from_state(&home.account_state(CONTACTS)?.0))
    }

    /// What the book knows of `account`.
    pub fn get(&self, account: &AccountId) -> Option<&Contact> {
        self.contacts.get(account)
    }

    /// The account nicknamed `name` (ignoring ASCII case).
    pub fn by_name(&self, name: &str) -> Option<AccountId> {
        self.by_name.get(&name.to_ascii_lowercase()).copied()
    }

    /// The name to show for `account`, if it has one.
    pub fn shown_name(&self, account: &AccountId) -> Option<&str> {
        self.get(account).and_then(Contact::shown_name)
    }

    /// Whether messages from `account` go to the inbox.
    pub fn is_approved(&self, account: &AccountId) -> bool {
        self.get(account).is_some_and(|c| c.approved)
    }

    /// Whether messages from `account` are dropped.
    pub fn is_blocked(&self, account: &AccountId) -> bool {
        self.get(account).is_some_and(|c| c.blocked)
    }

    /// How many accounts `allium contacts list` shows.
    pub fn listed(&self) -> usize {
        self.contacts.values().filter(|c| c.is_listed()).count()
    }

    /// Every account the book knows, by Account ID.
    pub fn iter(&self) -> impl Iterator<Item = (&AccountId, &Contact)> {
        self.contacts.iter()
    }
}

/// Names `account` `name` and approves it (`allium contacts add`).
/// Refuses an invalid name, a name another account has (ignoring ASCII
/// case), an account that has a nickname already, and a full book.
pub fn add(state: &mut AccountState, name: &str, account: &AccountId, stamp: Stamp) -> Result<(), HomeError> {
    validate_name(name)?;
    let book = Book::from_state(state);
    if let Some(other) = book.by_name(name) {
        let existing = book.shown_name(&other).unwrap_or(name).to_owned();
        return Err(HomeError::ContactExists { name: existing });
    }
    if let Some(existing) = book.get(account).and_then(|c| c.nickname.clone()) {
        return Err(HomeError::ContactAccountExists {
            account: *account,
            name: existing,
        });
    }
    if book.listed() >= MAX_CONTACTS {
        return Err(HomeError::TooManyContacts { limit: MAX_CONTACTS });
    }
    write(state, account, field::NICKNAME, Some(Value::from(name)), stamp);
    write(state, account, field::APPROVED, Some(Value::Bool(true)), stamp);
    Ok(())
}

/// Forgets the contact nicknamed `name`: its nickname and approval go
/// (its messages become requests again); a block stays. Returns the
/// account, if there was one.
pub fn remove(state: &mut AccountState, name: &str, stamp: Stamp) -> Option<AccountId> {
    let account = Book::from_state(state).by_name(name)?;
    write(state, &account, field::NICKNAME, None, stamp);
    write(state, &account, field::APPROVED, None, stamp);
    Some(account)
}

/// Sets `field` of `account` to `value` (or removes it) as of `stamp`.
pub fn write(state: &mut AccountState, account: &AccountId, field: &str, value: Option<Value>, stamp: Stamp) {
    let key = key(account, field);
    match value {
        Some(v) => state.set(&key, v, stamp),
        None => state.remove(&key, stamp),
    };
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn account(n: u8) -> AccountId {
        AccountId::from_x25519([n; 32])
    }

    fn stamp(at: u64, device: u8) -> Stamp {
        Stamp {
            at,
            device: [device; 16],
        }
    }

    #[test]
    fn fields_are_read_back_and_looked_up_by_name() {
        let mut s = AccountState::default();
        write(&mut s, &account(1), field::NICKNAME, Some(json!("Bob")), stamp(1, 1));
        write(&mut s, &account(1), field::APPROVED, Some(json!(true)), stamp(1, 1));
        write(&mut s, &account(2), field::NAME, Some(json!("Carol C")), stamp(1, 1));
        write(&mut s, &account(3), field::BLOCKED, Some(json!(true)), stamp(1, 1));
        let book = Book::from_state(&s);
        assert_eq!(book.by_name("bob"), Some(account(1)));
        assert_eq!(book.shown_name(&account(1)), Some("Bob"));
        assert_eq!(
            book.shown_name(&account(2)),
            Some("Carol C"),
            "the display name when no nickname"
        );
        assert!(book.is_approved(&account(1)) && !book.is_approved(&account(2)));
        assert!(book.is_blocked(&account(3)) && !book.is_blocked(&account(1)));
        assert!(
            !book.get(&account(2)).unwrap().is_listed(),
            "a display name alone is no contact"
        );
        assert_eq!(book.by_name("Carol C"), None, "display names are not addresses");
    }

    #[test]
    fn a_nickname_wins_over_the_display_name() {
        let mut s = AccountState::default();
        write(&mut s, &account(1), field::NAME, Some(json!("Robert")), stamp(1, 1));
        write(&mut s, &account(1), field::NICKNAME, Some(json!("dad")), stamp(2, 1));
        assert_eq!(Book::from_state(&s).shown_name(&account(1)), Some("dad"));
    }

    #[test]
    fn one_nickname_given_on_two_devices_stays_unique_and_the_same_everywhere() {
        let mut phone = AccountState::default();
        let mut laptop = AccountState::default();
        write(
            &mut phone,
            &account(1),
            field::NICKNAME,
            Some(json!("Sam")),
            stamp(10, 1),
        );
        write(
            &mut laptop,
            &account(2),
            field::NICKNAME,
            Some(json!("sam")),
            stamp(11, 2),
        );
        let (mut a, mut b) = (phone.clone(), laptop.clone());
        a.merge(&laptop);
        b.merge(&phone);
        let (book_a, book_b) = (Book::from_state(&a), Book::from_state(&b));
        assert_eq!(book_a, book_b);
        assert_eq!(book_a.by_name("sam"), Some(account(1)), "the first written keeps it");
        assert_eq!(book_a.by_name("sam (2)"), Some(account(2)));
    }

    #[test]
    fn add_refuses_taken_names_and_named_accounts_and_remove_keeps_a_block() {
        let mut s = AccountState::default();
        add(&mut s, "bob", &account(1), stamp(1, 1)).unwrap();
        assert!(matches!(
            add(&mut s, "BOB", &account(2), stamp(2, 1)),
            Err(HomeError::ContactExists { name }) if name == "bob"
        ));
        assert!(matches!(
            add(&mut s, "robert", &account(1), stamp(2, 1)),
            Err(HomeError::ContactAccountExists { name, .. }) if name == "bob"
        ));
        assert!(matches!(
            add(&mut s, "bad\nname", &account(3), stamp(2, 1)),
            Err(HomeError::InvalidContactName { .. })
        ));
        write(&mut s, &account(1), field::BLOCKED, Some(json!(true)), stamp(3, 1));
        assert_eq!(remove(&mut s, "Bob", stamp(4, 1)), Some(account(1)));
        assert_eq!(remove(&mut s, "bob", stamp(5, 1)), None);
        let book = Book::from_state(&s);
        assert!(!book.is_approved(&account(1)) && book.is_blocked(&account(1)));
        assert_eq!(book.by_name("bob"), None);
        add(&mut s, "bob", &account(2), stamp(6, 1)).unwrap();
        assert_eq!(
            Book::from_state(&s).by_name("bob"),
            Some(account(2)),
            "the name is free again"
        );
    }

    #[test]
    fn the_book_is_bounded() {
        let mut s = AccountState::default();
        // What `add` writes, without rebuilding the book each time.
        for i in 0..MAX_CONTACTS - 1 {
            let mut key = [0u8; 32];
            key[..8].copy_from_slice(&(i as u64).to_be_bytes());
            let id = AccountId::from_x25519(key);
            write(&mut s, &id, field::NICKNAME, Some(json!(format!("c{i}"))), stamp(1, 1));
            write(&mut s, &id, field::APPROVED, Some(json!(true)), stamp(1, 1));
        }
        add(&mut s, "the last one", &account(0xfe), stamp(2, 1)).unwrap();
        assert!(matches!(
            add(&mut s, "one more", &account(0xff), stamp(2, 1)),
            Err(HomeError::TooManyContacts { limit: MAX_CONTACTS })
        ));
        assert!(s.encode().is_ok(), "a full book still fits the state's limits");
    }

    #[test]
    fn bad_values_are_ignored() {
        let mut s = AccountState::default();
        write(
            &mut s,
            &account(1),
            field::NICKNAME,
            Some(json!("evil\u{1b}[2J")),
            stamp(1, 1),
        );
        write(&mut s, &account(1), field::APPROVED, Some(json!("yes")), stamp(1, 1));
        s.set("contact/not-an-id/nickname", json!("x"), stamp(1, 1));
        let book = Book::from_state(&s);
        assert_eq!(book.shown_name(&account(1)), None);
        assert!(!book.is_approved(&account(1)));
        assert_eq!(book.iter().count(), 1);
    }
}
