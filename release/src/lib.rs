//! Desktop releases, defined once for the operator's tools, the control plane and the app.
//!
//! - [`manifest`]: what a release is (`Manifest`), exactly the JSON that gets signed.
//! - [`signing`]: the operator's side — key pairs, key ids, signing a manifest into a
//!   [`SignedRelease`](api_types::releases::SignedRelease) envelope.
//! - [`trust`]: the app's side — the public keys compiled in (current and next, for rotation) and
//!   verification of an envelope against them: signature, key, expiry, then the offer rules
//!   (platform, channel, newer than installed, not below the highest version ever seen).
//! - [`rollout`]: which installs are offered a staged release.
//! - [`archive`]: the release zip (the files and a signed-by-hash list of them) and its safe
//!   extraction.
//!
//! No network, no clock and no global state: callers pass the time and the bytes, so the same
//! code serves tests, the server and the app.

pub mod archive;
pub mod manifest;
pub mod rollout;
pub mod signing;
pub mod trust;

pub use archive::{ArchiveError, ArchiveInput, ExtractLimits, FileEntry, FileList};
pub use manifest::{Manifest, ManifestError, Sha256Digest};
pub use signing::{KeyError, KeyId, sign};
pub use trust::{Installed, Verified};
pub use trust::{OfferError, TrustedKeys, VerifyError};
