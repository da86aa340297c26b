//! Child processes for tests about what happens when a cluster's owner dies: the test binary
//! re-runs itself, filtered to the one function below, with a role in the environment.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use local_postgres::{LocalCluster, PgServer, shared_test_server};

const ROLE_ENV: &str = "LOCAL_POSTGRES_TEST_CHILD_ROLE";
const DIR_ENV: &str = "LOCAL_POSTGRES_TEST_CHILD_DIR";
const ENTRY_POINT: &str = "child::child_process_entry_point_does_nothing_in_a_normal_run";
const ANNOUNCEMENT: &str = "LOCAL_POSTGRES_TEST_CLUSTER ";

/// What the child does before it waits to be killed (or exits).
#[derive(Clone, Copy)]
pub enum Role {
    /// Starts a throwaway cluster and waits.
    ThrowawayThenWait,
    /// Starts the shared test server (held in a static) and exits without dropping it.
    SharedThenExit,
    /// Starts a persistent cluster in the given directory and waits.
    PersistentThenWait,
}

impl Role {
    fn name(self) -> &'static str {
        match self {
            Role::ThrowawayThenWait => "throwaway-then-wait",
            Role::SharedThenExit => "shared-then-exit",
            Role::PersistentThenWait => "persistent-then-wait",
        }
    }
}

/// Not a check of its own: when another test re-runs this binary with a role set, this is the
/// child process that test needs. In a normal run it returns at once.
#[test]
fn child_process_entry_point_does_nothing_in_a_normal_run() {
    let Ok(role) = std::env::var(ROLE_ENV) else {
        return;
    };
    match role.as_str() {
        "throwaway-then-wait" => {
            let cluster = LocalCluster::start_throwaway().unwrap();
            announce(cluster.port(), cluster.data_dir());
            wait_to_be_killed(cluster);
        }
        "shared-then-exit" => {
            let PgServer::Local(cluster) = shared_test_server() else {
                panic!("the parent removes DATABASE_URL, so the shared server is local");
            };
            announce(cluster.port(), cluster.data_dir());
            std::process::exit(0);
        }
        "persistent-then-wait" => {
            let dir = PathBuf::from(std::env::var_os(DIR_ENV).unwrap());
            let cluster = LocalCluster::start_persistent(&dir, None).unwrap();
            announce(cluster.port(), cluster.data_dir());
            wait_to_be_killed(cluster);
        }
        other => panic!("unknown child role {other:?}"),
    }
}

fn announce(port: u16, data_dir: &Path) {
    // The path goes last: it may contain spaces.
    let mut stdout = std::io::stdout();
    writeln!(stdout, "{ANNOUNCEMENT}{port} {}", data_dir.display()).unwrap();
    // stdout is a pipe here, which std may buffer; the parent is waiting for this line.
    stdout.flush().unwrap();
}

fn wait_to_be_killed(_cluster: LocalCluster) -> ! {
    loop {
        std::thread::sleep(Duration::from_secs(3600));
    }
}

/// A running child process holding a cluster.
pub struct ChildWithCluster {
    pub process: Child,
    pub port: u16,
    pub data_dir: PathBuf,
}

impl Drop for ChildWithCluster {
    /// A failed test must not leave a child behind that holds its cluster forever.
    fn drop(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

/// Starts a child in `role` (in its own process group, so the tests can signal that group
/// like a terminal would) and waits until it announces its cluster.
pub fn spawn(role: Role, dir: Option<&Path>) -> ChildWithCluster {
    let mut command = Command::new(std::env::current_exe().unwrap());
    command
        .args([ENTRY_POINT, "--exact", "--nocapture", "--test-threads=1"])
        .env(ROLE_ENV, role.name())
        .env_remove("DATABASE_URL")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .process_group(0);
    if let Some(dir) = dir {
        command.env(DIR_ENV, dir);
    }
    let mut process = command.spawn().unwrap();
    let stdout = BufReader::new(process.stdout.take().unwrap());
    for line in stdout.lines() {
        // Anywhere in the line: libtest has already printed "test <name> ... " without a newline.
        if let Some((_, rest)) = line.unwrap().split_once(ANNOUNCEMENT) {
            let (port, data_dir) = rest.split_once(' ').unwrap();
            return ChildWithCluster { process, port: port.parse().unwrap(), data_dir: PathBuf::from(data_dir) };
        }
    }
    let status = process.wait().unwrap();
    panic!("the child process ended ({status}) without announcing a cluster");
}
