//! Where password hashes run: on blocking threads, at most one per core at a time, with a short
//! bounded queue. Each argon2 hash takes 19 MiB for tens of milliseconds; without a bound, a few
//! hundred parallel logins (even for unknown e-mails: they verify against a decoy) would take
//! gigabytes. Past the queue, callers get [`HashingBusy`] at once (503 with `Retry-After`),
//! and a request that gives up while queued costs nothing; a hash that started finishes on its
//! thread with its permit, so the bound holds however clients behave.

use std::sync::Arc;
use std::time::Duration;

use secrecy::SecretString;
use tokio::sync::Semaphore;

use super::password;

/// Too many password hashes are running or waiting; retry after the given time.
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("the service is busy checking passwords; try again in a moment")]
pub struct HashingBusy {
    pub retry_after: Duration,
}

#[derive(Debug, Clone, Copy)]
pub struct HashingConfig {
    /// Hashes running at once (default: the machine's cores).
    pub threads: usize,
    /// Hashes allowed to wait for a thread; more are refused at once.
    pub queue: usize,
    /// The longest a hash waits for a thread before it is refused.
    pub max_wait: Duration,
}

impl Default for HashingConfig {
    fn default() -> Self {
        let threads = std::thread::available_parallelism().map_or(2, usize::from);
        Self { threads, queue: threads * 16, max_wait: Duration::from_secs(5) }
    }
}

pub struct PasswordHashing {
    running: Arc<Semaphore>,
    admitted: Semaphore,
    max_wait: Duration,
}

impl PasswordHashing {
    pub fn new(config: HashingConfig) -> Self {
        let threads = config.threads.max(1);
        Self {
            running: Arc::new(Semaphore::new(threads)),
            admitted: Semaphore::new(threads + config.queue),
            max_wait: config.max_wait,
        }
    }

    /// Whether `password` matches the PHC string `phc` (a malformed one matches nothing).
    pub async fn verify(&self, password: SecretString, phc: String) -> Result<bool, HashingBusy> {
        self.run(move || password::verify(&password, &phc)).await
    }

    /// A new PHC hash of `password`.
    pub async fn hash(&self, password: SecretString) -> Result<String, HashingBusy> {
        self.run(move || password::hash(&password)).await
    }

    async fn run<T: Send + 'static>(&self, work: impl FnOnce() -> T + Send + 'static) -> Result<T, HashingBusy> {
        let busy = HashingBusy { retry_after: Duration::from_secs(1) };
        let _admitted = self.admitted.try_acquire().map_err(|_| busy)?;
        let permit = match tokio::time::timeout(self.max_wait, self.running.clone().acquire_owned()).await {
            Ok(permit) => permit.expect("the semaphore is never closed"),
            Err(_) => return Err(busy),
        };
        let out = tokio::task::spawn_blocking(move || {
            let _running = permit;
            work()
        })
        .await
        .expect("password hashing does not panic");
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn past_the_threads_and_the_queue_callers_are_refused_at_once() {
        let hashing =
            Arc::new(PasswordHashing::new(HashingConfig { threads: 1, queue: 2, max_wait: Duration::from_secs(30) }));
        let phc = password::hash(&SecretString::from("correct horse battery".to_owned()));
        let calls: Vec<_> = (0..12)
            .map(|_| {
                let hashing = hashing.clone();
                let phc = phc.clone();
                tokio::spawn(async move { hashing.verify(SecretString::from("wrong".to_owned()), phc).await })
            })
            .collect();
        let mut refused = 0;
        let mut checked = 0;
        for call in calls {
            match call.await.unwrap() {
                Ok(false) => checked += 1,
                Ok(true) => panic!("a wrong password verified"),
                Err(_) => refused += 1,
            }
        }
        assert_eq!(checked + refused, 12);
        assert!(checked <= 3, "one running and two queued at most: {checked}");
        assert!(refused >= 9, "{refused}");
        assert!(hashing.verify(SecretString::from("correct horse battery".to_owned()), phc).await.unwrap());
    }
}
