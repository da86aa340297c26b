//! One throttle for every password check (login, signup with an existing account, password
//! change): attempts are counted per e-mail address, per client address and per pair of both,
//! each in fixed windows.
//!
//! - **Reserve, then verify**: [`PasswordThrottle::reserve`] counts the attempt before any hash
//!   runs, atomically per key, so N parallel guesses cannot all pass a check made before any of
//!   them was recorded; a correct password gives its reservation back.
//! - **Same answer whatever the account**: unknown e-mails are counted like wrong passwords.
//! - **Backoff**: a key that fills its window gets a window twice as long next time (up to 64×),
//!   and back to the base length once a window ends without filling.
//! - **The real user is not locked out by strangers**: the tight limit is per (e-mail, client
//!   address); the per-e-mail limit (against guessing from many addresses) is several times
//!   larger, and the per-client limit bounds one address guessing many accounts.
//!
//! Counts are per replica: behind N replicas an attacker gets at most N× the budget.

use std::time::{Duration, Instant};

use moka::future::Cache;
use moka::ops::compute::{CompResult, Op};

/// The longest backoff: 64 windows.
const MAX_STRIKES: u32 = 6;

/// Limits on password attempts: attempts per key within `window` before further ones are
/// refused; a right password does not count.
#[derive(Debug, Clone)]
pub struct ThrottleConfig {
    /// For one e-mail address from one client address.
    pub max_failures_per_email_and_client: u32,
    /// For one e-mail address from anywhere (guessing from many addresses).
    pub max_failures_per_email: u32,
    /// From one client address, whatever the e-mail (one address guessing many accounts).
    pub max_failures_per_client: u32,
    pub window: Duration,
}

impl Default for ThrottleConfig {
    fn default() -> Self {
        Self {
            max_failures_per_email_and_client: 5,
            max_failures_per_email: 20,
            max_failures_per_client: 50,
            window: Duration::from_secs(15 * 60),
        }
    }
}

pub struct PasswordThrottle {
    windows: Cache<String, Window>,
    config: ThrottleConfig,
}

#[derive(Debug, Clone, Copy)]
struct Window {
    started: Instant,
    length: Duration,
    attempts: u32,
    /// Consecutive windows that filled up: the next one is 2^strikes times as long.
    strikes: u32,
}

/// Password checks are refused for now; try again after the given time.
#[derive(Debug, Clone, Copy)]
pub struct Throttled {
    pub retry_after: Duration,
}

/// An attempt counted by [`PasswordThrottle::reserve`]; hand it back with
/// [`PasswordThrottle::succeeded`] when the password was right.
#[must_use = "a correct password should give its reservation back"]
pub struct Reservation {
    keys: Vec<String>,
}

impl PasswordThrottle {
    pub fn new(config: ThrottleConfig) -> Self {
        // Entries outlive their longest window; a finished window is replaced on the next attempt.
        let keep = config.window * (1 << MAX_STRIKES);
        Self { windows: Cache::builder().max_capacity(200_000).time_to_idle(keep).build(), config }
    }

    /// Counts one attempt for `email` from `client`, or refuses it when any of its keys is full.
    pub async fn reserve(&self, email: &str, client: Option<&str>) -> Result<Reservation, Throttled> {
        let email = email.trim().to_lowercase();
        let mut keys = vec![(format!("e:{email}"), self.config.max_failures_per_email)];
        if let Some(client) = client {
            keys.push((format!("p:{email}|{client}"), self.config.max_failures_per_email_and_client));
            keys.push((format!("c:{client}"), self.config.max_failures_per_client));
        }
        let mut taken = Vec::with_capacity(keys.len());
        for (key, limit) in keys {
            match self.take(&key, limit).await {
                Ok(()) => taken.push(key),
                Err(throttled) => {
                    // Give back what this attempt took of the other keys: it was never made.
                    for key in &taken {
                        self.give_back(key).await;
                    }
                    return Err(throttled);
                }
            }
        }
        Ok(Reservation { keys: taken })
    }

    /// The password was right: the attempt does not count, and the pair's window starts over
    /// (the user's own address is not held back by their earlier typos).
    pub async fn succeeded(&self, reservation: Reservation) {
        for key in &reservation.keys {
            if key.starts_with("p:") {
                self.windows.invalidate(key).await;
            } else {
                self.give_back(key).await;
            }
        }
    }

    /// The attempt was never made (refused for load before any hash ran): it does not count,
    /// and nothing else changes.
    pub async fn not_made(&self, reservation: Reservation) {
        for key in &reservation.keys {
            self.give_back(key).await;
        }
    }

