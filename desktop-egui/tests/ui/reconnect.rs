//! Reconnecting: the app's live task on a WebSocket server that goes away and comes back (a
//! stand-in for the router's socket and `/health`, on one fixed port; data calls go to the
//! real router). The countdown moves, "Reconnect now" tries at once, a recovered server is
//! found by its health check, and the outage's error line goes on recovery.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use desktop_egui::api::ApiError;
use desktop_egui::app::{DataAnswer, Msg, PeopleAnswer, Screen};
use desktop_egui::live::LiveStatus;
use egui_kittest::kittest::{NodeT, Queryable};
use tokio::io::AsyncWriteExt;

use crate::helpers::*;

/// A socket server on a fixed address that can be stopped (every connection drops) and
/// started again. `/health` answers 200 while `healthy`, else 503.
struct FlakyRouter {
    addr: SocketAddr,
    healthy: Arc<AtomicBool>,
    task: Option<tokio::task::JoinHandle<()>>,
    runtime: tokio::runtime::Runtime,
}

impl FlakyRouter {
    fn start() -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
        let listener = runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
        let addr = listener.local_addr().unwrap();
        let mut router = Self { addr, healthy: Arc::new(AtomicBool::new(true)), task: None, runtime };
        router.serve(listener);
        router
    }

    fn ws_url(&self) -> String {
        format!("ws://{}/ws", self.addr)
    }

    fn serve(&mut self, listener: tokio::net::TcpListener) {
        let healthy = self.healthy.clone();
        self.task = Some(self.runtime.spawn(async move {
            // Owned here: aborting the server drops every connection with it.
            let mut connections = tokio::task::JoinSet::new();
            while let Ok((mut stream, _)) = listener.accept().await {
                let healthy = healthy.clone();
                connections.spawn(async move {
                    let mut head = [0u8; 1024];
                    let n = stream.peek(&mut head).await.unwrap_or(0);
                    let request = String::from_utf8_lossy(&head[..n]).to_ascii_lowercase();
                    if request.contains("upgrade: websocket") {
                        // Like the router, it answers with the protocol it speaks: a client
                        // that offered protocols refuses a handshake that names none.
                        let speak = |_: &tokio_tungstenite::tungstenite::handshake::server::Request,
                                     mut response: tokio_tungstenite::tungstenite::handshake::server::Response| {
                            response.headers_mut().insert(
                                "sec-websocket-protocol",
                                desktop_egui::live::PROTOCOL.parse().expect("a header value"),
                            );
                            Ok(response)
                        };
                        if let Ok(mut socket) = tokio_tungstenite::accept_hdr_async(stream, speak).await {
                            use futures::StreamExt;
                            while let Some(Ok(_)) = socket.next().await {}
                        }
                    } else {
                        let answer = if healthy.load(Ordering::SeqCst) {
                            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 15\r\nconnection: close\r\n\r\n{\"status\":\"ok\"}"
                        } else {
                            "HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                        };
                        let _ = stream.write_all(answer.as_bytes()).await;
                    }
                });
            }
        }));
    }

    fn stop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
            let _ = self.runtime.block_on(task);
        }
    }

    fn restart(&mut self, healthy: bool) {
        self.healthy.store(healthy, Ordering::SeqCst);
        let listener = self.runtime.block_on(tokio::net::TcpListener::bind(self.addr)).expect("the same port again");
        self.serve(listener);
    }
}

fn live_status(app: &App) -> LiveStatus {
    match &app.state().screen {
        Screen::Company(w) => w.live.clone(),
        other => panic!("not in the company but {}", other.name()),
    }
}

/// The seconds the indicator counts down, if it shows a countdown.
fn countdown(app: &App) -> Option<u64> {
    let node = app.query_all_by_label_contains("Reconnecting (in ").next()?;
    // A plain label's text is its accesskit value.
    let label = node.accesskit_node().value()?;
    label.trim_start_matches("Reconnecting (in ").split('s').next()?.parse().ok()
}

/// Waits for a reconnect wait of at least `at_least` still to go; its deadline.
#[track_caller]
fn wait_for_a_long_wait(app: &mut App, at_least: Duration) -> Instant {
    wait_for(
        app,
        "a long wait before the next attempt",
        |app| matches!(live_status(app), LiveStatus::Reconnecting { at, .. } if at > Instant::now() + at_least),
    );
    match live_status(app) {
        LiveStatus::Reconnecting { at, .. } => at,
        other => panic!("{other:?}"),
    }
}

/// Signs `company`'s admin in, with data calls to the real router and the live socket to `router`.
fn enter(app: &mut App, stack: &Stack, company: &Company, router: &FlakyRouter) {
    let token = desktop_egui::api::wire::LoginToken {
        access_token: company.token.clone(),
        expires_in: 900,
        role: "admin".into(),
        tenant: desktop_egui::api::wire::TenantSummary {
            slug: company.slug.clone(),
            name: company.name.clone(),
            ..Default::default()
        },
        api_url: stack.router.clone(),
        ws_url: router.ws_url(),
        ..Default::default()
    };
    app.state_mut().enter_company(token, company.email.clone());
}

