//! End-to-end tests of the farm: an in-process coordinator over gRPC on `127.0.0.1:0`, a real
//! `redis-server`, and the FAKE worker of `common::farm` (a test double without tensors).

mod common;

use std::time::Duration;

use common::farm::*;
use deepstyle_coordinator::imaging::{self, BitDepth, DecodeLimits};
use deepstyle_proto::v1::{self as pb, task::Kind};
use tonic_types::StatusExt;

/// Largest difference allowed between farm and reference pixels (2/255, as for the real farm).
const TOLERANCE: f32 = 2.0 / 255.0;

fn max_abs_diff(a: &image::Rgb32FImage, b: &image::Rgb32FImage) -> f32 {
    assert_eq!(a.dimensions(), b.dimensions());
    a.as_raw()
        .iter()
        .zip(b.as_raw())
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn job_flows_end_to_end_with_large_upload_and_download() {
    let farm = Farm::new("e2e", Duration::from_secs(30));
    let coordinator = farm.start().await;
    let mut jobs = coordinator.jobs().await;

    let mut health =
        tonic_health::pb::health_client::HealthClient::new(coordinator.channel().await);
    let serving = health
        .check(tonic_health::pb::HealthCheckRequest {
            service: "deepstyle.v1.JobService".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        serving.status(),
        tonic_health::pb::health_check_response::ServingStatus::Serving
    );

    // A 16-bit noise PNG is incompressible: well above gRPC's default 4 MiB message limit.
    let (_, content) = noise_png(1400, 1000, 7);
    let content_png = imaging::encode_png(&content, None, BitDepth::Sixteen).unwrap();
    assert!(
        content_png.len() > 4 << 20,
        "upload is {} bytes",
        content_png.len()
    );
    let content_ref = upload(&mut jobs, &content_png).await;
    assert_eq!((content_ref.width, content_ref.height), (1400, 1000));
    let (style_png, _) = noise_png(64, 64, 8);
    let style_ref = upload(&mut jobs, &style_png).await;

    let mut job_spec = spec(&content_ref, &style_ref, 1400);
    job_spec.tile_size = 512;
    let job = submit(&mut jobs, job_spec).await;
    // Base 128, ratio 2: 88x63, 175x125, 350x250 whole; 700x500 and 1400x1000 tiled.
    assert_eq!((job.width, job.height, job.num_scales), (1400, 1000, 5));

    let mut watch = jobs
        .watch_job(pb::WatchJobRequest {
            job_id: job.job_id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    let tasks = run_fake_worker(&coordinator, 2_000, 1_000).await;
    let done = wait_done(&mut jobs, &job.job_id, Duration::from_secs(60)).await;
    assert_eq!(
        done.state(),
        pb::JobState::Succeeded,
        "error: {}",
        done.error
    );
    assert!(tasks > 5 + 3 + 2, "only {tasks} tasks ran");

    let mut last = None;
    while let Some(event) = tokio_stream::StreamExt::next(&mut watch).await {
        last = Some(event.unwrap());
    }
    assert_eq!(last.unwrap().job.unwrap().state(), pb::JobState::Succeeded);

    let output = download(&mut jobs, &job.job_id).await;
    assert!(output.len() > 4 << 20, "download is {} bytes", output.len());
    let output = imaging::decode(&output, &DecodeLimits::default())
        .unwrap()
        .rgb;
    let expected = imaging::resize(&content, 1400, 1000);
    let diff = max_abs_diff(&output, &expected);
    assert!(
        diff <= TOLERANCE,
        "output differs from the content by {diff}"
    );
    coordinator.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_specs_name_the_field() {
    let farm = Farm::new("invalid", Duration::from_secs(30));
    let coordinator = farm.start().await;
    let mut jobs = coordinator.jobs().await;
    let (png, _) = noise_png(40, 30, 1);
    let image = upload(&mut jobs, &png).await;

    let mut bad_layer = spec(&image, &image, 40);
    bad_layer.params = Some(pb::StyleParams {
        style_layers: vec!["relu9_9".into()],
        ..Default::default()
    });
    let mut missing = spec(&image, &image, 40);
    missing.content_sha256 = "a".repeat(64);
    let mut bad_weight = spec(&image, &image, 40);
    bad_weight.styles[0].weight = -1.0;
    // 256 px tiles around a 48 px halo have 145 px cores: room for a 72 px overlap, not 100,
    // though this 40 px image needs no tiles.
    let mut wide_overlap = spec(&image, &image, 40);
    wide_overlap.overlap = 100;
    for (spec, field) in [
        (bad_layer, "params.style_layers"),
        (missing, "content_sha256"),
        (bad_weight, "styles[0].weight"),
        (wide_overlap, "overlap"),
    ] {
        let err = jobs
            .submit_job(pb::SubmitJobRequest { spec: Some(spec) })
            .await
            .unwrap_err();
        assert_eq!(err.code(), tonic::Code::InvalidArgument);
        assert!(err.message().contains(field), "{field}: {}", err.message());
        // The field also travels as a google.rpc.BadRequest violation.
        let violations = err.get_details_bad_request().unwrap().field_violations;
        assert_eq!(violations.len(), 1, "{field}");
        assert_eq!(violations[0].field, field);
    }
    coordinator.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_stops_heartbeats_and_leases() {
    let farm = Farm::new("cancel", Duration::from_secs(30));
    let coordinator = farm.start().await;
    let (mut jobs, mut workers) = (coordinator.jobs().await, coordinator.workers().await);
    let (png, _) = noise_png(300, 200, 2);
    let image = upload(&mut jobs, &png).await;
    let job = submit(&mut jobs, spec(&image, &image, 300)).await;
    let worker = register(&mut workers).await;
    let task = lease(&mut workers, &worker, 1_000).await.unwrap();
    assert!(matches!(task.kind, Some(Kind::StyleTarget(_))));
    let heartbeat = |attempt| pb::HeartbeatRequest {
        worker_id: worker.clone(),
        task_id: task.task_id.clone(),
        attempt,
        iteration: 1,
    };
    assert!(
        workers
            .heartbeat(heartbeat(1))
            .await
            .unwrap()
            .into_inner()
            .keep_going
    );

    let cancelled = jobs
        .cancel_job(pb::CancelJobRequest {
            job_id: job.job_id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(cancelled.state(), pb::JobState::Cancelled);
    assert!(
        !workers
            .heartbeat(heartbeat(1))
            .await
            .unwrap()
            .into_inner()
            .keep_going
    );
    assert!(lease(&mut workers, &worker, 300).await.is_none());
    let err = complete(&mut workers, &worker, &task, 1, b"x".to_vec())
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::Aborted);
    coordinator.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restarted_coordinator_resumes_the_job() {
    let farm = Farm::new("restart", Duration::from_secs(30));
    let first = farm.start().await;
    let mut jobs = first.jobs().await;
    let (png, content) = noise_png(600, 400, 3);
    let image = upload(&mut jobs, &png).await;
    let job = submit(&mut jobs, spec(&image, &image, 600)).await;
    assert_eq!(run_fake_worker(&first, 1_000, 5).await, 5);
    first.stop().await;

    let second = farm.start().await;
    let mut jobs = second.jobs().await;
    let running = jobs
        .get_job(pb::GetJobRequest {
            job_id: job.job_id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(running.state(), pb::JobState::Running);
    run_fake_worker(&second, 1_000, 1_000).await;
    let done = wait_done(&mut jobs, &job.job_id, Duration::from_secs(30)).await;
    assert_eq!(
        done.state(),
        pb::JobState::Succeeded,
        "error: {}",
        done.error
    );
    let output = download(&mut jobs, &job.job_id).await;
    let output = imaging::decode(&output, &DecodeLimits::default())
        .unwrap()
        .rgb;
    let diff = max_abs_diff(&output, &imaging::resize(&content, 600, 400));
    assert!(
        diff <= TOLERANCE,
        "output differs from the content by {diff}"
    );
    second.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_worker_lease_expires_and_another_takes_it() {
    let farm = Farm::new("killed", Duration::from_secs(1));
    let coordinator = farm.start().await;
    let (mut jobs, mut workers) = (coordinator.jobs().await, coordinator.workers().await);
    let (png, _) = noise_png(200, 150, 4);
    let image = upload(&mut jobs, &png).await;
    let job = submit(&mut jobs, spec(&image, &image, 200)).await;

    // Worker A takes the first task and dies: no heartbeat, no result.
    let dead = register(&mut workers).await;
    let task = lease(&mut workers, &dead, 1_000).await.unwrap();
    assert_eq!(task.attempt, 1);

    let alive = register(&mut workers).await;
    let again = lease(&mut workers, &alive, 5_000)
        .await
        .expect("the expired task is re-leased");
    assert_eq!(
        (again.task_id.as_str(), again.attempt),
        (task.task_id.as_str(), 2)
    );
    let stale = fake_result(&mut workers, &task).await;
    let late = complete(&mut workers, &dead, &task, 1, stale).await;
    assert_eq!(late.unwrap_err().code(), tonic::Code::FailedPrecondition);
    let bytes = fake_result(&mut workers, &again).await;
    assert!(complete(&mut workers, &alive, &again, 2, bytes.clone())
        .await
        .unwrap());
    assert!(
        !complete(&mut workers, &alive, &again, 2, bytes)
            .await
            .unwrap(),
        "duplicate"
    );

    run_fake_worker(&coordinator, 1_000, 1_000).await;
    let done = wait_done(&mut jobs, &job.job_id, Duration::from_secs(30)).await;
    assert_eq!(
        done.state(),
        pb::JobState::Succeeded,
        "error: {}",
        done.error
    );
    coordinator.stop().await;
}
