//! Realtime over real WebSocket clients: delivery across two router processes, isolation,
//! nothing from rolled-back writes, resume with `since`, slow clients, token expiry, suspend,
//! maintenance, per-tenant limits, graceful shutdown.

use std::process::Stdio;
use std::time::Duration;

use futures::StreamExt;
use reqwest::Method;
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::helpers::{Company, Stack, claims_for, eventually, unique};

pub(crate) type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// A client with a tiny TCP receive window: when it stops reading, the server's sends block soon.
async fn connect_slow(base: &str, token: &str) -> Ws {
    let addr: std::net::SocketAddr = base.trim_start_matches("http://").parse().unwrap();
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let stream = socket.connect(addr).await.unwrap();
    let url = format!("ws://{addr}/ws?token={token}");
    let (ws, _) =
        tokio_tungstenite::client_async(url, MaybeTlsStream::Plain(stream)).await.expect("websocket connects");
    ws
}

/// A socket with the token as its `nexacore.bearer.` protocol entry; `query` starts with `&`.
pub(crate) async fn connect(base: &str, token: &str, query: &str) -> Ws {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
    let url = format!("{}/ws?{}", base.replace("http://", "ws://"), query.trim_start_matches('&'));
    let mut request = url.into_client_request().unwrap();
    let protocols = format!("nexacore.v1, nexacore.bearer.{token}");
    request.headers_mut().insert("sec-websocket-protocol", protocols.parse().unwrap());
    let (ws, _) = tokio_tungstenite::connect_async(request).await.expect("websocket connects");
    ws
}

/// The next text message as JSON (pings are answered by the client library).
async fn next_json(ws: &mut Ws) -> Value {
    serde_json::from_str(&next_text(ws).await).unwrap()
}

/// The next text message, as sent.
async fn next_text(ws: &mut Ws) -> String {
    loop {
        let message = tokio::time::timeout(Duration::from_secs(10), ws.next()).await.expect("a message in time");
        match message.expect("the socket is open").expect("no socket error") {
            Message::Text(text) => return text.to_string(),
            Message::Close(frame) => panic!("closed: {frame:?}"),
            _ => {}
        }
    }
}

#[tokio::test]
async fn a_live_change_carries_the_row_byte_for_byte_as_a_get_of_it_answers() {
    let stack = Stack::start().await;
    let c = stack.signup(&unique("bytes-")).await;
    let mut ws = connect(&stack.router, &c.token, "").await;
    // With a job title and without a department: both an optional field present and one absent.
    let body = serde_json::json!({"first_name": "Ada", "last_name": "Byte", "email": "ada@bytes.example.com",
                                  "job_title": "Engineer", "hire_date": "2024-02-29"});
    let created = stack.call(reqwest::Method::POST, "/employees", &c.token).json(&body).send().await.unwrap();
    assert_eq!(created.status(), 201);
    let id = created.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_owned();
    let got = stack.call(reqwest::Method::GET, &format!("/employees/{id}"), &c.token).send().await.unwrap();
    let got = got.text().await.unwrap();

    let event = loop {
        let text = next_text(&mut ws).await;
        if text.contains("\"channel\":\"employees\"") {
            break text;
        }
    };
    // `{"channel":…,"action":…,"data":<the row>,"seq":…,"ts":…}`: the row as sent, unparsed.
    let data = event.split_once("\"data\":").and_then(|(_, rest)| rest.rsplit_once(",\"seq\":")).map(|(d, _)| d);
    assert_eq!(data, Some(got.as_str()), "event: {event}");
}

/// Waits for the close frame and returns its code.
pub(crate) async fn close_code(ws: &mut Ws, within: Duration) -> u16 {
    let deadline = tokio::time::Instant::now() + within;
    let mut texts = 0;
    loop {
        let message = tokio::time::timeout_at(deadline, ws.next())
            .await
            .unwrap_or_else(|_| panic!("closed in time (read {texts} messages)"));
        if matches!(message, Some(Ok(Message::Text(_)))) {
            texts += 1;
        }
        match message {
            Some(Ok(Message::Close(Some(frame)))) => return u16::from(frame.code),
            Some(Ok(Message::Close(None))) | None => return 1005,
            Some(Err(_)) => return 1006,
            Some(Ok(_)) => {}
        }
    }
}

