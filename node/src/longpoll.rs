//! Wake-ups for long-polling `retrieve`s.
//!
//! A waiting retrieve subscribes to its mailbox *before* it reads storage,
//! then waits only if the read found nothing new. Every store into that
//! mailbox (from a client or from replication) calls [`Waiters::notify`]
//! after the write commits, so a message stored between the read and the
//! wait still wakes the waiter: delivery latency is the store's, not a poll
//! interval's.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use allium_common::MailboxId;
use allium_common::rpc::Namespace;
use tokio::sync::futures::OwnedNotified;
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};

type Key = (MailboxId, Namespace);

/// The registry of mailboxes someone is waiting on.
#[derive(Debug)]
pub struct Waiters {
    map: Mutex<HashMap<Key, Entry>>,
    slots: Arc<Semaphore>,
}

#[derive(Debug)]
struct Entry {
    notify: Arc<Notify>,
    waiters: usize,
}

/// One subscription; dropping it unsubscribes.
#[derive(Debug)]
pub struct Subscription {
    waiters: Arc<Waiters>,
    key: Key,
    notified: std::pin::Pin<Box<OwnedNotified>>,
    _slot: OwnedSemaphorePermit,
}

impl Waiters {
    /// A registry that holds at most `max_waiting` subscriptions at once.
    pub fn new(max_waiting: usize) -> Arc<Self> {
        Arc::new(Self {
            map: Mutex::new(HashMap::new()),
            slots: Arc::new(Semaphore::new(max_waiting)),
        })
    }

    /// Subscribes to a mailbox, or returns `None` when the node already
    /// holds as many long-polls as it allows (the caller answers at once).
    pub fn subscribe(self: &Arc<Self>, account: MailboxId, namespace: Namespace) -> Option<Subscription> {
        let slot = Arc::clone(&self.slots).try_acquire_owned().ok()?;
        let key = (account, namespace);
        let notify = {
            let mut map = self.map.lock().unwrap_or_else(PoisonError::into_inner);
            let entry = map.entry(key).or_insert_with(|| Entry {
                notify: Arc::new(Notify::new()),
                waiters: 0,
            });
            entry.waiters += 1;
            Arc::clone(&entry.notify)
        };
        let mut notified = Box::pin(notify.notified_owned());
        // Register now, so a notify_waiters between here and the first poll
        // is not lost.
        notified.as_mut().enable();
        Some(Subscription {
            waiters: Arc::clone(self),
            key,
            notified,
            _slot: slot,
        })
    }

    /// Wakes everyone waiting on this mailbox.
    pub fn notify(&self, account: &MailboxId, namespace: Namespace) {
        let map = self.map.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(entry) = map.get(&(*account, namespace)) {
            entry.notify.notify_waiters();
        }
    }

    /// Wakes every waiter (on shutdown, or when store events were missed).
    pub fn notify_all(&self) {
        let map = self.map.lock().unwrap_or_else(PoisonError::into_inner);
        map.values().for_each(|entry| entry.notify.notify_waiters());
    }

    /// Mailboxes currently waited on (for metrics).
    pub fn mailboxes_waited_on(&self) -> usize {
        self.map.lock().unwrap_or_else(PoisonError::into_inner).len()
    }
}

impl Subscription {
    /// Waits until the mailbox is notified or `timeout` passes; returns
    /// whether it was notified.
    pub async fn wait(mut self, timeout: Duration) -> bool {
        tokio::time::timeout(timeout, self.notified.as_mut()).await.is_ok()
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        let mut map = self.waiters.map.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(entry) = map.get_mut(&self.key) {
            entry.waiters -= 1;
            if entry.waiters == 0 {
                map.remove(&self.key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn account(b: u8) -> MailboxId {
        allium_common::AccountId::from_x25519([b; 32]).into()
    }

    #[tokio::test]
    async fn a_store_between_subscribe_and_wait_still_wakes() {
        let w = Waiters::new(10);
        let sub = w.subscribe(account(1), Namespace(0)).unwrap();
        w.notify(&account(1), Namespace(0));
        assert!(sub.wait(Duration::from_secs(5)).await);
    }

    #[tokio::test]
    async fn other_mailboxes_and_namespaces_do_not_wake() {
        let w = Waiters::new(10);
        let sub = w.subscribe(account(1), Namespace(0)).unwrap();
        w.notify(&account(2), Namespace(0));
        w.notify(&account(1), Namespace(1));
        assert!(!sub.wait(Duration::from_millis(50)).await);
    }

    #[tokio::test]
    async fn subscriptions_are_bounded_and_cleaned_up() {
        let w = Waiters::new(2);
        let a = w.subscribe(account(1), Namespace(0)).unwrap();
        let b = w.subscribe(account(1), Namespace(0)).unwrap();
        assert!(w.subscribe(account(3), Namespace(0)).is_none());
        assert_eq!(w.mailboxes_waited_on(), 1);
        drop(a);
        assert_eq!(w.mailboxes_waited_on(), 1);
        drop(b);
        assert_eq!(w.mailboxes_waited_on(), 0);
        assert!(w.subscribe(account(3), Namespace(0)).is_some());
    }

    #[tokio::test]
    async fn waiter_wakes_when_notified_later() {
        let w = Waiters::new(10);
        let sub = w.subscribe(account(1), Namespace(0)).unwrap();
        let w2 = Arc::clone(&w);
        let task = tokio::spawn(async move { sub.wait(Duration::from_secs(10)).await });
        tokio::time::sleep(Duration::from_millis(20)).await;
        w2.notify(&account(1), Namespace(0));
        assert!(task.await.unwrap());
    }
}
