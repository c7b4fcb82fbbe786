//! The object-store blob backend against a real S3 protocol server (moto): blobs round-trip,
//! a bad bucket fails at start with its URL named, and a whole job (FAKE worker: no tensors)
//! keeps its images, tile results and output in the bucket rather than on local disk.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::farm::{download, noise_png, run_fake_worker, spec, submit, upload, wait_done, Farm};
use common::s3_server::S3Server;
use deepstyle_coordinator::blob::{self, BlobStore, ObjectBlobStore};
use deepstyle_coordinator::ids::JobId;
use deepstyle_proto::v1 as pb;

#[tokio::test(flavor = "multi_thread")]
async fn blobs_round_trip_through_s3() {
    let s3 = S3Server::start("round-trip");
    let store = ObjectBlobStore::from_url(&s3.url("farm"), s3.options()).unwrap();
    let big: Vec<u8> = (0..6 << 20).map(|i: u32| (i % 251) as u8).collect();
    assert_eq!(store.get("image/abc").await.unwrap(), None);
    assert!(!store.exists("image/abc").await.unwrap());
    store.put("image/abc", big.clone()).await.unwrap();
    assert_eq!(store.get("image/abc").await.unwrap(), Some(big));
    store.put("image/abc", vec![1, 2]).await.unwrap();
    assert_eq!(store.get("image/abc").await.unwrap(), Some(vec![1, 2]));
    assert!(store.exists("image/abc").await.unwrap());
    store.delete("image/abc").await.unwrap();
    store.delete("image/abc").await.unwrap();
    assert!(!store.exists("image/abc").await.unwrap());
    assert!(matches!(
        store.put("../escape", vec![]).await,
        Err(blob::BlobError::InvalidKey(_))
    ));

    // The prefix separates farms sharing a bucket.
    let other = ObjectBlobStore::from_url(&s3.url("other"), s3.options()).unwrap();
    store.put("k", vec![1]).await.unwrap();
    assert_eq!(other.get("k").await.unwrap(), None);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_missing_bucket_fails_at_start_naming_the_url() {
    let s3 = S3Server::start("present");
    let dir = tempfile::tempdir().unwrap();
    let url = "s3://absent-bucket/farm";
    let err = blob::open_with_options(Some(url), dir.path(), s3.options())
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains(url) && err.contains("test write"), "{err}");
    let ok = blob::open_with_options(Some(&s3.url("farm")), dir.path(), s3.options()).await;
    assert!(ok.is_ok(), "{ok:?}");
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_job_keeps_its_blobs_in_the_bucket() {
    let s3 = S3Server::start("jobs");
    let store: Arc<dyn BlobStore> =
        Arc::new(ObjectBlobStore::from_url(&s3.url("farm"), s3.options()).unwrap());
    let mut farm = Farm::new("s3", Duration::from_secs(30));
    farm.blobs = Some(store.clone());
    let coordinator = farm.start().await;
    let mut jobs = coordinator.jobs().await;
    let (content_png, _) = noise_png(300, 200, 1);
    let (style_png, _) = noise_png(32, 32, 2);
    let content = upload(&mut jobs, &content_png).await;
    let style = upload(&mut jobs, &style_png).await;
    assert_eq!(
        store.get(&blob::image_key(&content.sha256)).await.unwrap(),
        Some(content_png.clone())
    );
    let job = submit(&mut jobs, spec(&content, &style, 300)).await;
    let done = run_fake_worker(&coordinator, 500, 100).await;
    let job = wait_done(&mut jobs, &job.job_id, Duration::from_secs(60)).await;
    assert_eq!(job.state(), pb::JobState::Succeeded, "{}", job.error);
    assert!(done > 3, "two scales, one tiled: {done} tasks");
    let output = download(&mut jobs, &job.job_id).await;
    let id = JobId::parse(&job.job_id).unwrap();
    assert_eq!(
        store.get(&blob::output_key(&id)).await.unwrap(),
        Some(output)
    );
    // Tile results of the tiled scale are objects too.
    assert!(store
        .exists(&blob::tile_result_key(
            &id,
            1,
            deepstyle_coordinator::ids::TileId(0),
            1
        ))
        .await
        .unwrap());
    assert_eq!(std::fs::read_dir(farm.blob_dir.path()).unwrap().count(), 0);
    coordinator.stop().await;
}
