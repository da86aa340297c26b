//! Validation of a signup request into a [`ValidSignup`]: every field checked, every problem
//! reported with the name of its field.

use secrecy::{ExposeSecret, SecretString};
use tenant_schema::seed::{self, ChartTemplate};

use crate::domain::{Email, FieldError, Slug};
use crate::identity::password;

/// A signup request as it arrives (after JSON parsing).
#[derive(Debug, Clone, Default)]
pub struct SignupRequest {
    pub company_name: String,
    pub slug: Option<String>,
    pub admin_email: String,
    pub admin_password: SecretString,
    pub admin_full_name: String,
    pub timezone: String,
    pub currency: String,
    pub chart_template: Option<String>,
    pub departments: Option<Vec<String>>,
}

/// A signup request whose every field is valid.
#[derive(Debug)]
pub struct ValidSignup {
    pub company_name: String,
    pub slug: Slug,
    /// True when the slug was suggested from the name rather than chosen by the caller.
    pub slug_suggested: bool,
    pub admin_email: Email,
    pub admin_password: SecretString,
    pub admin_full_name: String,
    pub timezone: String,
    pub currency: String,
    pub chart_template: &'static ChartTemplate,
    pub departments: Vec<String>,
}

impl ValidSignup {
    /// The request in a canonical byte form, for idempotency fingerprints. It includes the
    /// password: a replay must prove knowledge of it to receive the admin's token.
    pub fn canonical_bytes(&self) -> Vec<u8> {
        let fields = [
            self.company_name.as_str(),
            if self.slug_suggested { "" } else { self.slug.as_str() },
            self.admin_email.as_str(),
            self.admin_password.expose_secret(),
            self.admin_full_name.as_str(),
            self.timezone.as_str(),
            self.currency.as_str(),
            self.chart_template.code,
            &self.departments.join("\u{1f}"),
        ];
        fields.join("\u{0}").into_bytes()
    }
}

pub const NAME_MAX: usize = 100;
pub const DEPARTMENTS_MAX: usize = 50;

fn text(field: &str, value: &str, min: usize, max: usize, errors: &mut Vec<FieldError>) -> String {
    if let Err(message) = crate::domain::clean_text(value, min, max) {
        errors.push(FieldError::new(field, message));
    }
    value.trim().to_owned()
}

/// Checks a currency code against ISO 4217.
pub fn is_known_currency(code: &str) -> bool {
    iso_currency::Currency::from_code(code).is_some()
}

/// ISO 4217 codes that are not money a company keeps its books in: the testing and "no
/// currency" codes (XTS, XXX), precious metals, IMF and other supranational units of account,
/// and the fund / index codes that sit next to a real currency (BOV beside BOB, CLF beside
/// CLP, USN beside USD…). The signup wizard does not offer them; validation still accepts any
/// ISO code, so existing requests keep working.
pub const NOT_OFFERED_CURRENCIES: &[&str] = &[
    "XTS", "XXX", "XAU", "XAG", "XPD", "XPT", "XDR", "XBA", "XBB", "XBC", "XBD", "XSU", "XUA", "BOV", "CHE", "CHW",
    "CLF", "COU", "MXV", "USN", "UYI", "UYW",
];

/// Whether the signup wizard offers `code`: a known currency that is not a test or fund code.
pub fn is_offered_currency(code: &str) -> bool {
    is_known_currency(code) && !NOT_OFFERED_CURRENCIES.contains(&code)
}

/// Checks a time zone against the IANA database.
pub fn is_known_timezone(tz: &str) -> bool {
    tz.parse::<chrono_tz::Tz>().is_ok()
}

