//! Parsed domain identifiers: a value of one of these types has already been validated, so
//! functions take them instead of `&str` ("parse, don't validate").

use std::fmt;

pub use tenancy::{DbName, RoleName, TenantId, TenantStatus};

/// Why a piece of input was refused; `field` names the request field it came from.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self { field: field.into(), message: message.into() }
    }
}

/// Words a company may not take as its slug: they name parts of the platform, or would read
/// as official in a URL or an e-mail.
const RESERVED_SLUGS: &[&str] = &[
    "admin",
    "administrator",
    "api",
    "app",
    "apps",
    "assets",
    "auth",
    "billing",
    "blog",
    "cdn",
    "control",
    "control-plane",
    "dashboard",
    "dev",
    "docs",
    "help",
    "internal",
    "login",
    "logout",
    "mail",
    "nexacore",
    "new",
    "operator",
    "ops",
    "postgres",
    "public",
    "root",
    "router",
    "security",
    "signup",
    "static",
    "status",
    "support",
    "system",
    "template",
    "tenant",
    "tenants",
    "test",
    "www",
];

/// A company's URL-safe handle: 3–40 characters of `a-z`, `0-9` and single hyphens, starting
/// with a letter, not ending with a hyphen, not a reserved word.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(transparent)]
pub struct Slug(String);

impl Slug {
    pub const MIN_LEN: usize = 3;
    pub const MAX_LEN: usize = 40;

    pub fn parse(raw: &str) -> Result<Self, String> {
        let s = raw.trim();
        if s.len() < Self::MIN_LEN || s.len() > Self::MAX_LEN {
            return Err(format!("must be {}–{} characters long", Self::MIN_LEN, Self::MAX_LEN));
        }
        if !s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-') {
            return Err("may contain only lowercase letters a-z, digits and hyphens".into());
        }
        if !s.as_bytes()[0].is_ascii_lowercase() {
            return Err("must start with a letter".into());
        }
        if s.ends_with('-') || s.contains("--") {
            return Err("may not end with a hyphen or contain two hyphens in a row".into());
        }
        if RESERVED_SLUGS.contains(&s) {
            return Err(format!("\"{s}\" is reserved"));
        }
        Ok(Self(s.to_owned()))
    }

    /// Suggests a slug for a company name ("Müller & Söhne GmbH" → "muller-sohne-gmbh"), or
    /// `None` when nothing usable remains.
    pub fn suggest(company_name: &str) -> Option<Self> {
        let mut out = String::new();
        for c in company_name.chars().flat_map(fold_to_ascii) {
            if c.is_ascii_alphanumeric() {
                out.push(c.to_ascii_lowercase());
            } else if !out.is_empty() && !out.ends_with('-') {
                out.push('-');
            }
            if out.len() >= Self::MAX_LEN {
                break;
            }
        }
        let trimmed = out.trim_matches('-');
        let trimmed = trimmed.trim_start_matches(|c: char| c.is_ascii_digit() || c == '-');
        let mut candidate = trimmed.to_owned();
        if candidate.len() < Self::MIN_LEN && !candidate.is_empty() {
            candidate.push_str("-co");
        }
        Self::parse(&candidate).ok().or_else(|| Self::parse(&format!("{candidate}-co")).ok())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Slug {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Folds the common Latin letters with diacritics to ASCII for slug suggestions.
fn fold_to_ascii(c: char) -> impl Iterator<Item = char> {
    let folded: &str = match c {
        'à' | 'á' | 'â' | 'ã' | 'ä' | 'å' | 'À' | 'Á' | 'Â' | 'Ã' | 'Ä' | 'Å' => "a",
        'æ' | 'Æ' => "ae",
        'ç' | 'Ç' => "c",
        'è' | 'é' | 'ê' | 'ë' | 'È' | 'É' | 'Ê' | 'Ë' => "e",
        'ì' | 'í' | 'î' | 'ï' | 'Ì' | 'Í' | 'Î' | 'Ï' => "i",
        'ñ' | 'Ñ' => "n",
        'ò' | 'ó' | 'ô' | 'õ' | 'ö' | 'ø' | 'Ò' | 'Ó' | 'Ô' | 'Õ' | 'Ö' | 'Ø' => "o",
        'ù' | 'ú' | 'û' | 'ü' | 'Ù' | 'Ú' | 'Û' | 'Ü' => "u",
        'ý' | 'ÿ' | 'Ý' => "y",
        'ß' => "ss",
        '&' => "-",
        _ => "",
    };
    let keep = if folded.is_empty() { Some(c) } else { None };
    folded.chars().chain(keep)
}

/// A syntactically valid e-mail address, stored lowercase.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(transparent)]
pub struct Email(String);

impl Email {
    pub fn parse(raw: &str) -> Result<Self, String> {
        let s = raw.trim().to_lowercase();
        if s.len() > 254 {
            return Err("must be at most 254 characters".into());
        }
        let parsed: email_address::EmailAddress = s.parse().map_err(|_| "is not a valid e-mail address".to_string())?;
        // The grammar allows `user@localhost`; a company admin needs a reachable domain.
        if !parsed.domain().contains('.') {
            return Err("must have a domain with a dot, e.g. name@example.com".into());
        }
        Ok(Self(s))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A free-text field as users type it (names): trimmed, `min`–`max` characters, no control
/// characters. The error says why, to be prefixed with the field's name.
pub fn clean_text(value: &str, min: usize, max: usize) -> Result<String, String> {
    let v = value.trim();
    let len = v.chars().count();
    if len < min {
        Err(if min == 1 { "is required".to_string() } else { format!("must be at least {min} characters") })
    } else if len > max {
        Err(format!("must be at most {max} characters"))
    } else if v.chars().any(char::is_control) {
        Err("must not contain control characters".into())
    } else {
        Ok(v.to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check_slug(raw: &str, ok: bool) {
        assert_eq!(Slug::parse(raw).is_ok(), ok, "slug {raw:?}");
    }

    #[test]
    fn slug_shapes_are_checked() {
        check_slug("acme", true);
        check_slug("acme-2", true);
        check_slug("ab", false);
        check_slug("Acme", false);
        check_slug("2acme", false);
        check_slug("acme-", false);
        check_slug("ac--me", false);
        check_slug("ac_me", false);
        check_slug("admin", false);
        check_slug(&"a".repeat(41), false);
    }

    #[test]
    fn slug_suggestions_are_valid_slugs() {
        assert_eq!(Slug::suggest("Müller & Söhne GmbH").unwrap().as_str(), "muller-sohne-gmbh");
        assert_eq!(Slug::suggest("  ACME  Corp. ").unwrap().as_str(), "acme-corp");
        assert_eq!(Slug::suggest("Admin").unwrap().as_str(), "admin-co");
        assert!(Slug::suggest("!!!").is_none());
    }

    #[test]
    fn emails_are_normalised_and_checked() {
        assert_eq!(Email::parse(" Ann@Example.COM ").unwrap().as_str(), "ann@example.com");
        assert!(Email::parse("ann").is_err());
        assert!(Email::parse("ann@localhost").is_err());
    }
}
