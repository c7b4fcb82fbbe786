//! The farm end to end: a real Redis, the coordinator binary, two `deepstyle-worker` processes
//! on the CPU with the real VGG19 weights, and the `deepstyle` CLI.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use deepstyle_e2e::{max_abs_diff, write_images, Sandbox, SPEC_ARGS};

/// Largest difference allowed between farm and embedded outputs.
const TOLERANCE: f32 = 2.0 / 255.0;

fn stdout(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn assert_ok(what: &str, output: &std::process::Output) {
    assert!(
        output.status.success(),
        "{what} exited {:?}\nstdout: {}\nstderr: {}",
        output.status.code(),
        stdout(output),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Submits the test job without waiting and returns its id.
fn submit(sandbox: &Sandbox, content: &str, style: &str) -> String {
    let mut args = vec!["submit", content, "--style", style];
    args.extend_from_slice(SPEC_ARGS);
    let output = sandbox.cli(&args);
    assert_ok("submit", &output);
    stdout(&output).trim().to_owned()
}

/// Waits for the job with `deepstyle watch`, then downloads it, returning the output path.
fn finish(sandbox: &Sandbox, job: &str) -> PathBuf {
    let watched = sandbox.cli(&["watch", job]);
    assert_ok("watch", &watched);
    let out = sandbox.dir.path().join(format!("{job}.png"));
    let fetched = sandbox.cli(&["fetch", job, "-o", out.to_str().unwrap()]);
    assert_ok("fetch", &fetched);
    out
}

/// Renders the test job with `deepstyle render` (no farm) once per test process.
fn reference() -> &'static Path {
    static REFERENCE: OnceLock<(tempfile::TempDir, PathBuf)> = OnceLock::new();
    let (_, path) = REFERENCE.get_or_init(|| {
        let dir = tempfile::tempdir().expect("a temp dir can be made");
        let (content, style) = write_images(dir.path());
        let reference = dir.path().join("reference.png");
        let mut args = vec!["render", content.to_str().unwrap(), "--style"];
        args.extend_from_slice(&[style.to_str().unwrap(), "-o", reference.to_str().unwrap()]);
        args.extend_from_slice(SPEC_ARGS);
        args.extend_from_slice(&["--device", "cpu", "--threads", "1", "--weights"]);
        let weights = deepstyle_e2e::weights();
        args.push(weights.to_str().unwrap());
        let output = Command::new(deepstyle_e2e::bin_dir().join("deepstyle"))
            .args(&args)
            .output()
            .expect("the CLI runs");
        assert_ok("render", &output);
        (dir, reference)
    });
    path
}

/// Checks that a farm output matches the embedded render of the same spec within 2/255.
fn assert_matches_reference(out: &Path) {
    let diff = max_abs_diff(out, reference());
    eprintln!("largest difference from the embedded render: {diff}");
    assert!(
        diff <= TOLERANCE,
        "farm output differs from render by {diff}: {}",
        deepstyle_e2e::diff_report(out, reference(), TOLERANCE)
    );
}

fn tiles_done_by_each(sandbox: &Sandbox) -> Vec<usize> {
    sandbox
        .workers
        .iter()
        .map(|w| w.log_text().matches("task completed").count())
        .collect()
}

#[test]
fn farm_output_matches_the_embedded_render_and_both_workers_work() {
    let started = Instant::now();
    let mut sandbox = Sandbox::start();
    sandbox.start_worker();
    sandbox.start_worker();
    let (content, style) = write_images(sandbox.dir.path());
    let (content, style) = (content.to_str().unwrap(), style.to_str().unwrap());

    let out = sandbox.dir.path().join("farm.png");
    let mut args = vec!["submit", content, "--style", style, "--wait", "-o"];
    args.push(out.to_str().unwrap());
    args.extend_from_slice(SPEC_ARGS);
    assert_ok("submit --wait", &sandbox.cli(&args));

    assert_matches_reference(&out);

    let done = tiles_done_by_each(&sandbox);
    assert!(done.iter().all(|&n| n > 0), "tasks per worker: {done:?}");
    let workers = stdout(&sandbox.cli(&["workers"]));
    assert_eq!(workers.lines().count(), 2, "{workers}");
    eprintln!(
        "took {:.1} s, tasks per worker {done:?}",
        started.elapsed().as_secs_f64()
    );
}

#[test]
fn killed_worker_mid_tile_still_finishes_the_job() {
    let mut sandbox = Sandbox::start();
    sandbox.start_worker();
    sandbox.start_worker();
    let (content, style) = write_images(sandbox.dir.path());
    let job = submit(&sandbox, content.to_str().unwrap(), style.to_str().unwrap());

    // Kill whichever worker first leases a tile of the tiled (second) scale.
    let deadline = Instant::now() + Duration::from_secs(300);
    let victim = loop {
        let found = sandbox
            .workers
            .iter()
            .position(|w| w.log_text().contains(&format!("{job}/1/0")));
        if let Some(index) = found {
            break index;
        }
        assert!(Instant::now() < deadline, "no worker leased a tile");
        std::thread::sleep(Duration::from_millis(20));
    };
    sandbox.workers[victim].kill();

    let out = finish(&sandbox, &job);
    assert_matches_reference(&out);
    let survivor = &sandbox.workers[1 - victim];
    assert!(survivor.log_text().contains("task completed"));
    // The killed worker's tile was leased again once its lease ran out, and that attempt won.
    let coordinator = sandbox.coordinator.as_ref().unwrap().log_text();
    let tile = format!("task={job}/1/0");
    assert!(
        coordinator
            .lines()
            .any(|l| l.contains("task completed") && l.contains(&tile) && l.ends_with("attempt=2")),
        "the killed worker's tile was not redone:\n{coordinator}"
    );
}

#[test]
fn restarted_coordinator_mid_job_still_finishes_it() {
    let mut sandbox = Sandbox::start();
    sandbox.start_worker();
    sandbox.start_worker();
    let (content, style) = write_images(sandbox.dir.path());
    let job = submit(&sandbox, content.to_str().unwrap(), style.to_str().unwrap());

    let coordinator = sandbox.coordinator.as_ref().unwrap();
    assert!(
        coordinator.wait_for_log("scale stitched", Duration::from_secs(300)),
        "the first scale never finished"
    );
    sandbox.coordinator.take().unwrap().kill();
    std::thread::sleep(Duration::from_millis(500));
    sandbox.start_coordinator();

    let out = finish(&sandbox, &job);
    assert_matches_reference(&out);
    let restarted = sandbox.coordinator.as_ref().unwrap().log_text();
    assert!(
        !restarted.contains("job accepted") && restarted.contains("scale stitched"),
        "the restarted coordinator did not carry on the job:\n{restarted}"
    );
}
