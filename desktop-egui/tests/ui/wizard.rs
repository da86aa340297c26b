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
    wait_for(&mut app, "departments", |app| app.query_by_label("Department filter").is_some());
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

/// Access to the wizard's state for assertions.
trait WizardState {
    fn state_mut_wizard(&mut self) -> &mut desktop_egui::ui::wizard::Wizard;
}

impl WizardState for App {
    fn state_mut_wizard(&mut self) -> &mut desktop_egui::ui::wizard::Wizard {
        match &mut self.state_mut().screen {
            desktop_egui::app::Screen::Wizard(w) => w,
            other => panic!("not in the wizard but {}", other.name()),
        }
    }
}
