//! What provisioning records for `/metrics`: signups by outcome, and the time of each step
//! (`reserve`, `build_database` or `seed` of an adopted spare, `activate`), so an operator sees
//! which one a slow signup spent its time in.

use std::time::Instant;

use http_api::MetricsRegistry;
use metrics::{Counter, Histogram};

use super::{ProvisionError, Provisioned};

pub struct ProvisionMetrics {
    created: Counter,
    replayed: Counter,
    refused: Counter,
    reserve: Histogram,
    build_database: Histogram,
    seed_spare: Histogram,
    activate: Histogram,
}

/// Records nowhere.
impl Default for ProvisionMetrics {
    fn default() -> Self {
        Self {
            created: Counter::noop(),
            replayed: Counter::noop(),
            refused: Counter::noop(),
            reserve: Histogram::noop(),
            build_database: Histogram::noop(),
            seed_spare: Histogram::noop(),
            activate: Histogram::noop(),
        }
    }
}

pub(super) enum Step {
    Reserve,
    BuildDatabase,
    SeedSpare,
    Activate,
}

const SIGNUPS: &str = "nexacore_signups_total";
const STEP_SECONDS: &str = "nexacore_provision_step_duration_seconds";

impl ProvisionMetrics {
    pub fn new(registry: &MetricsRegistry) -> Self {
        registry.describe(
            SIGNUPS,
            "Signups (POST /tenants) by outcome: created, replayed (same Idempotency-Key), refused.",
        );
        registry.describe(STEP_SECONDS, "Time of each provisioning step of a created tenant.");
        let step = |name| registry.histogram(STEP_SECONDS, &[("step", name)]);
        Self {
            created: registry.counter(SIGNUPS, &[("outcome", "created")]),
            replayed: registry.counter(SIGNUPS, &[("outcome", "replayed")]),
            refused: registry.counter(SIGNUPS, &[("outcome", "refused")]),
            reserve: step("reserve"),
            build_database: step("build_database"),
            seed_spare: step("seed_spare"),
            activate: step("activate"),
        }
    }

    pub(super) fn step_took(&self, step: Step, since: Instant) {
        let histogram = match step {
            Step::Reserve => &self.reserve,
            Step::BuildDatabase => &self.build_database,
            Step::SeedSpare => &self.seed_spare,
            Step::Activate => &self.activate,
        };
        histogram.record(since.elapsed());
    }

    pub(super) fn signup(&self, result: &Result<Provisioned, ProvisionError>) {
        match result {
            Ok(done) if done.replayed => self.replayed.increment(1),
            Ok(_) => self.created.increment(1),
            Err(_) => self.refused.increment(1),
        }
    }
}
