//! The `control-plane` binary's command line: `--help`, `--version`, `--print-config`
//! resolving the environment, `*_FILE` variants and a TOML file (the environment wins) into a
//! TOML file that `--config` takes back, secrets left out; `NEXACORE_ADMIN_DATABASE_PASSWORD`;
//! and `--probe`, the healthcheck. Run as a real process with a cleared environment.

use std::process::{Command, Output};

fn binary() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_control-plane"));
    command.env_clear();
    command
}

fn text(output: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr))
}

#[test]
fn help_and_version_describe_the_binary_and_its_configuration_forms() {
    let version = binary().arg("--version").output().unwrap();
    assert!(version.status.success());
    assert!(text(&version).contains(env!("CARGO_PKG_VERSION")), "{}", text(&version));
    let help = binary().arg("--help").output().unwrap();
    assert!(help.status.success());
    for expected in ["--print-config", "--config <FILE>", "NEXACORE_CONFIG_FILE", "NAME_FILE", "--probe <URL>"] {
        assert!(text(&help).contains(expected), "--help names {expected}: {}", text(&help));
    }
}

/// Runs `--print-config` with the three secrets (the operator token from a `*_FILE`) and `extra`.
fn print_config(dir: &std::path::Path, extra: &[&str], env: &[(&str, &str)]) -> (Output, String) {
    let token_file = dir.join("operator-token");
    std::fs::write(&token_file, "operator-token-from-a-file-0123456789abcdef\n").unwrap();
    let output = binary()
        .args(extra)
        .arg("--print-config")
        .env("NEXACORE_ADMIN_DATABASE_URL", "postgres://admin:database-password-42@db.internal/postgres")
        .env("NEXACORE_MASTER_KEY", "master-key-value-that-must-not-print")
        .env("NEXACORE_OPERATOR_TOKEN_FILE", &token_file)
        .envs(env.iter().copied())
        .output()
        .unwrap();
    let printed = text(&output);
    (output, printed)
}

#[test]
fn print_config_resolves_environment_secret_files_and_the_toml_file_as_toml_without_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let config_file = dir.path().join("control-plane.toml");
    std::fs::write(
        &config_file,
        "listen = \"127.0.0.1:9999\"\nrouter_url = \"https://file.example\"\nNEXACORE_TOKEN_TTL_SECS = 600\n",
    )
    .unwrap();
    let (output, printed) = print_config(
        dir.path(),
        &["--config", config_file.to_str().unwrap()],
        &[("NEXACORE_ROUTER_URL", "https://environment.example")],
    );
    assert!(output.status.success(), "{printed}");
    assert!(printed.contains("\nlisten = \"127.0.0.1:9999\"\n"), "the file's listen address: {printed}");
    assert!(printed.contains("\ntoken_ttl_secs = \"600\"\n"), "the file's prefixed name: {printed}");
    assert!(printed.contains("\nrouter_url = \"https://environment.example\"\n"), "the environment wins: {printed}");
    assert!(printed.contains("\n# signup: not set (built-in default)\n"), "{printed}");
    assert!(printed.contains("\n# master_key: secret, set\n"), "{printed}");
    assert!(printed.contains("# operator_token: secret, set from NEXACORE_OPERATOR_TOKEN_FILE="), "{printed}");
    assert!(printed.contains("# admin_database_url: secret, set"), "a URL with a password: {printed}");
    for secret in ["database-password-42", "master-key-value-that-must-not-print", "operator-token-from-a-file"] {
        assert!(!printed.contains(secret), "{secret} is printed: {printed}");
    }
}

