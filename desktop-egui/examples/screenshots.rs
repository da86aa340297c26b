//! A screenshot tour: starts the real services (as the UI tests do, with the control plane
//! mailing to a real SMTP sink), sets up a company with members of each role and pending
//! invitations through the real API, opens the real app in a real window, and walks it
//! through the sign-in screen (with "Accept an invitation" and "Forgot password"), each wizard
//! step, the employees screen, the edit form, a conflict, the user menu, the change-password
//! dialog, the Departments & accounts and People pages (clicked in the sidebar), the employees
//! screen as staff, the maintenance dialog, and the updater's screens (an update on offer in
//! About, Update required, its download, a rollback notice), capturing the screen after each with
//! ImageMagick's `import -window root`. Run it under Xvfb:
//!
//! `xvfb-run -s "-screen 0 1280x800x24" target/debug/examples/screenshots docs/screenshots`

#[path = "../tests/ui/helpers.rs"]
#[allow(dead_code, reason = "the UI tests' harness, of which the tour needs only the services")]
mod helpers;

use std::collections::VecDeque;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use desktop_egui::api::Client;
use desktop_egui::api::wire::{
    AcceptInvitation, AdminInput, CreateTenantRequest, LoginOutcome, LoginRequest, LoginToken, NewInvitation, Role,
};
use desktop_egui::app::{NexaApp, Screen, SettingsStore};
use desktop_egui::live::LiveStatus;
use desktop_egui::settings::Settings;
use desktop_egui::ui::employees::EmployeeForm;
use desktop_egui::ui::password::NewPassword;
use desktop_egui::ui::sign_in::{AcceptForm, Mode, ResetForm, ServerCheck};
use desktop_egui::ui::update::UpdateView;
use desktop_egui::ui::wizard::{CreateState, SlugState, Wizard};
use desktop_egui::ui::workspace::{ChangePassword, Page, Workspace};
use desktop_egui::updater::state::Outcome;
use helpers::{Company, PASSWORD, Stack, code_in};
use serde_json::{Value, json};

const PEOPLE: [(&str, &str, &str); 24] = [
    ("Ada", "Lovelace", "Analyst"),
    ("Grace", "Hopper", "Rear Admiral"),
    ("Alan", "Turing", "Cryptanalyst"),
    ("Edsger", "Dijkstra", "Professor"),
    ("Barbara", "Liskov", "Architect"),
    ("Donald", "Knuth", "Author"),
    ("Frances", "Allen", "Compiler engineer"),
    ("Ken", "Thompson", "Engineer"),
    ("Dennis", "Ritchie", "Engineer"),
    ("Margaret", "Hamilton", "Flight software lead"),
    ("John", "Backus", "Language designer"),
    ("Radia", "Perlman", "Network engineer"),
    ("Tim", "Berners-Lee", "Web architect"),
    ("Katherine", "Johnson", "Mathematician"),
    ("Leslie", "Lamport", "Researcher"),
    ("Hedy", "Lamarr", "Inventor"),
    ("Niklaus", "Wirth", "Language designer"),
    ("Shafi", "Goldwasser", "Cryptographer"),
    ("Tony", "Hoare", "Professor"),
    ("Adele", "Goldberg", "Smalltalk lead"),
    ("Jean", "Sammet", "Language designer"),
    ("Fran", "Bilas", "Programmer"),
    ("Kathleen", "Booth", "Assembler designer"),
    ("Sophie", "Wilson", "Chip designer"),
];

/// The company's members besides its admin: (full name, e-mail, role); each is invited and
/// accepts with the code from the mail.
const MEMBERS: [(&str, &str, Role); 4] = [
    ("Priya Raman", "priya@acme.example.com", Role::Manager),
    ("Jonas Weber", "jonas@acme.example.com", Role::Manager),
    ("Tom Becker", "tom@acme.example.com", Role::Staff),
    ("Mei Chen", "mei@acme.example.com", Role::Staff),
];
/// Invited, not yet accepted; the first is the one accepting on the "Accept an invitation" shot.
const PENDING: [(&str, &str, Role); 3] = [
    ("Nina Kowalski", "nina@acme.example.com", Role::Staff),
    ("Daniel Osei", "daniel@acme.example.com", Role::Manager),
    ("Sara Lindqvist", "sara@acme.example.com", Role::Staff),
];
/// The members' password (and the new one on the password screens).
const MEMBER_PASSWORD: &str = "Harbour-Lights-2026!";
/// The member whose app shows the employees as staff.
const STAFF: usize = 2;