/// Nothing arrives for `quiet` (apart from pings).
async fn silent(ws: &mut Ws, quiet: Duration) -> bool {
    match tokio::time::timeout(quiet, async {
        loop {
            match ws.next().await {
                Some(Ok(Message::Text(t))) => return Some(t),
                Some(Ok(_)) => continue,
                _ => return None,
            }
        }
    })
    .await
    {
        Err(_) => true,
        Ok(other) => panic!("expected silence, got {other:?}"),
    }
}

async fn add(stack: &Stack, base: &str, company: &Company, email: &str) -> i64 {
    let body = json!({"first_name": "Live", "last_name": "Event", "email": email, "hire_date": "2024-01-15"});
    let r = stack.http.post(format!("{base}/employees")).bearer_auth(&company.token).json(&body).send().await.unwrap();
    assert_eq!(r.status(), 201);
    r.headers()["x-event-seq"].to_str().unwrap().parse().unwrap()
}

/// A second router replica, as its own process, on the same catalog.
struct Replica {
    child: tokio::process::Child,
    base: String,
}

async fn start_replica(stack: &Stack) -> Replica {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_router-process"))
        .env("NEXACORE_CATALOG_URL", &stack.router_catalog_url)
        .env("NEXACORE_TENANT_ROLE_KEY", &stack.role_key_hex)
        .env("NEXACORE_JWKS_URL", &stack.jwks_url)
        .env("NEXACORE_LISTEN", format!("127.0.0.1:{port}"))
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let http = stack.http.clone();
    let up = eventually(|| {
        let r = http.get(format!("{base}/health")).send();
        async move { r.await.is_ok_and(|r| r.status() == 200) }
    })
    .await;
    assert!(up, "the second router process became healthy");
    Replica { child, base }
}

#[tokio::test]
async fn a_change_through_either_of_two_router_processes_reaches_clients_of_both_in_order_once() {
    let stack = Stack::start().await;
    let mut replica = start_replica(&stack).await;
    let c = stack.signup(&unique("rt2-")).await;
    let mut on_one = connect(&stack.router, &c.token, "").await;
    let mut on_two = connect(&replica.base, &c.token, "").await;

    let mut expected = Vec::new();
    for i in 0..6 {
        let via = if i % 2 == 0 { stack.router.clone() } else { replica.base.clone() };
        expected.push(add(&stack, &via, &c, &format!("e{i}@x.example.com")).await);
    }
    for ws in [&mut on_one, &mut on_two] {
        let mut got = Vec::new();
        for _ in 0..6 {
            let m = next_json(ws).await;
            assert_eq!(m["channel"], "employees");
            assert_eq!(m["action"], "created");
            assert!(m["ts"].is_string() && m["data"]["email"].is_string());
            got.push(m["seq"].as_i64().unwrap());
        }
        assert_eq!(got, expected, "every change, in seq order");
        assert!(silent(ws, Duration::from_millis(500)).await, "exactly once: nothing more");
    }
    replica.child.start_kill().unwrap();
}

