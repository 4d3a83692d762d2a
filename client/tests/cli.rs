//! The `allium` binary's command-line contract: exit codes, global options
//! before or after the subcommand, refusals without a network.
//! (The end-to-end tests in `tests/` drive it against a real network.)
#![allow(clippy::unwrap_used)]

use std::process::Command;

fn allium(home: &std::path::Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_allium"))
        .env_remove("ALLIUM_HOME")
        .env_remove("ALLIUM_SEEDS")
        .arg("--home")
        .arg(home)
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn help_documents_exit_codes_and_usage_errors_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let help = allium(dir.path(), &["--help"]);
    assert_eq!(help.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&help.stdout).contains("Exit status"));
    assert_eq!(allium(dir.path(), &["frobnicate"]).status.code(), Some(2));
}

#[test]
fn global_options_go_before_or_after_the_subcommand() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("h");
    let init = allium(&home, &["init", "--json"]);
    assert_eq!(init.status.code(), Some(0), "{}", String::from_utf8_lossy(&init.stderr));
    let created: serde_json::Value = serde_json::from_slice(&init.stdout).unwrap();
    assert_eq!(created["mnemonic"].as_str().unwrap().split(' ').count(), 24);
    let before = Command::new(env!("CARGO_BIN_EXE_allium"))
        .arg("--home")
        .arg(&home)
        .args(["--json", "id"])
        .output()
        .unwrap();
    let after = Command::new(env!("CARGO_BIN_EXE_allium"))
        .args(["id", "--json", "--home"])
        .arg(&home)
        .output()
        .unwrap();
    assert_eq!(before.stdout, after.stdout);
    let id: serde_json::Value = serde_json::from_slice(&before.stdout).unwrap();
    assert_eq!(id["account_id"], created["account_id"]);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(home.join("identity.key"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "the key file is private");
    }
}

#[test]
fn without_seeds_sending_is_refused_with_a_hint() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("h");
    assert_eq!(allium(&home, &["init"]).status.code(), Some(0));
    let peer = "05d2ad010eeb72d72e561d9de7bd7b6989af77dcabffa03a5111a6c859ae5c3a72";
    let out = allium(&home, &["send", peer, "hi"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("--seeds"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let missing = allium(&dir.path().join("nobody"), &["id"]);
    assert_eq!(missing.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("allium init"));
}
