//! The resumable download of a release zip into `<name>.part`.
//!
//! Each attempt asks for what is missing (`Range: bytes=<have>-`, with `If-Range: <ETag>` so a
//! file that changed on the server is never spliced onto an old beginning) and handles every
//! answer a real server gives: `206` appends (after checking the range starts where we are),
//! `200` means the server ignored the range or the file changed, so it starts over, and `416`
//! means we already have everything or our part is wrong. A dropped connection keeps what
//! arrived and the next attempt resumes, after a backoff, for a bounded number of attempts.
//! Nothing is trusted until the size and SHA-256 the signed manifest names match; a mismatch
//! removes the part file so the next try starts clean.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use release::Sha256Digest;
use sha2::Digest as _;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

/// What to fetch and what it must turn out to be.
#[derive(Debug, Clone)]
pub struct Target {
    pub url: String,
    pub size: u64,
    pub sha256: Sha256Digest,
    /// The `.part` file; the ETag is kept beside it as `<part>.etag`.
    pub part: PathBuf,
}

#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    pub attempts: u32,
    pub first_backoff: Duration,
    pub max_backoff: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self { attempts: 6, first_backoff: Duration::from_millis(500), max_backoff: Duration::from_secs(20) }
    }
}

impl RetryPolicy {
    /// Doubling from the first backoff, capped.
    pub fn backoff(&self, attempt: u32) -> Duration {
        self.first_backoff.saturating_mul(1 << attempt.min(16)).min(self.max_backoff)
    }
}

/// Where the download stands, for the progress bar.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Progress {
    pub done: u64,
    pub total: u64,
    /// Bytes per second over this attempt so far.
    pub bytes_per_sec: f64,
    pub attempt: u32,
}