#[test]
fn after_an_outage_the_countdown_moves_reconnect_now_tries_at_once_and_the_error_line_goes() {
    let stack = Stack::start();
    let company = stack.signup(&unique("reconnect-"));
    let mut router = FlakyRouter::start();
    let mut app = stack.app();
    enter(&mut app, &stack, &company, &router);
    wait_for_label(&mut app, "Live");

    router.stop();
    // The server is gone (its health check too): the waits grow; the countdown moves.
    wait_for_a_long_wait(&mut app, Duration::from_millis(2100));
    let first = countdown(&app).expect("a countdown");
    wait_for(&mut app, "the countdown to move", |app| countdown(app).is_some_and(|n| n < first));
    assert!(shown(&app, "Reconnect now"));
    // A load and a save that failed during the outage leave their error lines.
    let refused = || ApiError::Unreachable("connection refused".into());
    feed(&mut app, Msg::Data(DataAnswer::Employees(Err(refused()))));
    wait_for_label_containing(&mut app, "Could not load the employees");
    click(&mut app, "Add employee");
    feed(&mut app, Msg::Data(DataAnswer::Saved(Err(refused()))));
    wait_for_label(&mut app, "cannot reach the server: connection refused");

    // Back, but not answering its health check yet: only "Reconnect now" brings it back early.
    let at = wait_for_a_long_wait(&mut app, Duration::from_millis(1500));
    router.restart(false);
    click(&mut app, "Reconnect now");
    wait_for_label(&mut app, "Live");
    assert!(Instant::now() < at, "reconnected before the attempt it was waiting for");
    wait_for(&mut app, "the outage's error line to go", |app| {
        app.query_all_by_label_contains("Could not load the employees").next().is_none()
    });
    assert!(app.query_by_label("cannot reach the server: connection refused").is_none());
    assert!(app.query_by_label("New employee").is_some(), "the form stays open");
    assert!(app.query_by_label("Reconnect now").is_none());

    // Gone again, then back and healthy: its health check is noticed within about a second.
    router.stop();
    wait_for_a_long_wait(&mut app, Duration::from_millis(2100));
    router.restart(true);
    let back = Instant::now();
    wait_for_label(&mut app, "Live");
    assert!(back.elapsed() < Duration::from_millis(1900), "found in {:?}", back.elapsed());
}

#[test]
fn the_people_pages_outage_errors_go_when_the_server_is_back() {
    let stack = Stack::start();
    let company = stack.signup(&unique("outage-"));
    let mut router = FlakyRouter::start();
    let mut app = stack.app();
    enter(&mut app, &stack, &company, &router);
    wait_for_label(&mut app, "Live");
    click(&mut app, "People");
    wait_for(&mut app, "the members", |app| workspace(app).is_some_and(|w| !w.people.members.is_empty()));

    router.stop();
    wait_for_a_long_wait(&mut app, Duration::from_millis(1500));
    // A reload and an action that failed during the outage leave their error lines.
    let refused = || ApiError::Unreachable("connection refused".into());
    feed(&mut app, Msg::People(PeopleAnswer::Loaded { members: Err(refused()), invitations: Err(refused()) }));
    wait_for_label_containing(&mut app, "Could not load the members");
    feed(&mut app, Msg::People(PeopleAnswer::Revoked(uuid::Uuid::nil(), Err(refused()))));
    wait_for_label_containing(&mut app, "Could not revoke the invitation");

    router.restart(true);
    wait_for_label(&mut app, "Live");
    wait_for(&mut app, "the outage's error lines to go", |app| {
        app.query_all_by_label_contains("Could not").next().is_none()
    });
    wait_for(&mut app, "the members again", |app| workspace(app).is_some_and(|w| !w.people.members.is_empty()));
}

#[test]
fn a_restarted_router_is_found_again_and_what_changed_meanwhile_arrives() {
    let mut stack = Stack::start_two_routers();
    let company = stack.signup(&unique("restart-"));
    stack.add_employee(&company, "Before", "Outage");
    let mut app = stack.app();
    sign_in(&mut app, &company);
    wait_for_label(&mut app, "Before");

    // The app's router goes away; a change lands through the other replica meanwhile.
    stack.stop_router(0);
    wait_for(&mut app, "the lost connection", |app| matches!(live_status(app), LiveStatus::Reconnecting { .. }));
    stack.add_employee_via(1, &company, "During", "Restart");

    stack.restart_router(0);
    wait_for_label(&mut app, "Live");
    // The replay from the last seen event brings the change made while the app was away.
    wait_for_label(&mut app, "During");
    assert!(app.query_all_by_label_contains("Could not").next().is_none(), "no error line is left");
}
