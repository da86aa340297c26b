//! The artifact directory (`NEXACORE_RELEASE_DIR`): each zip stored once under its SHA-256, so
//! a name can never point at other bytes. An upload is written to a temporary file, hashed while
//! it streams, synced, and renamed into place only when its hash matches the name it was sent
//! under: a crash or a failed upload leaves at most a temporary file, never a wrong artifact.

use std::path::{Path, PathBuf};

use release::Sha256Digest;
use sha2::Digest as _;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("the upload is larger than {0} bytes")]
    TooLarge(u64),
    #[error("the uploaded bytes do not have the SHA-256 they were sent under")]
    HashMismatch,
    #[error("the upload is empty")]
    Empty,
    #[error("release storage: {0}")]
    Io(#[from] std::io::Error),
}

#[derive(Debug, Clone)]
pub struct ArtifactStore {
    dir: PathBuf,
    max_bytes: u64,
}

impl ArtifactStore {
    pub fn new(dir: PathBuf, max_bytes: u64) -> Self {
        Self { dir, max_bytes }
    }

    pub fn path_of(&self, sha256: &Sha256Digest) -> PathBuf {
        self.dir.join(format!("{}.zip", sha256.to_hex()))
    }

    /// The stored artifact's size, if it is stored.
    pub async fn size_of(&self, sha256: &Sha256Digest) -> Option<u64> {
        tokio::fs::metadata(self.path_of(sha256)).await.ok().filter(|m| m.is_file()).map(|m| m.len())
    }

    /// Streams `body` into the store under `sha256`; an artifact already stored is kept as is.
    pub async fn put(&self, sha256: &Sha256Digest, body: impl tokio::io::AsyncRead + Unpin) -> Result<u64, StoreError> {
        tokio::fs::create_dir_all(&self.dir).await?;
        let temp = self.dir.join(format!(".upload-{}", uuid::Uuid::new_v4().simple()));
        let result = self.write_checked(sha256, body, &temp).await;
        if result.is_err() {
            let _ = tokio::fs::remove_file(&temp).await;
        }
        result
    }

    async fn write_checked(
        &self,
        sha256: &Sha256Digest,
        mut body: impl tokio::io::AsyncRead + Unpin,
        temp: &Path,
    ) -> Result<u64, StoreError> {
        let mut file = tokio::fs::File::create(temp).await?;
        let mut hasher = sha2::Sha256::new();
        let mut total = 0u64;
        let mut buffer = vec![0u8; 256 * 1024];
        loop {
            let n = body.read(&mut buffer).await?;
            if n == 0 {
                break;
            }
            total += n as u64;
            if total > self.max_bytes {
                return Err(StoreError::TooLarge(self.max_bytes));
            }
            hasher.update(&buffer[..n]);
            file.write_all(&buffer[..n]).await?;
        }
        if total == 0 {
            return Err(StoreError::Empty);
        }
        if Sha256Digest(hasher.finalize().into()) != *sha256 {
            return Err(StoreError::HashMismatch);
        }
        file.sync_all().await?;
        drop(file);
        tokio::fs::rename(temp, self.path_of(sha256)).await?;
        Ok(total)
    }
}
