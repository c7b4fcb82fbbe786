//! Bearer tokens, TLS and request limits of the coordinator, over gRPC on loopback with a real
//! `redis-server` and the FAKE worker of `common::farm` (a test double without tensors).

mod common;

use std::time::Duration;

use common::farm::*;
use deepstyle_coordinator::jobs::RequestLimits;
use deepstyle_coordinator::service::{ServeOptions, TlsFiles};
use deepstyle_proto::v1::job_service_client::JobServiceClient;
use deepstyle_proto::v1::worker_service_client::WorkerServiceClient;
use deepstyle_proto::v1::{self as pb};
use tonic::Code;

const TOKEN: &str = "s3cret-token";

fn with_token<T>(message: T, token: &str) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    let header = format!("Bearer {token}").parse().unwrap();
    request.metadata_mut().insert("authorization", header);
    request
}

#[tokio::test(flavor = "multi_thread")]
async fn calls_without_the_token_are_refused_while_health_answers() {
    let farm = Farm::new("auth", Duration::from_secs(30));
    let options = ServeOptions {
        token: Some(TOKEN.into()),
        ..ServeOptions::default()
    };
    let coordinator = farm
        .start_with(options, RequestLimits::default(), None)
        .await;
    let channel = coordinator.channel().await;
    let mut jobs = JobServiceClient::new(channel.clone());
    let mut workers = WorkerServiceClient::new(channel.clone());
    let list = || pb::ListJobsRequest { limit: 1 };

    let missing = jobs.list_jobs(list()).await.unwrap_err();
    assert_eq!(missing.code(), Code::Unauthenticated, "{missing}");
    let wrong = jobs
        .list_jobs(with_token(list(), "not-it"))
        .await
        .unwrap_err();
    assert_eq!(wrong.code(), Code::Unauthenticated, "{wrong}");
    let register = pb::RegisterRequest {
        device: "cpu".into(),
        ..Default::default()
    };
    let worker = workers.register(register.clone()).await.unwrap_err();
    assert_eq!(worker.code(), Code::Unauthenticated, "{worker}");

    jobs.list_jobs(with_token(list(), TOKEN)).await.unwrap();
    workers.register(with_token(register, TOKEN)).await.unwrap();
    let mut health = tonic_health::pb::health_client::HealthClient::new(channel);
    let status = health
        .check(tonic_health::pb::HealthCheckRequest {
            service: String::new(),
        })
        .await
        .expect("health needs no token")
        .into_inner();
    assert_eq!(
        status.status(),
        tonic_health::pb::health_check_response::ServingStatus::Serving
    );
    coordinator.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_small_job_runs_end_to_end_over_tls() {
    let rcgen::CertifiedKey { cert, key_pair } =
        rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    let cert_pem = cert.pem().into_bytes();
    let options = ServeOptions {
        tls: Some(TlsFiles {
            cert_pem: cert_pem.clone(),
            key_pem: key_pair.serialize_pem().into_bytes(),
        }),
        ..ServeOptions::default()
    };
    let farm = Farm::new("tls", Duration::from_secs(30));
    let coordinator = farm
        .start_with(options, RequestLimits::default(), Some(cert_pem))
        .await;

    let mut jobs = coordinator.jobs().await;
    let (content_png, _) = noise_png(96, 64, 1);
    let (style_png, _) = noise_png(32, 32, 2);
    let content = upload(&mut jobs, &content_png).await;
    let style = upload(&mut jobs, &style_png).await;
    let job = submit(&mut jobs, spec(&content, &style, 96)).await;
    let done = run_fake_worker(&coordinator, 500, 100).await;
    assert!(done >= 2, "the fake worker did {done} tasks");
    let job = wait_done(&mut jobs, &job.job_id, Duration::from_secs(30)).await;
    assert_eq!(job.state(), pb::JobState::Succeeded, "{}", job.error);
    let output = download(&mut jobs, &job.job_id).await;
    let image = image::load_from_memory(&output).unwrap();
    assert_eq!((image.width(), image.height()), (96, 64));

    // A client that does not speak TLS gets nowhere.
    let plain = format!("http://{}", coordinator.addr);
    let mut plain = JobServiceClient::connect(plain).await.unwrap();
    assert!(plain
        .list_jobs(pb::ListJobsRequest { limit: 1 })
        .await
        .is_err());
    coordinator.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn each_limit_is_refused_with_its_code_and_others_are_served() {
    let limits = RequestLimits {
        max_image_pixels: 64 * 64,
        max_iterations: 50,
        max_styles: 1,
        max_active_jobs_per_client: 1,
    };
    let options = ServeOptions {
        max_upload_bytes: 20_000,
        ..ServeOptions::default()
    };
    let farm = Farm::new("limits", Duration::from_secs(30));
    let coordinator = farm.start_with(options, limits, None).await;
    let mut jobs = coordinator.jobs().await;
    let (content_png, _) = noise_png(64, 48, 1);
    let content = upload(&mut jobs, &content_png).await;
    let (style_png, _) = noise_png(32, 32, 2);
    let style = upload(&mut jobs, &style_png).await;

    let uploader = jobs.clone();
    let upload_err = |bytes: Vec<u8>| {
        let mut jobs = uploader.clone();
        async move {
            let parts = vec![pb::UploadImageRequest { data: bytes }];
            jobs.upload_image(tokio_stream::iter(parts))
                .await
                .unwrap_err()
        }
    };
    let (big, _) = noise_png(128, 128, 3);
    assert!(big.len() > 20_000);
    let err = upload_err(big).await;
    assert_eq!(err.code(), Code::ResourceExhausted, "{err}");
    let (wide, _) = noise_png(80, 60, 4);
    assert!(wide.len() <= 20_000);
    let err = upload_err(wide).await;
    assert_eq!(err.code(), Code::ResourceExhausted, "{err}");
    assert!(err.message().contains("4096"), "{err}");

    let submitter = jobs.clone();
    let submit = |spec: pb::JobSpec| {
        let mut jobs = submitter.clone();
        async move {
            jobs.submit_job(pb::SubmitJobRequest { spec: Some(spec) })
                .await
                .map(|r| r.into_inner().job.unwrap())
        }
    };
    let mut too_long = spec(&content, &style, 64);
    too_long.iterations = 51;
    let err = submit(too_long).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument, "{err}");
    assert!(err.message().contains("iterations"), "{err}");
    let mut two_styles = spec(&content, &style, 64);
    two_styles.styles.push(two_styles.styles[0].clone());
    let err = submit(two_styles).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument, "{err}");
    assert!(err.message().contains("styles"), "{err}");

    // No worker runs, so the first job stays queued and holds this client's one slot.
    let first = submit(spec(&content, &style, 64)).await.unwrap();
    let err = submit(spec(&content, &style, 64)).await.unwrap_err();
    assert_eq!(err.code(), Code::ResourceExhausted, "{err}");
    let listed = jobs
        .list_jobs(pb::ListJobsRequest { limit: 10 })
        .await
        .unwrap()
        .into_inner()
        .jobs;
    assert_eq!(listed.len(), 1, "refused jobs left no trace");

    // Once the first job is over, the slot is free again.
    jobs.cancel_job(pb::CancelJobRequest {
        job_id: first.job_id.clone(),
    })
    .await
    .unwrap();
    submit(spec(&content, &style, 64)).await.unwrap();
    coordinator.stop().await;
}