#[tokio::test]
async fn clients_of_one_tenant_see_nothing_of_another_and_rolled_back_writes_emit_nothing() {
    let stack = Stack::start().await;
    let a = stack.signup(&unique("rta-")).await;
    let b = stack.signup(&unique("rtb-")).await;
    let mut watch_b = connect(&stack.router, &b.token, "").await;
    let mut watch_a = connect(&stack.router, &a.token, "").await;
    let first = add(&stack, &stack.router, &a, "one@a.example.com").await;
    assert_eq!(next_json(&mut watch_a).await["seq"], first);
    // A write that fails (duplicate e-mail) rolls back: no event, and no hole in seq.
    let dup = json!({"first_name": "D", "last_name": "U", "email": "one@a.example.com", "hire_date": "2024-01-15"});
    let refused = stack.call(Method::POST, "/employees", &a.token).json(&dup).send().await.unwrap();
    assert_eq!(refused.status(), 409);
    let second = add(&stack, &stack.router, &a, "two@a.example.com").await;
    assert_eq!(second, first + 1, "gap-free seq");
    let m = next_json(&mut watch_a).await;
    assert_eq!(m["seq"], second, "the failed write produced nothing");
    assert!(silent(&mut watch_b, Duration::from_millis(800)).await, "B saw nothing of A");

    // Anyone able to NOTIFY on the catalog could forge a wake-up that carries an event for B;
    // unless it was sealed with the routers' key it is not delivered (the hub reads B's outbox
    // instead: nothing).
    let forged_seq = next_seq_of(&stack, &b).await;
    let forged_event = json!({"channel": "employees", "action": "deleted", "data": {"id": "x"}, "seq": forged_seq});
    let associated = format!("{}\n{forged_seq}\nemployees", b.id);
    let foreign_key = tenancy::TenantRoleKey::from_bytes(rand::random());
    for sealed in [
        None,
        Some(forged_event.to_string()),
        Some(foreign_key.seal_event(associated.as_bytes(), forged_event.to_string().as_bytes())),
    ] {
        let mut wake = json!({"t": b.id, "s": forged_seq, "c": "employees", "e": forged_event.to_string()});
        if let Some(sealed) = sealed {
            wake["x"] = json!(sealed);
        }
        let mut catalog = stack.catalog().await;
        sqlx::query("SELECT pg_notify('nexacore_events', $1)")
            .bind(wake.to_string())
            .execute(&mut catalog)
            .await
            .unwrap();
    }
    assert!(silent(&mut watch_b, Duration::from_millis(800)).await, "a forged event is never delivered");

    let own = add(&stack, &stack.router, &b, "own@b.example.com").await;
    assert_eq!(own, forged_seq, "the forged seq was never taken");
    assert_eq!(next_json(&mut watch_b).await["seq"], own);
}

#[tokio::test]
async fn wake_ups_on_the_catalog_channel_carry_no_readable_tenant_data() {
    let stack = Stack::start().await;
    let company = stack.signup(&unique("sealed-")).await;
    let mut ws = connect(&stack.router, &company.token, "").await;
    let mut listener = sqlx::postgres::PgListener::connect(&stack.catalog_url).await.unwrap();
    listener.listen("nexacore_events").await.unwrap();
    let seq = add(&stack, &stack.router, &company, "zelda.quartermain@secret.example.com").await;
    assert_eq!(next_json(&mut ws).await["seq"], seq, "delivered");
    let wake = tokio::time::timeout(Duration::from_secs(10), listener.recv()).await.unwrap().unwrap();
    let payload: Value = serde_json::from_str(wake.payload()).unwrap();
    assert_eq!(payload["s"], seq);
    assert!(payload["x"].is_string(), "the event travels sealed: {payload}");
    for secret in ["zelda", "quartermain", "secret.example.com", "first_name", "email"] {
        assert!(!wake.payload().contains(secret), "{secret:?} readable in {payload}");
    }
}

/// The seq tenant `company`'s next write will get.
async fn next_seq_of(stack: &Stack, company: &Company) -> i64 {
    let mut conn = tenant_conn(stack, company).await;
    tenant_schema::outbox::last_seq(&mut conn).await.unwrap() + 1
}

#[tokio::test]
async fn a_client_that_reconnects_with_since_gets_every_missed_change_once_then_live_ones() {
    let stack = Stack::start().await;
    let c = stack.signup(&unique("since-")).await;
    let mut ws = connect(&stack.router, &c.token, "").await;
    let last_seen = add(&stack, &stack.router, &c, "before@x.example.com").await;
    assert_eq!(next_json(&mut ws).await["seq"], last_seen);
    ws.close(None).await.unwrap();

    let mut missed = Vec::new();
    for i in 0..50 {
        missed.push(add(&stack, &stack.router, &c, &format!("m{i}@x.example.com")).await);
    }
    let mut ws = connect(&stack.router, &c.token, &format!("&since={last_seen}")).await;
    let mut got = Vec::new();
    for _ in 0..50 {
        got.push(next_json(&mut ws).await["seq"].as_i64().unwrap());
    }
    assert_eq!(got, missed, "all 50, in order, once");
    let live = add(&stack, &stack.router, &c, "live@x.example.com").await;
    assert_eq!(next_json(&mut ws).await["seq"], live, "then live events, no duplicate");

    // A `since` older than what the outbox retains gets a resync.
    let mut conn = tenant_conn(&stack, &c).await;
    sqlx::query("DELETE FROM outbox WHERE seq < $1").bind(live - 5).execute(&mut conn).await.unwrap();
    let mut stale = connect(&stack.router, &c.token, "&since=1").await;
    let m = next_json(&mut stale).await;
    assert_eq!(m["channel"], "system");
    assert_eq!(m["action"], "resync");
}

