//! The blob store: images, tile inputs, style targets, tile and scale results, outputs.
//!
//! Big values never go to Redis; the state store only names them. Keys are `/`-separated
//! paths of `[A-Za-z0-9._-]` segments: `image/<sha256>` (content-addressed uploads),
//! `job/<id>/scale/<s>/tile/<t>/content`, `.../init`, `.../start`, `.../attempt/<a>` (a
//! worker's result), `job/<id>/scale/<s>/style/attempt/<a>`, `job/<id>/scale/<s>/result` and
//! `job/<id>/output`.
//! [`LocalBlobStore`] keeps them as files and writes atomically (temp file, then rename);
//! [`ObjectBlobStore`] keeps them in an object store (S3 or any S3-compatible service) through
//! the `object_store` crate, whose single-request puts are atomic too. [`open`] picks one from
//! the coordinator's settings.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use object_store::{ObjectStore, ObjectStoreExt};

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
    /// The object store refused or failed a request.
    #[error("blob {key}: {source}")]
    Object {
        /// The blob's key.
        key: String,
        /// The object store's error.
        source: object_store::Error,
    },
    /// The object store URL or its options cannot be used.
    #[error("cannot use blob store {url}: {reason}")]
    Config {
        /// The URL, without credentials.
        url: String,
        /// What is wrong.
        reason: String,
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
        check_key(key)?;
        Ok(self.root.join(key))
    }
}

/// Refuses keys that are not `/`-separated `[A-Za-z0-9._-]` segments (none starting with `.`),
/// so that no key escapes a directory root or an object prefix.
fn check_key(key: &str) -> Result<()> {
    let valid = !key.is_empty()
        && key.split('/').all(|seg| {
            !seg.is_empty()
                && !seg.starts_with('.')
                && seg
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
        });
    if valid {
        Ok(())
    } else {
        Err(BlobError::InvalidKey(key.to_owned()))
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

/// A [`BlobStore`] in an object store: every key lives under one prefix (the URL's path).
#[derive(Debug, Clone)]
pub struct ObjectBlobStore {
    store: Arc<dyn ObjectStore>,
    prefix: object_store::path::Path,
}

impl ObjectBlobStore {
    /// Uses `store`, keeping every blob under `prefix` (`""` for the root).
    pub fn new(store: Arc<dyn ObjectStore>, prefix: &str) -> Result<Self> {
        let prefix = object_store::path::Path::parse(prefix).map_err(|e| BlobError::Config {
            url: prefix.to_owned(),
            reason: e.to_string(),
        })?;
        Ok(Self { store, prefix })
    }

    /// Opens the store a URL names: `s3://bucket/prefix` (also `s3a://`, and
    /// `https://<endpoint>/bucket/prefix` forms the `object_store` crate knows) or `memory:///`.
    /// `options` are the crate's settings by name, e.g. `aws_endpoint`, `aws_region`,
    /// `aws_allow_http`, `aws_access_key_id`; names it does not know are skipped, so the
    /// process environment can be passed as it is (`AWS_ENDPOINT` and the like).
    pub fn from_url<I, K, V>(url: &str, options: I) -> Result<Self>
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<str>,
        V: Into<String>,
    {
        let parsed = url::Url::parse(url);
        let shown = match &parsed {
            Ok(parsed) if parsed.password().is_some() => {
                let mut redacted = parsed.clone();
                let _ = redacted.set_password(Some("***"));
                redacted.to_string()
            }
            _ => url.to_owned(),
        };
        let config = |reason: String| BlobError::Config {
            url: shown.clone(),
            reason,
        };
        let parsed = parsed.map_err(|e| config(e.to_string()))?;
        if parsed.scheme() == "file" {
            return Err(config(
                "use blob_dir for a local directory; blob_url is for object stores".into(),
            ));
        }
        // The HTTP client's TLS takes the process-wide rustls provider; ring is the one this
        // workspace builds (tonic's too). An error only means one is already installed.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let (store, prefix) =
            object_store::parse_url_opts(&parsed, options).map_err(|e| config(e.to_string()))?;
        Ok(Self {
            store: Arc::from(store),
            prefix,
        })
    }

    fn location(&self, key: &str) -> Result<object_store::path::Path> {
        check_key(key)?;
        Ok(key
            .split('/')
            .fold(self.prefix.clone(), |path, segment| path.join(segment)))
    }
}

fn object_error(key: &str) -> impl FnOnce(object_store::Error) -> BlobError + '_ {
    move |source| BlobError::Object {
        key: key.to_owned(),
        source,
    }
}

#[async_trait]
impl BlobStore for ObjectBlobStore {
    async fn put(&self, key: &str, bytes: Vec<u8>) -> Result<()> {
        let location = self.location(key)?;
        self.store
            .put(&location, bytes.into())
            .await
            .map(drop)
            .map_err(object_error(key))
    }

    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>> {
        let location = self.location(key)?;
        let found = match self.store.get(&location).await {
            Ok(found) => found,
            Err(object_store::Error::NotFound { .. }) => return Ok(None),
            Err(e) => return Err(object_error(key)(e)),
        };
        let bytes = found.bytes().await.map_err(object_error(key))?;
        Ok(Some(bytes.to_vec()))
    }

    async fn exists(&self, key: &str) -> Result<bool> {
        match self.store.head(&self.location(key)?).await {
            Ok(_) => Ok(true),
            Err(object_store::Error::NotFound { .. }) => Ok(false),
            Err(e) => Err(object_error(key)(e)),
        }
    }

    async fn delete(&self, key: &str) -> Result<()> {
        match self.store.delete(&self.location(key)?).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(object_error(key)(e)),
        }
    }
}

