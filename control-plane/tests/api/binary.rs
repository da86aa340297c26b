//! The `control-plane` binary's command line: `--help`, `--version`, and `--print-config`
//! resolving the environment, `*_FILE` variants and a TOML file (the environment wins),
//! with every secret redacted. Run as a real process with a cleared environment.

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
    for expected in ["--print-config", "--config <FILE>", "NEXACORE_CONFIG_FILE", "NAME_FILE"] {
        assert!(text(&help).contains(expected), "--help names {expected}: {}", text(&help));
    }
}

#[test]
fn print_config_resolves_environment_secret_files_and_the_toml_file_and_redacts_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("operator-token");
    std::fs::write(&token_file, "operator-token-from-a-file-0123456789abcdef\n").unwrap();
    let config_file = dir.path().join("control-plane.toml");
    std::fs::write(
        &config_file,
        "listen = \"127.0.0.1:9999\"\nrouter_url = \"https://file.example\"\nNEXACORE_TOKEN_TTL_SECS = 600\n",
    )
    .unwrap();
    let output = binary()
        .args(["--config", config_file.to_str().unwrap(), "--print-config"])
        .env("NEXACORE_ADMIN_DATABASE_URL", "postgres://admin:database-password-42@db.internal/postgres")
        .env("NEXACORE_MASTER_KEY", "master-key-value-that-must-not-print")
        .env("NEXACORE_OPERATOR_TOKEN_FILE", &token_file)
        .env("NEXACORE_ROUTER_URL", "https://environment.example")
        .output()
        .unwrap();
    let printed = text(&output);
    assert!(output.status.success(), "{printed}");
    assert!(printed.contains("listen: 127.0.0.1:9999"), "the file's listen address: {printed}");
    assert!(printed.contains("token_ttl: 600s"), "the file's prefixed name: {printed}");
    assert!(printed.contains("\"https://environment.example\""), "the environment wins over the file: {printed}");
    for secret in ["database-password-42", "master-key-value-that-must-not-print", "operator-token-from-a-file"] {
        assert!(!printed.contains(secret), "{secret} is printed: {printed}");
    }
    assert!(printed.contains("[REDACTED]"));
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
