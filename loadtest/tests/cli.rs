//! The `wimz-loadtest` binary on its own (no relay crate involved): it
//! parses the same options as `wimz-relay loadtest` and fails with one
//! line when nothing listens at the target. Runs against a relay are in the
//! relay's `tests/api/loadgen.rs`.

use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_wimz-loadtest");

#[test]
fn help_lists_the_scenarios_and_a_dead_target_is_one_line() {
    let out = Command::new(BIN).arg("--help").output().unwrap();
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    for word in ["--target", "--scenario", "--robots", "--provision"] {
        assert!(help.contains(word), "--help mentions {word}: {help}");
    }

    // A port nobody listens on: bound, then released.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dir = std::env::temp_dir().join(format!("wimz-loadtest-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let out = Command::new(BIN)
        .args(["--target", &format!("http://127.0.0.1:{port}")])
        .arg("--provision")
        .arg(dir.join("provision.json"))
        .args(["--robots", "1", "--duration", "1", "--quiet"])
        .output()
        .unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(stderr.starts_with("wimz-loadtest: "), "{stderr}");
}
