//! The binary itself: first start, admin commands, migrations, help and graceful shutdown.

use std::io::{BufRead, BufReader, Read};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

pub(crate) const BIN: &str = env!("CARGO_BIN_EXE_kapable-comms");

pub(crate) fn database_url(dir: &tempfile::TempDir) -> String {
    format!("sqlite://{}/comms.db", dir.path().display())
}

/// A running `serve` process, its address and everything it has logged so far.
pub(crate) struct Running {
    pub child: std::process::Child,
    pub address: String,
    pub log: Arc<Mutex<String>>,
}

/// Starts `serve` on a free port with extra environment variables.
pub(crate) fn start_with(url: &str, env: &[(&str, &str)]) -> Running {
    let mut child = Command::new(BIN)
        .args(["serve", "--listen", "127.0.0.1:0", "--database-url", url])
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary starts");
    let stderr = child.stderr.take().unwrap();
    let log = Arc::new(Mutex::new(String::new()));
    let (lines, serving) = mpsc::channel();
    let collected = Arc::clone(&log);
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(at) = line.split("listen=").nth(1) {
                let _ = lines.send(at.split_whitespace().next().unwrap_or_default().to_owned());
            }
            let mut log = collected.lock().unwrap();
            log.push_str(&line);
            log.push('\n');
        }
    });
    let address =
        serving.recv_timeout(Duration::from_secs(60)).expect("the server reports its address");
    Running { child, address, log }
}

/// Starts `serve` on a free port; returns the child and the address it listens on.
fn start(url: &str) -> (std::process::Child, String) {
    let running = start_with(url, &[]);
    (running.child, running.address)
}

fn stop(mut child: std::process::Child) -> (i32, String) {
    let pid = child.id().to_string();
    let status = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    assert!(status.success());
    let status = child.wait().unwrap();
    let mut stdout = String::new();
    child.stdout.take().unwrap().read_to_string(&mut stdout).unwrap();
    (status.code().unwrap_or(-1), stdout)
}

#[test]
fn the_first_start_prints_its_secrets_once_and_sigterm_stops_it_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let url = database_url(&dir);

    let (child, address) = start(&url);
    let (code, first) = stop(child);
    assert_eq!(code, 0, "graceful shutdown exits 0");
    assert!(first.contains("kap_"), "{first}");
    let key = first.split_whitespace().find(|w| w.starts_with("ak_")).expect("an agent key");
    let add_line =
        format!("claude mcp add --transport http kapable-chat http://{address}/v1/mcp/{key}");
    assert!(first.contains(&add_line), "expected `{add_line}` in:\n{first}");
    assert!(first.contains("curl -H \"Authorization: Bearer kap_"), "{first}");

    let (child, _) = start(&url);
    let (code, second) = stop(child);
    assert_eq!(code, 0);
    assert!(
        !second.contains("kap_") && !second.contains("ak_"),
        "secrets are printed once: {second}"
    );
}

#[test]
fn admin_create_org_prints_json_and_refuses_a_duplicate_name() {
    let dir = tempfile::tempdir().unwrap();
    let url = database_url(&dir);
    let created = Command::new(BIN)
        .args(["admin", "--database-url", &url, "create-org", "acme"])
        .output()
        .unwrap();
    assert!(created.status.success(), "{}", String::from_utf8_lossy(&created.stderr));
    let printed: serde_json::Value =
        serde_json::from_slice(&created.stdout).expect("one JSON object");
    assert!(printed["app_token"].as_str().unwrap().starts_with("kap_"));
    assert!(printed["org_id"].is_string());

    let again = Command::new(BIN)
        .args(["admin", "--database-url", &url, "create-org", "acme"])
        .output()
        .unwrap();
    assert_eq!(again.status.code(), Some(1));
    assert!(again.stdout.is_empty());
    assert!(String::from_utf8_lossy(&again.stderr).contains("already exists"));
}

#[test]
fn migrate_creates_the_database_and_a_bad_url_names_the_setting() {
    let dir = tempfile::tempdir().unwrap();
    let url = database_url(&dir);
    let migrated = Command::new(BIN).args(["migrate", "--database-url", &url]).output().unwrap();
    assert!(migrated.status.success());
    assert!(dir.path().join("comms.db").exists());

    let bad = Command::new(BIN).args(["migrate", "--database-url", "mysql://x"]).output().unwrap();
    assert_eq!(bad.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("DATABASE_URL"));
}

#[test]
fn help_lists_every_setting_with_its_environment_variable() {
    let help = Command::new(BIN).args(["serve", "--help"]).output().unwrap();
    let text = String::from_utf8_lossy(&help.stdout);
    for (flag, env) in [
        ("--listen", "LISTEN"),
        ("--database-url", "DATABASE_URL"),
        ("--public-host", "PUBLIC_HOST"),
        ("--cors-origin", "CORS_ORIGIN"),
        ("--max-body-bytes", "MAX_BODY_BYTES"),
    ] {
        assert!(text.contains(flag) && text.contains(&format!("env: {env}")), "{flag}: {text}");
    }
}