/// The shots, in order: each is set up by [`Tour::enter`], captured when [`Tour::ready`].
const STEPS: [&str; 22] = [
    "sign-in",
    "accept-invitation",
    "forgot-password",
    "wizard-1-company",
    "wizard-2-admin",
    "wizard-3-setup",
    "wizard-4-review",
    "wizard-5-creating",
    "wizard-5-done",
    "employees",
    "employee-edit",
    "employee-conflict",
    "user-menu",
    "change-password",
    "departments-accounts",
    "people",
    "employees-staff",
    "maintenance",
    "update-available",
    "update-required",
    "update-downloading",
    "update-rolled-back",
];

/// Where the window's controls are (1280×800, zoom 1): the sidebar's pages and the user menu.
const NAV_LEDGER: (f32, f32) = (90.0, 78.0);
const NAV_PEOPLE: (f32, f32) = (90.0, 107.0);
const USER_MENU: (f32, f32) = (1250.0, 12.0);

/// A step that has not settled in this long failed.
const STEP_TIMEOUT: Duration = Duration::from_secs(60);

struct Tour {
    app: NexaApp,
    stack: Stack,
    company: Company,
    runtime: tokio::runtime::Runtime,
    out: PathBuf,
    step: usize,
    entered: Instant,
    employee: Option<Value>,
    /// The invitation code mailed to the first pending invitee.
    invite_code: String,
    /// The reset code mailed to the admin.
    reset_code: String,
    /// Input to give the window, one batch of events per frame (clicks in the real window).
    input: VecDeque<Vec<egui::Event>>,
    started: bool,
}

fn main() -> eframe::Result {
    let out = PathBuf::from(std::env::args().nth(1).unwrap_or_else(|| "docs/screenshots".into()));
    std::fs::create_dir_all(&out).expect("the output folder can be made");
    let stack = Stack::start_mailing();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let company = create_company(&runtime, &stack);
    let departments = fetch(&runtime, &stack, &company, reqwest::Method::GET, "/departments", None);
    let departments = departments.as_array().cloned().unwrap_or_default();
    let statuses = ["active", "active", "active", "on_leave", "active", "terminated"];
    for (i, (first, last, title)) in PEOPLE.iter().enumerate() {
        let dept = departments.get(i % departments.len().max(1)).map(|d| d["id"].clone());
        let body = json!({
            "first_name": first, "last_name": last, "job_title": title, "department_id": dept,
            "email": format!("{}@acme.example.com", last.to_lowercase()),
            "hire_date": format!("20{:02}-{:02}-{:02}", 12 + i % 12, 1 + i % 12, 1 + (i * 7) % 28),
            "status": statuses[i % statuses.len()],
        });
        fetch(&runtime, &stack, &company, reqwest::Method::POST, "/employees", Some(body));
    }
    let (invite_code, reset_code) = people(&runtime, &stack, &company);
    let settings = Settings { server_url: stack.control_plane.clone(), ..Settings::default() };
    let app = NexaApp::with_settings(settings, SettingsStore::Memory);
    let tour = Tour {
        app,
        stack,
        company,
        runtime,
        out,
        step: 0,
        entered: Instant::now(),
        employee: None,
        invite_code,
        reset_code,
        input: VecDeque::new(),
        started: false,
    };
    let options = eframe::NativeOptions {
        viewport: egui::ViewportBuilder::default().with_inner_size([1280.0, 800.0]).with_position([0.0, 0.0]),
        ..Default::default()
    };
    eframe::run_native("NexaCore", options, Box::new(move |_| Ok(Box::new(tour))))
}

/// Acme Tools, created as the wizard creates a company; its admin signed in.
fn create_company(runtime: &tokio::runtime::Runtime, stack: &Stack) -> Company {
    let email = "alex@acme.example.com".to_owned();
    let request = CreateTenantRequest {
        company_name: "Acme Tools".into(),
        slug: Some("acme-tools".into()),
        admin: AdminInput { email: email.clone(), password: PASSWORD.into(), full_name: "Alex Morgan".into() },
        timezone: "Europe/Berlin".into(),
        currency: "EUR".into(),
        ..CreateTenantRequest::default()
    };
    let created = runtime
        .block_on(Client::new().create_tenant(&stack.control_plane, &request, &uuid::Uuid::new_v4().to_string()))
        .expect("Acme Tools is created");
    Company { slug: created.tenant.slug.clone(), name: created.tenant.name, email, token: created.access_token }
}

