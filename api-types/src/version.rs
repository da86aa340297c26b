//! Client and server versions: `MAJOR.MINOR.PATCH`, compared numerically.

use std::fmt;
use std::str::FromStr;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Version {
    pub major: u64,
    pub minor: u64,
    pub patch: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotAVersion;

impl fmt::Display for NotAVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("must be a version like 1.4.2")
    }
}

impl std::error::Error for NotAVersion {}

impl FromStr for Version {
    type Err = NotAVersion;

    fn from_str(raw: &str) -> Result<Self, NotAVersion> {
        let mut parts = raw.trim().split('.').map(|p| p.parse::<u64>().map_err(|_| NotAVersion));
        let mut next = || parts.next().unwrap_or(Err(NotAVersion));
        let version = Version { major: next()?, minor: next()?, patch: next()? };
        match parts.next() {
            None => Ok(version),
            Some(_) => Err(NotAVersion),
        }
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)
    }
}

/// `Some(true)` when `ours` is below `minimum`; `None` when either is not a version.
pub fn is_below(ours: &str, minimum: &str) -> Option<bool> {
    Some(ours.parse::<Version>().ok()? < minimum.parse::<Version>().ok()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_parse_strictly_and_compare_numerically() {
        assert_eq!("1.4.2".parse(), Ok(Version { major: 1, minor: 4, patch: 2 }));
        assert_eq!(" 0.10.0 ".parse::<Version>().map(|v| v.to_string()), Ok("0.10.0".to_owned()));
        for bad in ["", "1", "1.2", "1.2.3.4", "1.x.3", "-1.2.3", "1..3"] {
            assert_eq!(bad.parse::<Version>(), Err(NotAVersion), "{bad:?}");
        }
        assert_eq!(is_below("0.9.9", "0.10.0"), Some(true));
        assert_eq!(is_below("1.0.0", "1.0.0"), Some(false));
        assert_eq!(is_below("x", "1.0.0"), None);
    }
}
