//! A screenshot tour: starts the real services (as the UI tests do), opens the real app in a
//! real window, walks it through the sign-in screen, each wizard step, the employees screen,
//! the edit form, a conflict and the maintenance dialog, and captures the screen after each
//! with ImageMagick's `import -window root`. Run it under Xvfb:
//!
//! `xvfb-run -s "-screen 0 1280x800x24" target/debug/examples/screenshots docs/screenshots`

#[path = "../tests/ui/helpers.rs"]
#[allow(dead_code, reason = "the UI tests' harness, of which the tour needs only the services")]
mod helpers;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use desktop_egui::api::Client;
use desktop_egui::api::wire::{LoginOutcome, LoginRequest};
use desktop_egui::app::{NexaApp, Screen, SettingsStore};
use desktop_egui::live::LiveStatus;
use desktop_egui::settings::Settings;
use desktop_egui::ui::employees::EmployeeForm;
use desktop_egui::ui::sign_in::ServerCheck;
use desktop_egui::ui::wizard::{CreateState, SlugState, Wizard};
use helpers::{Company, PASSWORD, Stack};
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

struct Tour {
    app: NexaApp,
    stack: Stack,
    company: Company,
    runtime: tokio::runtime::Runtime,
    out: PathBuf,
    step: usize,
    entered: Instant,
    employee: Option<Value>,
}

fn main() -> eframe::Result {
    let out = PathBuf::from(std::env::args().nth(1).unwrap_or_else(|| "docs/screenshots".into()));
    std::fs::create_dir_all(&out).expect("the output folder can be made");
    let stack = Stack::start();
    let company = stack.signup("acme-tools");
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
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
    let settings = Settings { server_url: stack.control_plane.clone(), ..Settings::default() };
    let app = NexaApp::with_settings(settings, SettingsStore::Memory);
    let tour = Tour { app, stack, company, runtime, out, step: 0, entered: Instant::now(), employee: None };
    let options = eframe::NativeOptions {
        viewport: egui::ViewportBuilder::default().with_inner_size([1280.0, 800.0]).with_position([0.0, 0.0]),
        ..Default::default()
    };
    eframe::run_native("NexaCore", options, Box::new(move |_| Ok(Box::new(tour))))
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

    /// Sets up step `n`; returns false when the tour is over.
    fn enter(&mut self, n: usize) -> bool {
        self.entered = Instant::now();
        match n {
            0 => {
                if let Screen::SignIn(s) = &mut self.app.screen {
                    s.email = self.company.email.clone();
                }
            }
            1 => {
                let mut w = Wizard::new();
                w.company_name = "Nimbus Freight".into();
                w.slug_state = SlugState::Pending { since: Instant::now() };
                self.app.screen = Screen::Wizard(Box::new(w));
            }
            2 => {
                let w = self.wizard();
                w.step = 1;
                w.admin_name = "Nora Admin".into();
                w.admin_email = "nora@nimbus.example.com".into();
                w.password = PASSWORD.into();
                w.confirm = PASSWORD.into();
            }
            3 => self.wizard().step = 2,
            4 => self.wizard().step = 3,
            5 => {
                let w = self.wizard();
                w.step = 4;
                w.create = CreateState::InFlight;
            }
            6 => {
                let request = self.wizard().request();
                let key = self.wizard().idempotency_key.clone();
                let base = self.stack.control_plane.clone();
                let created = self.runtime.block_on(Client::new().create_tenant(&base, &request, &key));
                self.wizard().create = match created {
                    Ok(c) => CreateState::Done(c),
                    Err(e) => CreateState::Failed(e.to_string()),
                };
            }
            7 => {
                let base = self.stack.control_plane.clone();
                let request =
                    LoginRequest { email: self.company.email.clone(), password: PASSWORD.into(), tenant: None };
                match self.runtime.block_on(Client::new().login(&base, &request)) {
                    Ok(LoginOutcome::Signed(token)) => self.app.enter_company(token, self.company.email.clone()),
                    other => panic!("login failed: {other:?}"),
                }
            }
            8 => {
                let list =
                    fetch(&self.runtime, &self.stack, &self.company, reqwest::Method::GET, "/employees?q=hopper", None);
                let employee = list["items"][0].clone();
                if let Screen::Company(w) = &mut self.app.screen {
                    let s = &mut w.employees;
                    let e: desktop_egui::api::wire::Employee = serde_json::from_value(employee.clone()).unwrap();
                    s.selected = Some(e.id);
                    let mut form = EmployeeForm::edit(&e);
                    form.fields.job_title = "Commodore".into();
                    s.form = Some(form);
                }
                self.employee = Some(employee);
            }
            9 => {
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
                if let Screen::Company(w) = &mut self.app.screen
                    && let Some(form) = w.employees.form.as_mut()
                    && let Ok(theirs) = serde_json::from_value(patched)
                {
                    form.lost_race(theirs);
                }
            }
            10 => self.stack.set_maintenance(true, "Upgrading the database. Back in about ten minutes."),
            _ => {
                self.stack.set_maintenance(false, "");
                return false;
            }
        }
        true
    }

    fn ready(&self) -> bool {
        match (self.step, &self.app.screen) {
            (0, Screen::SignIn(s)) => matches!(s.check, ServerCheck::Ok { .. }),
            (1, Screen::Wizard(w)) => w.options.is_some() && matches!(w.slug_state, SlugState::Available(_)),
            (7..=9, Screen::Company(w)) => {
                w.employees.store.len() >= PEOPLE.len() && w.live == LiveStatus::Live && !w.employees.loading
            }
            (10, _) => self.app.maintenance.is_some(),
            (_, Screen::Wizard(w)) => w.options.is_some(),
            _ => false,
        }
    }

    fn name(&self) -> &'static str {
        [
            "sign-in",
            "wizard-1-company",
            "wizard-2-admin",
            "wizard-3-setup",
            "wizard-4-review",
            "wizard-5-creating",
            "wizard-5-done",
            "employees",
            "employee-edit",
            "employee-conflict",
            "maintenance",
        ][self.step]
    }
}

impl eframe::App for Tour {
    fn ui(&mut self, ui: &mut egui::Ui, _frame: &mut eframe::Frame) {
        if self.step == 0 && self.entered.elapsed() < Duration::from_millis(50) {
            self.enter(0);
        }
        self.app.ui(ui);
        ui.ctx().request_repaint_after(Duration::from_millis(50));
        // Settled for a second (spinners aside): capture, then go on.
        if self.ready() && self.entered.elapsed() > Duration::from_millis(1500) {
            let path = self.out.join(format!("{}.png", self.name()));
            let status = std::process::Command::new("import").args(["-window", "root"]).arg(&path).status();
            println!("{} -> {:?}", path.display(), status.map(|s| s.success()));
            self.step += 1;
            if !self.enter(self.step) {
                ui.ctx().send_viewport_cmd(egui::ViewportCommand::Close);
            }
        }
    }
}
