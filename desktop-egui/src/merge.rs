//! The three-way merge of an employee form: the version the form was opened from (`base`),
//! what the user typed (`mine`) and the newer record someone else saved (`theirs`).
//!
//! A field only one side changed takes that side's value, so a save never reverts a change
//! the user did not make. Only a field both sides changed, to different values, is a
//! conflict; the merged result holds the user's value there until the user decides. Text is
//! compared trimmed, the way it is sent. No UI and no I/O here.

use crate::ui::employees::FormFields;

/// One field of the employee form.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    FirstName,
    LastName,
    Email,
    JobTitle,
    Department,
    HireDate,
    Status,
}

impl Field {
    pub const ALL: [Field; 7] = [
        Field::FirstName,
        Field::LastName,
        Field::Email,
        Field::JobTitle,
        Field::Department,
        Field::HireDate,
        Field::Status,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Field::FirstName => "First name",
            Field::LastName => "Last name",
            Field::Email => "E-mail",
            Field::JobTitle => "Job title",
            Field::Department => "Department",
            Field::HireDate => "Hire date",
            Field::Status => "Status",
        }
    }
}

impl Field {
    /// Copies this field's value from `from` to `to`.
    pub fn copy(self, from: &FormFields, to: &mut FormFields) {
        match self {
            Field::FirstName => to.first_name.clone_from(&from.first_name),
            Field::LastName => to.last_name.clone_from(&from.last_name),
            Field::Email => to.email.clone_from(&from.email),
            Field::JobTitle => to.job_title.clone_from(&from.job_title),
            Field::Department => to.department_id = from.department_id,
            Field::HireDate => to.hire_date.clone_from(&from.hire_date),
            Field::Status => to.status.clone_from(&from.status),
        }
    }
}

/// The merge's result: every field settled but the conflicts, which hold the user's value.
#[derive(Debug, Clone, PartialEq)]
pub struct Merged {
    pub fields: FormFields,
    /// Fields both sides changed to different values, in form order.
    pub conflicts: Vec<Field>,
}

/// Merges `mine` and `theirs`, both edits of `base`.
pub fn merge(base: &FormFields, mine: &FormFields, theirs: &FormFields) -> Merged {
    let mut fields = mine.clone();
    let mut conflicts = Vec::new();
    for field in Field::ALL {
        match field {
            Field::FirstName => {
                text(field, &base.first_name, &theirs.first_name, &mut fields.first_name, &mut conflicts)
            }
            Field::LastName => text(field, &base.last_name, &theirs.last_name, &mut fields.last_name, &mut conflicts),
            Field::Email => text(field, &base.email, &theirs.email, &mut fields.email, &mut conflicts),
            Field::JobTitle => text(field, &base.job_title, &theirs.job_title, &mut fields.job_title, &mut conflicts),
            Field::HireDate => text(field, &base.hire_date, &theirs.hire_date, &mut fields.hire_date, &mut conflicts),
            Field::Status => text(field, &base.status, &theirs.status, &mut fields.status, &mut conflicts),
            Field::Department => one(
                field,
                &base.department_id,
                &theirs.department_id,
                &mut fields.department_id,
                &mut conflicts,
                |a, b| a == b,
            ),
        }
    }
    Merged { fields, conflicts }
}

fn text(field: Field, base: &String, theirs: &String, merged: &mut String, conflicts: &mut Vec<Field>) {
    one(field, base, theirs, merged, conflicts, |a: &String, b: &String| a.trim() == b.trim());
}

