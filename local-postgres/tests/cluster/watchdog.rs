//! The watchdog: a throwaway cluster disappears even when its owner never drops it.

use std::time::Duration;

use crate::child::{self, Role};
use crate::support::{accepts_connections, eventually, select_one};

const CLEANUP_TIMEOUT: Duration = Duration::from_secs(10);

#[tokio::test]
async fn watchdog_cleans_up_after_sigkill() {
    let mut owner = child::spawn(Role::ThrowawayThenWait, None);
    let url = format!("postgres://postgres@127.0.0.1:{}/postgres", owner.port);
    assert_eq!(select_one(&url).await, 1);
    assert!(owner.data_dir.is_dir());

    owner.process.kill().unwrap(); // SIGKILL: no destructor, no handler runs
    owner.process.wait().unwrap();

    eventually(CLEANUP_TIMEOUT, "the server stops listening", || !accepts_connections(owner.port));
    eventually(CLEANUP_TIMEOUT, "the cluster directory is removed", || !owner.data_dir.exists());
}

#[test]
fn watchdog_cleans_up_the_shared_test_server_when_the_test_binary_exits() {
    // The shared server lives in a static, which is never dropped.
    let mut owner = child::spawn(Role::SharedThenExit, None);
    let status = owner.process.wait().unwrap();
    assert!(status.success(), "{status}");

    eventually(CLEANUP_TIMEOUT, "the server stops listening", || !accepts_connections(owner.port));
    eventually(CLEANUP_TIMEOUT, "the cluster directory is removed", || !owner.data_dir.exists());
}
