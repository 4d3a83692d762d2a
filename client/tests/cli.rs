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

/// A build without the `tor` feature refuses `--tor` and says how to get
/// a build with it, instead of silently connecting directly.
#[cfg(not(feature = "tor"))]
#[test]
fn tor_without_the_feature_explains_how_to_get_it() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("h");
    assert_eq!(allium(&home, &["init"]).status.code(), Some(0));
    for flag in ["--tor", "--tor-all"] {
        let out = allium(&home, &[flag, "nodes"]);
        assert_eq!(out.status.code(), Some(2));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("without Tor support") && err.contains("--features tor"),
            "{err}"
        );
    }
    // The config file's `tor = true` is refused the same way.
    std::fs::write(home.join("config.toml"), "tor = true\n").unwrap();
    let out = allium(&home, &["id"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--features tor"));
}

/// A Tor network that cannot be reached ends in a clear error after the
/// configured time, with the progress line on stderr (none with --json).
#[cfg(feature = "tor")]
#[test]
fn tor_that_cannot_bootstrap_is_a_clear_error_after_the_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("h");
    assert_eq!(allium(&home, &["init"]).status.code(), Some(0));
    let seeds = dir.path().join("seeds.toml");
    std::fs::write(
        &seeds,
        "[[seed]]\naddress = \"127.0.0.3:9\"\ned25519 = \"0000000000000000000000000000000000000000000000000000000000000000\"\n",
    )
    .unwrap();
    // A private network whose only directory cache is a closed port.
    std::fs::write(
        home.join("config.toml"),
        "tor_bootstrap_timeout_secs = 2\n[tor_network]\nlocal = true\n\
         authorities = [{ v3ident = \"82F3338CACE99780AC01EA5B47A2A6533082B840\" }]\n\
         fallbacks = [{ rsa_identity = \"393E37D086F74F781E042AE94CD77E1EF14EBD98\", \
         ed_identity = \"Ihek3KZqgLtyUNsHiGUu9LVtemNxin9p/mfrlD5gzqQ\", orports = [\"127.0.0.1:1\"] }]\n",
    )
    .unwrap();
    let seeds = seeds.to_str().unwrap();
    let out = allium(&home, &["--tor", "--seeds", seeds, "nodes"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("Tor: did not bootstrap within 2 s"), "{err}");
    assert!(err.lines().any(|l| l.starts_with("tor: ")), "progress is shown: {err}");
    assert!(home.join("tor/state").is_dir(), "arti's state lives in the home");

    let quiet = allium(&home, &["--tor", "--json", "--seeds", seeds, "nodes"]);
    assert_eq!(quiet.status.code(), Some(2));
    let err = String::from_utf8_lossy(&quiet.stderr);
    assert!(!err.lines().any(|l| l.starts_with("tor: ")), "--json is quiet: {err}");
    assert!(err.contains("did not bootstrap"), "{err}");
}
