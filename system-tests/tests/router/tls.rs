//! TLS end to end: Postgres with `ssl=on` and a test CA, the control plane and a router
//! connecting to it with `sslmode=verify-full`, both serving HTTPS; the router fetches the JWKS
//! over https, the live socket runs over wss with the token in its protocol header. A URL that
//! names another CA fails with a certificate error, for either service.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use futures::StreamExt;
use local_postgres::{LocalCluster, SslFiles};
use secrecy::SecretString;
use serde_json::{Value, json};
use sqlx::{Connection, PgConnection};
use stack::{LocalTls, PlatformBuilder, RouterHandle, unique};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

/// One Postgres server with `ssl=on` for this test binary, and the CA its certificate is from.
struct SslServer {
    tls: LocalTls,
    cluster: LocalCluster,
}

fn ssl_server() -> &'static SslServer {
    static SERVER: OnceLock<SslServer> = OnceLock::new();
    SERVER.get_or_init(|| {
        // Kept for the process's life, like the cluster (whose watchdog removes it at exit).
        let dir = tempfile::tempdir().unwrap().keep();
        let tls = LocalTls::generate(&dir).expect("a test CA");
        let ssl = SslFiles { cert_file: tls.server_cert.clone(), key_file: tls.server_key.clone() };
        let cluster = LocalCluster::start_throwaway_with_ssl(&ssl).expect("Postgres starts with ssl=on");
        SslServer { tls, cluster }
    })
}

/// Another CA, which signed nothing the server has.
fn stranger_ca() -> LocalTls {
    LocalTls::generate(&tempfile::tempdir().unwrap().keep()).expect("a second CA")
}

/// A `wss://` connector that trusts `tls`'s CA.
fn trusting(tls: &LocalTls) -> tokio_tungstenite::Connector {
    let mut roots = rustls::RootCertStore::empty();
    let pem = tls.ca_pem().unwrap();
    use rustls::pki_types::pem::PemObject as _;
    for cert in rustls::pki_types::CertificateDer::pem_slice_iter(&pem) {
        roots.add(cert.unwrap()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    tokio_tungstenite::Connector::Rustls(Arc::new(config))
}

#[tokio::test]
async fn the_platform_runs_over_https_and_wss_on_postgres_with_ssl_checked_by_verify_full() {
    let server = ssl_server();
    let admin_url = server.tls.postgres_url(&server.cluster.superuser_url()).unwrap();
    let platform = PlatformBuilder::new(admin_url.clone())
        .isolated()
        .control_plane(|c| c.signup_limit_per_hour = 100_000)
        .tls(server.tls.clone())
        .start()
        .await
        .expect("the platform starts with verify-full");
    assert!(platform.control_plane.url.starts_with("https://"), "{}", platform.control_plane.url);
    let router = platform.router_url().to_owned();
    assert!(router.starts_with("https://"), "{router}");

    // Signup and login over https; login hands out the router's https and wss URLs.
    let company = platform.signup(&unique("tls-")).await.expect("signup over https");
    let login = json!({"email": company.admin_email, "password": stack::TEST_PASSWORD, "tenant": company.slug});
    let answer: Value = platform
        .http
        .post(format!("{}/auth/login", platform.control_plane.url))
        .json(&login)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(answer["api_url"], router.as_str());
    let ws_url = answer["ws_url"].as_str().unwrap().to_owned();
    assert_eq!(ws_url, format!("{}/ws", router.replace("https://", "wss://")));

    // The live socket over wss, the token in the protocol header (the router checked the
    // token against the JWKS it fetched over https).
    let mut request = ws_url.as_str().into_client_request().unwrap();
    let protocols = format!("nexacore.v1, nexacore.bearer.{}", company.token);
    request.headers_mut().insert("sec-websocket-protocol", protocols.parse().unwrap());
    let (mut socket, response) =
        tokio_tungstenite::connect_async_tls_with_config(request, None, false, Some(trusting(&server.tls)))
            .await
            .expect("wss connects");
    assert_eq!(response.headers()["sec-websocket-protocol"], "nexacore.v1");

    // A write through the router (a tenant pool on the TLS server) arrives on the socket.
    let body =
        json!({"first_name": "Ada", "last_name": "Secure", "email": "ada@tls.example.com", "hire_date": "2024-01-15"});
    let created =
        platform.http.post(format!("{router}/employees")).bearer_auth(&company.token).json(&body).send().await.unwrap();
    assert_eq!(created.status(), 201, "{}", created.text().await.unwrap());
    let event = loop {
        let frame = tokio::time::timeout(Duration::from_secs(10), socket.next()).await.expect("an event in time");
        if let Message::Text(text) = frame.unwrap().unwrap()
            && text.contains("\"channel\":\"employees\"")
        {
            break text.to_string();
        }
    };
    assert!(event.contains("ada@tls.example.com"), "{event}");

    // Every session the platform holds on the server is encrypted: catalog, listener, tenant pool.
    let mut admin = PgConnection::connect(&admin_url).await.unwrap();
    let (plain, encrypted): (i64, i64) = sqlx::query_as(
        "SELECT count(*) FILTER (WHERE NOT s.ssl), count(*) FILTER (WHERE s.ssl) \
         FROM pg_stat_activity a JOIN pg_stat_ssl s USING (pid) \
         WHERE a.backend_type = 'client backend' AND a.application_name LIKE 'nexacore-%'",
    )
    .fetch_one(&mut admin)
    .await
    .unwrap();
    assert_eq!(plain, 0, "no session in clear text");
    assert!(encrypted >= 3, "catalog, listener and tenant sessions: {encrypted}");
    platform.stop().await.unwrap();
}

#[tokio::test]
async fn a_database_url_naming_another_ca_stops_either_service_with_a_certificate_error() {
    let server = ssl_server();
    let stranger = stranger_ca();
    let url = stranger.postgres_url(&server.cluster.superuser_url()).unwrap();

    let control_plane = PlatformBuilder::new(url.clone()).isolated().start().await.err().expect("refused");
    let message = control_plane.to_string();
    assert!(message.contains("certificate") && message.contains("UnknownIssuer"), "{message}");

    // With a password in the URL the router uses it as given (trust authentication ignores it).
    let with_password = url.replacen("postgres://postgres@", "postgres://postgres:unused@", 1);
    let mut config = stack::RouterConfig::new(
        SecretString::from(with_password),
        SecretString::from("00".repeat(32)),
        "https://127.0.0.1:1/.well-known/jwks.json".into(),
    );
    config.allow_superuser_catalog = true;
    let router = RouterHandle::start(config).await.err().expect("refused");
    let message = router.to_string();
    assert!(message.contains("certificate") && message.contains("UnknownIssuer"), "{message}");

    // With the right CA the same URL works: the failure was the certificate, nothing else.
    let right = server.tls.postgres_url(&server.cluster.superuser_url()).unwrap();
    PgConnection::connect(&right).await.expect("the right CA connects").close().await.unwrap();
}
