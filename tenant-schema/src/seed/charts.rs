//! The chart-of-accounts templates offered at signup.
//!
//! Codes follow the common four-digit scheme: 1xxx assets, 2xxx liabilities, 3xxx equity,
//! 4xxx income, 5xxx–6xxx expenses. Summary (parent) accounts come before their children.

use super::AccountType::{Asset, Equity, Expense, Income, Liability};
use super::{AccountSeed, AccountType, ChartTemplate};

pub(super) static TEMPLATES: &[ChartTemplate] = &[
    ChartTemplate {
        code: "standard",
        name: "Standard",
        description: "A general-purpose chart for trading and manufacturing companies: \
                      inventory, fixed assets, payroll and the usual operating expenses.",
        accounts: STANDARD,
    },
    ChartTemplate {
        code: "services",
        name: "Services",
        description: "A compact chart for consultancies, agencies and other small service \
                      businesses without inventory.",
        accounts: SERVICES,
    },
];

const fn account(
    code: &'static str,
    name: &'static str,
    account_type: AccountType,
    parent: Option<&'static str>,
) -> AccountSeed {
    AccountSeed { code, name, account_type, parent }
}

static STANDARD: &[AccountSeed] = &[
    account("1000", "Assets", Asset, None),
    account("1100", "Current assets", Asset, Some("1000")),
    account("1110", "Cash on hand", Asset, Some("1100")),
    account("1120", "Bank accounts", Asset, Some("1100")),
    account("1200", "Accounts receivable", Asset, Some("1100")),
    account("1300", "Inventory", Asset, Some("1100")),
    account("1400", "Prepaid expenses", Asset, Some("1100")),
    account("1500", "Fixed assets", Asset, Some("1000")),
    account("1510", "Machinery and equipment", Asset, Some("1500")),
    account("1520", "Vehicles", Asset, Some("1500")),
    account("1530", "Furniture and fixtures", Asset, Some("1500")),
    account("1590", "Accumulated depreciation", Asset, Some("1500")),
    account("2000", "Liabilities", Liability, None),
    account("2100", "Current liabilities", Liability, Some("2000")),
    account("2110", "Accounts payable", Liability, Some("2100")),
    account("2120", "Accrued liabilities", Liability, Some("2100")),
    account("2130", "Sales tax payable", Liability, Some("2100")),
    account("2140", "Payroll liabilities", Liability, Some("2100")),
    account("2500", "Long-term liabilities", Liability, Some("2000")),
    account("2510", "Bank loans", Liability, Some("2500")),
    account("3000", "Equity", Equity, None),
    account("3100", "Share capital", Equity, Some("3000")),
    account("3200", "Retained earnings", Equity, Some("3000")),
    account("3300", "Current year earnings", Equity, Some("3000")),
    account("4000", "Income", Income, None),
    account("4100", "Sales of goods", Income, Some("4000")),
    account("4200", "Services revenue", Income, Some("4000")),
    account("4800", "Sales discounts and returns", Income, Some("4000")),
    account("4900", "Other income", Income, Some("4000")),
    account("5000", "Cost of sales", Expense, None),
    account("5100", "Cost of goods sold", Expense, Some("5000")),
    account("5200", "Freight and shipping", Expense, Some("5000")),
    account("6000", "Operating expenses", Expense, None),
    account("6100", "Salaries and wages", Expense, Some("6000")),
    account("6150", "Payroll taxes and benefits", Expense, Some("6000")),
    account("6200", "Rent", Expense, Some("6000")),
    account("6300", "Utilities", Expense, Some("6000")),
    account("6400", "Office supplies", Expense, Some("6000")),
    account("6500", "Marketing and advertising", Expense, Some("6000")),
    account("6600", "Depreciation", Expense, Some("6000")),
    account("6700", "Insurance", Expense, Some("6000")),
    account("6800", "Professional fees", Expense, Some("6000")),
    account("6900", "Bank charges", Expense, Some("6000")),
];

static SERVICES: &[AccountSeed] = &[
    account("1000", "Assets", Asset, None),
    account("1010", "Business bank account", Asset, Some("1000")),
    account("1020", "Petty cash", Asset, Some("1000")),
    account("1100", "Accounts receivable", Asset, Some("1000")),
    account("1200", "Computer equipment", Asset, Some("1000")),
    account("2000", "Liabilities", Liability, None),
    account("2010", "Accounts payable", Liability, Some("2000")),
    account("2020", "Business credit card", Liability, Some("2000")),
    account("2100", "Sales tax payable", Liability, Some("2000")),
    account("3000", "Equity", Equity, None),
    account("3010", "Owner's capital", Equity, Some("3000")),
    account("3020", "Owner's drawings", Equity, Some("3000")),
    account("3900", "Retained earnings", Equity, Some("3000")),
    account("4000", "Income", Income, None),
    account("4010", "Consulting fees", Income, Some("4000")),
    account("4020", "Retainers", Income, Some("4000")),
    account("4900", "Reimbursed expenses", Income, Some("4000")),
    account("6000", "Expenses", Expense, None),
    account("6010", "Subcontractors", Expense, Some("6000")),
    account("6020", "Software and subscriptions", Expense, Some("6000")),
    account("6030", "Travel", Expense, Some("6000")),
    account("6040", "Rent and coworking", Expense, Some("6000")),
    account("6050", "Phone and internet", Expense, Some("6000")),
    account("6060", "Training", Expense, Some("6000")),
    account("6070", "Bank and payment fees", Expense, Some("6000")),
];
