//! Staged rollout: an install is offered a release when its bucket, `hash(install_id) mod 100`,
//! is below the release's `rollout_percent`. The hash is SHA-256 (stable across platforms and
//! builds, unlike `std`'s hasher), so an install keeps its bucket and raising the percentage only
//! ever adds installs. A manual "check for updates" and a mandatory release bypass the rule; the
//! server applies it, and the app cannot lie its way in beyond choosing another install id.

use sha2::Digest as _;

/// The install's bucket, 0–99.
pub fn bucket(install_id: &str) -> u8 {
    let digest = sha2::Sha256::digest(install_id.as_bytes());
    let head = u64::from_be_bytes(digest[..8].try_into().expect("SHA-256 has 32 bytes"));
    (head % 100) as u8
}

pub fn is_included(install_id: &str, rollout_percent: u8) -> bool {
    bucket(install_id) < rollout_percent
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ten_percent_offers_about_a_tenth_of_a_thousand_installs() {
        let ids: Vec<String> = (0..1000).map(|n| format!("install-{n}")).collect();
        let count = |p| ids.iter().filter(|id| is_included(id, p)).count();
        let tenth = count(10);
        assert!((70..=130).contains(&tenth), "10% offered to {tenth} of 1000");
        assert_eq!(count(0), 0);
        assert_eq!(count(100), 1000);
        // Raising the percentage only adds installs.
        assert!(ids.iter().filter(|id| is_included(id, 10)).all(|id| is_included(id, 50)));
    }

    #[test]
    fn a_bucket_is_stable() {
        assert_eq!(bucket("install-1"), bucket("install-1"));
        assert!(bucket("anything") < 100);
    }
}
