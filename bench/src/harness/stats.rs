//! Latency statistics: HDR histograms in microseconds (or nanoseconds for the router's steps),
//! and nearest-rank percentiles of plain samples.

use std::time::Duration;

use hdrhistogram::Histogram;

/// Latencies in microseconds, 1 µs to 10 min, 3 significant digits.
pub fn histogram_us() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 600_000_000, 3).expect("valid histogram bounds")
}

pub fn record_us(h: &mut Histogram<u64>, latency: Duration) {
    h.saturating_record(u64::try_from(latency.as_micros()).unwrap_or(u64::MAX).max(1));
}

/// [`histogram_us`] of `latencies`.
pub fn histogram_of(latencies: &[Duration]) -> Histogram<u64> {
    let mut h = histogram_us();
    for latency in latencies {
        record_us(&mut h, *latency);
    }
    h
}

/// Step costs in nanoseconds, 1 ns to 10 s.
pub fn histogram_ns() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 10_000_000_000, 3).expect("valid histogram bounds")
}

pub fn record_ns(h: &mut Histogram<u64>, latency: Duration) {
    h.saturating_record(u64::try_from(latency.as_nanos()).unwrap_or(u64::MAX).max(1));
}

/// The `q` quantile of `sorted` by nearest rank (the smallest value with at least `q` of the
/// samples at or below it); `None` when there are none.
pub fn nearest_rank<T: Copy>(sorted: &[T], q: f64) -> Option<T> {
    if sorted.is_empty() {
        return None;
    }
    Some(sorted[((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len()) - 1])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_takes_the_smallest_value_covering_the_quantile() {
        let values: Vec<i64> = (1..=100).collect();
        assert_eq!(nearest_rank(&values, 0.5), Some(50));
        assert_eq!(nearest_rank(&values, 0.99), Some(99));
        assert_eq!(nearest_rank(&values, 0.0), Some(1));
        assert_eq!(nearest_rank::<i64>(&[], 0.5), None);
    }
}
