//! The shared harness: a control plane and a tenant router as `stack` starts them (their real
//! `App::build`, a catalog of their own on the shared throwaway Postgres), and app instances
//! driven through `egui_kittest` by label.

use std::time::{Duration, Instant};

use desktop_egui::app::{NexaApp, SettingsStore};
pub use desktop_egui::credentials::CredentialStore;
use desktop_egui::settings::Settings;
use egui::accesskit::Role;
use egui_kittest::Harness;
use egui_kittest::kittest::Queryable;
use serde_json::{Value, json};

pub use stack::TEST_PASSWORD as PASSWORD;

pub type App = Harness<'static, NexaApp>;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
}

/// The one-time code in a mail (`XXXX-XXXX-XXXX-XXXX`).
pub fn code_in(mail: &str) -> String {
    mail.split(|c: char| !(c.is_ascii_alphanumeric() || c == '-'))
        .find(|w| w.len() == 19 && w.split('-').count() == 4 && w.split('-').all(|g| g.len() == 4))
        .unwrap_or_else(|| panic!("a code in {mail}"))
        .to_owned()
}

pub fn unique(prefix: &str) -> String {
    format!("{prefix}{}", &uuid::Uuid::new_v4().simple().to_string()[..8])
}

/// A signed-up company and its admin.
pub struct Company {
    pub slug: String,
    pub name: String,
    pub email: String,
    pub token: String,
}

/// Both services on their own runtime; stopped when dropped.
pub struct Stack {
    pub control_plane: String,
    pub router: String,
    operator_token: String,
    http: reqwest::Client,
    platform: stack::Platform,
    /// Where the control plane's mail goes, when started with [`Stack::start_mailing`].
    mail: Option<stack::smtp_sink::SmtpSink>,
    // Last: dropped after the services were told to stop.
    runtime: tokio::runtime::Runtime,
}

impl Stack {
    pub fn start() -> Self {
        Self::start_with(|_| {}, |_| {})
    }

    /// Starts the services with their configurations changed by the tweaks.
    pub fn start_with(
        control_plane: impl FnOnce(&mut stack::ControlPlaneConfig) + Send + 'static,
        router: impl Fn(&mut stack::RouterConfig) + Send + Sync + 'static,
    ) -> Self {
        Self::start_on(runtime(), None, 1, control_plane, router)
    }

    /// Both services on HTTPS, their certificate from a CA made in `ca_dir`; apps from
    /// [`Stack::app`] trust that CA through their settings.
    pub fn start_tls(ca_dir: &std::path::Path) -> Self {
        let tls = stack::LocalTls::generate(ca_dir).expect("a test CA");
        Self::start_built(runtime(), None, stack::Platform::builder_for_tests().tls(tls))
    }

    /// Two router replicas: the app talks to the first; the second serves while it is away.
    pub fn start_two_routers() -> Self {
        Self::start_on(runtime(), None, 2, |_| {}, |_| {})
    }

    /// Starts the services with the control plane mailing to a real SMTP sink ([`Stack::mail_to`]).
    pub fn start_mailing() -> Self {
        let runtime = runtime();
        let sink = runtime.block_on(stack::smtp_sink::SmtpSink::start()).expect("the SMTP sink starts");
        let url = sink.url();
        let mailing = move |c: &mut stack::ControlPlaneConfig| {
            c.mail.smtp_url = Some(url.into());
            c.mail.retry_base = Duration::from_millis(100);
            c.mail.poll_interval = Duration::from_millis(200);
        };
        Self::start_on(runtime, Some(sink), 1, mailing, |_| {})
    }

    fn start_on(
        runtime: tokio::runtime::Runtime,
        mail: Option<stack::smtp_sink::SmtpSink>,
        routers: usize,
        control_plane: impl FnOnce(&mut stack::ControlPlaneConfig) + Send + 'static,
        router: impl Fn(&mut stack::RouterConfig) + Send + Sync + 'static,
    ) -> Self {
        let builder = stack::Platform::builder_for_tests()
            .routers(routers)
            .control_plane(control_plane)
            .router(move |_, c| router(c));
        Self::start_built(runtime, mail, builder)
    }

    fn start_built(
        runtime: tokio::runtime::Runtime,
        mail: Option<stack::smtp_sink::SmtpSink>,
        builder: stack::PlatformBuilder,
    ) -> Self {
        let platform = runtime.block_on(builder.start()).expect("the platform starts");
        Self {
            control_plane: platform.control_plane.url.clone(),
            router: platform.router_url().to_owned(),
            operator_token: platform.operator_token.clone(),
            // Trusts the platform's CA when it serves HTTPS.
            http: platform.http.clone(),
            platform,
            mail,
            runtime,
        }
    }

