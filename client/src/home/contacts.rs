//! Contacts: short local names for Account IDs.
//!
//! A name is 1 to [`MAX_CONTACT_NAME_CHARS`] characters, not only
//! whitespace, with no leading or trailing whitespace, and with no control
//! characters or bidirectional controls (names are printed to terminals).
//! Names are unique ignoring ASCII case, so `allium send alice` cannot be
//! ambiguous, and an account has at most one name. An Account ID is 66 characters, longer than any
//! name, so a name can never be mistaken for one.

use allium_common::AccountId;
use rusqlite::{OptionalExtension, params};

use super::error::{HomeError, Result, echo};
use super::{Home, parse_account};

/// Longest contact name, in characters.
pub const MAX_CONTACT_NAME_CHARS: usize = 64;
/// Most contacts a home keeps.
pub const MAX_CONTACTS: usize = 10_000;

/// A saved contact.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Contact {
    /// The local name.
    pub name: String,
    /// The contact's Account ID.
    pub account_id: AccountId,
}

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

impl Home {
    /// Saves `account_id` under `name`. Refuses an invalid name, a name
    /// already taken (ignoring ASCII case), an account already saved under
    /// another name, and a full contact list.
    pub fn add_contact(&mut self, name: &str, account_id: AccountId) -> Result<()> {
        validate_name(name)?;
        let account = account_id.to_string();
        const OP: &str = "adding a contact";
        let tx = self.immediate_tx(OP)?;
        let same_name: Option<String> = tx
            .query_row("SELECT name FROM contacts WHERE name = ?1", [name], |r| r.get(0))
            .optional()
            .map_err(self.db_err(OP))?;
        if let Some(existing) = same_name {
            return Err(HomeError::ContactExists { name: existing });
        }
        let same_account: Option<String> = tx
            .query_row("SELECT name FROM contacts WHERE account_id = ?1", [&account], |r| {
                r.get(0)
            })
            .optional()
            .map_err(self.db_err(OP))?;
        if let Some(existing) = same_account {
            return Err(HomeError::ContactAccountExists {
                account: account_id,
                name: existing,
            });
        }
        let count: i64 = tx
            .query_row("SELECT count(*) FROM contacts", [], |r| r.get(0))
            .map_err(self.db_err(OP))?;
        if usize::try_from(count).unwrap_or(usize::MAX) >= MAX_CONTACTS {
            return Err(HomeError::TooManyContacts { limit: MAX_CONTACTS });
        }
        tx.execute(
            "INSERT INTO contacts (name, account_id) VALUES (?1, ?2)",
            params![name, account],
        )
        .map_err(self.db_err(OP))?;
        tx.commit().map_err(self.db_err(OP))
    }

    /// Removes the contact `name` (ignoring ASCII case). Returns whether
    /// there was one.
    pub fn remove_contact(&mut self, name: &str) -> Result<bool> {
        let removed = self
            .conn
            .execute("DELETE FROM contacts WHERE name = ?1", [name])
            .map_err(self.db_err("removing a contact"))?;
        Ok(removed > 0)
    }

