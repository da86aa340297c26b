//! Where the refresh token waits between runs: the OS keyring (the kernel's keyutils on
//! Linux, Keychain on macOS, Credential Manager on Windows), never a plain file. Without a
//! usable keyring a sign-in lasts as long as the app runs, as before. Keyring trouble is
//! logged and never stops the app: the worst case is one more password prompt.

/// One entry per server and e-mail address (a token belongs to one sign-in on one server).
#[derive(Debug, Clone)]
pub enum CredentialStore {
    /// Entries of this service name in the OS keyring.
    Keyring { service: String },
    /// Nothing is kept between runs.
    None,
}

/// The service name the app's entries carry in the OS keyring.
pub const SERVICE: &str = "nexacore-desktop";

impl CredentialStore {
    /// The OS keyring under the app's own service name.
    pub fn os() -> Self {
        Self::Keyring { service: SERVICE.into() }
    }

    /// The entries to try, in order: the platform's own, then on Linux one in the session
    /// keyring alone. keyutils also links each key into the user's persistent keyring, which
    /// some sessions refuse (a container's, one joined by hand); the session keyring still
    /// lasts the login session.
    fn entries(&self, server: &str, email: &str) -> Vec<keyring::Entry> {
        let Self::Keyring { service } = self else { return Vec::new() };
        if email.trim().is_empty() {
            return Vec::new();
        }
        let user = format!("{} @ {}", email.trim().to_lowercase(), server.trim_end_matches('/'));
        let mut entries = Vec::new();
        match keyring::Entry::new(service, &user) {
            Ok(entry) => entries.push(entry),
            Err(error) => tracing::warn!(%error, "the keyring cannot be used"),
        }
        #[cfg(target_os = "linux")]
        if let Ok(mut credential) = keyring::keyutils::KeyutilsCredential::new_with_target(None, service, &user) {
            credential.persistent = None;
            entries.push(keyring::Entry::new_with_credential(Box::new(credential)));
        }
        entries
    }

    /// Keeps `token` for the next start.
    pub fn save(&self, server: &str, email: &str, token: &str) {
        for entry in self.entries(server, email) {
            match entry.set_password(token) {
                Ok(()) => return,
                // keyutils says "no entry" for a refused link: the next entry may do.
                Err(keyring::Error::NoEntry) => continue,
                Err(error) => {
                    tracing::warn!(%error, "could not keep the sign-in in the keyring");
                    return;
                }
            }
        }
    }

    /// The token kept by an earlier run, if any.
    pub fn load(&self, server: &str, email: &str) -> Option<String> {
        for entry in self.entries(server, email) {
            match entry.get_password() {
                Ok(token) => return Some(token),
                Err(keyring::Error::NoEntry) => continue,
                Err(error) => {
                    tracing::warn!(%error, "could not read the keyring");
                    return None;
                }
            }
        }
        None
    }

    /// Drops the kept token (signed out, or the server ended the sign-in).
    pub fn forget(&self, server: &str, email: &str) {
        for entry in self.entries(server, email) {
            match entry.delete_credential() {
                Ok(()) | Err(keyring::Error::NoEntry) => {}
                Err(error) => tracing::warn!(%error, "could not remove the sign-in from the keyring"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// keyutils may still find an invalidated key for a moment in the process that
    /// invalidated it: true once it is gone, within a few seconds.
    pub fn forgotten(store: &CredentialStore, server: &str, email: &str) -> bool {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while store.load(server, email).is_some() {
            if std::time::Instant::now() > deadline {
                return false;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        true
    }

    #[test]
    fn a_kept_token_is_read_back_per_server_and_address_and_forgotten() {
        let store = CredentialStore::Keyring { service: format!("nexacore-unit-{}", uuid::Uuid::new_v4().simple()) };
        store.save("http://a.example/", "Ada@Example.com", "token-1");
        assert_eq!(store.load("http://a.example", "ada@example.com").as_deref(), Some("token-1"));
        assert_eq!(store.load("http://b.example", "ada@example.com"), None, "another server");
        store.save("http://a.example", "ada@example.com", "token-2");
        assert_eq!(store.load("http://a.example", "ada@example.com").as_deref(), Some("token-2"));
        store.forget("http://a.example", "ada@example.com");
        assert!(forgotten(&store, "http://a.example", "ada@example.com"));
        assert_eq!(CredentialStore::None.load("http://a.example", "ada@example.com"), None);
    }
}