#[test]
fn the_printed_configuration_fed_back_with_config_resolves_to_the_same_configuration() {
    let dir = tempfile::tempdir().unwrap();
    let (first, printed) = print_config(
        dir.path(),
        &[],
        &[
            ("NEXACORE_ROUTER_URL", "https://router.example"),
            ("NEXACORE_SIGNUP", "operator"),
            ("NEXACORE_SPARE_DATABASES", "0"),
            ("NEXACORE_MAX_CONNECTIONS", "100"),
            ("NEXACORE_MAIL_FROM", "NexaCore \"Ops\" <ops@example.com>"),
        ],
    );
    assert!(first.status.success(), "{printed}");
    let file = dir.path().join("printed.toml");
    std::fs::write(&file, &first.stdout).unwrap();
    // Only the secrets stay in the environment; every other setting now comes from the file.
    let (again, reprinted) = print_config(dir.path(), &["--config", file.to_str().unwrap()], &[]);
    assert!(again.status.success(), "{reprinted}");
    assert_eq!(String::from_utf8_lossy(&again.stdout), String::from_utf8_lossy(&first.stdout));
}

#[test]
fn the_admin_password_variable_goes_into_the_url_and_a_second_password_is_refused() {
    let output = binary()
        .arg("--print-config")
        .env("NEXACORE_ADMIN_DATABASE_URL", "postgres://postgres@db.internal:5432/postgres")
        .env("NEXACORE_ADMIN_DATABASE_PASSWORD", "pass word/with:odd@chars")
        .env("NEXACORE_MASTER_KEY", "k")
        .env("NEXACORE_OPERATOR_TOKEN", "t")
        .output()
        .unwrap();
    let printed = text(&output);
    assert!(output.status.success(), "{printed}");
    assert!(printed.contains("# admin_database_password: secret, set"), "{printed}");
    assert!(!printed.contains("odd@chars") && !printed.contains("odd%40chars"), "{printed}");
    let twice = binary()
        .arg("--print-config")
        .env("NEXACORE_ADMIN_DATABASE_URL", "postgres://postgres:in-the-url@db.internal/postgres")
        .env("NEXACORE_ADMIN_DATABASE_PASSWORD", "separately")
        .env("NEXACORE_MASTER_KEY", "k")
        .env("NEXACORE_OPERATOR_TOKEN", "t")
        .output()
        .unwrap();
    assert!(!twice.status.success());
    let error = text(&twice);
    assert!(error.contains("NEXACORE_ADMIN_DATABASE_URL is invalid") && error.contains("one place"), "{error}");
    assert!(!error.contains("in-the-url") && !error.contains("separately"), "{error}");
}

#[tokio::test]
async fn probe_exits_0_for_a_ready_control_plane_and_1_when_nothing_answers() {
    let app = crate::helpers::TestApp::spawn().await;
    let ready = app.url("/ready");
    let probe = |url: String| tokio::task::spawn_blocking(move || binary().args(["--probe", &url]).output().unwrap());
    let healthy = probe(ready.clone()).await.unwrap();
    assert!(healthy.status.success(), "{}", text(&healthy));
    let missing = probe(app.url("/no-such-route")).await.unwrap();
    assert_eq!(missing.status.code(), Some(1), "a 404 is not healthy: {}", text(&missing));
    assert!(text(&missing).contains("404"), "{}", text(&missing));
    app.stop().await;
    let stopped = probe(ready.clone()).await.unwrap();
    assert_eq!(stopped.status.code(), Some(1));
    assert!(text(&stopped).contains(&ready), "the error names the URL: {}", text(&stopped));
}

#[test]
fn a_missing_secret_file_or_required_variable_is_named_in_the_error() {
    let missing_file = binary()
        .arg("--print-config")
        .env("NEXACORE_ADMIN_DATABASE_URL", "postgres://admin@db/postgres")
        .env("NEXACORE_MASTER_KEY", "k")
        .env("NEXACORE_OPERATOR_TOKEN_FILE", "/nonexistent/operator-token")
        .output()
        .unwrap();
    assert!(!missing_file.status.success());
    assert!(
        text(&missing_file).contains("NEXACORE_OPERATOR_TOKEN_FILE (/nonexistent/operator-token)"),
        "{}",
        text(&missing_file)
    );
    let missing_variable = binary().arg("--print-config").output().unwrap();
    assert!(!missing_variable.status.success());
    assert!(text(&missing_variable).contains("NEXACORE_ADMIN_DATABASE_URL is required"), "{}", text(&missing_variable));
}
