//! The router benchmark's baseline: the least a service can do for the same request.

use std::time::Duration;

use anyhow::Context;
use poem::listener::{Acceptor, Listener, TcpListener};
use poem::web::{Data, Json, Query};
use poem::{EndpointExt, Route, get, handler, http::StatusCode};
use serde::Deserialize;
use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;
use stack::Company;
use tenant_schema::data::employees::{self, ListQuery, Page};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use super::PAGE_SIZE;
use super::load::employees_url;
use super::platform::BenchPlatform;

/// The baseline: the least a service can do for the same request. One route, a `PgPool`
/// connected as the tenant's role to its database, the same data-layer call, JSON out. No
/// token, no gates, no per-tenant anything.
pub struct Baseline {
    url: String,
    stop: oneshot::Sender<()>,
    task: JoinHandle<std::io::Result<()>>,
}

#[derive(Deserialize)]
struct ListParams {
    limit: Option<u32>,
}

#[handler]
async fn baseline_list(pool: Data<&PgPool>, Query(params): Query<ListParams>) -> poem::Result<Json<Page>> {
    let query = ListQuery { limit: params.limit.unwrap_or(PAGE_SIZE), ..ListQuery::default() };
    let mut conn =
        pool.acquire().await.map_err(|e| poem::Error::from_string(e.to_string(), StatusCode::SERVICE_UNAVAILABLE))?;
    let page = employees::list(&mut conn, &query)
        .await
        .map_err(|e| poem::Error::from_string(e.to_string(), StatusCode::INTERNAL_SERVER_ERROR))?;
    Ok(Json(page))
}

impl Baseline {
    pub async fn start(platform: &BenchPlatform, tenant: &Company, pool_size: usize) -> anyhow::Result<Self> {
        let options = platform.tenant_options(tenant.id).await?.application_name("bench-baseline");
        let size = u32::try_from(pool_size)?;
        // As strong as the baseline can be: connections opened up front, and no ping before
        // each checkout (sqlx's default; the router pings only connections idle for 30 s).
        let pool = PgPoolOptions::new()
            .max_connections(size)
            .min_connections(size)
            .test_before_acquire(false)
            .connect_with(options)
            .await
            .context("connecting the baseline's pool")?;
        let app = Route::new().at("/employees", get(baseline_list)).data(pool);
        let acceptor = TcpListener::bind("127.0.0.1:0").into_acceptor().await?;
        let port = acceptor
            .local_addr()
            .first()
            .and_then(|a| a.as_socket_addr().map(|s| s.port()))
            .context("the baseline's port")?;
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(poem::Server::new_with_acceptor(acceptor).run_with_graceful_shutdown(
            app,
            async move {
                let _ = stopped.await;
            },
            Some(Duration::from_secs(5)),
        ));
        Ok(Self { url: format!("http://127.0.0.1:{port}"), stop, task })
    }

    pub fn employees_url(&self) -> String {
        employees_url(&self.url)
    }

    pub async fn stop(self) -> anyhow::Result<()> {
        let _ = self.stop.send(());
        self.task.await.context("the baseline panicked")?.context("the baseline failed")
    }
}
