//! The chart-of-accounts templates and default departments, checked without a database.

use std::collections::{HashMap, HashSet};

use tenant_schema::seed::{AccountType, DEFAULT_CHART_TEMPLATE, chart_template, chart_templates, default_departments};

#[test]
fn every_chart_template_has_unique_codes_and_valid_parents() {
    for template in chart_templates() {
        let mut seen: HashMap<&str, AccountType> = HashMap::new();
        for account in template.accounts {
            let where_ = format!("template {}, account {}", template.code, account.code);
            assert!(!account.code.is_empty() && account.code.len() <= 20, "{where_}: code length");
            assert!(!account.name.trim().is_empty(), "{where_}: blank name");
            if let Some(parent) = account.parent {
                // Listed earlier, so the chart reads top-down and has no cycles.
                let parent_type =
                    seen.get(parent).unwrap_or_else(|| panic!("{where_}: parent {parent} not listed before it"));
                assert_eq!(*parent_type, account.account_type, "{where_}: type differs from parent {parent}");
            }
            assert!(seen.insert(account.code, account.account_type).is_none(), "{where_}: duplicate code");
        }
        let types: HashSet<AccountType> = seen.values().copied().collect();
        assert_eq!(types.len(), AccountType::ALL.len(), "template {} covers every account type", template.code);
    }
}

#[test]
fn chart_templates_have_unique_codes_and_include_the_default() {
    let codes: Vec<&str> = chart_templates().iter().map(|t| t.code).collect();
    let unique: HashSet<&str> = codes.iter().copied().collect();
    assert_eq!(unique.len(), codes.len(), "{codes:?}");
    assert!(codes.len() >= 2, "{codes:?}");
    assert_eq!(codes[0], DEFAULT_CHART_TEMPLATE);
    for template in chart_templates() {
        assert_eq!(chart_template(template.code), Some(template));
        assert!(!template.name.is_empty() && !template.description.is_empty());
    }
    assert_eq!(chart_template("no-such-template"), None);
}

#[test]
fn account_types_round_trip_through_their_stored_names() {
    for account_type in AccountType::ALL {
        assert_eq!(AccountType::parse(account_type.as_str()), Some(account_type));
    }
    assert_eq!(AccountType::parse("Asset"), None);
}

#[test]
fn default_departments_are_unique_ignoring_case() {
    let names: HashSet<String> = default_departments().iter().map(|d| d.to_lowercase()).collect();
    assert_eq!(names.len(), default_departments().len());
    assert!(!names.is_empty());
}
