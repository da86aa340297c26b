//! The build stamp: a fixed slot in the program's data that may be filled after compiling, with
//! a version and one more release key to trust, so the same machine code can be made into a
//! staging build (signed by a staging key) or, in the end-to-end test, into "version N+1" without
//! recompiling anything. Release builds leave it empty: the version is the crate's and the keys
//! are `release/trusted-keys.pem`'s.
//!
//! Why this grants nothing new: filling the slot means writing the program file, and whoever can
//! write the program file can replace it outright. The updater itself only ever writes programs
//! whose zip matched a manifest signed by an already trusted key.
//!
//! Layout: [`MARKER`], one length byte `n`, then `n` bytes of UTF-8: an optional
//! `version=X.Y.Z` line and an optional PEM `PUBLIC KEY` block (what `ops release keygen` writes
//! as `release.pub`). The rest is zeros.

use std::sync::OnceLock;

use api_types::Version;
use release::TrustedKeys;

const MARKER: &[u8] = b"NEXACORE-BUILD-STAMP-v1:";
const SLOT_LEN: usize = 280;
/// At most 255: the length is one byte.
const PAYLOAD_MAX: usize = SLOT_LEN - MARKER.len() - 1;

const fn blank() -> [u8; SLOT_LEN] {
    let mut slot = [0u8; SLOT_LEN];
    let mut i = 0;
    while i < MARKER.len() {
        slot[i] = MARKER[i];
        i += 1;
    }
    slot
}

/// The slot itself. Read through `black_box` so the compiler cannot fold the empty initial value
/// into the code: the bytes in the program file are what counts.
static SLOT: [u8; SLOT_LEN] = blank();

/// What a stamp says.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BuildStamp {
    pub version: Option<Version>,
    /// A PEM `PUBLIC KEY` block.
    pub release_key_pem: Option<String>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum StampError {
    #[error("the program holds {0} stamp slots, not exactly one")]
    Slots(usize),
    #[error("the stamp is {0} bytes; the slot holds {PAYLOAD_MAX}")]
    TooLong(usize),
}

impl BuildStamp {
    /// This program's stamp (empty in release builds).
    pub fn current() -> &'static BuildStamp {
        static CURRENT: OnceLock<BuildStamp> = OnceLock::new();
        CURRENT.get_or_init(|| Self::parse(std::hint::black_box(&SLOT)))
    }

    fn parse(slot: &[u8]) -> Self {
        let rest = &slot[MARKER.len()..];
        let n = usize::from(rest[0]).min(rest.len() - 1);
        let text = String::from_utf8_lossy(&rest[1..1 + n]);
        let version = text.lines().find_map(|l| l.strip_prefix("version=")).and_then(|v| v.trim().parse().ok());
        let release_key_pem = text.find("-----BEGIN PUBLIC KEY-----").map(|start| text[start..].trim().to_owned());
        Self { version, release_key_pem }
    }

    fn payload(&self) -> String {
        let mut text = String::new();
        if let Some(version) = self.version {
            text.push_str(&format!("version={version}\n"));
        }
        if let Some(pem) = &self.release_key_pem {
            text.push_str(pem.trim());
            text.push('\n');
        }
        text
    }

    /// `program`'s bytes with this stamp in its slot (replacing any earlier stamp).
    pub fn write_into(&self, program: &[u8]) -> Result<Vec<u8>, StampError> {
        let payload = self.payload();
        if payload.len() > PAYLOAD_MAX {
            return Err(StampError::TooLong(payload.len()));
        }
        // The needle is this program's own slot, so the marker's bytes exist once in a program
        // file (a separate constant to search with could land in it as a second copy).
        let needle = &std::hint::black_box(&SLOT)[..MARKER.len()];
        let found: Vec<usize> = memchr::memmem::find_iter(program, needle).collect();
        let &[at] = &found[..] else { return Err(StampError::Slots(found.len())) };
        if program.len() < at + SLOT_LEN {
            return Err(StampError::Slots(0));
        }
        let mut stamped = program.to_vec();
        let slot = &mut stamped[at + MARKER.len()..at + SLOT_LEN];
        slot.fill(0);
        slot[0] = payload.len() as u8;
        slot[1..1 + payload.len()].copy_from_slice(payload.as_bytes());
        Ok(stamped)
    }
}

/// The version this program reports: the stamp's, or the crate's.
pub fn client_version() -> &'static str {
    static VERSION: OnceLock<String> = OnceLock::new();
    VERSION.get_or_init(|| match BuildStamp::current().version {
        Some(version) => version.to_string(),
        None => env!("CARGO_PKG_VERSION").to_owned(),
    })
}

/// The release keys this program trusts: the compiled-in ones and the stamp's.
pub fn trusted_keys() -> TrustedKeys {
    let stamped = BuildStamp::current().release_key_pem.as_deref().and_then(|pem| TrustedKeys::from_pem(pem).ok());
    match stamped {
        Some(extra) => TrustedKeys::compiled_in().and(extra),
        None => TrustedKeys::compiled_in(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pem() -> String {
        let key = release::signing::signing_key_from_secret([5; 32]);
        release::signing::public_key_pem(&key.verifying_key()).unwrap()
    }

    fn program_with_slot() -> Vec<u8> {
        let mut program = b"\x7fELF code code".to_vec();
        program.extend_from_slice(&blank());
        program.extend_from_slice(b"more code");
        program
    }

    fn slot_of(program: &[u8]) -> &[u8] {
        let at = program.windows(MARKER.len()).position(|w| w == MARKER).unwrap();
        &program[at..at + SLOT_LEN]
    }

    #[test]
    fn a_stamp_is_written_into_the_one_slot_and_read_back() {
        let program = program_with_slot();
        assert_eq!(BuildStamp::parse(slot_of(&program)), BuildStamp::default(), "blank: nothing stamped");
        let stamp =
            BuildStamp { version: Some("7.1.2".parse().unwrap()), release_key_pem: Some(pem().trim().to_owned()) };
        let stamped = stamp.write_into(&program).unwrap();
        assert_eq!(stamped.len(), program.len(), "only the slot's bytes change");
        assert_eq!(BuildStamp::parse(slot_of(&stamped)), stamp);
        let restamped = BuildStamp { version: Some("7.1.3".parse().unwrap()), release_key_pem: None };
        assert_eq!(BuildStamp::parse(slot_of(&restamped.write_into(&stamped).unwrap())), restamped);
        assert!(TrustedKeys::from_pem(stamp.release_key_pem.as_deref().unwrap()).unwrap().ids().count() == 1);
    }

    #[test]
    fn a_program_without_exactly_one_slot_or_a_stamp_too_long_is_refused() {
        assert_eq!(BuildStamp::default().write_into(b"no slot here"), Err(StampError::Slots(0)));
        let mut twice = program_with_slot();
        twice.extend_from_slice(&blank());
        assert_eq!(BuildStamp::default().write_into(&twice), Err(StampError::Slots(2)));
        let long = BuildStamp { version: None, release_key_pem: Some("x".repeat(400)) };
        assert!(matches!(long.write_into(&program_with_slot()), Err(StampError::TooLong(_))));
    }

    #[test]
    fn an_unstamped_build_reports_the_crate_version_and_the_compiled_in_keys() {
        // Test binaries are never stamped.
        assert_eq!(client_version(), env!("CARGO_PKG_VERSION"));
        assert_eq!(trusted_keys().ids().count(), TrustedKeys::compiled_in().ids().count());
    }
}
