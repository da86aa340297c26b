//! The company-creation wizard, end to end, and a taken slug caught at step 1.

use egui_kittest::kittest::{NodeT, Queryable};

use crate::helpers::*;

#[test]
fn the_wizard_creates_a_company_end_to_end_and_signs_its_admin_in() {
    let stack = Stack::start();
    let mut app = stack.app();
    wait_for_label_containing(&mut app, "Connected to NexaCore");
    click(&mut app, "Create a new company…");

    // Step 1: the slug is suggested from the name and checked.
    let name = format!("Nimbus Freight {}", unique(""));
    type_into(&mut app, "Company name", &name);
    wait_for_label_containing(&mut app, "is available");
    let slug = app.state_mut_wizard().slug.clone();
    assert!(slug.starts_with("nimbus-freight-"), "{slug}");
    click(&mut app, "Next");

    // Step 2: errors first, then a valid admin.
    wait_for_label(&mut app, "Your full name");
    click(&mut app, "Next");
    wait_for_label(&mut app, "Enter your name.");
    type_into(&mut app, "Your full name", "Nora Admin");
    type_into(&mut app, "Your e-mail", &format!("nora@{slug}.example.com"));
    type_into(&mut app, "Choose a password", PASSWORD);
    type_into(&mut app, "Confirm password", "Str0ng&Secret?");
    click(&mut app, "Next");
    wait_for_label(&mut app, "The passwords do not match.");
    assert!(app.query_by_label("Strength: strong").is_some());
    // Back and next keep what was typed.
    click(&mut app, "Back");
    wait_for_label(&mut app, "Company name");
    assert_eq!(field(&app, "Company name").value().as_deref(), Some(name.as_str()));
    click(&mut app, "Next");
    wait_for_label(&mut app, "Your full name");
    replace_text(&mut app, "Confirm password", PASSWORD);
    click(&mut app, "Next");

    // Step 3: the server's templates and departments.
    wait_for_label(&mut app, "Departments");
    assert!(app.query_all_by_label_contains("accounts)").next().is_some(), "chart templates from the server");
    type_into(&mut app, "Add a department", "Logistics");
    click(&mut app, "Add");
    wait_for_label(&mut app, "Logistics");
    click(&mut app, "Next");

    // Step 4: review, then create.
    wait_for_label(&mut app, "Create company");
    assert!(app.query_by_label(&name).is_some());
    click(&mut app, "Create company");
    wait_for_label(&mut app, &format!("Signed in as admin of {name}"));
    click(&mut app, "Open the company");
    wait_for_label(&mut app, "Live");
    assert_eq!(app.state().session.as_ref().unwrap().tenant.slug, slug);
    // The department chosen in the wizard exists in the new company.
    wait_for(&mut app, "departments", |app| match &app.state().screen {
        desktop_egui::app::Screen::Company(w) => w.employees.store.departments().iter().any(|d| d.name == "Logistics"),
        _ => false,
    });
}

#[test]
fn a_taken_slug_is_reported_at_step_one_and_blocks_next() {
    let stack = Stack::start();
    let taken = stack.signup(&unique("taken-"));
    let mut app = stack.app();
    wait_for_label_containing(&mut app, "Connected to NexaCore");
    click(&mut app, "Create a new company…");
    type_into(&mut app, "Company name", "Some Company");
    // Type the taken slug over the suggestion.
    replace_text(&mut app, "Web address (slug)", &taken.slug);
    wait_for_label_containing(&mut app, "is already taken");
    click(&mut app, "Next");
    app.step();
    assert_eq!(app.state_mut_wizard().step, 0, "still at step 1");
    assert!(app.query_all_by_label_contains("is already taken").count() >= 2, "shown at the field too");
    // The server's suggestion is one click away.
    let suggestion = app
        .query_all_by_label_contains("Use \"")
        .next()
        .map(|n| n.accesskit_node().label().unwrap_or_default())
        .expect("a suggestion");
    click(&mut app, &suggestion);
    click(&mut app, "Next");
    wait_for_label(&mut app, "Your full name");
}

#[test]
fn every_time_zone_can_be_chosen_and_no_test_currency_is_offered() {
    let stack = Stack::start();
    let mut app = stack.app();
    wait_for_label_containing(&mut app, "Connected to NexaCore");
    click(&mut app, "Create a new company…");
    wait_for(&mut app, "the signup options", |app| !app.state_wizard().timezone_items.is_empty());
    type_into(&mut app, "Company name", "Sydney Traders");

    // The time zone: open, type (it goes to the filter, not the company name), choose.
    open_picker(&mut app, "Time zone");
    type_into(&mut app, "Time zone filter", "sydney");
    click(&mut app, "Australia/Sydney");
    assert_eq!(app.state_mut_wizard().timezone, "Australia/Sydney");
    assert_eq!(field(&app, "Company name").value().as_deref(), Some("Sydney Traders"));
    open_picker(&mut app, "Time zone");
    type_into(&mut app, "Time zone filter", "Europe/Berl");
    app.key_press(egui::Key::Enter);
    app.step();
    app.step();
    assert_eq!(app.state_mut_wizard().timezone, "Europe/Berlin");

    // Currencies: real ones, filterable; none of the test or fund codes.
    let codes: Vec<String> = app.state_wizard().currency_items.iter().map(|c| c.value.clone()).collect();
    assert!(codes.iter().any(|c| c == "VND"), "{codes:?}");
    for code in ["XTS", "XXX", "XAU", "XDR", "CLF"] {
        assert!(!codes.iter().any(|c| c == code), "{code} offered");
    }
    open_picker(&mut app, "Currency");
    type_into(&mut app, "Currency filter", "XTS");
    assert!(shown(&app, "Nothing matches."));
    replace_text(&mut app, "Currency filter", "vietnam");
    click(&mut app, "VND — Vietnamese đồng");
    assert_eq!(app.state_mut_wizard().currency, "VND");
}

fn open_picker(app: &mut App, label: &str) {
    app.get_by(|n| n.label().as_deref() == Some(label) && n.role() == egui::accesskit::Role::ComboBox).click();
    // The popup measures itself in its first frame.
    app.step();
    app.step();
    app.step();
}

/// Access to the wizard's state for assertions.
trait WizardState {
    fn state_mut_wizard(&mut self) -> &mut desktop_egui::ui::wizard::Wizard;
    fn state_wizard(&self) -> &desktop_egui::ui::wizard::Wizard;
}

impl WizardState for App {
    fn state_mut_wizard(&mut self) -> &mut desktop_egui::ui::wizard::Wizard {
        match &mut self.state_mut().screen {
            desktop_egui::app::Screen::Wizard(w) => w,
            other => panic!("not in the wizard but {}", other.name()),
        }
    }

    fn state_wizard(&self) -> &desktop_egui::ui::wizard::Wizard {
        match &self.state().screen {
            desktop_egui::app::Screen::Wizard(w) => w,
            other => panic!("not in the wizard but {}", other.name()),
        }
    }
}
