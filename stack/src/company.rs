//! Companies signed up through the control plane's API, as a user of the platform would.

use serde_json::{Value, json};
use uuid::Uuid;

use crate::{Platform, StackError};

/// A password every signup through this crate uses: strong enough for the signup rules.
pub const TEST_PASSWORD: &str = "Str0ng&Secret!";

/// A signed-up company and its admin's token.
#[derive(Debug, Clone)]
pub struct Company {
    pub id: Uuid,
    pub slug: String,
    pub name: String,
    pub admin_email: String,
    pub token: String,
}

impl Platform {
    /// Signs up the company `slug` (`POST /tenants`, a real database and role, seeded) with the
    /// operator token, so no signup limit applies. The admin is `admin@<slug>.example.com`.
    pub async fn signup(&self, slug: &str) -> Result<Company, StackError> {
        self.signup_as(slug, &format!("admin@{slug}.example.com")).await
    }

    /// [`Platform::signup`] with the admin's e-mail given: an existing user (with
    /// [`TEST_PASSWORD`]) becomes the admin of one more company.
    pub async fn signup_as(&self, slug: &str, admin_email: &str) -> Result<Company, StackError> {
        let name = format!("Company {slug}");
        let admin_email = admin_email.to_owned();
        let body = json!({
            "company_name": name,
            "slug": slug,
            "admin": {"email": admin_email, "password": TEST_PASSWORD, "full_name": "Ada Admin"},
            "timezone": "Europe/Berlin",
            "currency": "EUR",
        });
        let response = self
            .http
            .post(format!("{}/tenants", self.control_plane.url))
            .bearer_auth(&self.operator_token)
            .json(&body)
            .send()
            .await?;
        let status = response.status().as_u16();
        let text = response.text().await?;
        let refused = || StackError::Refused { call: format!("signup of {slug}"), status, body: text.clone() };
        if status != 201 {
            return Err(refused());
        }
        let created: Value = serde_json::from_str(&text).map_err(|_| refused())?;
        let id = created["tenant"]["id"].as_str().and_then(|id| id.parse().ok()).ok_or_else(refused)?;
        let token = created["access_token"].as_str().ok_or_else(refused)?.to_owned();
        Ok(Company { id, slug: slug.to_owned(), name, admin_email, token })
    }
}