/// One field: `merged` starts as mine and ends as the merge.
fn one<T: Clone>(
    field: Field,
    base: &T,
    theirs: &T,
    merged: &mut T,
    conflicts: &mut Vec<Field>,
    same: impl Fn(&T, &T) -> bool,
) {
    let mine_changed = !same(base, merged);
    let theirs_changed = !same(base, theirs);
    match (mine_changed, theirs_changed) {
        (_, false) => {}
        (false, true) => *merged = theirs.clone(),
        (true, true) if same(merged, theirs) => {}
        (true, true) => conflicts.push(field),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use uuid::Uuid;

    fn base() -> FormFields {
        FormFields {
            first_name: "Grace".into(),
            last_name: "Hopper".into(),
            email: "grace@example.com".into(),
            job_title: "Commander".into(),
            department_id: Some(Uuid::from_u128(1)),
            hire_date: "2024-01-01".into(),
            status: "active".into(),
        }
    }

    /// Sets `field` to a value distinct per `variant` (0: the base's).
    fn set(fields: &mut FormFields, field: Field, variant: u8) {
        let v = |s: &str| if variant == 0 { s.to_owned() } else { format!("{s}-{variant}") };
        match field {
            Field::FirstName => fields.first_name = v("Grace"),
            Field::LastName => fields.last_name = v("Hopper"),
            Field::Email => fields.email = v("grace@example.com"),
            Field::JobTitle => fields.job_title = v("Commander"),
            Field::Department => {
                fields.department_id = match variant {
                    0 => Some(Uuid::from_u128(1)),
                    1 => None,
                    n => Some(Uuid::from_u128(u128::from(n))),
                }
            }
            Field::HireDate => fields.hire_date = format!("2024-0{}-01", variant + 1),
            Field::Status => fields.status = ["active", "on_leave", "terminated", "x"][usize::from(variant)].into(),
        }
    }

    /// `mine` and `theirs` change `field` to the given variants (0: unchanged); the merged
    /// value's variant and whether it is a conflict.
    fn check(field: Field, mine: u8, theirs: u8, expected: u8, conflict: bool) {
        let (mut m, mut t, mut e) = (base(), base(), base());
        set(&mut m, field, mine);
        set(&mut t, field, theirs);
        set(&mut e, field, expected);
        let merged = merge(&base(), &m, &t);
        assert_eq!(merged.fields, e, "{field:?} mine {mine} theirs {theirs}");
        let expected_conflicts = if conflict { vec![field] } else { vec![] };
        assert_eq!(merged.conflicts, expected_conflicts, "{field:?} mine {mine} theirs {theirs}");
    }

    #[test]
    fn every_field_takes_the_side_that_changed_it_and_conflicts_only_when_both_differ() {
        for field in Field::ALL {
            check(field, 0, 0, 0, false); // nobody changed it
            check(field, 1, 0, 1, false); // only mine
            check(field, 0, 1, 1, false); // only theirs: taken automatically
            check(field, 2, 2, 2, false); // both, to the same value
            check(field, 1, 2, 1, true); // both, differently: asked, mine held meanwhile
        }
    }

    #[test]
    fn the_issue_scenario_asks_only_about_the_job_title_and_keeps_their_department() {
        let finance = Some(Uuid::from_u128(7));
        let mut theirs = base();
        theirs.job_title = "Rear Admiral".into();
        theirs.department_id = finance;
        let mut mine = base();
        mine.job_title = "Commodore".into();
        let merged = merge(&base(), &mine, &theirs);
        assert_eq!(merged.conflicts, [Field::JobTitle]);
        assert_eq!(merged.fields.department_id, finance);
        assert_eq!(merged.fields.job_title, "Commodore");
    }

    #[test]
    fn whitespace_the_server_trims_is_no_change() {
        let mut mine = base();
        mine.job_title = "Commander  ".into();
        let mut theirs = base();
        theirs.job_title = "Captain".into();
        let merged = merge(&base(), &mine, &theirs);
        assert_eq!(merged.conflicts, []);
        assert_eq!(merged.fields.job_title, "Captain");
    }

    #[test]
    fn several_conflicts_come_in_form_order_and_other_fields_still_merge() {
        let mut mine = base();
        mine.status = "terminated".into();
        mine.first_name = "G.".into();
        mine.email = "me@example.com".into();
        let mut theirs = base();
        theirs.status = "on_leave".into();
        theirs.first_name = "Amazing Grace".into();
        theirs.hire_date = "2023-12-31".into();
        let merged = merge(&base(), &mine, &theirs);
        assert_eq!(merged.conflicts, [Field::FirstName, Field::Status]);
        assert_eq!(merged.fields.email, "me@example.com");
        assert_eq!(merged.fields.hire_date, "2023-12-31");
    }
}
