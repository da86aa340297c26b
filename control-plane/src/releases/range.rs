//! `Range` / `If-Range` for release artifacts, as a pure decision: the download is resumable,
//! and a client resuming a stale partial file (the `If-Range` validator no longer matches) gets
//! the whole new file instead of a splice of two.

/// What to send for an artifact of `len` bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RangePlan {
    /// `200` with the whole file.
    Full,
    /// `206` with bytes `start..end` (end exclusive).
    Partial { start: u64, end: u64 },
    /// `416` with `Content-Range: bytes */len`.
    Unsatisfiable,
}

/// `range`: the `Range` header; `if_range`: the `If-Range` header; `etag`: the artifact's strong
/// ETag (quoted). A range the server does not understand (other units, several ranges) is
/// ignored and the whole file sent, as RFC 9110 allows.
pub fn plan(range: Option<&str>, if_range: Option<&str>, etag: &str, len: u64) -> RangePlan {
    let Some(range) = range else { return RangePlan::Full };
    if if_range.is_some_and(|validator| validator.trim() != etag) {
        return RangePlan::Full;
    }
    let Some(spec) = range.trim().strip_prefix("bytes=") else { return RangePlan::Full };
    if spec.contains(',') {
        return RangePlan::Full;
    }
    let Some((first, last)) = spec.split_once('-') else { return RangePlan::Full };
    let (first, last) = (first.trim(), last.trim());
    let parsed = |s: &str| s.parse::<u64>().ok();
    match (first.is_empty(), last.is_empty()) {
        // bytes=-N: the last N bytes.
        (true, false) => match parsed(last) {
            Some(0) => RangePlan::Unsatisfiable,
            Some(n) if len > 0 => RangePlan::Partial { start: len.saturating_sub(n), end: len },
            Some(_) => RangePlan::Unsatisfiable,
            None => RangePlan::Full,
        },
        // bytes=A- and bytes=A-B.
        (false, _) => {
            let Some(start) = parsed(first) else { return RangePlan::Full };
            let end = if last.is_empty() {
                len
            } else {
                match parsed(last) {
                    Some(b) if b >= start => b.saturating_add(1).min(len),
                    _ => return RangePlan::Full,
                }
            };
            if start >= len { RangePlan::Unsatisfiable } else { RangePlan::Partial { start, end } }
        }
        (true, true) => RangePlan::Full,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_become_the_right_answer() {
        let etag = "\"abc\"";
        let check = |range: Option<&str>, if_range: Option<&str>, expected: RangePlan| {
            assert_eq!(plan(range, if_range, etag, 100), expected, "{range:?} {if_range:?}");
        };
        check(None, None, RangePlan::Full);
        check(Some("bytes=0-"), None, RangePlan::Partial { start: 0, end: 100 });
        check(Some("bytes=40-"), None, RangePlan::Partial { start: 40, end: 100 });
        check(Some("bytes=40-49"), None, RangePlan::Partial { start: 40, end: 50 });
        check(Some("bytes=90-500"), None, RangePlan::Partial { start: 90, end: 100 });
        check(Some("bytes=-10"), None, RangePlan::Partial { start: 90, end: 100 });
        check(Some("bytes=-500"), None, RangePlan::Partial { start: 0, end: 100 });
        check(Some("bytes=100-"), None, RangePlan::Unsatisfiable);
        check(Some("bytes=-0"), None, RangePlan::Unsatisfiable);
        check(Some("bytes=40-"), Some(etag), RangePlan::Partial { start: 40, end: 100 });
        check(Some("bytes=40-"), Some("\"other\""), RangePlan::Full);
        check(Some("bytes=0-1,5-6"), None, RangePlan::Full);
        check(Some("items=0-1"), None, RangePlan::Full);
        check(Some("bytes=9-3"), None, RangePlan::Full);
        check(Some("bytes=x-"), None, RangePlan::Full);
    }
}