    async fn take(&self, key: &str, limit: u32) -> Result<(), Throttled> {
        let base = self.config.window;
        let now = Instant::now();
        let result = self
            .windows
            .entry(key.to_owned())
            .and_compute_with(|existing| async move {
                let window = match existing.map(|e| e.into_value()) {
                    Some(w) if now.duration_since(w.started) < w.length => w,
                    Some(w) => {
                        // A new window: longer after a full one, the base length otherwise.
                        let strikes = if w.attempts >= limit { (w.strikes + 1).min(MAX_STRIKES) } else { 0 };
                        Window { started: now, length: base * (1 << strikes), attempts: 0, strikes }
                    }
                    None => Window { started: now, length: base, attempts: 0, strikes: 0 },
                };
                if window.attempts >= limit {
                    Op::Nop
                } else {
                    Op::Put(Window { attempts: window.attempts + 1, ..window })
                }
            })
            .await;
        match result {
            CompResult::Inserted(_) | CompResult::ReplacedWith(_) => Ok(()),
            CompResult::Unchanged(entry) => {
                let w = entry.into_value();
                Err(Throttled { retry_after: w.length.saturating_sub(now.duration_since(w.started)) })
            }
            // `Nop` on a missing or expired entry cannot happen (a fresh window has room), but
            // refusing would be the safe answer.
            _ => Err(Throttled { retry_after: base }),
        }
    }

    async fn give_back(&self, key: &str) {
        self.windows
            .entry(key.to_owned())
            .and_compute_with(|existing| async move {
                match existing.map(|e| e.into_value()) {
                    Some(w) => Op::Put(Window { attempts: w.attempts.saturating_sub(1), ..w }),
                    None => Op::Nop,
                }
            })
            .await;
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    fn throttle(pair: u32, email: u32, client: u32, window: Duration) -> PasswordThrottle {
        PasswordThrottle::new(ThrottleConfig {
            max_failures_per_email_and_client: pair,
            max_failures_per_email: email,
            max_failures_per_client: client,
            window,
        })
    }

    #[tokio::test]
    async fn limits_apply_per_pair_per_email_and_per_client_and_a_success_gives_back() {
        let t = throttle(3, 5, 7, Duration::from_secs(60));
        for _ in 0..3 {
            let _failed = t.reserve("a@x.io", Some("1.1.1.1")).await.unwrap();
        }
        assert!(t.reserve("a@x.io", Some("1.1.1.1")).await.is_err(), "the pair is full");
        // The same account from another address still has room, up to the per-e-mail limit.
        let _ = t.reserve("A@x.io", Some("2.2.2.2")).await.unwrap();
        let _ = t.reserve("a@x.io", Some("2.2.2.2")).await.unwrap();
        assert!(t.reserve("a@x.io", Some("3.3.3.3")).await.is_err(), "the e-mail is full (5)");
        // The client's other accounts count toward its own limit (3 so far; refused attempts gave back).
        let _ = t.reserve("b@x.io", Some("1.1.1.1")).await.unwrap();
        let _ = t.reserve("c@x.io", Some("1.1.1.1")).await.unwrap();
        let _ = t.reserve("d@x.io", Some("1.1.1.1")).await.unwrap();
        let _ = t.reserve("e@x.io", Some("1.1.1.1")).await.unwrap();
        assert!(t.reserve("f@x.io", Some("1.1.1.1")).await.is_err(), "the client is full (7)");
        // An attempt never made (refused for load) gives back its count only: the pair stays full.
        let _ = t.reserve("y@x.io", Some("8.8.8.8")).await.unwrap();
        let _ = t.reserve("y@x.io", Some("8.8.8.8")).await.unwrap();
        let third = t.reserve("y@x.io", Some("8.8.8.8")).await.unwrap();
        t.not_made(third).await;
        let _ = t.reserve("y@x.io", Some("8.8.8.8")).await.unwrap();
        assert!(t.reserve("y@x.io", Some("8.8.8.8")).await.is_err(), "three counted, no reset");
        // A right password gives its attempt back.
        let ok = t.reserve("z@x.io", Some("9.9.9.9")).await.unwrap();
        t.succeeded(ok).await;
        for _ in 0..3 {
            let _ = t.reserve("z@x.io", Some("9.9.9.9")).await.unwrap();
        }
    }

    #[tokio::test]
    async fn parallel_attempts_never_exceed_the_limit() {
        let t = Arc::new(throttle(5, 100, 100, Duration::from_secs(60)));
        let tries: Vec<_> = (0..40)
            .map(|_| {
                let t = t.clone();
                tokio::spawn(async move { t.reserve("victim@x.io", Some("6.6.6.6")).await.is_ok() })
            })
            .collect();
        let mut passed = 0;
        for t in tries {
            passed += usize::from(t.await.unwrap());
        }
        assert_eq!(passed, 5);
    }

    #[tokio::test]
    async fn a_key_that_fills_its_window_waits_twice_as_long_the_next_time() {
        let t = throttle(2, 100, 100, Duration::from_millis(200));
        for _ in 0..2 {
            let _ = t.reserve("a@x.io", Some("1.1.1.1")).await.unwrap();
        }
        let first = t.reserve("a@x.io", Some("1.1.1.1")).await.err().unwrap().retry_after;
        assert!(first <= Duration::from_millis(200));
        tokio::time::sleep(first + Duration::from_millis(20)).await;
        for _ in 0..2 {
            let _ = t.reserve("a@x.io", Some("1.1.1.1")).await.unwrap();
        }
        let second = t.reserve("a@x.io", Some("1.1.1.1")).await.err().unwrap().retry_after;
        assert!(second > Duration::from_millis(200), "backoff: {second:?}");
    }
}
