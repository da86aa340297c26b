//! The signed-in company: a header (the company's name, the live indicator, the user menu
//! with "Change password…" and "Sign out"), a navigation between the pages, and the page.
//!
//! Which pages and controls show follows the role. A role the server changes arrives with
//! the next token (the app signs in again after the live socket says access changed) and
//! [`Workspace::set_role`] applies it without a restart.

mod password;

use egui::{Color32, RichText, Ui};

use super::employees::{EmployeesAction, EmployeesScreen};
use super::ledger::LedgerView;
use super::people::{PeopleAction, PeopleScreen};
use super::status_dot_ui;
use crate::api::wire::{PasswordChange, Role};
use crate::live::LiveStatus;
pub use password::{ChangePassword, PasswordStep};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Page {
    Employees,
    /// Departments and the chart of accounts (read views).
    Ledger,
    People,
}

impl Page {
    pub fn name(self) -> &'static str {
        match self {
            Page::Employees => "employees",
            Page::Ledger => "ledger",
            Page::People => "people",
        }
    }

    fn title(self) -> &'static str {
        match self {
            Page::Employees => "Employees",
            Page::Ledger => "Departments & accounts",
            Page::People => "People",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum WorkspaceAction {
    Employees(EmployeesAction),
    People(PeopleAction),
    /// The ledger page opened: fetch the chart of accounts.
    LoadAccounts,
    ChangePassword(PasswordChange),
    SignOut,
    /// Copy a diagnostics report (version, system, the log's end) to the clipboard.
    CopyDiagnostics,
    /// The live connection is waiting to retry: try now.
    ReconnectNow,
    /// "About / Check for updates".
    About,
}

#[derive(Debug)]
pub struct Workspace {
    /// The company's display name (never its slug).
    pub company: String,
    pub user: String,
    pub role: Role,
    pub page: Page,
    pub live: LiveStatus,
    pub employees: EmployeesScreen,
    pub ledger: LedgerView,
    pub people: PeopleScreen,
    /// The "Change password" dialog, while open.
    pub password: Option<ChangePassword>,
    /// A word of success in the header ("your password was changed").
    pub notice: Option<String>,
}

impl Workspace {
    pub fn new(company: String, user: String, role: Role) -> Self {
        Self {
            employees: EmployeesScreen::new(role),
            people: PeopleScreen::new(role, user.clone()),
            ledger: LedgerView::default(),
            company,
            user,
            role,
            page: Page::Employees,
            live: LiveStatus::Connecting,
            password: None,
            notice: None,
        }
    }

    /// Back online after an outage: errors the outage caused go; true when something failed
    /// to load meanwhile and must load again (which clears its error line).
    pub fn on_back_online(&mut self) -> bool {
        let employees = self.employees.on_back_online();
        let people = self.people.on_back_online();
        employees || people || self.ledger.error.is_some()
    }

    /// The pages this role may open, in the navigation's order.
    pub fn pages(&self) -> Vec<Page> {
        let mut pages = vec![Page::Employees, Page::Ledger];
        if self.role.may_see_people() {
            pages.push(Page::People);
        }
        pages
    }

    /// A new role (after signing in again): controls follow; a page it may no longer see closes.
    pub fn set_role(&mut self, role: Role) {
        self.role = role;
        self.employees.role = role;
        self.people.role = role;
        if !role.may_write() {
            self.employees.form = self.employees.form.take().filter(|f| f.id.is_some());
        }
        if !self.pages().contains(&self.page) {
            self.page = Page::Employees;
        }
    }

    /// Switches page; returns the load the page needs.
    pub fn open(&mut self, page: Page) -> Option<WorkspaceAction> {
        self.page = page;
        match page {
            Page::Employees => None,
            Page::Ledger => {
                self.ledger.loading = true;
                Some(WorkspaceAction::LoadAccounts)
            }
            Page::People => {
                self.people.loading = true;
                Some(WorkspaceAction::People(PeopleAction::Load))
            }
        }
    }

    pub fn ui(&mut self, ui: &mut Ui) -> Vec<WorkspaceAction> {
        let mut actions = Vec::new();
        egui::Panel::top("workspace_header").show(ui, |ui| self.header_ui(ui, &mut actions));
        egui::Panel::left("workspace_nav").exact_size(190.0).resizable(false).show(ui, |ui| {
            ui.add_space(8.0);
            for page in self.pages() {
                let selected = self.page == page;
                if ui.add(egui::Button::selectable(selected, page.title()).min_size(egui::vec2(170.0, 26.0))).clicked()
                    && !selected
                {
                    actions.extend(self.open(page));
                }
            }
            ui.add_space(12.0);
            ui.label(RichText::new(format!("Your role: {}", role_title(self.role))).weak());
        });
        match self.page {
            Page::Employees => actions.extend(self.employees.ui(ui).into_iter().map(WorkspaceAction::Employees)),
            Page::Ledger => {
                let departments = self.employees.store.departments().to_vec();
                egui::CentralPanel::default_margins().show(ui, |ui| self.ledger.ui(ui, &departments));
            }
            Page::People => {
                let people = egui::CentralPanel::default_margins().show(ui, |ui| self.people.ui(ui)).inner;
                actions.extend(people.into_iter().map(WorkspaceAction::People));
            }
        }
        if let Some(dialog) = self.password.as_mut() {
            match dialog.ui(ui) {
                Some(PasswordStep::Submit(change)) => actions.push(WorkspaceAction::ChangePassword(change)),
                Some(PasswordStep::Cancel) => self.password = None,
                None => {}
            }
        }
        actions
    }

    fn header_ui(&mut self, ui: &mut Ui, actions: &mut Vec<WorkspaceAction>) {
        ui.horizontal(|ui| {
            ui.heading(&self.company);
            if let Some(notice) = &self.notice {
                ui.label(RichText::new(notice).color(Color32::from_rgb(0, 150, 70)));
            }
            ui.with_layout(egui::Layout::right_to_left(egui::Align::Center), |ui| {
                ui.menu_button(&self.user, |ui| {
                    ui.label(RichText::new(format!("{} at {}", role_title(self.role), self.company)).weak());
                    if ui.button("Change password…").clicked() {
                        self.password = Some(ChangePassword::default());
                        ui.close();
                    }
                    if ui.button("About / Check for updates").clicked() {
                        actions.push(WorkspaceAction::About);
                        ui.close();
                    }
                    if ui.button("Copy diagnostics").clicked() {
                        actions.push(WorkspaceAction::CopyDiagnostics);
                        ui.close();
                    }
                    if ui.button("Sign out").clicked() {
                        actions.push(WorkspaceAction::SignOut);
                        ui.close();
                    }
                });
                // Small, so the header keeps its height and the page below does not jump.
                if matches!(self.live, LiveStatus::Reconnecting { .. }) && ui.small_button("Reconnect now").clicked() {
                    actions.push(WorkspaceAction::ReconnectNow);
                }
                live_indicator_ui(ui, &self.live);
            });
        });
    }
}

/// A role as people read it.
pub fn role_title(role: Role) -> &'static str {
    match role {
        Role::Admin => "Admin",
        Role::Manager => "Manager",
        Role::Staff => "Staff",
    }
}

/// A dot and "Live" / "Reconnecting…" / "Offline".
pub fn live_indicator_ui(ui: &mut Ui, live: &LiveStatus) {
    let (color, text) = match live {
        LiveStatus::Live => (Color32::from_rgb(0, 170, 80), "Live".to_owned()),
        LiveStatus::Connecting => (Color32::from_rgb(230, 160, 0), "Connecting…".to_owned()),
        LiveStatus::Reconnecting { at, .. } => {
            let left = at.saturating_duration_since(std::time::Instant::now());
            // The countdown moves: draw again when the next second is due.
            if !left.is_zero() {
                ui.ctx().request_repaint_after(left.min(std::time::Duration::from_millis(250)));
            }
            let text = match left.as_secs_f32().ceil() as u64 {
                0 => "Reconnecting…".to_owned(),
                secs => format!("Reconnecting (in {secs}s)…"),
            };
            (Color32::from_rgb(230, 160, 0), text)
        }
        LiveStatus::NeedsSignIn { .. } => (Color32::from_rgb(200, 60, 60), "Offline: sign in again".to_owned()),
        LiveStatus::Stopped(why) => (Color32::GRAY, format!("Offline: {why}")),
    };
    status_dot_ui(ui, color, &text);
}
