//! Counters of the realtime path since start, read by `/metrics`: sockets opened, events
//! delivered live, events sent from the outbox (replays after `since` and filled gaps), resync
//! notices, and sockets cut off for not taking their messages in time.

use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Debug, Default)]
pub struct RealtimeStats {
    pub sessions_opened: AtomicU64,
    pub deliveries: AtomicU64,
    pub replayed: AtomicU64,
    pub resyncs: AtomicU64,
    pub cut_offs: AtomicU64,
}

impl RealtimeStats {
    pub(crate) fn count(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub fn read(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }
}