    /// The first mail to `to` whose text contains `containing`, waiting up to 15 s.
    pub fn mail_to(&self, to: &str, containing: &str) -> String {
        let sink = self.mail.as_ref().expect("started with Stack::start_mailing");
        let found =
            self.runtime.block_on(sink.wait_for(Duration::from_secs(15), |m| m.contains(to) && m.contains(containing)));
        found.unwrap_or_else(|| panic!("no mail to {to} containing {containing:?}"))
    }

    /// Invites `email` with `role` through the API and accepts with the mailed code; the
    /// member's user id.
    pub fn invite_and_accept(&self, company: &Company, email: &str, role: &str, password: &str) -> String {
        let body = json!({"email": email, "role": role});
        let url = format!("{}/invitations", self.control_plane);
        let (status, answer) = self.send(self.http.post(url).bearer_auth(&company.token).json(&body));
        assert_eq!(status, 201, "{answer}");
        let code = code_in(&self.mail_to(email, "Accept an invitation"));
        let body = json!({"code": code, "password": password, "full_name": "Sam Staff"});
        let (status, answer) =
            self.send(self.http.post(format!("{}/invitations/accept", self.control_plane)).json(&body));
        assert_eq!(status, 201, "{answer}");
        let (status, members) =
            self.send(self.http.get(format!("{}/users", self.control_plane)).bearer_auth(&company.token));
        assert_eq!(status, 200, "{members}");
        let member = members.as_array().unwrap().iter().find(|m| m["email"] == email).cloned().unwrap();
        member["id"].as_str().unwrap().to_owned()
    }

    pub fn set_role(&self, company: &Company, user: &str, role: &str) {
        let url = format!("{}/users/{user}", self.control_plane);
        let (status, answer) = self.send(self.http.patch(url).bearer_auth(&company.token).json(&json!({"role": role})));
        assert_eq!(status, 200, "{answer}");
    }

    pub fn remove_member(&self, company: &Company, user: &str) {
        let url = format!("{}/users/{user}", self.control_plane);
        let (status, answer) = self.send(self.http.delete(url).bearer_auth(&company.token));
        assert_eq!(status, 204, "{answer}");
    }

    /// A request to the control plane's operator API.
    pub fn as_operator(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.http.request(method, format!("{}{path}", self.control_plane)).bearer_auth(&self.operator_token)
    }

    /// Sends `request`: its status and JSON answer (`null` when there is none).
    pub fn send(&self, request: reqwest::RequestBuilder) -> (u16, Value) {
        self.runtime.block_on(async {
            let response = request.send().await.unwrap();
            let status = response.status().as_u16();
            let body = response.json::<Value>().await.unwrap_or(Value::Null);
            (status, body)
        })
    }

    /// Signs a company up through the API (not the wizard).
    pub fn signup(&self, slug: &str) -> Company {
        self.signup_as(slug, &format!("admin@{slug}.example.com"))
    }

    /// Signs a company up with the given admin (an existing user becomes admin of one more).
    pub fn signup_as(&self, slug: &str, email: &str) -> Company {
        let company = self.runtime.block_on(self.platform.signup_as(slug, email)).expect("signup");
        Company { slug: company.slug, name: company.name, email: company.admin_email, token: company.token }
    }

    /// Ends the sign-in of `refresh_token` (as a sign-out elsewhere would).
    pub fn logout(&self, refresh_token: &str) {
        let body = json!({ "refresh_token": refresh_token });
        let (status, _) = self.send(self.http.post(format!("{}/auth/logout", self.control_plane)).json(&body));
        assert_eq!(status, 204);
    }

    /// `POST /auth/refresh` with `refresh_token`: its status and the next refresh token.
    pub fn refresh(&self, refresh_token: &str) -> (u16, Option<String>) {
        let body = json!({ "refresh_token": refresh_token });
        let (status, answer) = self.send(self.http.post(format!("{}/auth/refresh", self.control_plane)).json(&body));
        (status, answer["refresh_token"].as_str().map(str::to_owned))
    }

    pub fn add_employee(&self, company: &Company, first: &str, last: &str) -> Value {
        self.add_employee_via(0, company, first, last)
    }

    /// Adds an employee through router replica `router`.
    pub fn add_employee_via(&self, router: usize, company: &Company, first: &str, last: &str) -> Value {
        let body = json!({
            "first_name": first, "last_name": last, "hire_date": "2024-01-15",
            "email": format!("{}@{}.example.com", last.to_lowercase(), company.slug),
        });
        let (status, created) = self.send(
            self.http
                .post(format!("{}/employees", self.platform.routers[router].url))
                .bearer_auth(&company.token)
                .json(&body),
        );
        assert_eq!(status, 201, "{created}");
        created
    }

