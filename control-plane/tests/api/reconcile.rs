//! The reconciler never undoes a tenant whose provisioning finished, even when it read the
//! tenant's row while the provisioning was still running.

use std::sync::Arc;

use control_plane::catalog::tenants;
use control_plane::domain::DbName;
use control_plane::fleet::Fleet;
use control_plane::provision::reconcile::{Abandoned, undo_if_abandoned};
use control_plane::secrets::MasterKey;
use secrecy::SecretString;
use sqlx::{Connection, PgConnection, PgPool};

use crate::helpers::{TestApp, unique};

#[tokio::test]
async fn a_pass_holding_a_row_read_before_activation_leaves_the_active_tenant_alone() {
    let app = TestApp::spawn().await;
    let slug = unique("race-");
    app.create_tenant(&slug).await;

    let catalog = PgPool::connect(&app.catalog_url).await.unwrap();
    let mut stale = tenants::get_live_by_slug(&catalog, &slug).await.unwrap().expect("the tenant's row");
    assert_eq!(stale.status, "active");
    // What a pass listed a moment before the provisioner committed `active` and released the
    // tenant's lock (seen in a benchmark: four fresh tenants lost their database and role).
    stale.status = "provisioning".into();

    let defaults = control_plane::Config::new(
        SecretString::from(app.server.superuser_url()),
        SecretString::from(app.master_key.clone()),
        SecretString::from("unused".to_owned()),
    );
    let master = Arc::new(MasterKey::from_base64(&SecretString::from(app.master_key.clone())).unwrap());
    let fleet = Fleet::new(
        catalog.clone(),
        master,
        DbName::parse(&app.template_database).unwrap(),
        defaults.create_database_strategy,
        defaults.tenant_migrations.clone(),
    );
    let outcome = undo_if_abandoned(&catalog, &fleet, &stale).await.unwrap();
    assert_eq!(outcome, Abandoned::No);

    let row = tenants::get(&catalog, stale.id).await.unwrap().expect("the row is still there");
    assert_eq!(row.status, "active");
    let mut admin = PgConnection::connect(&app.server.superuser_url()).await.unwrap();
    let db_exists: bool = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
        .bind(&row.database_name)
        .fetch_one(&mut admin)
        .await
        .unwrap();
    let role_exists: bool = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1)")
        .bind(&row.role_name)
        .fetch_one(&mut admin)
        .await
        .unwrap();
    assert!(db_exists && role_exists, "database {db_exists}, role {role_exists}");
}
