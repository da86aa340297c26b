//! Where the machine's CPU went while a run was measured: this process (the services under
//! test and the load generator), Postgres, anything else, and the hypervisor's share.

use crate::harness::machine::{MachineTicks, machine_ticks, own_stat, postgres_ticks};

use super::results::CpuShare;

/// CPU time in clock ticks (/proc): the machine's busy and total time over all cores, this
/// process's, and the Postgres cluster's (the postmaster, its live children and those it
/// reaped). The rest of the busy time is other work on the machine.
#[derive(Clone, Copy, Default)]
pub struct CpuTicks {
    busy: u64,
    total: u64,
    /// Time the hypervisor gave this machine's virtual CPUs to someone else (part of `busy`).
    steal: u64,
    own: u64,
    postgres: u64,
}

impl CpuTicks {
    pub fn now(postmaster: Option<u32>) -> Self {
        let MachineTicks { busy, total, steal } = machine_ticks().unwrap_or_default();
        let own = own_stat().map_or(0, |s| s.utime + s.stime);
        let postgres = postmaster.and_then(postgres_ticks).unwrap_or(0);
        Self { busy, total, steal, own, postgres }
    }

    pub fn minus(self, before: Self) -> Self {
        Self {
            busy: self.busy.saturating_sub(before.busy),
            total: self.total.saturating_sub(before.total),
            steal: self.steal.saturating_sub(before.steal),
            own: self.own.saturating_sub(before.own),
            postgres: self.postgres.saturating_sub(before.postgres),
        }
    }

    pub fn plus(self, other: Self) -> Self {
        Self {
            busy: self.busy + other.busy,
            total: self.total + other.total,
            steal: self.steal + other.steal,
            own: self.own + other.own,
            postgres: self.postgres + other.postgres,
        }
    }

    /// In cores: ticks over the interval's ticks per core.
    pub fn share(self) -> CpuShare {
        let cores = std::thread::available_parallelism().map_or(1, usize::from) as f64;
        let per_core = self.total as f64 / cores;
        let as_cores = |ticks: u64| if per_core > 0.0 { ticks as f64 / per_core } else { f64::NAN };
        CpuShare {
            ops_cores: as_cores(self.own),
            postgres_cores: as_cores(self.postgres),
            other_cores: as_cores(self.busy.saturating_sub(self.own + self.postgres + self.steal)),
            stolen_cores: as_cores(self.steal),
            idle_cores: as_cores(self.total.saturating_sub(self.busy)),
        }
    }
}
