//! A sandbox for end-to-end tests: a throwaway Redis, the coordinator and worker processes on
//! loopback and the `deepstyle` CLI, all built by cargo and killed on drop.
#![warn(missing_docs)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// Lease time-to-live of the sandbox's coordinator, in seconds.
pub const LEASE_TTL_SECS: u64 = 2;

/// Heartbeat interval of the sandbox's workers, in milliseconds.
pub const HEARTBEAT_MS: u32 = 300;

/// Returns the workspace root.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the e2e crate sits in the workspace")
        .to_path_buf()
}

/// Builds the three binaries once per test process and returns the directory holding them.
///
/// They are built as `cargo test --workspace` builds them (with the features the workspace's
/// dev-dependencies add, e.g. tokio's test-util), so under the suite's own `cargo test
/// --workspace` this is a no-op; a `cargo build` here rebuilt some 45 crates every run.
/// The variables cargo sets for this test process are left out: `ring`'s build script
/// watches `CARGO_MANIFEST_DIR`, and passing it on rebuilt 19 crates here and again in the
/// next suite run.
pub fn bin_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut command = Command::new(cargo);
        for (name, _) in std::env::vars_os() {
            if name.to_str().is_some_and(is_per_crate_cargo_var) {
                command.env_remove(name);
            }
        }
        let status = command
            .current_dir(workspace_root())
            .args(["test", "--workspace", "--no-run", "--quiet"])
            .status()
            .expect("cargo runs");
        assert!(status.success(), "building the binaries failed");
        let target = std::env::var_os("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| workspace_root().join("target"));
        target.join("debug")
    })
}

/// Tells the variables that cargo sets for one crate's build or test run (`CARGO_MANIFEST_DIR`,
/// `CARGO_PKG_NAME`, ...) from the ones that configure cargo itself (`CARGO_HOME`,
/// `CARGO_TARGET_DIR`, `CARGO_BUILD_JOBS`, ...).
fn is_per_crate_cargo_var(name: &str) -> bool {
    const PREFIXES: [&str; 6] = [
        "CARGO_MANIFEST_",
        "CARGO_PKG_",
        "CARGO_CRATE_",
        "CARGO_BIN_",
        "CARGO_PRIMARY_PACKAGE",
        "CARGO_TARGET_TMPDIR",
    ];
    PREFIXES.iter().any(|prefix| name.starts_with(prefix))
}

/// Returns a free loopback port.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("the loopback interface has a free port")
        .port()
}

/// A child process killed (SIGKILL) and reaped on drop.
#[derive(Debug)]
pub struct Process {
    child: Option<Child>,
    /// Where its stderr goes.
    pub log: PathBuf,
}

impl Process {
    fn spawn(command: &mut Command, log: PathBuf) -> Self {
        let file = std::fs::File::create(&log).expect("the log file can be created");
        let child = command
            .env("NO_COLOR", "1")
            .stdout(Stdio::null())
            .stderr(file)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {command:?}: {e}"));
        Self {
            child: Some(child),
            log,
        }
    }