/// A superuser connection to the company's own database.
async fn tenant_conn(stack: &Stack, c: &Company) -> sqlx::PgConnection {
    let db: String = sqlx::query_scalar("SELECT database_name FROM tenants WHERE id = $1::uuid")
        .bind(&c.id)
        .fetch_one(&mut stack.catalog().await)
        .await
        .unwrap();
    let url = local_postgres::shared_test_server().url_for_database(&db);
    <sqlx::PgConnection as sqlx::Connection>::connect(&url).await.unwrap()
}

#[tokio::test]
async fn a_client_that_stops_reading_is_cut_off_and_does_not_delay_others() {
    let stack = Stack::start_with(|c| {
        c.realtime.queue_capacity = 32;
        c.realtime.send_timeout = Duration::from_millis(500);
    })
    .await;
    let c = stack.signup(&unique("slow-")).await;
    let mut slow = connect_slow(&stack.router, &c.token).await;
    let mut fast = connect(&stack.router, &c.token, "").await;
    // A writer commits 1,500 large events at once (straight into the outbox), then wakes us.
    let mut conn = tenant_conn(&stack, &c).await;
    let mut tx = sqlx::Connection::begin(&mut conn).await.unwrap();
    let big = json!({"note": "x".repeat(4000)});
    let mut events = Vec::new();
    for _ in 0..1500 {
        events.push(tenant_schema::outbox::append(&mut tx, "employees", "updated", None, &big).await.unwrap());
    }
    tx.commit().await.unwrap();
    // The wake-up carries only the last event: the hub sees the gap and reads the outbox.
    let newest = events.last().unwrap();
    stack.router_state.realtime.published(c.id.parse().unwrap(), newest).await;
    let last = newest.seq;

    let started = std::time::Instant::now();
    let mut received = 0;
    while received < 1500 {
        let m = next_json(&mut fast).await;
        assert_eq!(m["seq"].as_i64().unwrap(), last - 1499 + received);
        received += 1;
    }
    let fast_took = started.elapsed();
    // The slow client has not read a thing; a little later it is cut off with the documented
    // code (what its buffers already held arrives first).
    tokio::time::sleep(Duration::from_secs(2)).await;
    let code = close_code(&mut slow, Duration::from_secs(20)).await;
    assert!(code == 4008 || code == 1006, "closed as too slow (4008), got {code}");
    assert!(fast_took < Duration::from_secs(15), "the fast client was not held back ({fast_took:?})");
}

