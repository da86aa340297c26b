//! The JSON bodies the app sends and receives: the platform's wire contract (`api_types`),
//! read leniently (a field the server adds or drops never makes a screen fail), plus what only
//! the app needs.

pub use api_types::employees::{Employee, EmployeePage, EmployeePatch, NewEmployee};
pub use api_types::ledger::{Account, Department};
pub use api_types::live::{LiveMessage, SystemNotice, channel};
pub use api_types::people::{
    AcceptInvitation, Invitation, InvitationStatus, Member, NewInvitation, PasswordChange, PasswordResetConfirm,
    PasswordResetRequest, Role, RoleChange,
};
pub use api_types::session::{LoginRequest, LoginToken, TenantSummary};
pub use api_types::signup::{
    AdminInput, ChartTemplate, CreateTenantRequest, Currency, SignupOptions, SlugAvailability,
};
pub use api_types::system::{Health, SystemStatus};
pub use api_types::{ErrorBody, FieldProblem};

#[derive(Debug, Clone, PartialEq)]
#[allow(clippy::large_enum_variant, reason = "one answer per sign-in, handled at once")]
pub enum LoginOutcome {
    Signed(LoginToken),
    /// The user belongs to several companies: pick one and log in again with its slug.
    Choose(Vec<TenantSummary>),
}

/// `201` of `POST /tenants`: the same shape as a login (without `role`, which is `admin`).
pub type CreatedTenant = LoginToken;
