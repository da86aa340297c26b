//! Readings of the machine from Linux's /proc: CPU time of a process, of the Postgres cluster
//! and of the whole machine, resident memory, the load average. Each benchmark turns them into
//! the view its report needs (cores busy, CPU per tenant, …).

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::oneshot;

/// `/proc/<pid>/stat` times are in clock ticks; Linux reports 100 per second on every
/// mainstream architecture (`getconf CLK_TCK`).
pub const CLOCK_TICKS_PER_S: f64 = 100.0;

/// The cores this process may run on.
pub fn cores() -> usize {
    std::thread::available_parallelism().map_or(0, usize::from)
}

/// The fields of /proc/<pid>/stat the benchmarks read, in clock ticks.
#[derive(Debug, Clone, Copy)]
pub struct ProcStat {
    pub ppid: u32,
    pub utime: u64,
    pub stime: u64,
    /// CPU time of children it has waited for.
    pub cutime: u64,
    pub cstime: u64,
}

pub fn proc_stat(pid: u32) -> Option<ProcStat> {
    parse_proc_stat(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

/// This process's [`ProcStat`].
pub fn own_stat() -> Option<ProcStat> {
    proc_stat(std::process::id())
}

fn parse_proc_stat(stat: &str) -> Option<ProcStat> {
    // The command name, in parentheses, may contain spaces: fields are counted after it.
    let rest: Vec<&str> = stat.get(stat.rfind(')')? + 1..)?.split_whitespace().collect();
    let field = |n: usize| rest.get(n).and_then(|v| v.parse::<u64>().ok());
    Some(ProcStat {
        ppid: u32::try_from(field(1)?).ok()?,
        utime: field(11)?,
        stime: field(12)?,
        cutime: field(13)?,
        cstime: field(14)?,
    })
}

/// User + system CPU seconds of a process.
pub fn process_cpu_s(pid: u32) -> Option<f64> {
    proc_stat(pid).map(|s| (s.utime + s.stime) as f64 / CLOCK_TICKS_PER_S)
}

/// The cluster's CPU ticks: the postmaster with the children it reaped, and its live children.
/// `None` when the postmaster cannot be read.
pub fn postgres_ticks(postmaster: u32) -> Option<u64> {
    let main = proc_stat(postmaster)?;
    let mut ticks = main.utime + main.stime + main.cutime + main.cstime;
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else { continue };
        if let Some(child) = proc_stat(pid)
            && child.ppid == postmaster
        {
            ticks += child.utime + child.stime;
        }
    }
    Some(ticks)
}

/// The postmaster's pid, from the first line of `postmaster.pid` in the data directory.
pub fn postmaster_pid(data_dir: &Path) -> Option<u32> {
    std::fs::read_to_string(data_dir.join("postmaster.pid")).ok()?.lines().next()?.trim().parse().ok()
}

/// Whether the server's shared memory sits on huge pages (`huge_pages = try`, Postgres's
/// default, uses them when the kernel has some reserved): any mapping of the postmaster's with
/// pages larger than 4 kB. `None` if its memory map cannot be read.
pub fn huge_pages_in_use(postmaster: u32) -> Option<bool> {
    let smaps = std::fs::read_to_string(format!("/proc/{postmaster}/smaps")).ok()?;
    Some(smaps.lines().filter_map(|line| line.strip_prefix("KernelPageSize:")).any(|size| size.trim() != "4 kB"))
}

/// Ticks over all cores, from the `cpu` line of /proc/stat: every process's, everyone's.
#[derive(Debug, Clone, Copy, Default)]
pub struct MachineTicks {
    pub busy: u64,
    pub total: u64,
    /// Time the hypervisor gave this machine's virtual CPUs to someone else (part of `busy`).
    pub steal: u64,
}

pub fn machine_ticks() -> Option<MachineTicks> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let fields: Vec<u64> =
        stat.lines().next()?.split_whitespace().skip(1).take(8).map(|v| v.parse().unwrap_or(0)).collect();
    // user nice system idle iowait irq softirq steal
    let [user, nice, system, idle, iowait, irq, softirq, steal] = fields[..] else { return None };
    let busy = user + nice + system + irq + softirq + steal;
    Some(MachineTicks { busy, total: busy + idle + iowait, steal })
}

/// The 1-, 5- and 15-minute load averages (/proc/loadavg), NaN where unreadable.
pub fn load_average() -> [f64; 3] {
    let text = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let mut values = text.split_whitespace().map(|v| v.parse().unwrap_or(f64::NAN));
    [(); 3].map(|()| values.next().unwrap_or(f64::NAN))
}

/// The resident set of a process in KiB (`VmRSS` of /proc/<pid>/status); `None` if it is gone.
pub fn rss_kib(pid: u32) -> Option<u64> {
    parse_vm_rss(&std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?)
}

/// This process's resident set in KiB.
pub fn own_rss_kib() -> Option<u64> {
    rss_kib(std::process::id())
}

fn parse_vm_rss(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Samples this process's resident memory every 10 ms until stopped, for its peak.
pub struct PeakRss {
    peak: Arc<AtomicU64>,
    stop: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
}

impl PeakRss {
    pub fn start() -> Self {
        let peak = Arc::new(AtomicU64::new(own_rss_kib().unwrap_or(0)));
        let (stop, mut stopped) = oneshot::channel();
        let task = tokio::spawn({
            let peak = peak.clone();
            async move {
                loop {
                    peak.fetch_max(own_rss_kib().unwrap_or(0), Ordering::Relaxed);
                    tokio::select! {
                        _ = tokio::time::sleep(Duration::from_millis(10)) => {}
                        _ = &mut stopped => return,
                    }
                }
            }
        });
        Self { peak, stop, task }
    }

    /// The peak in MiB.
    pub async fn stop(self) -> u64 {
        let _ = self.stop.send(());
        let _ = self.task.await;
        self.peak.load(Ordering::Relaxed).max(own_rss_kib().unwrap_or(0)) / 1024
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_stat_fields_are_counted_after_the_command_name() {
        let stat = "4242 (tokio rt) S 17 4242 4242 0 -1 4194560 100 0 0 0 250 75 30 12 20 0 9 0 1234";
        let s = parse_proc_stat(stat).expect("parses");
        assert_eq!((s.ppid, s.utime, s.stime, s.cutime, s.cstime), (17, 250, 75, 30, 12));
    }

    #[test]
    fn vm_rss_is_read_in_kib() {
        let status = "Name:\tops\nVmPeak:\t  2000 kB\nVmRSS:\t   12345 kB\nThreads:\t3\n";
        assert_eq!(parse_vm_rss(status), Some(12345));
        assert_eq!(parse_vm_rss("Name:\tops\n"), None);
    }
}
