//! E-mail survives `kill -9`: the real binary commits a signup (its welcome e-mail in the
//! outbox) while SMTP is down, is killed, and the next start delivers the message exactly once.

use std::time::Duration;

use control_plane::secrets::MasterKey;
use local_postgres::LocalCluster;
use sqlx::{Connection, PgConnection};

use crate::crash::{Stack, free_port};
use crate::helpers::{eventually, signup_body, unique};

async fn outbox(stack: &Stack) -> Vec<(String, i32)> {
    let mut catalog = PgConnection::connect(&stack.catalog_url()).await.unwrap();
    sqlx::query_as("SELECT status, attempts FROM mail_outbox WHERE kind = 'welcome'")
        .fetch_all(&mut catalog)
        .await
        .unwrap()
}

#[tokio::test]
async fn a_message_committed_before_a_kill_9_is_delivered_once_after_the_restart() {
    let cluster = tokio::task::spawn_blocking(LocalCluster::start_throwaway).await.unwrap().expect("a private cluster");
    let stack = Stack {
        admin_url: cluster.superuser_url(),
        master_key: MasterKey::generate_base64(),
        operator_token: format!("op-{}", uuid::Uuid::new_v4().simple()),
    };
    // Nobody listens on this port: every attempt fails.
    let down = format!("smtp://127.0.0.1:{}", free_port());
    let (mut first, base) = stack.start_with_env(None, 0, &[("NEXACORE_SMTP_URL", down)]).await;
    let slug = unique("mailkill-");
    let created =
        reqwest::Client::new().post(format!("{base}/tenants")).json(&signup_body(&slug)).send().await.unwrap();
    assert_eq!(created.status(), 201);
    let tried = eventually(Duration::from_secs(30), || async {
        outbox(&stack).await.first().is_some_and(|(status, attempts)| status == "pending" && *attempts >= 1)
    })
    .await;
    assert!(tried, "the welcome e-mail was tried and is still pending: {:?}", outbox(&stack).await);
    first.start_kill().unwrap();
    first.wait().await.unwrap();

    let dir = tempfile::tempdir().unwrap();
    let mail_dir = dir.path().display().to_string();
    let (mut second, _) = stack.start_with_env(None, 0, &[("NEXACORE_MAIL_DIR", mail_dir)]).await;
    let admin = format!("To: admin@{slug}.example.com");
    let delivered = || {
        std::fs::read_dir(dir.path())
            .unwrap()
            .flatten()
            .filter(|f| f.path().extension().is_some_and(|e| e == "eml"))
            .filter(|f| std::fs::read_to_string(f.path()).is_ok_and(|m| m.contains(&admin)))
            .count()
    };
    assert!(eventually(Duration::from_secs(30), || async { delivered() > 0 }).await, "delivered after the restart");
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(delivered(), 1, "exactly once");
    assert_eq!(outbox(&stack).await.first().map(|(s, _)| s.as_str()), Some("sent"));
    second.start_kill().unwrap();
    second.wait().await.unwrap();
}
