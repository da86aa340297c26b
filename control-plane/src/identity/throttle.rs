//! Throttling of repeated failed logins, per e-mail address and per client address.
//!
//! Counts live in moka caches that forget an entry `window` after its last failure, so an
//! attacker who keeps trying keeps the lock in place, and a user who stops is let in again.
//! Counts are per replica: behind N replicas an attacker gets at most N× the budget.

use std::time::Duration;

use moka::future::Cache;

use crate::config::ThrottleConfig;

pub struct LoginThrottle {
    by_email: Cache<String, u32>,
    by_client: Cache<String, u32>,
    config: ThrottleConfig,
}

/// Login is refused for now; try again after the given time.
#[derive(Debug, Clone, Copy)]
pub struct Throttled {
    pub retry_after: Duration,
}

impl LoginThrottle {
    pub fn new(config: ThrottleConfig) -> Self {
        let cache = || Cache::builder().max_capacity(100_000).time_to_live(config.window).build();
        Self { by_email: cache(), by_client: cache(), config }
    }

    /// Refuses before any password is checked when either count is at its limit.
    pub async fn check(&self, email: &str, client: Option<&str>) -> Result<(), Throttled> {
        let over_email = self.by_email.get(email).await.unwrap_or(0) >= self.config.max_failures_per_email;
        let over_client = match client {
            Some(c) => self.by_client.get(c).await.unwrap_or(0) >= self.config.max_failures_per_client,
            None => false,
        };
        if over_email || over_client {
            return Err(Throttled { retry_after: self.config.window });
        }
        Ok(())
    }

    pub async fn record_failure(&self, email: &str, client: Option<&str>) {
        bump(&self.by_email, email.to_owned()).await;
        if let Some(c) = client {
            bump(&self.by_client, c.to_owned()).await;
        }
    }

    /// A successful login clears the e-mail's count (not the client's: one client address
    /// may be guessing many accounts).
    pub async fn record_success(&self, email: &str) {
        self.by_email.invalidate(email).await;
    }
}

async fn bump(cache: &Cache<String, u32>, key: String) {
    cache
        .entry(key)
        .and_upsert_with(|existing| async move { existing.map_or(1, |e| e.into_value().saturating_add(1)) })
        .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_limit_applies_per_email_and_success_resets_it() {
        let t = LoginThrottle::new(ThrottleConfig {
            max_failures_per_email: 3,
            max_failures_per_client: 100,
            window: Duration::from_secs(60),
        });
        for _ in 0..3 {
            assert!(t.check("a@x.io", Some("1.2.3.4")).await.is_ok());
            t.record_failure("a@x.io", Some("1.2.3.4")).await;
        }
        assert!(t.check("a@x.io", Some("1.2.3.4")).await.is_err());
        assert!(t.check("b@x.io", Some("1.2.3.4")).await.is_ok());
        t.record_success("a@x.io").await;
        assert!(t.check("a@x.io", Some("1.2.3.4")).await.is_ok());
    }
}
