//! An unsaved employee edit kept across an enforced update: written when the app must stop
//! for "Update required", restored (and forgotten) at the next sign-in to the same company.
//! Next to the settings file when there is one, else in memory only.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::ui::employees::{EmployeeForm, FormFields};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Draft {
    /// The company's slug: a draft is restored only there.
    pub company: String,
    pub id: Option<Uuid>,
    pub base_version: i64,
    pub base: FormFields,
    pub fields: FormFields,
}

impl Draft {
    /// The form's edit, if it has one worth keeping.
    pub fn of(company: &str, form: &EmployeeForm) -> Option<Self> {
        (form.fields != form.base).then(|| Self {
            company: company.to_owned(),
            id: form.id,
            base_version: form.base_version,
            base: form.base.clone(),
            fields: form.fields.clone(),
        })
    }

    /// The form as it was, to open again.
    pub fn form(&self) -> EmployeeForm {
        let mut form = EmployeeForm::new_employee();
        form.id = self.id;
        form.base_version = self.base_version;
        form.base = self.base.clone();
        form.fields = self.fields.clone();
        form
    }
}

/// Where drafts are kept.
#[derive(Debug, Clone, Default)]
pub enum DraftStore {
    File(PathBuf),
    #[default]
    Memory,
}

impl DraftStore {
    pub fn save(&self, draft: &Draft, memory: &mut Option<Draft>) {
        *memory = Some(draft.clone());
        if let Self::File(path) = self {
            let written = serde_json::to_vec_pretty(draft).map_err(std::io::Error::other).and_then(|bytes| {
                if let Some(dir) = path.parent() {
                    std::fs::create_dir_all(dir)?;
                }
                std::fs::write(path, bytes)
            });
            if let Err(error) = written {
                tracing::warn!(%error, "could not keep the unsaved edit on disk");
            }
        }
    }

    /// The draft for `company`, taken (it is restored once).
    pub fn take(&self, company: &str, memory: &mut Option<Draft>) -> Option<Draft> {
        let from_disk = match self {
            Self::File(path) => std::fs::read(path).ok().and_then(|bytes| serde_json::from_slice::<Draft>(&bytes).ok()),
            Self::Memory => None,
        };
        let draft = from_disk.or_else(|| memory.clone()).filter(|d| d.company == company)?;
        *memory = None;
        if let Self::File(path) = self {
            let _ = std::fs::remove_file(path);
        }
        Some(draft)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_draft_survives_on_disk_for_its_company_only_and_once() {
        let path = std::env::temp_dir().join(format!("nexacore-draft-{}.json", std::process::id()));
        let store = DraftStore::File(path.clone());
        let mut form = EmployeeForm::new_employee();
        assert!(Draft::of("acme", &form).is_none(), "nothing typed, nothing kept");
        form.fields.first_name = "Unsaved".into();
        let draft = Draft::of("acme", &form).unwrap();
        store.save(&draft, &mut None);
        assert!(store.take("other", &mut None).is_none(), "another company's sign-in does not get it");
        let restored = store.take("acme", &mut None).expect("restored after a restart");
        assert_eq!(restored.form().fields.first_name, "Unsaved");
        assert!(store.take("acme", &mut None).is_none(), "once");
    }
}
