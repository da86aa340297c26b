//! The People page: the company's members (role, last sign-in) and its pending invitations.
//! Admins invite, resend, revoke, change roles and remove; managers only read. What cannot
//! be undone (removing a member, revoking an invitation, giving up one's own admin role)
//! asks first.
//!
//! Like every screen it only draws and returns [`PeopleAction`]s; the answers come back
//! through the `on_*` methods.

mod invite;
mod tables;

use uuid::Uuid;

use crate::api::ApiError;
use crate::api::wire::{Invitation, Member, NewInvitation, Role};
pub use invite::InviteForm;

#[derive(Debug, Clone, PartialEq)]
pub enum PeopleAction {
    Load,
    Invite(NewInvitation),
    Resend(Uuid),
    Revoke(Uuid),
    ChangeRole { id: Uuid, role: Role },
    Remove(Uuid),
}

/// A step that cannot be undone, waiting for "yes".
#[derive(Debug, Clone, PartialEq)]
pub enum Confirm {
    Remove {
        id: Uuid,
        who: String,
    },
    Revoke {
        id: Uuid,
        email: String,
    },
    /// The user's own role, away from admin: only another admin can give it back.
    DemoteSelf {
        id: Uuid,
        role: Role,
    },
}

#[derive(Debug)]
pub struct PeopleScreen {
    /// The viewer's role: admins manage, managers read.
    pub role: Role,
    /// The viewer's e-mail: their own row is marked and cannot be removed from here.
    pub me: String,
    pub members: Vec<Member>,
    pub invitations: Vec<Invitation>,
    pub loading: bool,
    pub load_error: Option<String>,
    pub invite: InviteForm,
    pub confirm: Option<Confirm>,
    /// The outcome of the last action, for the line above the tables.
    pub notice: Option<String>,
    pub error: Option<String>,
    /// `error` came from an outage: it goes when the server is back.
    pub error_is_outage: bool,
    /// Rows with a call in flight: their buttons wait.
    pub busy: Vec<Uuid>,
}

impl PeopleScreen {
    pub fn new(role: Role, me: String) -> Self {
        Self {
            role,
            me,
            members: Vec::new(),
            invitations: Vec::new(),
            loading: false,
            load_error: None,
            invite: InviteForm::default(),
            confirm: None,
            notice: None,
            error: None,
            error_is_outage: false,
            busy: Vec::new(),
        }
    }

    /// Back online after an outage: an action's "cannot reach the server" goes; true when the
    /// lists failed to load meanwhile and must load again.
    pub fn on_back_online(&mut self) -> bool {
        if self.error_is_outage {
            self.error = None;
            self.error_is_outage = false;
        }
        self.load_error.is_some()
    }

    pub fn is_me(&self, member: &Member) -> bool {
        member.email.eq_ignore_ascii_case(self.me.trim())
    }

    pub fn on_loaded(
        &mut self,
        members: Result<Vec<Member>, ApiError>,
        invitations: Result<Vec<Invitation>, ApiError>,
    ) {
        self.loading = false;
        self.load_error = None;
        self.on_members(members);
        self.on_invitations(invitations);
    }

    fn on_members(&mut self, result: Result<Vec<Member>, ApiError>) {
        match result {
            Ok(mut members) => {
                members.sort_by(|a, b| crate::employees::cmp_ignore_case(&a.full_name, &b.full_name));
                self.members = members;
            }
            Err(e) => self.load_error = Some(format!("Could not load the members: {e}")),
        }
    }

    fn on_invitations(&mut self, result: Result<Vec<Invitation>, ApiError>) {
        match result {
            Ok(invitations) => self.invitations = invitations,
            // The members' error, if any, says it first.
            Err(e) if self.load_error.is_none() => {
                self.load_error = Some(format!("Could not load the invitations: {e}"));
            }
            Err(_) => {}
        }
    }

    pub fn on_invited(&mut self, result: Result<Invitation, ApiError>) {
        self.invite.busy = false;
        match result {
            Ok(invitation) => {
                self.notice = Some(format!("Invitation sent to {}.", invitation.email));
                self.error = None;
                self.invitations.retain(|i| i.id != invitation.id);
                self.invitations.insert(0, invitation);
                self.invite = InviteForm::default();
            }
            Err(error) => self.invite.on_failed(&error),
        }
    }

    pub fn on_resent(&mut self, id: Uuid, result: Result<Invitation, ApiError>) {
        self.busy.retain(|b| *b != id);
        match result {
            Ok(invitation) => {
                self.say(Ok(format!("Invitation sent to {} again.", invitation.email)));
                if let Some(old) = self.invitations.iter_mut().find(|i| i.id == invitation.id) {
                    *old = invitation;
                }
            }
            Err(e) => self.refused("resend the invitation", &e),
        }
    }

    pub fn on_revoked(&mut self, id: Uuid, result: Result<(), ApiError>) {
        self.busy.retain(|b| *b != id);
        match result {
            Ok(()) => {
                let email = self.invitations.iter().find(|i| i.id == id).map(|i| i.email.clone());
                self.invitations.retain(|i| i.id != id);
                self.say(Ok(format!("Invitation for {} revoked.", email.unwrap_or_default())));
            }
            Err(e) => self.refused("revoke the invitation", &e),
        }
    }

    pub fn on_role_changed(&mut self, id: Uuid, result: Result<Member, ApiError>) {
        self.busy.retain(|b| *b != id);
        match result {
            Ok(member) => {
                self.say(Ok(format!("{} is now {}.", display_name(&member), member.role)));
                if let Some(old) = self.members.iter_mut().find(|m| m.id == member.id) {
                    *old = member;
                }
            }
            Err(e) => self.refused("change the role", &e),
        }
    }

    pub fn on_removed(&mut self, id: Uuid, result: Result<(), ApiError>) {
        self.busy.retain(|b| *b != id);
        match result {
            Ok(()) => {
                let who = self.members.iter().find(|m| m.id == id).map(display_name);
                self.members.retain(|m| m.id != id);
                self.say(Ok(format!("{} was removed from the company.", who.unwrap_or_default())));
            }
            Err(e) => self.refused("remove the member", &e),
        }
    }

    fn say(&mut self, outcome: Result<String, String>) {
        self.error_is_outage = false;
        match outcome {
            Ok(notice) => {
                self.notice = Some(notice);
                self.error = None;
            }
            Err(error) => {
                self.error = Some(error);
                self.notice = None;
            }
        }
    }

    fn refused(&mut self, what: &str, error: &ApiError) {
        self.say(Err(refusal(what, error)));
        self.error_is_outage = matches!(error, ApiError::Unreachable(_));
    }
}

/// A member by name, or by address when they have none.
pub fn display_name(member: &Member) -> String {
    if member.full_name.trim().is_empty() { member.email.clone() } else { member.full_name.clone() }
}

/// The server's refusal in a sentence; the last admin gets one of its own.
fn refusal(what: &str, error: &ApiError) -> String {
    match error.code() {
        Some("last_admin") => "The company needs at least one admin: make someone else admin first.".into(),
        _ => format!("Could not {what}: {error}"),
    }
}