#[tokio::test]
async fn token_expiry_suspend_maintenance_limits_and_shutdown_close_or_notify_sockets() {
    let mut stack = Stack::start_with(|c| {
        c.realtime.token_warning = Duration::from_secs(2);
        c.realtime.max_connections_per_tenant = 3;
    })
    .await;
    let c = stack.signup(&unique("life-")).await;

    // A token that expires in 3 s: a warning first, then close 4001.
    let mut claims = claims_for(&c);
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    claims["exp"] = json!(now + 3);
    let short = stack.sign(&claims);
    let mut expiring = connect(&stack.router, &short, "").await;
    let warning = next_json(&mut expiring).await;
    assert_eq!((warning["channel"].as_str(), warning["action"].as_str()), (Some("system"), Some("token_expiring")));
    assert_eq!(close_code(&mut expiring, Duration::from_secs(6)).await, 4001);

    // Maintenance on and off is pushed as system messages.
    let mut ws = connect(&stack.router, &c.token, "").await;
    let put = |on: bool| {
        stack
            .operator(Method::PUT, "/system/maintenance")
            .json(&json!({"maintenance_mode": on, "message": "Upgrade", "tenant": c.slug}))
            .send()
    };
    assert_eq!(put(true).await.unwrap().status(), 200);
    let m = next_json(&mut ws).await;
    assert_eq!((m["action"].as_str(), m["data"]["maintenance_mode"].as_bool()), (Some("maintenance"), Some(true)));
    assert_eq!(put(false).await.unwrap().status(), 200);
    let m = next_json(&mut ws).await;
    assert_eq!((m["action"].as_str(), m["data"]["maintenance_mode"].as_bool()), (Some("maintenance"), Some(false)));

    // Per-tenant limit: 3 sockets; the 4th is refused with a clear status.
    let _second = connect(&stack.router, &c.token, "").await;
    let _third = connect(&stack.router, &c.token, "").await;
    let url = format!("{}/ws?token={}", stack.router.replace("http://", "ws://"), c.token);
    match tokio_tungstenite::connect_async(url).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => assert_eq!(response.status(), 429),
        other => panic!("the 4th socket should be refused, got {:?}", other.map(|_| ())),
    }

    // Suspending the tenant closes its sockets.
    let suspend = stack.operator(Method::PATCH, &format!("/tenants/{}", c.id)).json(&json!({"status": "suspended"}));
    assert_eq!(suspend.send().await.unwrap().status(), 200);
    assert_eq!(close_code(&mut ws, Duration::from_secs(5)).await, 4003);
    let resume = stack.operator(Method::PATCH, &format!("/tenants/{}", c.id)).json(&json!({"status": "active"}));
    assert_eq!(resume.send().await.unwrap().status(), 200);
    assert!(
        eventually(|| async { stack.call(Method::GET, "/employees", &c.token).send().await.unwrap().status() == 200 })
            .await
    );

    // Graceful shutdown: "going away".
    let mut last = connect(&stack.router, &c.token, "").await;
    let stopping = stack.stop_router();
    let (code, ()) = tokio::join!(close_code(&mut last, Duration::from_secs(10)), stopping);
    assert_eq!(code, u16::from(CloseCode::Away));
}

#[tokio::test]
async fn an_event_whose_wake_up_was_lost_arrives_by_the_periodic_recheck() {
    let stack = Stack::start_with(|c| c.realtime.recheck_interval = Duration::from_secs(1)).await;
    let c = stack.signup(&unique("lost-")).await;
    let mut ws = connect(&stack.router, &c.token, "").await;
    let first = add(&stack, &stack.router, &c, "first@x.example.com").await;
    assert_eq!(next_json(&mut ws).await["seq"], first);
    // A writer that died between its commit and its wake-up: the event is only in the outbox.
    let mut conn = tenant_conn(&stack, &c).await;
    let orphan = tenant_schema::outbox::append(&mut conn, "employees", "updated", None, &json!({"note": "orphan"}))
        .await
        .unwrap();
    assert_eq!(orphan.seq, first + 1);
    let m = next_json(&mut ws).await;
    assert_eq!(m["seq"], orphan.seq, "the re-check delivered the orphaned event");
    assert_eq!(m["data"]["note"], "orphan");
}

#[tokio::test]
async fn a_slow_replay_holds_no_pooled_connection_while_its_client_dawdles() {
    // One connection per tenant: a replay that held it while blocked on its socket would make
    // every other request of the company wait for it (503 after the acquire timeout).
    let stack = Stack::start_with(|c| {
        c.pool.max_per_tenant = 1;
        c.realtime.send_timeout = Duration::from_secs(20);
    })
    .await;
    let c = stack.signup(&unique("replay-")).await;
    let mut conn = tenant_conn(&stack, &c).await;
    let mut tx = sqlx::Connection::begin(&mut conn).await.unwrap();
    let big = json!({"note": "x".repeat(4000)});
    for _ in 0..1500 {
        tenant_schema::outbox::append(&mut tx, "employees", "updated", None, &big).await.unwrap();
    }
    tx.commit().await.unwrap();
    sqlx::Connection::close(conn).await.ok();

    // Replays everything from the start and never reads: its sends block within a few batches.
    let url_token = format!("{}&since=0", c.token);
    let _slow = connect_slow(&stack.router, &url_token).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    for _ in 0..5 {
        let listed = stack.call(Method::GET, "/employees?limit=1", &c.token).send().await.unwrap();
        assert_eq!(listed.status(), 200, "{}", listed.text().await.unwrap());
    }
}