    /// All contacts, sorted by name (ignoring ASCII case).
    pub fn contacts(&self) -> Result<Vec<Contact>> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT name, account_id FROM contacts ORDER BY name")
            .map_err(self.db_err("listing contacts"))?;
        let rows = stmt
            .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))
            .map_err(self.db_err("listing contacts"))?;
        let mut out = Vec::new();
        for row in rows {
            let (name, account) = row.map_err(self.db_err("listing contacts"))?;
            out.push(Contact {
                account_id: parse_account(self, "contact", &account)?,
                name,
            });
        }
        Ok(out)
    }

    /// The Account ID saved under `name` (ignoring ASCII case).
    pub fn contact(&self, name: &str) -> Result<Option<AccountId>> {
        let account: Option<String> = self
            .conn
            .query_row("SELECT account_id FROM contacts WHERE name = ?1", [name], |r| r.get(0))
            .optional()
            .map_err(self.db_err("looking up a contact"))?;
        account.map(|a| parse_account(self, "contact", &a)).transpose()
    }

    /// The name `account_id` is saved under.
    pub fn name_of(&self, account_id: &AccountId) -> Result<Option<String>> {
        self.conn
            .query_row(
                "SELECT name FROM contacts WHERE account_id = ?1",
                [account_id.to_string()],
                |r| r.get(0),
            )
            .optional()
            .map_err(self.db_err("looking up a contact"))
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::super::tests::{account, temp_home};
    use super::*;

    #[test]
    fn add_list_look_up_remove() {
        let (_dir, mut home) = temp_home(1);
        home.add_contact("bob", account(2)).unwrap();
        home.add_contact("Alice Smith", account(3)).unwrap();
        home.add_contact("émile", account(4)).unwrap();
        let names: Vec<String> = home.contacts().unwrap().into_iter().map(|c| c.name).collect();
        assert_eq!(names, ["Alice Smith", "bob", "émile"]);
        assert_eq!(home.contact("bob").unwrap(), Some(account(2)));
        assert_eq!(home.contact("BOB").unwrap(), Some(account(2)), "ASCII case is ignored");
        assert_eq!(home.contact("carol").unwrap(), None);
        assert_eq!(home.name_of(&account(3)).unwrap().as_deref(), Some("Alice Smith"));
        assert_eq!(home.name_of(&account(9)).unwrap(), None);
        assert!(home.remove_contact("Bob").unwrap());
        assert!(!home.remove_contact("bob").unwrap());
        assert_eq!(home.contact("bob").unwrap(), None);
        assert_eq!(home.contacts().unwrap().len(), 2);
    }

    #[test]
    fn duplicates_are_refused_with_the_existing_name() {
        let (_dir, mut home) = temp_home(1);
        home.add_contact("bob", account(2)).unwrap();
        let err = home.add_contact("BOB", account(3)).unwrap_err();
        assert!(
            matches!(&err, HomeError::ContactExists { name } if name == "bob"),
            "{err}"
        );
        let err = home.add_contact("robert", account(2)).unwrap_err();
        assert!(
            matches!(&err, HomeError::ContactAccountExists { name, .. } if name == "bob"),
            "{err}"
        );
        assert_eq!(home.contacts().unwrap().len(), 1);
    }

    #[test]
    fn invalid_names_are_refused() {
        let (_dir, mut home) = temp_home(1);
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
            let err = home.add_contact(name, account(2)).unwrap_err();
            assert!(matches!(err, HomeError::InvalidContactName { .. }), "{name:?}: {err}");
            assert!(!err.to_string().contains('\u{1b}'), "control characters are escaped");
        }
        home.add_contact(&"é".repeat(MAX_CONTACT_NAME_CHARS), account(2))
            .unwrap();
        assert!(home.contacts().unwrap().len() == 1);
    }

    #[test]
    fn contacts_survive_reopening() {
        let (_dir, mut home) = temp_home(1);
        home.add_contact("bob", account(2)).unwrap();
        let path = home.dir().to_path_buf();
        drop(home);
        let home = Home::open(&path).unwrap();
        assert_eq!(home.contact("bob").unwrap(), Some(account(2)));
    }

    #[test]
    fn contact_list_is_bounded() {
        let (_dir, mut home) = temp_home(1);
        // Fill the table directly: deriving 10,000 identities is slow.
        let tx = home.conn.transaction().unwrap();
        for i in 0..MAX_CONTACTS {
            let mut pk = [0u8; 32];
            pk[..8].copy_from_slice(&(i as u64).to_be_bytes());
            tx.execute(
                "INSERT INTO contacts (name, account_id) VALUES (?1, ?2)",
                params![format!("c{i}"), AccountId::from_x25519(pk).to_string()],
            )
            .unwrap();
        }
        tx.commit().unwrap();
        let err = home.add_contact("one more", account(2)).unwrap_err();
        assert!(
            matches!(err, HomeError::TooManyContacts { limit: MAX_CONTACTS }),
            "{err}"
        );
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn accepted_names_round_trip(name in "\\PC{0,70}") {
            let (_dir, mut home) = temp_home(1);
            match home.add_contact(&name, account(2)) {
                Ok(()) => {
                    prop_assert!(validate_name(&name).is_ok());
                    prop_assert_eq!(home.contact(&name).unwrap(), Some(account(2)));
                    prop_assert_eq!(home.name_of(&account(2)).unwrap(), Some(name.clone()));
                    let listed = home.contacts().unwrap();
                    prop_assert_eq!(listed, vec![Contact { name: name.clone(), account_id: account(2) }]);
                    prop_assert!(home.remove_contact(&name).unwrap());
                }
                Err(HomeError::InvalidContactName { .. }) => prop_assert!(validate_name(&name).is_err()),
                Err(e) => prop_assert!(false, "unexpected error {}", e),
            }
        }
    }
}