    pub fn add_department(&self, company: &Company, name: &str) -> Value {
        let body = json!({"name": name});
        let (status, created) =
            self.send(self.http.post(format!("{}/departments", self.router)).bearer_auth(&company.token).json(&body));
        assert_eq!(status, 201, "{created}");
        created
    }

    pub fn patch_employee(&self, company: &Company, id: &str, body: Value) -> Value {
        let (status, updated) = self
            .send(self.http.patch(format!("{}/employees/{id}", self.router)).bearer_auth(&company.token).json(&body));
        assert_eq!(status, 200, "{updated}");
        updated
    }

    pub fn get_employee(&self, company: &Company, id: &str) -> Value {
        let (status, found) =
            self.send(self.http.get(format!("{}/employees/{id}", self.router)).bearer_auth(&company.token));
        assert_eq!(status, 200, "{found}");
        found
    }

    pub fn employees(&self, company: &Company) -> Vec<Value> {
        let (status, page) =
            self.send(self.http.get(format!("{}/employees?limit=200", self.router)).bearer_auth(&company.token));
        assert_eq!(status, 200, "{page}");
        page["items"].as_array().cloned().unwrap_or_default()
    }

    pub fn set_maintenance(&self, on: bool, message: &str) {
        let body = json!({"maintenance_mode": on, "message": message});
        let (status, answer) = self.send(
            self.http
                .put(format!("{}/system/maintenance", self.control_plane))
                .bearer_auth(&self.operator_token)
                .json(&body),
        );
        assert_eq!(status, 200, "{answer}");
    }

