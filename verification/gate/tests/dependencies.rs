//! The gate is the first thing CI builds: it must not pull in the AWS SDK (about four
//! minutes of a cold build on two cores) just to learn the store variants' names.

use std::process::Command;

#[test]
fn the_gate_binary_does_not_build_the_aws_sdk() {
    let output = Command::new(env!("CARGO"))
        .args([
            "tree",
            "--locked",
            "--offline",
            "-p",
            "quota-gate",
            "-e",
            "normal",
        ])
        .args(["--prefix", "none", "--format", "{p}"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo runs");
    assert!(
        output.status.success(),
        "cargo tree failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let tree = String::from_utf8_lossy(&output.stdout);
    assert!(
        tree.contains("quota-tracker"),
        "not the gate's tree:\n{tree}"
    );
    let aws: Vec<&str> = tree
        .lines()
        .filter(|l| l.starts_with("aws-") || l.starts_with("quota-dynamodb"))
        .collect();
    assert!(aws.is_empty(), "the gate depends on {aws:?}");
}
