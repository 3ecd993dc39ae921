//! The Docker engine and the registry-free test image, for tests that need them.

use std::process::{Command, Stdio};

/// The image `scripts/build-test-image.sh` builds (Debian with git and python3).
pub const TEST_IMAGE: &str = "shopfloor-test-base:bookworm-v2";

/// The test image, when the engine answers and has it. Otherwise one line says why the
/// test is skipped, or, under `CI=true` (or `SHOPFLOOR_REQUIRE_DOCKER=1`), the test fails.
pub fn test_image() -> Option<&'static str> {
    let required = std::env::var("CI").is_ok_and(|v| v == "true")
        || std::env::var("SHOPFLOOR_REQUIRE_DOCKER").is_ok_and(|v| v == "1");
    let have = Command::new("docker")
        .args(["image", "inspect", TEST_IMAGE])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if have {
        return Some(TEST_IMAGE);
    }
    assert!(
        !required,
        "Docker image {TEST_IMAGE} missing: run scripts/build-test-image.sh"
    );
    eprintln!(
        "skipping: no Docker engine or no {TEST_IMAGE} (scripts/build-test-image.sh builds it)"
    );
    None
}
