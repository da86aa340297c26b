//! Departments and the chart of accounts, read only: what the company's records refer to.
//! Departments come with the employees (and stay live with them); accounts load when the
//! page opens.

use egui::{RichText, Ui};

use super::error_ui;
use crate::api::ApiError;
use crate::api::wire::{Account, Department};

#[derive(Debug, Default)]
pub struct LedgerView {
    pub accounts: Vec<Account>,
    pub loading: bool,
    pub error: Option<String>,
}

impl LedgerView {
    pub fn on_accounts(&mut self, result: Result<Vec<Account>, ApiError>) {
        self.loading = false;
        match result {
            Ok(mut accounts) => {
                accounts.sort_by(|a, b| a.code.cmp(&b.code));
                self.accounts = accounts;
                self.error = None;
            }
            Err(e) => self.error = Some(format!("Could not load the accounts: {e}")),
        }
    }

    pub fn ui(&mut self, ui: &mut Ui, departments: &[Department]) {
        egui::ScrollArea::vertical().show(ui, |ui| {
            ui.heading("Departments");
            if departments.is_empty() {
                ui.label(RichText::new("No departments yet.").weak());
            }
            for d in departments {
                ui.label(&d.name);
            }
            ui.add_space(16.0);
            ui.horizontal(|ui| {
                ui.heading("Chart of accounts");
                if self.loading {
                    ui.spinner();
                }
            });
            if let Some(error) = &self.error {
                error_ui(ui, error);
            }
            egui::Grid::new("accounts_grid").num_columns(4).striped(true).spacing([16.0, 4.0]).show(ui, |ui| {
                for title in ["Code", "Name", "Type", "Parent"] {
                    ui.label(RichText::new(title).strong());
                }
                ui.end_row();
                for a in &self.accounts {
                    ui.label(&a.code);
                    ui.label(&a.name);
                    ui.label(&a.account_type);
                    ui.label(a.parent_code.as_deref().unwrap_or(""));
                    ui.end_row();
                }
            });
        });
    }
}
