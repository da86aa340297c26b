//! Departments and the chart of accounts of the token's company.

use std::sync::Arc;

use http_api::{ApiError, JsonBody, JsonReply};
use poem_openapi::{ApiResponse, OpenApi};
use tenant_schema::data::{accounts, departments};
use tenant_schema::seed::AccountType;

use super::errors::{from_data, from_pool};
use super::security::TenantAuth;
use crate::state::AppState;
use api_types::ledger as wire;

pub struct LedgerApi(pub Arc<AppState>);

#[derive(ApiResponse)]
pub enum DepartmentCreated {
    #[oai(status = 201)]
    Created(JsonReply<wire::Department>, #[oai(header = "X-Event-Seq")] i64),
}

#[derive(ApiResponse)]
pub enum AccountCreated {
    #[oai(status = 201)]
    Created(JsonReply<wire::Account>, #[oai(header = "X-Event-Seq")] i64),
}

#[OpenApi(tag = "super::Tag::Ledger")]
impl LedgerApi {
    /// Departments, by name.
    #[oai(path = "/departments", method = "get")]
    async fn departments(&self, auth: TenantAuth) -> Result<JsonReply<Vec<wire::Department>>, ApiError> {
        let mut conn = self.0.pools.acquire(&auth.0.route).await.map_err(from_pool)?;
        let rows = departments::list(&mut conn).await.map_err(|e| from_data(e, false))?;
        Ok(JsonReply(rows))
    }

    /// Creates a department (names are unique ignoring case).
    #[oai(path = "/departments", method = "post")]
    async fn create_department(
        &self,
        auth: TenantAuth,
        body: JsonBody<wire::NewDepartment>,
    ) -> Result<DepartmentCreated, ApiError> {
        auth.0.require_writer()?;
        let mut conn = self.0.pools.acquire(&auth.0.route).await.map_err(from_pool)?;
        let change = departments::create(&mut conn, &body.0.name).await.map_err(|e| from_data(e, false))?;
        self.0.realtime.published(auth.0.route.id, &change.event).await;
        let seq = change.seq();
        Ok(DepartmentCreated::Created(JsonReply(change.value), seq))
    }

    /// The chart of accounts, by code.
    #[oai(path = "/accounts", method = "get")]
    async fn accounts(&self, auth: TenantAuth) -> Result<JsonReply<Vec<wire::Account>>, ApiError> {
        let mut conn = self.0.pools.acquire(&auth.0.route).await.map_err(from_pool)?;
        let rows = accounts::list(&mut conn).await.map_err(|e| from_data(e, false))?;
        Ok(JsonReply(rows.into_iter().map(Into::into).collect()))
    }

    /// Adds an account to the chart.
    #[oai(path = "/accounts", method = "post")]
    async fn create_account(
        &self,
        auth: TenantAuth,
        body: JsonBody<wire::NewAccount>,
    ) -> Result<AccountCreated, ApiError> {
        auth.0.require_writer()?;
        let b = body.0;
        let account_type = AccountType::parse(b.account_type.trim()).ok_or_else(|| {
            ApiError::field("account_type", "account_type: must be asset, liability, equity, income or expense")
        })?;
        let new = accounts::NewAccount { code: b.code, name: b.name, account_type, parent_code: b.parent_code };
        let mut conn = self.0.pools.acquire(&auth.0.route).await.map_err(from_pool)?;
        let change = accounts::create(&mut conn, &new).await.map_err(|e| from_data(e, false))?;
        self.0.realtime.published(auth.0.route.id, &change.event).await;
        let seq = change.seq();
        Ok(AccountCreated::Created(JsonReply(change.value.into()), seq))
    }
}