    pub fn set_client_versions(&self, min: &str, latest: &str) {
        let body = json!({"min_client_version": min, "latest_version": latest});
        let (status, answer) = self.send(
            self.http
                .put(format!("{}/system/client-versions", self.control_plane))
                .bearer_auth(&self.operator_token)
                .json(&body),
        );
        assert_eq!(status, 200, "{answer}");
        // The router learns of it from the catalog's notice, a moment later: the tests are
        // about what the app does with a 426, not about that moment.
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.send(self.http.get(format!("{}/system/status", self.router))).1["min_client_version"] != min {
            assert!(Instant::now() < deadline, "the router learnt the new versions in time");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Stops router replica `index` (its sockets close), as a deploy or a crash would.
    pub fn stop_router(&mut self, index: usize) {
        self.runtime.block_on(self.platform.stop_router(index)).expect("the router stops");
    }

    /// Starts router replica `index` again on the same port.
    pub fn restart_router(&mut self, index: usize) {
        self.runtime.block_on(self.platform.restart_router(index)).expect("the router starts again");
    }

    /// An app instance with its settings in `settings` (pointed at this stack first) and its
    /// sign-in kept in `credentials`: what a window started again finds.
    /// `link`: the app was started by an invitation link, opened before the first frame as
    /// `main` does.
    pub fn app_with(&self, settings: &std::path::Path, credentials: CredentialStore, link: Option<&str>) -> App {
        if !settings.exists() {
            let fresh = Settings { server_url: self.control_plane.clone(), ..Settings::default() };
            fresh.save(settings).unwrap();
        }
        let mut app = NexaApp::new(SettingsStore::File(settings.into())).with_credentials(credentials);
        if let Some(link) = link {
            app.open_link(link);
        }
        Harness::builder().with_size(egui::vec2(1280.0, 800.0)).build_ui_state(|ui, app: &mut NexaApp| app.ui(ui), app)
    }

    /// A fresh app instance pointed at this stack, settings in memory only.
    pub fn app(&self) -> App {
        let settings = Settings {
            server_url: self.control_plane.clone(),
            extra_ca_file: self.platform.tls.as_ref().map(|tls| tls.ca_cert.clone()),
            ..Settings::default()
        };
        let app = NexaApp::with_settings(settings, SettingsStore::Memory);
        Harness::builder().with_size(egui::vec2(1280.0, 800.0)).build_ui_state(|ui, app: &mut NexaApp| app.ui(ui), app)
    }
}

/// Steps frames until `check` holds, for up to 20 s; panics with `what` otherwise.
#[track_caller]
pub fn wait_for(app: &mut App, what: &str, check: impl Fn(&App) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        app.step();
        if check(app) {
            // One more frame so what the answer changed is laid out.
            app.step();
            return;
        }
        if Instant::now() > deadline {
            panic!("timed out waiting for {what} (screen: {})", app.state().screen.name());
        }
        std::thread::sleep(Duration::from_millis(15));
    }
}

/// Waits until a node with exactly this label is shown.
#[track_caller]
pub fn wait_for_label(app: &mut App, label: &str) {
    wait_for(app, label, |app| app.query_by_label(label).is_some());
}

#[track_caller]
pub fn wait_for_label_containing(app: &mut App, text: &str) {
    wait_for(app, text, |app| app.query_all_by_label_contains(text).next().is_some());
}

/// Clicks the node labelled `label` and runs the frames the click needs.
#[track_caller]
pub fn click(app: &mut App, label: &str) {
    app.get_by_label(label).click();
    app.step();
    app.step();
}

/// The text field labelled `label` (a column header may carry the same words).
#[track_caller]
pub fn field<'a>(app: &'a App, label: &'a str) -> egui_kittest::Node<'a> {
    app.get_by(move |node| {
        node.label().as_deref() == Some(label)
            && matches!(node.role(), Role::TextInput | Role::PasswordInput | Role::MultilineTextInput)
    })
}

/// Focuses the field labelled `label` and types `text` into it.
#[track_caller]
pub fn type_into(app: &mut App, label: &str, text: &str) {
    field(app, label).focus();
    app.step();
    field(app, label).type_text(text);
    app.step();
    app.step();
}

/// Replaces the text of the field labelled `label`.
#[track_caller]
pub fn replace_text(app: &mut App, label: &str, text: &str) {
    field(app, label).focus();
    app.step();
    app.key_press_modifiers(egui::Modifiers::COMMAND, egui::Key::A);
    app.step();
    field(app, label).type_text(text);
    app.step();
    app.step();
}

/// Signs in from the first screen and waits for the employees screen to be live.
#[track_caller]
pub fn sign_in(app: &mut App, company: &Company) {
    wait_for_label_containing(app, "Connected to NexaCore");
    type_into(app, "E-mail", &company.email);
    type_into(app, "Password", PASSWORD);
    click(app, "Sign in");
    wait_for_label(app, &company.name);
    wait_for_label(app, "Live");
}

/// Signs out through the user menu (the button with the user's e-mail).
#[track_caller]
pub fn sign_out(app: &mut App, email: &str) {
    click(app, email);
    click(app, "Sign out");
}

/// An app pointed at this stack that trusts the public roots only.
pub fn app_without_extra_ca(stack: &Stack) -> App {
    let settings = Settings { server_url: stack.control_plane.clone(), ..Settings::default() };
    let app = NexaApp::with_settings(settings, SettingsStore::Memory);
    Harness::builder().with_size(egui::vec2(1280.0, 800.0)).build_ui_state(|ui, app: &mut NexaApp| app.ui(ui), app)
}

/// An app whose server address answers nothing (a port just freed): for screens driven by
/// answers fed to [`NexaApp::handle`], where every real call fails fast with "unreachable".
pub fn offline_app() -> App {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let url = format!("http://127.0.0.1:{port}");
    let settings = Settings { server_url: url, ..Settings::default() };
    let app = NexaApp::with_settings(settings, SettingsStore::Memory);
    Harness::builder().with_size(egui::vec2(1280.0, 800.0)).build_ui_state(|ui, app: &mut NexaApp| app.ui(ui), app)
}

/// Enters a company as `email` with `role`, as a login answer would, on an offline app.
pub fn enter_offline(app: &mut App, company: &str, email: &str, role: &str) {
    let token = desktop_egui::api::wire::LoginToken {
        access_token: "offline.token.value".into(),
        expires_in: 900,
        role: role.into(),
        tenant: desktop_egui::api::wire::TenantSummary {
            slug: "acme".into(),
            name: company.into(),
            ..Default::default()
        },
        api_url: app.state().settings().server_url.clone(),
        ws_url: "ws://127.0.0.1:9/ws".into(),
        ..Default::default()
    };
    app.state_mut().enter_company(token, email.into());
    wait_for_label(app, company);
}

/// The signed-in workspace, when the app shows one.
pub fn workspace(app: &App) -> Option<&desktop_egui::ui::workspace::Workspace> {
    match &app.state().screen {
        desktop_egui::app::Screen::Company(workspace) => Some(workspace),
        _ => None,
    }
}

/// Feeds an answer as if a background job had sent it, then lays out the result.
pub fn feed(app: &mut App, msg: desktop_egui::app::Msg) {
    app.state_mut().handle(msg);
    app.step();
    app.step();
}

/// Whether a node with exactly this label is shown.
pub fn shown(app: &App, label: &str) -> bool {
    app.query_by_label(label).is_some()
}
