//! The blob store: images, tile inputs, style targets, tile and scale results, outputs.
//!
//! Big values never go to Redis; the state store only names them. Keys are `/`-separated
//! paths of `[A-Za-z0-9._-]` segments: `image/<sha256>` (content-addressed uploads),
//! `job/<id>/scale/<s>/tile/<t>/content`, `.../init`, `.../attempt/<a>` (a worker's result),
//! `job/<id>/scale/<s>/style/attempt/<a>`, `job/<id>/scale/<s>/result` and `job/<id>/output`.
//! [`LocalBlobStore`] keeps them as files and writes atomically (temp file, then rename).
// TODO(#4): an S3 backend through the `object_store` crate, chosen by config.

use std::path::{Path, PathBuf};

use async_trait::async_trait;

use crate::ids::{JobId, TileId};

/// Errors of the blob store.
#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    /// The key is not a valid blob path.
    #[error("invalid blob key {0:?}")]
    InvalidKey(String),
    /// Reading or writing the blob failed.
    #[error("blob {key}: {source}")]
    Io {
        /// The blob's key.
        key: String,
        /// The I/O error.
        source: std::io::Error,
    },
}

/// Result alias for blob operations.
pub type Result<T, E = BlobError> = std::result::Result<T, E>;

/// A key-value store for large immutable values.
#[async_trait]
pub trait BlobStore: Send + Sync + std::fmt::Debug {
    /// Stores `bytes` under `key`, replacing any previous value atomically.
    async fn put(&self, key: &str, bytes: Vec<u8>) -> Result<()>;

    /// Returns the value under `key`, or `None` if there is none.
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>>;

    /// Returns whether `key` holds a value.
    async fn exists(&self, key: &str) -> Result<bool>;

    /// Removes `key`; removing a missing key is not an error.
    async fn delete(&self, key: &str) -> Result<()>;
}

/// A [`BlobStore`] in a local (or shared network) directory.
#[derive(Debug, Clone)]
pub struct LocalBlobStore {
    root: PathBuf,
}

impl LocalBlobStore {
    /// Uses `root` as the store, creating it if needed.
    pub fn new(root: impl Into<PathBuf>) -> Result<Self> {
        let root = root.into();
        std::fs::create_dir_all(&root).map_err(|source| BlobError::Io {
            key: root.display().to_string(),
            source,
        })?;
        Ok(Self { root })
    }

    fn path(&self, key: &str) -> Result<PathBuf> {
        let valid = !key.is_empty()
            && key.split('/').all(|seg| {
                !seg.is_empty()
                    && !seg.starts_with('.')
                    && seg
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
            });
        if !valid {
            return Err(BlobError::InvalidKey(key.to_owned()));
        }
        Ok(self.root.join(key))
    }
}

fn io(key: &str) -> impl FnOnce(std::io::Error) -> BlobError + '_ {
    move |source| BlobError::Io {
        key: key.to_owned(),
        source,
    }
}

fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().expect("a blob path is below the store root");
    std::fs::create_dir_all(dir)?;
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    std::io::Write::write_all(&mut tmp, bytes)?;
    tmp.as_file().sync_data()?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

#[async_trait]
impl BlobStore for LocalBlobStore {
    async fn put(&self, key: &str, bytes: Vec<u8>) -> Result<()> {
        let path = self.path(key)?;
        tokio::task::spawn_blocking(move || write_atomic(&path, &bytes))
            .await
            .map_err(|e| std::io::Error::other(e.to_string()))
            .and_then(|r| r)
            .map_err(io(key))
    }

    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>> {
        match tokio::fs::read(self.path(key)?).await {
            Ok(bytes) => Ok(Some(bytes)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io(key)(e)),
        }
    }

    async fn exists(&self, key: &str) -> Result<bool> {
        tokio::fs::try_exists(self.path(key)?)
            .await
            .map_err(io(key))
    }

    async fn delete(&self, key: &str) -> Result<()> {
        match tokio::fs::remove_file(self.path(key)?).await {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(io(key)(e)),
            _ => Ok(()),
        }
    }
}

/// Returns the key of an uploaded image.
pub fn image_key(sha256_hex: &str) -> String {
    format!("image/{sha256_hex}")
}

/// Returns the key prefix of one scale of a job.
fn scale_key(job: &JobId, scale: u32) -> String {
    format!("job/{job}/scale/{scale}")
}

/// Returns the key of a tile's content crop (16-bit PNG, halo included).
pub fn tile_content_key(job: &JobId, scale: u32, tile: TileId) -> String {
    format!("{}/tile/{tile}/content", scale_key(job, scale))
}

/// Returns the key of a tile's start image (16-bit PNG, same size as the content crop).
pub fn tile_init_key(job: &JobId, scale: u32, tile: TileId) -> String {
    format!("{}/tile/{tile}/init", scale_key(job, scale))
}

/// Returns the key of a tile result from one attempt (16-bit PNG of the inner rect).
pub fn tile_result_key(job: &JobId, scale: u32, tile: TileId, attempt: u32) -> String {
    format!("{}/tile/{tile}/attempt/{attempt}", scale_key(job, scale))
}

/// Returns the key of a scale's style target from one attempt (opaque worker bytes).
pub fn style_target_key(job: &JobId, scale: u32, attempt: u32) -> String {
    format!("{}/style/attempt/{attempt}", scale_key(job, scale))
}

/// Returns the key of a stitched scale (16-bit PNG).
pub fn scale_result_key(job: &JobId, scale: u32) -> String {
    format!("{}/result", scale_key(job, scale))
}

/// Returns the key of a job's final output image.
pub fn output_key(job: &JobId) -> String {
    format!("job/{job}/output")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn round_trips_and_refuses_bad_keys() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalBlobStore::new(dir.path()).unwrap();
        let job = JobId::parse("j1").unwrap();
        let key = tile_result_key(&job, 1, TileId(2), 3);
        assert_eq!(key, "job/j1/scale/1/tile/2/attempt/3");
        assert_eq!(store.get(&key).await.unwrap(), None);
        store.put(&key, vec![1, 2, 3]).await.unwrap();
        store.put(&key, vec![4, 5]).await.unwrap();
        assert_eq!(store.get(&key).await.unwrap(), Some(vec![4, 5]));
        assert!(store.exists(&key).await.unwrap());
        store.delete(&key).await.unwrap();
        store.delete(&key).await.unwrap();
        assert!(!store.exists(&key).await.unwrap());
        for bad in ["", "../x", "a//b", "a/../b", "/abs", "a/.hidden", "sp ace"] {
            assert!(
                matches!(store.get(bad).await, Err(BlobError::InvalidKey(_))),
                "{bad}"
            );
        }
    }
}
