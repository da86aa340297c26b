//! Timing counters' unit.

/// A duration in whole microseconds, for the cumulative timing counters (saturating: a
/// counter never wraps on an absurd duration).
pub(crate) fn micros(elapsed: std::time::Duration) -> u64 {
    u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX)
}