#[derive(Debug, thiserror::Error)]
pub enum DownloadError {
    #[error("the download failed after {attempts} attempts: {last}")]
    GaveUp { attempts: u32, last: String },
    #[error("the server answered {0}")]
    Refused(u16),
    #[error("the download is larger than the {expected} bytes the signed manifest names")]
    TooLarge { expected: u64 },
    #[error("the download is not the file the signed manifest names (SHA-256 differs)")]
    HashMismatch,
    #[error("cannot write the download: {0}")]
    Io(#[from] std::io::Error),
}

/// Why one attempt ended without the whole file.
enum AttemptError {
    /// Worth another attempt (network, 5xx, a short body).
    Retry(String),
    /// Not worth one.
    Fatal(DownloadError),
}

impl From<std::io::Error> for AttemptError {
    fn from(e: std::io::Error) -> Self {
        AttemptError::Fatal(DownloadError::Io(e))
    }
}

/// Downloads `target` (resuming a `.part` left by an earlier run), then checks its size and hash.
pub async fn download(
    http: &reqwest::Client,
    target: &Target,
    policy: &RetryPolicy,
    mut progress: impl FnMut(Progress),
) -> Result<PathBuf, DownloadError> {
    let mut last = String::new();
    for attempt in 0..policy.attempts {
        if attempt > 0 {
            tokio::time::sleep(policy.backoff(attempt - 1)).await;
        }
        match fetch_rest(http, target, attempt, &mut progress).await {
            Ok(()) => return verify(target).await,
            Err(AttemptError::Fatal(e)) => {
                if matches!(e, DownloadError::TooLarge { .. }) {
                    discard(&target.part).await;
                }
                return Err(e);
            }
            Err(AttemptError::Retry(why)) => last = why,
        }
    }
    Err(DownloadError::GaveUp { attempts: policy.attempts, last })
}

fn etag_path(part: &Path) -> PathBuf {
    let mut name = part.as_os_str().to_owned();
    name.push(".etag");
    PathBuf::from(name)
}

async fn discard(part: &Path) {
    let _ = tokio::fs::remove_file(part).await;
    let _ = tokio::fs::remove_file(etag_path(part)).await;
}

async fn part_len(part: &Path) -> u64 {
    tokio::fs::metadata(part).await.map(|m| m.len()).unwrap_or(0)
}

/// One request for the missing bytes.
async fn fetch_rest(
    http: &reqwest::Client,
    target: &Target,
    attempt: u32,
    progress: &mut impl FnMut(Progress),
) -> Result<(), AttemptError> {
    let mut have = part_len(&target.part).await;
    if have > target.size {
        discard(&target.part).await;
        have = 0;
    }
    let etag = tokio::fs::read_to_string(etag_path(&target.part)).await.ok();
    let mut request = http.get(&target.url);
    if have > 0 {
        request = request.header(reqwest::header::RANGE, format!("bytes={have}-"));
        if let Some(etag) = &etag {
            request = request.header(reqwest::header::IF_RANGE, etag.trim());
        }
    }
    let response = request.send().await.map_err(|e| AttemptError::Retry(e.to_string()))?;
    let status = response.status().as_u16();
    let append = match status {
        206 => {
            let starts_at = response
                .headers()
                .get(reqwest::header::CONTENT_RANGE)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.strip_prefix("bytes "))
                .and_then(|v| v.split('-').next())
                .and_then(|v| v.parse::<u64>().ok());
            if starts_at != Some(have) {
                // Not the range we asked for: start over rather than splice.
                discard(&target.part).await;
                return Err(AttemptError::Retry(format!("a range starting at {starts_at:?}, not {have}")));
            }
            true
        }
        // The server ignored the range, or the file changed (If-Range): the whole file follows.
        200 => false,
        416 => {
            if have == target.size {
                return Ok(());
            }
            discard(&target.part).await;
            return Err(AttemptError::Retry("416: the partial file did not fit the server's".into()));
        }
        s if s >= 500 || s == 408 || s == 429 => return Err(AttemptError::Retry(format!("the server answered {s}"))),
        s => return Err(AttemptError::Fatal(DownloadError::Refused(s))),
    };
    if let Some(tag) = response.headers().get(reqwest::header::ETAG).and_then(|v| v.to_str().ok()) {
        tokio::fs::write(etag_path(&target.part), tag).await?;
    }
    let file = tokio::fs::OpenOptions::new()
        .create(true)
        .write(true)
        .append(append)
        .truncate(!append)
        .open(&target.part)
        .await?;
    // Every tokio file write is a trip to the blocking pool: gather the body's small chunks
    // into large writes.
    let mut file = tokio::io::BufWriter::with_capacity(1 << 20, file);
    let mut done = if append { have } else { 0 };
    let started = Instant::now();
    let at_start = done;
    let mut response = response;
    loop {
        let chunk = match response.chunk().await {
            Ok(Some(chunk)) => chunk,
            Ok(None) => break,
            Err(e) => {
                // Keep what arrived, so the next attempt resumes after it.
                file.flush().await?;
                return Err(AttemptError::Retry(e.to_string()));
            }
        };
        done += chunk.len() as u64;
        if done > target.size {
            return Err(AttemptError::Fatal(DownloadError::TooLarge { expected: target.size }));
        }
        file.write_all(&chunk).await?;
        let secs = started.elapsed().as_secs_f64().max(1e-6);
        progress(Progress { done, total: target.size, bytes_per_sec: (done - at_start) as f64 / secs, attempt });
    }
    file.flush().await?;
    file.get_ref().sync_all().await?;
    if done < target.size {
        return Err(AttemptError::Retry(format!("the body ended at {done} of {} bytes", target.size)));
    }
    Ok(())
}

/// Size, then SHA-256, of the whole part file.
async fn verify(target: &Target) -> Result<PathBuf, DownloadError> {
    if part_len(&target.part).await != target.size {
        discard(&target.part).await;
        return Err(DownloadError::TooLarge { expected: target.size });
    }
    let mut file = tokio::fs::File::open(&target.part).await?;
    let mut hasher = sha2::Sha256::new();
    let mut buffer = vec![0u8; 256 * 1024];
    loop {
        let n = file.read(&mut buffer).await?;
        if n == 0 {
            break;
        }
        hasher.update(&buffer[..n]);
    }
    if Sha256Digest(hasher.finalize().into()) != target.sha256 {
        discard(&target.part).await;
        return Err(DownloadError::HashMismatch);
    }
    Ok(target.part.clone())
}
