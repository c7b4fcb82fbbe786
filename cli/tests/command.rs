//! The `deepstyle render` command as a user runs it: real weights, tiny images.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn render(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_deepstyle"))
        .arg("render")
        .args(args)
        .env(
            "DEEPSTYLE_WEIGHTS",
            root().join("models/vgg19_normalised.safetensors"),
        )
        .env("RUST_LOG", "warn")
        .output()
        .expect("deepstyle runs")
}

fn example(name: &str) -> String {
    root()
        .join("examples/inputs")
        .join(name)
        .display()
        .to_string()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn renders_a_png_with_blended_styles_and_original_colors() {
    let dir = tempfile::tempdir().unwrap();
    let output = dir.path().join("out.png");
    let styles = format!(
        "{},{}",
        example("starry_night.jpg"),
        example("the_scream.jpg")
    );
    let out = render(&[
        &example("tubingen.jpg"),
        "--style",
        &styles,
        "--style-weights",
        "3,1",
        "--size",
        "64",
        "--iterations",
        "5",
        "--original-colors",
        "--device",
        "cpu",
        "-o",
        output.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let image = image::open(&output).unwrap();
    assert_eq!((image.width(), image.height()), (64, 48));
}

#[test]
fn missing_content_file_is_named_and_fails() {
    let out = render(&[
        "/no/such/photo.jpg",
        "--style",
        &example("starry_night.jpg"),
        "-o",
        "x.png",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("failed to read content image") && err.contains("/no/such/photo.jpg"),
        "{err}"
    );
}

#[test]
fn broken_style_file_is_named_and_fails() {
    let dir = tempfile::tempdir().unwrap();
    let broken = dir.path().join("broken.jpg");
    let bytes = std::fs::read(Path::new(&example("starry_night.jpg"))).unwrap();
    std::fs::write(&broken, &bytes[..bytes.len() / 3]).unwrap();
    let out = render(&[
        &example("tubingen.jpg"),
        "--style",
        broken.to_str().unwrap(),
        "-o",
        "x.png",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("failed to read style image") && err.contains("broken.jpg"),
        "{err}"
    );
}

#[test]
fn bad_options_are_refused_before_work() {
    let content = example("tubingen.jpg");
    let style = example("starry_night.jpg");
    let cases: [(&[&str], &str); 14] = [
        (
            &["--style-weights", "1,2"],
            "--style-weights has 2 values for 1 style images",
        ),
        (&["--init", "image"], "--init image needs --init-image"),
        (&["--content-layers", "relu9_9"], "relu9_9"),
        (&["-o", "out.gif"], "gif"),
        (&["--scale-ratio", "0"], "not a ratio above 1"),
        (&["--base-size", "0"], "--base-size"),
        (
            &["--scales", "2", "--base-size", "16"],
            "needs at least 17 px",
        ),
        (
            &["--tile", "20", "--halo", "0"],
            "--tile: invalid tile_size",
        ),
        (&["--tile", "20", "--halo", "0"], "at least 47"),
        // Default 512 px tiles have 341 px cores: room for a 170 px overlap.
        (&["--overlap", "171"], "--overlap: invalid overlap: 171 px"),
        (&["--overlap", "171"], "at most 170"),
        (
            &["--style-layers", "relu1_1,"],
            "--style-layers: invalid params.style_layers: an empty layer name",
        ),
        (&["--threads", "100000"], "--threads must be in 1..=1024"),
        // A missing output directory is found before the render, not after it.
        (
            &["-o", "/no/such/dir/out.png"],
            "cannot write image file /no/such/dir/out.png",
        ),
    ];
    for (extra, expected) in cases {
        let mut args = vec![
            content.as_str(),
            "--style",
            style.as_str(),
            "--size",
            "32",
            "--iterations",
            "1",
        ];
        args.extend_from_slice(extra);
        let out = render(&args);
        assert!(!out.status.success(), "{extra:?} was accepted");
        assert!(
            stderr(&out).contains(expected),
            "{extra:?}: {}",
            stderr(&out)
        );
    }
}

#[test]
fn missing_weights_say_which_command_to_run() {
    let out = Command::new(env!("CARGO_BIN_EXE_deepstyle"))
        .args([
            "render",
            &example("tubingen.jpg"),
            "--style",
            &example("starry_night.jpg"),
        ])
        .env("DEEPSTYLE_WEIGHTS", "/no/weights.safetensors")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("scripts/setup.sh"),
        "{}",
        stderr(&out)
    );
}
