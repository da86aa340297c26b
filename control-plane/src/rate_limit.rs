//! A fixed-window request counter per key (client address), for public endpoints that must
//! not be scripted: signup and the slug availability check.

use std::time::Duration;

use moka::future::Cache;

pub struct RateLimiter {
    counts: Cache<String, u32>,
    limit: u32,
    window: Duration,
}

impl RateLimiter {
    /// At most `limit` requests per key within `window` (the window restarts `window` after
    /// the first counted request).
    pub fn new(limit: u32, window: Duration) -> Self {
        Self { counts: Cache::builder().max_capacity(100_000).time_to_live(window).build(), limit, window }
    }

    /// Counts one request; `Err(retry_after)` when the key is over its limit.
    pub async fn hit(&self, key: &str) -> Result<(), Duration> {
        let entry = self
            .counts
            .entry(key.to_owned())
            // `and_compute_with` keeps the entry's insertion time, so the window does not slide.
            .and_compute_with(|existing| async move {
                let n = existing.map_or(0, |e| e.into_value());
                moka::ops::compute::Op::Put(n.saturating_add(1))
            })
            .await;
        match entry {
            moka::ops::compute::CompResult::Inserted(e) | moka::ops::compute::CompResult::ReplacedWith(e)
                if *e.value() > self.limit =>
            {
                Err(self.window)
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
}
