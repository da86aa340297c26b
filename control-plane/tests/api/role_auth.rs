//! Tenant roles authenticate with SCRAM-SHA-256 using the verifier the control plane computes
//! (with its low iteration count) and the password the routers derive.
//!
//! The shared test cluster trusts every local connection, which would accept any password; this
//! test uses the second throwaway cluster (never `DATABASE_URL`, always ours to reconfigure) and
//! puts a `scram-sha-256` line for its probe role in front of the trust lines.

use control_plane::secrets::{MasterKey, TENANT_ROLE_SCRAM_ITERATIONS, tenant_role_scram_verifier};
use secrecy::{ExposeSecret, SecretString};
use sqlx::postgres::PgConnectOptions;
use sqlx::{AssertSqlSafe, Connection, PgConnection};

use crate::helpers::unique;

#[tokio::test]
async fn a_tenant_role_logs_in_with_its_derived_password_over_scram_and_no_other() {
    let server = local_postgres::second_test_server();
    let admin_options: PgConnectOptions = server.superuser_url().parse().unwrap();
    let mut admin = PgConnection::connect_with(&admin_options).await.unwrap();

    let role = control_plane::domain::RoleName::parse(&unique("t_scram_")).unwrap();
    let master = MasterKey::from_base64(&SecretString::from(MasterKey::generate_base64())).unwrap();
    let password = master.tenant_role_key().password_for(&role);
    let verifier = tenant_role_scram_verifier(&password);
    assert!(verifier.starts_with(&format!("SCRAM-SHA-256${TENANT_ROLE_SCRAM_ITERATIONS}:")), "{verifier}");

    let create = format!("CREATE ROLE {} LOGIN PASSWORD '{verifier}'", role.quoted());
    sqlx::query(AssertSqlSafe(create)).execute(&mut admin).await.unwrap();
    // The platform closes `postgres` to PUBLIC on the servers it manages (this one too, once a
    // test registered it): the probe role is let in by name.
    let grant = format!("GRANT CONNECT ON DATABASE postgres TO {}", role.quoted());
    sqlx::query(AssertSqlSafe(grant)).execute(&mut admin).await.unwrap();
    // Postgres keeps a verifier given in SCRAM form as it is (it does not re-hash it).
    let stored: String = sqlx::query_scalar("SELECT rolpassword FROM pg_authid WHERE rolname = $1")
        .bind(role.as_str())
        .fetch_one(&mut admin)
        .await
        .unwrap();
    assert_eq!(stored, verifier);

    // Only this role is switched to SCRAM; every other connection keeps the cluster's trust.
    let rewrite = format!(
        "CREATE TEMP TABLE hba (line text);
         INSERT INTO hba VALUES ('host all {role} 127.0.0.1/32 scram-sha-256');
         INSERT INTO hba SELECT regexp_split_to_table(pg_read_file(current_setting('hba_file')), E'\\n');
         DO $$ BEGIN EXECUTE format('COPY hba TO %L', current_setting('hba_file')); END $$;
         DROP TABLE hba;",
        role = role.as_str()
    );
    sqlx::raw_sql(AssertSqlSafe(rewrite)).execute(&mut admin).await.unwrap();
    let rules: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM pg_hba_file_rules WHERE $1 = ANY(user_name) AND auth_method = 'scram-sha-256'",
    )
    .bind(role.as_str())
    .fetch_one(&mut admin)
    .await
    .unwrap();
    assert_eq!(rules, 1, "the probe's hba line is in place");
    let _: bool = sqlx::query_scalar("SELECT pg_reload_conf()").fetch_one(&mut admin).await.unwrap();

    let as_role = admin_options.clone().host("127.0.0.1").username(role.as_str()).database("postgres");
    // The postmaster reloads asynchronously: wait until a wrong password is refused.
    let mut enforced = false;
    for _ in 0..50 {
        match PgConnection::connect_with(&as_role.clone().password("not-the-password")).await {
            Err(_) => {
                enforced = true;
                break;
            }
            Ok(conn) => {
                conn.close().await.ok();
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
        }
    }
    assert!(enforced, "a wrong password is refused once SCRAM is on for the role");

    let conn = PgConnection::connect_with(&as_role.clone().password(password.expose_secret()))
        .await
        .expect("the derived password logs in against the stored verifier");
    conn.close().await.unwrap();

    let other_master = MasterKey::from_base64(&SecretString::from(MasterKey::generate_base64())).unwrap();
    let foreign = other_master.tenant_role_key().password_for(&role);
    assert!(PgConnection::connect_with(&as_role.password(foreign.expose_secret())).await.is_err());
}
