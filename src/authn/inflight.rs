//! Coalescing of concurrent verifications of the same credentials: when a
//! CI farm starts, many requests arrive with one user and password before
//! the first bcrypt has finished. They queue on one gate per credential
//! digest; the first verifies and fills the cache, the others then find the
//! cache warm instead of each running bcrypt (and filling the bounded pool,
//! which would refuse most of them with 503).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::{Mutex as AsyncMutex, OwnedMutexGuard};

use super::cache::Key;

#[derive(Debug, Default)]
pub(crate) struct Inflight {
    gates: Mutex<HashMap<Key, Arc<AsyncMutex<()>>>>,
}

/// Held while one request verifies a credential; dropping it lets the next
/// waiter in and forgets the gate once nobody waits.
pub(crate) struct Pass<'a> {
    owner: &'a Inflight,
    key: Key,
    gate: Arc<AsyncMutex<()>>,
    guard: Option<OwnedMutexGuard<()>>,
}

impl Inflight {
    /// Waits until no other request is verifying `key`.
    pub(crate) async fn enter(&self, key: Key) -> Pass<'_> {
        let gate = {
            let mut gates = self.gates.lock().unwrap_or_else(|p| p.into_inner());
            gates.entry(key).or_default().clone()
        };
        let guard = gate.clone().lock_owned().await;
        Pass {
            owner: self,
            key,
            gate,
            guard: Some(guard),
        }
    }

    #[cfg(test)]
    pub(super) fn is_empty(&self) -> bool {
        self.gates
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_empty()
    }
}

impl Drop for Pass<'_> {
    fn drop(&mut self) {
        drop(self.guard.take());
        let mut gates = self.owner.gates.lock().unwrap_or_else(|p| p.into_inner());
        // Two references left (the map's and ours): nobody else waits.
        if Arc::strong_count(&self.gate) == 2 {
            gates.remove(&self.key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn one_holder_per_key_and_gates_are_forgotten() {
        let f = Arc::new(Inflight::default());
        let first = f.enter([1; 32]).await;
        // Another key is not blocked.
        let other = f.enter([2; 32]).await;
        drop(other);
        let waiter = {
            let f = f.clone();
            tokio::spawn(async move {
                let _p = f.enter([1; 32]).await;
            })
        };
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        assert!(!waiter.is_finished(), "the same key waits for the holder");
        drop(first);
        waiter.await.unwrap();
        assert!(f.is_empty(), "no gate left behind");
    }
}
