//! A fixed-window request counter per key (client address), for public endpoints that must
//! not be scripted: signup and the slug availability check.
//!
//! Each key's window starts at its first counted request and ends `window` later, whatever
//! happens meanwhile: the start is stored with the count, because moka's time-to-live restarts
//! on every write and would let a client that keeps trying keep its window open forever (and a
//! client that paces itself never be counted out). The cache only forgets finished windows.

use std::time::{Duration, Instant};

use moka::future::Cache;
use moka::ops::compute::{CompResult, Op};

pub struct RateLimiter {
    counts: Cache<String, (Instant, u32)>,
    limit: u32,
    window: Duration,
}

impl RateLimiter {
    /// At most `limit` requests per key within each `window`.
    pub fn new(limit: u32, window: Duration) -> Self {
        Self { counts: Cache::builder().max_capacity(100_000).time_to_live(window).build(), limit, window }
    }

    /// Counts one request; `Err(retry_after)` (the rest of the key's window) when the key is
    /// over its limit.
    pub async fn hit(&self, key: &str) -> Result<(), Duration> {
        let window = self.window;
        let now = Instant::now();
        let entry = self
            .counts
            .entry(key.to_owned())
            .and_compute_with(|existing| async move {
                match existing.map(|e| e.into_value()) {
                    Some((started, n)) if now.duration_since(started) < window => {
                        Op::Put((started, n.saturating_add(1)))
                    }
                    _ => Op::Put((now, 1)),
                }
            })
            .await;
        match entry {
            CompResult::Inserted(e) | CompResult::ReplacedWith(e) if e.value().1 > self.limit => {
                let (started, _) = *e.value();
                Err(window.saturating_sub(now.duration_since(started)).max(Duration::from_secs(1)))
            }
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn requests_over_the_limit_are_refused_per_key() {
        let limiter = RateLimiter::new(2, Duration::from_secs(60));
        assert!(limiter.hit("a").await.is_ok());
        assert!(limiter.hit("a").await.is_ok());
        assert!(limiter.hit("a").await.is_err());
        assert!(limiter.hit("b").await.is_ok());
    }

    #[tokio::test]
    async fn the_window_ends_on_time_however_often_the_key_keeps_trying() {
        let limiter = RateLimiter::new(2, Duration::from_millis(300));
        let started = Instant::now();
        assert!(limiter.hit("a").await.is_ok());
        assert!(limiter.hit("a").await.is_ok());
        // Keep hammering past the end of the first window: a sliding window would never reopen.
        let mut reopened = None;
        while started.elapsed() < Duration::from_secs(3) {
            if limiter.hit("a").await.is_ok() {
                reopened = Some(started.elapsed());
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let reopened = reopened.expect("a new window opened");
        assert!(reopened >= Duration::from_millis(300), "not before the window ended: {reopened:?}");
    }
}