    /// Returns the process id.
    pub fn id(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    /// Kills the process at once, as a crash would.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Returns the log so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits until the log contains `needle`.
    pub fn wait_for_log(&self, needle: &str, timeout: Duration) -> bool {
        let started = Instant::now();
        while started.elapsed() < timeout {
            if self.log_text().contains(needle) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Redis, a coordinator and workers, with their files in one temp dir.
#[derive(Debug)]
pub struct Sandbox {
    /// Scratch space: blobs, logs, images.
    pub dir: tempfile::TempDir,
    redis_url: String,
    /// The coordinator's port, the same across restarts.
    pub port: u16,
    /// The coordinator process.
    pub coordinator: Option<Process>,
    /// The worker processes.
    pub workers: Vec<Process>,
    redis: Option<Process>,
    restarts: usize,
}

impl Sandbox {
    /// Starts Redis (or uses `REDIS_URL`) and a coordinator.
    pub fn start() -> Self {
        bin_dir();
        let dir = tempfile::tempdir().expect("a temp dir can be made");
        let (redis_url, redis) = match std::env::var("REDIS_URL") {
            Ok(url) => (url, None),
            Err(_) => {
                let port = free_port();
                let process = Process::spawn(
                    Command::new("redis-server")
                        .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
                        .args(["--save", "", "--appendonly", "no"]),
                    dir.path().join("redis.log"),
                );
                wait_for_port(port);
                (format!("redis://127.0.0.1:{port}/"), Some(process))
            }
        };
        let mut sandbox = Self {
            dir,
            redis_url,
            port: free_port(),
            coordinator: None,
            workers: Vec::new(),
            redis,
            restarts: 0,
        };
        sandbox.start_coordinator();
        sandbox
    }

    /// Returns the coordinator's URL.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// (Re)starts the coordinator on the sandbox's port.
    pub fn start_coordinator(&mut self) {
        let prefix = format!("e2e-{}-{}", std::process::id(), self.dir.path().display())
            .replace(['/', ' '], "-");
        let log = self
            .dir
            .path()
            .join(format!("coordinator-{}.log", self.restarts));
        self.restarts += 1;
        let process = Process::spawn(
            Command::new(bin_dir().join("deepstyle-coordinator"))
                .args(["--listen", &format!("127.0.0.1:{}", self.port)])
                .args(["--redis-url", &self.redis_url])
                .arg("--blob-dir")
                .arg(self.dir.path().join("blobs"))
                .args(["--lease-ttl-secs", &LEASE_TTL_SECS.to_string()])
                .env("DEEPSTYLE_COORDINATOR_KEY_PREFIX", prefix),
            log,
        );
        wait_for_port(self.port);
        self.coordinator = Some(process);
    }

    /// Starts a worker on the CPU with one thread.
    pub fn start_worker(&mut self) {
        let log = self
            .dir
            .path()
            .join(format!("worker-{}.log", self.workers.len()));
        let process = Process::spawn(
            Command::new(bin_dir().join("deepstyle-worker"))
                .args([
                    "--coordinator",
                    &self.url(),
                    "--device",
                    "cpu",
                    "--threads",
                    "1",
                ])
                .args(["--heartbeat-ms", &HEARTBEAT_MS.to_string()])
                .arg("--weights")
                .arg(weights())
                .env("RUST_LOG", "info"),
            log,
        );
        self.workers.push(process);
    }

    /// Runs the `deepstyle` CLI against the sandbox's coordinator.
    pub fn cli(&self, args: &[&str]) -> Output {
        Command::new(bin_dir().join("deepstyle"))
            .args(args)
            .env("DEEPSTYLE_COORDINATOR", self.url())
            .output()
            .expect("the CLI runs")
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        self.workers.clear();
        self.coordinator = None;
        self.redis = None;
    }
}

/// Returns the converted VGG19 weights of the checkout.
pub fn weights() -> PathBuf {
    workspace_root().join("models/vgg19_normalised.safetensors")
}

fn wait_for_port(port: u16) {
    let started = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "nothing listens on port {port}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Writes a deterministic content photo stand-in (gradient plus texture) and a style image.
pub fn write_images(dir: &Path) -> (PathBuf, PathBuf) {
    let content = image::RgbImage::from_fn(96, 72, |x, y| {
        let t = ((x * 7 + y * 13) % 23) as u8;
        image::Rgb([(x * 2) as u8 + t, (y * 3) as u8, 128u8.wrapping_add(t * 3)])
    });
    let style = image::RgbImage::from_fn(64, 64, |x, y| {
        let stripe = if (x / 4 + y / 8) % 2 == 0 { 220 } else { 30 };
        image::Rgb([stripe, (x * 4) as u8, 255 - stripe])
    });
    let (content_path, style_path) = (dir.join("content.png"), dir.join("style.png"));
    content.save(&content_path).expect("content is written");
    style.save(&style_path).expect("style is written");
    (content_path, style_path)
}

/// The style options shared by `render` and `submit` in these tests: 48 px then 96 px, the
/// finest scale cut into several 80 px tiles (49 px cores) with an 8 px halo.
pub const SPEC_ARGS: &[&str] = &[
    "--size",
    "96",
    "--base-size",
    "48",
    "--tile",
    "80",
    "--halo",
    "8",
    "--overlap",
    "8",
    "--iterations",
    "4",
    "--seed",
    "7",
    "--sixteen-bit",
];

/// Returns the largest per-channel difference between two images of the same size.
pub fn max_abs_diff(a: &Path, b: &Path) -> f32 {
    let limits = deepstyle_coordinator::imaging::DecodeLimits::default();
    let load = |p: &Path| {
        deepstyle_coordinator::imaging::load(p, &limits)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", p.display()))
            .rgb
    };
    let (a, b) = (load(a), load(b));
    assert_eq!(a.dimensions(), b.dimensions(), "image sizes differ");
    a.as_raw()
        .iter()
        .zip(b.as_raw())
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

/// Describes where two images differ, for failure messages.
pub fn diff_report(a: &Path, b: &Path, tolerance: f32) -> String {
    let limits = deepstyle_coordinator::imaging::DecodeLimits::default();
    let a = deepstyle_coordinator::imaging::load(a, &limits).map(|l| l.rgb);
    let b = deepstyle_coordinator::imaging::load(b, &limits).map(|l| l.rgb);
    let (Ok(a), Ok(b)) = (a, b) else {
        return "unreadable images".into();
    };
    let mut bad = Vec::new();
    for (x, y, p) in a.enumerate_pixels() {
        let q = b.get_pixel(x, y);
        let d = (0..3).map(|c| (p.0[c] - q.0[c]).abs()).fold(0.0, f32::max);
        if d > tolerance {
            bad.push((x, y, d));
        }
    }
    let shown: Vec<String> = bad
        .iter()
        .take(12)
        .map(|(x, y, d)| format!("({x},{y}):{d:.3}"))
        .collect();
    format!(
        "{} of {} pixels off: {}",
        bad.len(),
        a.width() * a.height(),
        shown.join(" ")
    )
}

#[cfg(test)]
mod tests {
    use super::is_per_crate_cargo_var;

    #[test]
    fn nested_cargo_keeps_its_configuration_and_drops_this_crates_variables() {
        for name in [
            "CARGO_MANIFEST_DIR",
            "CARGO_PKG_NAME",
            "CARGO_TARGET_TMPDIR",
        ] {
            assert!(is_per_crate_cargo_var(name), "{name}");
        }
        for name in ["CARGO_HOME", "CARGO_TARGET_DIR", "CARGO_BUILD_JOBS", "PATH"] {
            assert!(!is_per_crate_cargo_var(name), "{name}");
        }
    }
}