pub fn validate(req: SignupRequest) -> Result<ValidSignup, Vec<FieldError>> {
    let mut errors = Vec::new();
    let company_name = text("company_name", &req.company_name, 2, NAME_MAX, &mut errors);

    let (slug, slug_suggested) = match req.slug.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        Some(raw) => match Slug::parse(raw) {
            Ok(s) => (Some(s), false),
            Err(msg) => {
                errors.push(FieldError::new("slug", msg));
                (None, false)
            }
        },
        None => match Slug::suggest(&company_name) {
            Some(s) => (Some(s), true),
            None => {
                if errors.iter().all(|e| e.field != "company_name") {
                    errors.push(FieldError::new("slug", "cannot be derived from the company name; please choose one"));
                }
                (None, true)
            }
        },
    };

    let admin_email = match Email::parse(&req.admin_email) {
        Ok(e) => Some(e),
        Err(msg) => {
            errors.push(FieldError::new("admin.email", msg));
            None
        }
    };
    let admin_full_name = text("admin.full_name", &req.admin_full_name, 1, NAME_MAX, &mut errors);
    {
        let local = admin_email.as_ref().map(|e| e.as_str().split('@').next().unwrap_or_default().to_owned());
        let mut context: Vec<&str> = Vec::new();
        if let Some(l) = local.as_deref() {
            context.push(l);
        }
        if let Some(s) = slug.as_ref() {
            context.push(s.as_str());
        }
        if let Err(msg) = password::check_strength(req.admin_password.expose_secret(), &context) {
            errors.push(FieldError::new("admin.password", msg));
        }
    }

    let timezone = req.timezone.trim().to_owned();
    if timezone.is_empty() {
        errors.push(FieldError::new("timezone", "is required"));
    } else if !is_known_timezone(&timezone) {
        errors.push(FieldError::new(
            "timezone",
            format!("{timezone:?} is not a known IANA time zone (e.g. Europe/Berlin)"),
        ));
    }
    let currency = req.currency.trim().to_ascii_uppercase();
    if currency.is_empty() {
        errors.push(FieldError::new("currency", "is required"));
    } else if !is_known_currency(&currency) {
        errors.push(FieldError::new("currency", format!("{currency:?} is not an ISO 4217 currency code (e.g. EUR)")));
    }
    let chart_code = req.chart_template.as_deref().map(str::trim).filter(|s| !s.is_empty());
    let chart_template = match seed::chart_template(chart_code.unwrap_or(seed::DEFAULT_CHART_TEMPLATE)) {
        Some(t) => Some(t),
        None => {
            let known: Vec<_> = seed::chart_templates().iter().map(|t| t.code).collect();
            errors.push(FieldError::new("chart_template", format!("must be one of: {}", known.join(", "))));
            None
        }
    };

    let departments = match req.departments {
        None => seed::default_departments().iter().map(|d| d.to_string()).collect(),
        Some(list) => {
            if list.len() > DEPARTMENTS_MAX {
                errors.push(FieldError::new("departments", format!("at most {DEPARTMENTS_MAX} departments")));
            }
            let mut seen = std::collections::HashSet::new();
            let mut out = Vec::new();
            for (i, d) in list.iter().enumerate() {
                let name = text(&format!("departments[{i}]"), d, 1, NAME_MAX, &mut errors);
                if !seen.insert(name.to_lowercase()) {
                    errors.push(FieldError::new(format!("departments[{i}]"), "is listed twice"));
                }
                out.push(name);
            }
            out
        }
    };

    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(ValidSignup {
        company_name,
        slug: slug.expect("checked above"),
        slug_suggested,
        admin_email: admin_email.expect("checked above"),
        admin_password: req.admin_password,
        admin_full_name,
        timezone,
        currency,
        chart_template: chart_template.expect("checked above"),
        departments,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn valid() -> SignupRequest {
        SignupRequest {
            company_name: "Acme Tools".into(),
            slug: Some("acme-tools".into()),
            admin_email: "ann@acme.example".into(),
            admin_password: SecretString::from("Str0ng&Secret!"),
            admin_full_name: "Ann Admin".into(),
            timezone: "Europe/Berlin".into(),
            currency: "eur".into(),
            chart_template: None,
            departments: None,
        }
    }

    /// Applies `change` to a valid request and checks which field is reported.
    fn check(change: impl FnOnce(&mut SignupRequest), field: Option<&str>) {
        let mut req = valid();
        change(&mut req);
        match (validate(req), field) {
            (Ok(_), None) => {}
            (Err(errors), Some(f)) => assert_eq!(errors[0].field, f, "{errors:?}"),
            (Ok(_), Some(f)) => panic!("expected an error on {f}"),
            (Err(errors), None) => panic!("unexpected errors {errors:?}"),
        }
    }

    #[test]
    fn each_invalid_field_is_reported_by_name() {
        check(|_| {}, None);
        check(|r| r.company_name = " ".into(), Some("company_name"));
        check(|r| r.company_name = "x".repeat(101), Some("company_name"));
        check(|r| r.slug = Some("Bad Slug".into()), Some("slug"));
        check(|r| r.slug = Some("admin".into()), Some("slug"));
        check(|r| r.admin_email = "nope".into(), Some("admin.email"));
        check(|r| r.admin_password = SecretString::from("short"), Some("admin.password"));
        check(|r| r.admin_full_name = "".into(), Some("admin.full_name"));
        check(|r| r.timezone = "Mars/Olympus".into(), Some("timezone"));
        check(|r| r.currency = "XXY".into(), Some("currency"));
        check(|r| r.chart_template = Some("nope".into()), Some("chart_template"));
        check(|r| r.departments = Some(vec!["Sales".into(), "sales".into()]), Some("departments[1]"));
    }

    #[test]
    fn a_missing_slug_is_suggested_from_the_name() {
        let mut req = valid();
        req.slug = None;
        let ok = validate(req).unwrap();
        assert_eq!(ok.slug.as_str(), "acme-tools");
        assert!(ok.slug_suggested);
        assert_eq!(ok.currency, "EUR");
    }

    #[test]
    fn test_metal_and_fund_codes_are_known_but_not_offered() {
        for code in NOT_OFFERED_CURRENCIES {
            assert!(is_known_currency(code), "{code} is an ISO code");
            assert!(!is_offered_currency(code), "{code}");
        }
        for code in ["EUR", "USD", "CHF", "VND", "XOF", "XAF"] {
            assert!(is_offered_currency(code), "{code}");
        }
    }
}