/// Opens the blob store the settings name: the object store at `url` when given (with the
/// `AWS_*` and other variables of the process environment as its options), else the directory
/// `dir`. An object store is checked with one write, read and delete, so that a wrong bucket
/// or credentials fail at start rather than at the first upload.
pub async fn open(url: Option<&str>, dir: &Path) -> Result<Arc<dyn BlobStore>> {
    open_with_options(url, dir, std::env::vars()).await
}

/// [`open`] with the object store's options given rather than read from the environment.
pub async fn open_with_options<I, K, V>(
    url: Option<&str>,
    dir: &Path,
    options: I,
) -> Result<Arc<dyn BlobStore>>
where
    I: IntoIterator<Item = (K, V)>,
    K: AsRef<str>,
    V: Into<String>,
{
    let Some(url) = url else {
        return Ok(Arc::new(LocalBlobStore::new(dir)?));
    };
    let store = ObjectBlobStore::from_url(url, options)?;
    let probe = format!("probe/{}", uuid::Uuid::new_v4());
    let unusable = |e: BlobError| BlobError::Config {
        url: url.to_owned(),
        reason: format!("a test write, read and delete failed: {e}"),
    };
    store
        .put(&probe, b"deepstyle".to_vec())
        .await
        .map_err(unusable)?;
    let read = store.get(&probe).await.map_err(unusable)?;
    store.delete(&probe).await.map_err(unusable)?;
    if read.as_deref() != Some(&b"deepstyle"[..]) {
        return Err(unusable(BlobError::InvalidKey(probe)));
    }
    Ok(Arc::new(store))
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

/// Returns the key of a tile's crop of its scale's start image (16-bit PNG, halo included).
pub fn tile_start_key(job: &JobId, scale: u32, tile: TileId) -> String {
    format!("{}/tile/{tile}/start", scale_key(job, scale))
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
    async fn local_store_round_trips_and_refuses_bad_keys() {
        let dir = tempfile::tempdir().unwrap();
        round_trips_and_refuses_bad_keys(&LocalBlobStore::new(dir.path()).unwrap()).await;
    }

    #[tokio::test]
    async fn object_store_round_trips_and_refuses_bad_keys() {
        let memory =
            ObjectBlobStore::from_url("memory:///farm/a", std::iter::empty::<(&str, &str)>())
                .unwrap();
        round_trips_and_refuses_bad_keys(&memory).await;
        // Under a local directory too, and the prefix is where the blobs go.
        let dir = tempfile::tempdir().unwrap();
        let local = object_store::local::LocalFileSystem::new_with_prefix(dir.path()).unwrap();
        let store = ObjectBlobStore::new(Arc::new(local), "farm/b").unwrap();
        round_trips_and_refuses_bad_keys(&store).await;
        store.put("image/abc", vec![7]).await.unwrap();
        assert_eq!(
            std::fs::read(dir.path().join("farm/b/image/abc")).unwrap(),
            [7]
        );
    }

    #[test]
    fn an_https_object_store_client_builds() {
        // Building the client needs a rustls provider; without one reqwest panics.
        let store = ObjectBlobStore::from_url(
            "s3://bucket/prefix",
            [
                ("aws_region", "eu-west-1"),
                ("aws_endpoint", "https://127.0.0.1:9"),
            ],
        );
        assert!(store.is_ok(), "{store:?}");
    }

    #[tokio::test]
    async fn open_refuses_unusable_urls_by_name() {
        let dir = tempfile::tempdir().unwrap();
        for (url, expected) in [
            ("not a url", "relative URL"),
            ("file:///tmp/blobs", "use blob_dir"),
            ("ftp://host/x", "ftp://host/x"),
        ] {
            let err = open(Some(url), dir.path()).await.unwrap_err().to_string();
            assert!(err.contains(url) && err.contains(expected), "{url}: {err}");
        }
        let local = open(None, &dir.path().join("blobs")).await.unwrap();
        local.put("a/b", vec![1]).await.unwrap();
        assert!(dir.path().join("blobs/a/b").exists());
    }

    async fn round_trips_and_refuses_bad_keys(store: &dyn BlobStore) {
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
