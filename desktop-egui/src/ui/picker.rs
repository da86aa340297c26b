//! A searchable picker for long lists (time zones, currencies, departments): a button showing
//! the choice opens a popup with a filter field and every matching entry.
//!
//! Why not a `ComboBox` with a text field in it: a combo box closes on any click inside it
//! (so clicking its filter closed it), never takes the keyboard focus (so typing went to
//! whatever field had it), and drawing every entry of a 600-entry list each frame made us cap
//! it. Here the popup closes only on a click outside, Escape or a choice; the filter holds
//! the focus while the popup is open; the list is virtualised (`show_rows`), so every match
//! is there to scroll to; Up/Down (and Page Up/Down, Home/End) move a highlight that the list
//! follows and Enter takes it.

use egui::{Key, Modifiers, PopupCloseBehavior, Response, Ui};

/// One entry: the value stored when chosen, and what is shown (and matched by the filter).
#[derive(Debug, Clone, PartialEq)]
pub struct PickItem<V> {
    pub value: V,
    pub label: String,
}

impl<V> PickItem<V> {
    pub fn new(value: V, label: impl Into<String>) -> Self {
        Self { value, label: label.into() }
    }
}

/// What the picker remembers between frames; its owner keeps one per picker.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PickerState {
    pub open: bool,
    pub filter: String,
    /// The highlighted row among the current matches.
    pub highlight: usize,
    /// The list's scroll offset, so the highlight can be kept in sight.
    offset: f32,
}

/// The popup's list height in rows.
const VISIBLE_ROWS: f32 = 12.0;

/// The indices of the items whose label contains every word of `filter` (any case). All of
/// them: nothing is cut off, the list is virtualised instead.
pub fn matches<V>(items: &[PickItem<V>], filter: &str) -> Vec<usize> {
    let words: Vec<String> = filter.split_whitespace().map(str::to_lowercase).collect();
    items
        .iter()
        .enumerate()
        .filter(|(_, item)| {
            let label = item.label.to_lowercase();
            words.iter().all(|w| label.contains(w.as_str()))
        })
        .map(|(i, _)| i)
        .collect()
}

/// Draws the picker: `label` is its accessible name (tests and screen readers find the button
/// by it; the visible label stands before it, drawn by the caller). Returns the button's
/// response, marked changed when a new value was chosen.
pub fn picker_ui<V: Clone + PartialEq>(
    ui: &mut Ui,
    label: &str,
    state: &mut PickerState,
    items: &[PickItem<V>],
    value: &mut V,
) -> Response {
    let shown = items.iter().find(|i| i.value == *value).map_or("Choose…", |i| i.label.as_str()).to_owned();
    let mut button = ui.add(egui::Button::new(shown).min_size(egui::vec2(200.0, 0.0)).truncate());
    // The accessible name is the field's label, like the text fields labelled by theirs.
    button.widget_info(|| egui::WidgetInfo::labeled(egui::Role::ComboBox, true, label));
    if button.clicked() {
        state.open = !state.open;
        if state.open {
            state.filter.clear();
            state.highlight = items.iter().position(|i| i.value == *value).unwrap_or(0);
            state.offset = scroll_for(state.highlight, 0.0, row_pitch(ui));
        }
    }
    let mut chosen = None;
    egui::Popup::from_response(&button)
        .id(button.id.with("picker"))
        .open_bool(&mut state.open)
        .close_behavior(PopupCloseBehavior::CloseOnClickOutside)
        .width(button.rect.width().max(300.0))
        .show(|ui| chosen = list_ui(ui, label, &mut state.filter, &mut state.highlight, &mut state.offset, items));
    if let Some(index) = chosen {
        state.open = false;
        if items[index].value != *value {
            *value = items[index].value.clone();
            button.mark_changed();
        }
    }
    button
}

fn row_pitch(ui: &Ui) -> f32 {
    ui.text_style_height(&egui::TextStyle::Button) + ui.spacing().button_padding.y * 2.0 + ui.spacing().item_spacing.y
}

/// The offset that keeps `row` in sight, moving as little as possible from `offset`.
fn scroll_for(row: usize, offset: f32, pitch: f32) -> f32 {
    let top = row as f32 * pitch;
    let visible = VISIBLE_ROWS * pitch;
    if top < offset {
        top
    } else if top + pitch > offset + visible {
        top + pitch - visible
    } else {
        offset
    }
}

/// The filter and the matches; the index of the item chosen, if any.
fn list_ui<V>(
    ui: &mut Ui,
    label: &str,
    filter: &mut String,
    highlight: &mut usize,
    offset: &mut f32,
    items: &[PickItem<V>],
) -> Option<usize> {
    // Read the navigation keys before the filter field sees them: a single-line field would
    // otherwise give up its focus on Enter and move its cursor on Home/End.
    let pitch = row_pitch(ui);
    let page = VISIBLE_ROWS as usize - 1;
    let (down, up, page_down, page_up, home, end, enter) = ui.input_mut(|i| {
        let mut key = |k| i.consume_key(Modifiers::NONE, k);
        (
            key(Key::ArrowDown),
            key(Key::ArrowUp),
            key(Key::PageDown),
            key(Key::PageUp),
            i.consume_key(Modifiers::CTRL, Key::Home),
            i.consume_key(Modifiers::CTRL, Key::End),
            i.consume_key(Modifiers::NONE, Key::Enter),
        )
    });
    let before = filter.clone();
    let field = ui.add(
        egui::TextEdit::singleline(filter).hint_text("type to filter").desired_width(f32::INFINITY).id_salt("filter"),
    );
    field.widget_info(|| egui::WidgetInfo::labeled(egui::Role::TextInput, true, format!("{label} filter")));
    // The filter keeps the focus while the popup is open, so typing always filters.
    field.request_focus();
    let found = matches(items, filter);
    if *filter != before {
        *highlight = 0;
        *offset = 0.0;
    }
    let last = found.len().saturating_sub(1);
    let moved = down || up || page_down || page_up || home || end;
    if down {
        *highlight = (*highlight + 1).min(last);
    }
    if up {
        *highlight = highlight.saturating_sub(1);
    }
    if page_down {
        *highlight = (*highlight + page).min(last);
    }
    if page_up {
        *highlight = highlight.saturating_sub(page);
    }
    if home {
        *highlight = 0;
    }
    if end {
        *highlight = last;
    }
    *highlight = (*highlight).min(last);
    if moved {
        *offset = scroll_for(*highlight, *offset, pitch);
    }
    if enter && !found.is_empty() {
        return Some(found[*highlight]);
    }
    if found.is_empty() {
        ui.weak("Nothing matches.");
        return None;
    }
    ui.weak(format!("{} of {}", found.len(), items.len()));
    let mut chosen = None;
    let row_height = pitch - ui.spacing().item_spacing.y;
    let output = egui::ScrollArea::vertical()
        .id_salt("matches")
        .max_height(VISIBLE_ROWS * pitch)
        .auto_shrink([false, true])
        .vertical_scroll_offset(*offset)
        .show_rows(ui, row_height, found.len(), |ui, rows| {
            for row in rows {
                let item = &items[found[row]];
                let button = egui::Button::selectable(row == *highlight, item.label.as_str())
                    .min_size(egui::vec2(ui.available_width(), row_height));
                if ui.add(button).clicked() {
                    chosen = Some(found[row]);
                }
            }
        });
    *offset = output.state.clamped_offset().y;
    chosen
}

#[cfg(test)]
#[path = "picker_tests.rs"]
mod tests;