/// Members who accepted their invitations (with the mailed codes), invitations still pending,
/// and a password reset asked for by the admin: the codes for the invitation and the reset.
fn people(runtime: &tokio::runtime::Runtime, stack: &Stack, company: &Company) -> (String, String) {
    let client = Client::new();
    let base = &stack.control_plane;
    let invite = |name: &str, email: &str, role: Role| {
        let invitation = NewInvitation { email: email.into(), role, full_name: Some(name.into()) };
        runtime.block_on(client.invite(base, &company.token, &invitation)).expect("the invitation is sent");
        code_in(&stack.mail_to(email, "Accept an invitation"))
    };
    for (name, email, role) in MEMBERS {
        let code = invite(name, email, role);
        let body = AcceptInvitation { code, password: MEMBER_PASSWORD.into(), full_name: name.into() };
        runtime.block_on(client.accept_invitation(base, &body)).expect("the invitation is accepted");
    }
    let mut codes: Vec<String> = PENDING.iter().map(|(name, email, role)| invite(name, email, *role)).collect();
    runtime.block_on(client.request_password_reset(base, &company.email)).expect("a reset code is sent");
    let reset = code_in(&stack.mail_to(&company.email, "Forgot password"));
    (codes.swap_remove(0), reset)
}

fn fetch(
    runtime: &tokio::runtime::Runtime,
    stack: &Stack,
    company: &Company,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> Value {
    runtime.block_on(async {
        let mut request =
            reqwest::Client::new().request(method, format!("{}{path}", stack.router)).bearer_auth(&company.token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        request.send().await.unwrap().json::<Value>().await.unwrap_or(Value::Null)
    })
}

impl Tour {
    fn wizard(&mut self) -> &mut Wizard {
        match &mut self.app.screen {
            Screen::Wizard(w) => w,
            _ => panic!("not in the wizard"),
        }
    }

    fn workspace(&mut self) -> &mut Workspace {
        match &mut self.app.screen {
            Screen::Company(w) => w,
            _ => panic!("not signed in"),
        }
    }

    fn sign_in_mode(&mut self, mode: Mode) {
        match &mut self.app.screen {
            Screen::SignIn(s) => s.mode = mode,
            _ => panic!("not on the sign-in screen"),
        }
    }

    fn login(&self, email: &str, password: &str) -> LoginToken {
        let base = self.stack.control_plane.clone();
        let request = LoginRequest { email: email.into(), password: password.into(), tenant: None };
        match self.runtime.block_on(Client::new().login(&base, &request)) {
            Ok(LoginOutcome::Signed(token)) => token,
            other => panic!("login of {email} failed: {other:?}"),
        }
    }

    /// A click in the real window at `at`, then the pointer leaves (no hover highlight stays).
    fn click(&mut self, at: (f32, f32)) {
        let pos = egui::pos2(at.0, at.1);
        let button = |pressed| egui::Event::PointerButton {
            pos,
            button: egui::PointerButton::Primary,
            pressed,
            modifiers: egui::Modifiers::NONE,
        };
        self.input.push_back(vec![egui::Event::PointerMoved(pos)]);
        self.input.push_back(vec![button(true)]);
        self.input.push_back(vec![button(false)]);
        self.input.push_back(vec![egui::Event::PointerGone]);
    }

    /// Sets up the current step; returns false when the tour is over.
    fn enter(&mut self) -> bool {
        self.entered = Instant::now();
        // The pointer (in the middle of the screen) leaves: no row stays highlighted.
        self.input.push_back(vec![egui::Event::PointerGone]);
        let Some(name) = STEPS.get(self.step) else {
            self.stack.set_maintenance(false, "");
            return false;
        };
        match *name {
            "sign-in" => {
                if let Screen::SignIn(s) = &mut self.app.screen {
                    s.email = self.company.email.clone();
                }
            }
            "accept-invitation" => {
                let (name, email, _) = PENDING[0];
                let form = AcceptForm {
                    code: self.invite_code.clone(),
                    email: email.into(),
                    full_name: name.into(),
                    password: NewPassword { password: MEMBER_PASSWORD.into(), confirm: MEMBER_PASSWORD.into() },
                    ..AcceptForm::default()
                };
                self.sign_in_mode(Mode::Accept(form));
            }
            "forgot-password" => {
                let form = ResetForm {
                    requested: true,
                    code: self.reset_code.clone(),
                    password: NewPassword { password: MEMBER_PASSWORD.into(), confirm: MEMBER_PASSWORD.into() },
                    ..ResetForm::new(&self.company.email)
                };
                self.sign_in_mode(Mode::Reset(form));
            }
            "wizard-1-company" => {
                let mut w = Wizard::new();
                w.company_name = "Nimbus Freight".into();
                w.slug_state = SlugState::Pending { since: Instant::now() };
                self.app.screen = Screen::Wizard(Box::new(w));
            }
            "wizard-2-admin" => {
                let w = self.wizard();
                w.step = 1;
                w.admin_name = "Nora Admin".into();
                w.admin_email = "nora@nimbus.example.com".into();
                w.password = PASSWORD.into();
                w.confirm = PASSWORD.into();
            }
            "wizard-3-setup" => self.wizard().step = 2,
            "wizard-4-review" => self.wizard().step = 3,
            "wizard-5-creating" => {
                let w = self.wizard();
                w.step = 4;
                w.create = CreateState::InFlight;
            }
            "wizard-5-done" => {
                let request = self.wizard().request();
                let key = self.wizard().idempotency_key.clone();
                let base = self.stack.control_plane.clone();
                let created = self.runtime.block_on(Client::new().create_tenant(&base, &request, &key));
                self.wizard().create = match created {
                    Ok(c) => CreateState::Done(c),
                    Err(e) => CreateState::Failed(e.to_string()),
                };
            }
            "employees" => {
                let token = self.login(&self.company.email, PASSWORD);
                self.app.enter_company(token, self.company.email.clone());
            }
            "employee-edit" => {
                let list =
                    fetch(&self.runtime, &self.stack, &self.company, reqwest::Method::GET, "/employees?q=hopper", None);
                let employee = list["items"][0].clone();
                let e: desktop_egui::api::wire::Employee = serde_json::from_value(employee.clone()).unwrap();
                let s = &mut self.workspace().employees;
                s.selected = Some(e.id);
                let mut form = EmployeeForm::edit(&e);
                form.fields.job_title = "Commodore".into();
                s.form = Some(form);
                self.employee = Some(employee);
            }
            "employee-conflict" => {
                // Someone else saves first; the save that follows lost the race.
                let id = self.employee.as_ref().unwrap()["id"].as_str().unwrap().to_owned();
                let patched = fetch(
                    &self.runtime,
                    &self.stack,
                    &self.company,
                    reqwest::Method::PATCH,
                    &format!("/employees/{id}"),
                    Some(json!({"job_title": "Rear Admiral (retired)", "status": "on_leave"})),
                );
                if let Some(form) = self.workspace().employees.form.as_mut()
                    && let Ok(theirs) = serde_json::from_value(patched)
                {
                    form.lost_race(theirs);
                }
            }
            "user-menu" => {
                let s = &mut self.workspace().employees;
                s.form = None;
                s.selected = None;
                self.click(USER_MENU);
            }
            "change-password" => {
                // The menu's "Change password…" opens it; the menu closes.
                self.input.push_back(vec![egui::Event::Key {
                    key: egui::Key::Escape,
                    physical_key: None,
                    pressed: true,
                    repeat: false,
                    modifiers: egui::Modifiers::NONE,
                }]);
                self.workspace().password = Some(ChangePassword {
                    current: PASSWORD.into(),
                    new: NewPassword { password: MEMBER_PASSWORD.into(), confirm: MEMBER_PASSWORD.into() },
                    ..ChangePassword::default()
                });
            }
            "departments-accounts" => {
                self.workspace().password = None;
                self.click(NAV_LEDGER);
            }
            "people" => {
                self.click(NAV_PEOPLE);
                let invite = &mut self.workspace().people.invite;
                invite.email = "olivia@acme.example.com".into();
                invite.full_name = "Olivia Park".into();
                invite.role = Role::Manager;
            }
            "employees-staff" => {
                let (_, email, _) = MEMBERS[STAFF];
                let token = self.login(email, MEMBER_PASSWORD);
                self.app.enter_company(token, email.into());
            }
            "maintenance" => {
                let s = &mut self.workspace().employees;
                s.form = None;
                s.selected = None;
                self.stack.set_maintenance(true, "Upgrading the database. Back in about ten minutes.");
            }
            // The updater's screens, in the states its background jobs report (a release signed
            // by the compiled-in key cannot be made here: its private key is not in the repository).
            "update-available" => {
                self.stack.set_maintenance(false, "");
                self.app.updates.view = UpdateView::Available {
                    version: "0.2.0".into(),
                    notes: "Faster employee lists; departments can be renamed.".into(),
                    size: 31_400_000,
                    mandatory: false,
                };
                self.app.open_about();
            }
            "update-required" => {
                self.app.updates.about_open = false;
                self.app.screen =
                    Screen::UpdateRequired { minimum: "0.2.0".into(), latest: "0.2.0".into(), draft_kept: false };
                self.app.updates.view = UpdateView::Available {
                    version: "0.2.0".into(),
                    notes: "Faster employee lists; departments can be renamed.".into(),
                    size: 31_400_000,
                    mandatory: true,
                };
            }
            "update-downloading" => {
                self.app.updates.view = UpdateView::Downloading {
                    version: "0.2.0".into(),
                    done: 12_600_000,
                    total: 31_400_000,
                    bytes_per_sec: 8_900_000.0,
                };
            }
            "update-rolled-back" => {
                // A new start of the app, as after the restart into the previous version.
                let settings = Settings {
                    server_url: self.stack.control_plane.clone(),
                    last_email: self.company.email.clone(),
                    ..Settings::default()
                };
                self.app = NexaApp::with_settings(settings, SettingsStore::Memory);
                self.app.show_update_outcome(Outcome::RolledBack {
                    from: "0.1.0".into(),
                    to: "0.2.0".into(),
                    reason: "version did not reach its first screen within 60 s".into(),
                });
            }
            other => unreachable!("no step {other}"),
        }
        true
    }

    /// Once a step's data is in: what to set up that needs it.
    fn settle(&mut self) {
        if STEPS.get(self.step) == Some(&"employees-staff")
            && let Some(employee) = &self.employee
            && let Ok(id) = employee["id"].as_str().unwrap_or_default().parse::<uuid::Uuid>()
            && let Screen::Company(w) = &mut self.app.screen
            && w.employees.form.is_none()
            && let Some(e) = w.employees.store.get(id)
        {
            w.employees.form = Some(EmployeeForm::edit(e));
            w.employees.selected = Some(id);
        }
    }

    fn ready(&self) -> bool {
        if !self.input.is_empty() {
            return false;
        }
        let employees_live = |w: &Workspace| {
            w.employees.store.len() >= PEOPLE.len() && w.live == LiveStatus::Live && !w.employees.loading
        };
        match (STEPS[self.step], &self.app.screen) {
            ("sign-in" | "accept-invitation" | "forgot-password", Screen::SignIn(s)) => {
                matches!(s.check, ServerCheck::Ok { .. })
            }
            ("wizard-1-company", Screen::Wizard(w)) => {
                w.options.is_some() && matches!(w.slug_state, SlugState::Available(_))
            }
            (_, Screen::Wizard(w)) => w.options.is_some(),
            (
                "employees" | "employee-edit" | "employee-conflict" | "user-menu" | "change-password",
                Screen::Company(w),
            ) => employees_live(w),
            ("departments-accounts", Screen::Company(w)) => {
                w.page == Page::Ledger && !w.ledger.loading && !w.ledger.accounts.is_empty()
            }
            ("people", Screen::Company(w)) => {
                w.page == Page::People
                    && !w.people.loading
                    && w.people.members.len() > MEMBERS.len()
                    && w.people.invitations.len() >= PENDING.len()
            }
            ("employees-staff", Screen::Company(w)) => {
                w.role == Role::Staff && employees_live(w) && w.employees.form.is_some()
            }
            ("maintenance", _) => self.app.maintenance.is_some(),
            ("update-available" | "update-required" | "update-downloading", _) => self.app.maintenance.is_none(),
            ("update-rolled-back", Screen::SignIn(s)) => matches!(s.check, ServerCheck::Ok { .. }),
            _ => false,
        }
    }
}

impl eframe::App for Tour {
    fn raw_input_hook(&mut self, _ctx: &egui::Context, raw_input: &mut egui::RawInput) {
        if let Some(events) = self.input.pop_front() {
            raw_input.events.extend(events);
        }
    }

    fn ui(&mut self, ui: &mut egui::Ui, _frame: &mut eframe::Frame) {
        if !self.started {
            self.started = true;
            self.enter();
        }
        self.settle();
        self.app.ui(ui);
        ui.ctx().request_repaint_after(Duration::from_millis(50));
        let Some(name) = STEPS.get(self.step) else { return };
        assert!(self.entered.elapsed() < STEP_TIMEOUT, "the step {name} did not settle");
        // Settled for a second and a half (spinners aside): capture, then go on.
        if self.ready() && self.entered.elapsed() > Duration::from_millis(1500) {
            let path = self.out.join(format!("{name}.png"));
            let status = std::process::Command::new("import").args(["-window", "root"]).arg(&path).status();
            println!("{} -> {:?}", path.display(), status.map(|s| s.success()));
            self.step += 1;
            if !self.enter() {
                ui.ctx().send_viewport_cmd(egui::ViewportCommand::Close);
            }
        }
    }
}
