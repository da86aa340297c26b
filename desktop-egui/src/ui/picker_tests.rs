//! The picker driven through `egui_kittest`: the filter keeps the focus, typing filters,
//! every entry is reachable, the keyboard chooses.

use egui::Key;
use egui_kittest::Harness;
use egui_kittest::kittest::Queryable;

use super::*;

/// Enough entries to pass the old 200-entry cap, named like time zones.
fn zones() -> Vec<PickItem<String>> {
    let mut names: Vec<String> = (0..250).map(|i| format!("America/Place_{i:03}")).collect();
    names.extend(["Asia/Tokyo", "Australia/Sydney", "Europe/Berlin", "Europe/Paris", "UTC"].map(String::from));
    names.into_iter().map(|n| PickItem::new(n.clone(), n)).collect()
}

struct Form {
    name: String,
    zone: String,
    picker: PickerState,
    items: Vec<PickItem<String>>,
}

fn harness() -> Harness<'static, Form> {
    let form = Form { name: String::new(), zone: "UTC".into(), picker: PickerState::default(), items: zones() };
    Harness::new_ui_state(
        |ui, form: &mut Form| {
            let l = ui.label("Company name");
            ui.text_edit_singleline(&mut form.name).labelled_by(l.id);
            ui.label("Time zone");
            picker_ui(ui, "Time zone", &mut form.picker, &form.items, &mut form.zone);
        },
        form,
    )
}

fn open(h: &mut Harness<'static, Form>) {
    // The picker's button, not the label before it.
    h.get_by(|n| n.label().as_deref() == Some("Time zone") && n.role() == egui::accesskit::Role::ComboBox).click();
    h.run();
    assert!(h.state().picker.open, "the picker opened");
}

fn type_filter(h: &mut Harness<'static, Form>, text: &str) {
    h.get_by_label("Time zone filter").type_text(text);
    h.run();
}

#[test]
fn every_entry_matches_an_empty_filter_with_no_cap() {
    let items = zones();
    assert_eq!(matches(&items, "").len(), items.len());
    assert_eq!(matches(&items, "europe"), vec![252, 253]);
    assert_eq!(matches(&items, "EUR ber"), vec![252], "all words, any case");
    assert!(matches(&items, "nowhere").is_empty());
}

#[test]
fn the_filter_takes_the_focus_and_typing_filters_instead_of_going_to_another_field() {
    let mut h = harness();
    // The company name has the focus first, as when the user typed it.
    h.get_by_label("Company name").focus();
    h.run();
    open(&mut h);
    assert!(h.get_by_label("Time zone filter").is_focused(), "the filter has the focus");
    // Clicking the filter keeps the popup open.
    h.get_by_label("Time zone filter").click();
    h.run();
    assert!(h.state().picker.open, "a click on the filter leaves the popup open");
    type_filter(&mut h, "Berlin");
    assert_eq!(h.state().name, "", "nothing went into the company name");
    assert_eq!(h.state().picker.filter, "Berlin");
    assert!(h.query_by_label("Europe/Paris").is_none(), "filtered out");
    h.get_by_label("Europe/Berlin").click();
    h.run();
    assert_eq!(h.state().zone, "Europe/Berlin");
    assert!(!h.state().picker.open, "choosing closes the popup");
}

#[test]
fn the_keyboard_moves_through_every_match_and_enter_chooses() {
    let mut h = harness();
    open(&mut h);
    type_filter(&mut h, "Australia/S");
    h.key_press(Key::Enter);
    h.run();
    assert_eq!(h.state().zone, "Australia/Sydney");

    // Unfiltered: Down past the 200th entry, and the list follows the highlight.
    open(&mut h);
    h.key_press_modifiers(egui::Modifiers::CTRL, Key::Home);
    h.run();
    for _ in 0..230 {
        h.key_press(Key::ArrowDown);
        h.step();
    }
    h.key_press(Key::ArrowUp);
    h.run();
    assert!(h.query_by_label("America/Place_229").is_some(), "the highlighted row is in sight");
    h.key_press(Key::Enter);
    h.run();
    assert_eq!(h.state().zone, "America/Place_229");

    // End reaches the last entry.
    open(&mut h);
    h.key_press_modifiers(egui::Modifiers::CTRL, Key::End);
    // The list scrolls over a few frames.
    h.run_steps(20);
    assert!(h.query_by_label("UTC").is_some());
    h.key_press(Key::ArrowUp);
    h.key_press(Key::Enter);
    h.run();
    assert_eq!(h.state().zone, "Europe/Paris");
}

#[test]
fn escape_closes_the_picker_without_choosing() {
    let mut h = harness();
    open(&mut h);
    type_filter(&mut h, "Tokyo");
    h.key_press(Key::Escape);
    h.run();
    assert!(!h.state().picker.open);
    assert_eq!(h.state().zone, "UTC");
}
