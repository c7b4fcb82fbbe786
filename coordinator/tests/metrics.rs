//! The coordinator's Prometheus endpoint after a small run with the FAKE worker of
//! `common::farm` (a test double without tensors). Its own test binary: the metrics recorder
//! is global to the process.

mod common;

use std::io::{Read, Write};
use std::time::Duration;

use common::farm::*;
use deepstyle_coordinator::metrics;
use deepstyle_proto::v1 as pb;

fn scrape(addr: std::net::SocketAddr) -> String {
    let mut stream = std::net::TcpStream::connect(addr).expect("the metrics endpoint listens");
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut body = String::new();
    stream.read_to_string(&mut body).unwrap();
    body
}

/// Returns the value of the sample whose name and labels are `series`.
fn sample(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {series} in:\n{text}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn metrics_count_what_a_small_run_did() {
    let addr = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    metrics::serve(addr).unwrap();
    let farm = Farm::new("metrics", Duration::from_secs(1));
    let coordinator = farm.start().await;
    let mut jobs = coordinator.jobs().await;
    let (content_png, _) = noise_png(64, 48, 1);
    let (style_png, _) = noise_png(32, 32, 2);
    let content = upload(&mut jobs, &content_png).await;
    let style = upload(&mut jobs, &style_png).await;
    let job = submit(&mut jobs, spec(&content, &style, 64)).await;

    // A worker leases the first task and stalls; its lease expires and another worker takes
    // the task again; the stalled worker's late result is then refused as stale.
    let mut workers = coordinator.workers().await;
    let stalled = register(&mut workers).await;
    let abandoned = lease(&mut workers, &stalled, 5_000).await.unwrap();
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    let helper = register(&mut workers).await;
    let retried = lease(&mut workers, &helper, 5_000).await.unwrap();
    assert_eq!(retried.task_id, abandoned.task_id);
    assert_eq!(retried.attempt, abandoned.attempt + 1);
    let late = fake_result(&mut workers, &abandoned).await;
    let stale = complete(&mut workers, &stalled, &abandoned, abandoned.attempt, late).await;
    assert_eq!(stale.unwrap_err().code(), tonic::Code::FailedPrecondition);
    let bytes = fake_result(&mut workers, &retried).await;
    assert!(
        complete(&mut workers, &helper, &retried, retried.attempt, bytes)
            .await
            .unwrap()
    );
    let done = 1 + run_fake_worker(&coordinator, 1_000, 100).await;
    let job = wait_done(&mut jobs, &job.job_id, Duration::from_secs(30)).await;
    assert_eq!(job.state(), pb::JobState::Succeeded, "{}", job.error);

    // Gauges are refreshed by the maintenance loop every 500 ms.
    tokio::time::sleep(Duration::from_millis(1_200)).await;
    let text = scrape(addr);
    assert_eq!(sample(&text, "deepstyle_jobs_submitted_total"), 1.0);
    assert_eq!(sample(&text, "deepstyle_lease_expiries_total"), 1.0);
    assert_eq!(sample(&text, "deepstyle_task_retries_total"), 1.0);
    assert_eq!(sample(&text, "deepstyle_stale_completions_total"), 1.0);
    assert_eq!(sample(&text, "deepstyle_tile_backlog"), 0.0);
    assert_eq!(sample(&text, "deepstyle_jobs{state=\"succeeded\"}"), 1.0);
    assert_eq!(sample(&text, "deepstyle_jobs{state=\"running\"}"), 0.0);
    let tiles = sample(
        &text,
        "deepstyle_task_duration_seconds_count{kind=\"tile\"}",
    );
    let styles = sample(
        &text,
        "deepstyle_task_duration_seconds_count{kind=\"style_target\"}",
    );
    assert_eq!(
        tiles + styles,
        done as f64,
        "one duration per accepted task"
    );
    coordinator.stop().await;
}
