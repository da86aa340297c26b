//! The People page: members and pending invitations; admins invite (errors at the field),
//! revoke and remove (each confirmed first), managers only read. Driven by answers fed to
//! the app: every call first fails for real against an address nobody answers, then the
//! answer the control plane would give is fed.

use desktop_egui::api::ApiError;
use desktop_egui::api::wire::{ErrorBody, Invitation, Member, Role};
use desktop_egui::app::{Msg, PeopleAnswer};
use egui_kittest::kittest::Queryable;
use uuid::Uuid;

use crate::helpers::*;

const ADMIN: &str = "ada@acme.example.com";

fn member(n: u128, name: &str, email: &str, role: Role) -> Member {
    Member { id: Uuid::from_u128(n), full_name: name.into(), email: email.into(), role, ..Member::default() }
}

fn invitation(n: u128, email: &str) -> Invitation {
    Invitation {
        id: Uuid::from_u128(n),
        email: email.into(),
        role: Role::Staff,
        expires_at: time::macros::datetime!(2031-05-04 10:00 UTC),
        ..Invitation::default()
    }
}

fn refused(status: u16, error: &str, message: &str, field: Option<&str>) -> ApiError {
    let body = ErrorBody { field: field.map(str::to_owned), ..ErrorBody::new(error, message) };
    ApiError::Http { status, body }
}

/// The People page as `role`, with Ada (admin), Bob (staff) and one invitation loaded.
fn people_page(role: &str) -> App {
    let mut app = offline_app();
    enter_offline(&mut app, "Acme Freight", ADMIN, role);
    click(&mut app, "People");
    wait_for_label_containing(&mut app, "Could not load the members");
    let members = vec![
        member(1, "Ada Admin", ADMIN, Role::Admin),
        Member {
            last_login_at: Some(time::macros::datetime!(2030-01-02 08:30 UTC)),
            ..member(2, "Bob Staff", "bob@acme.example.com", Role::Staff)
        },
    ];
    let invitations = vec![invitation(10, "carol@acme.example.com")];
    feed(&mut app, Msg::People(PeopleAnswer::Loaded { members: Ok(members), invitations: Ok(invitations) }));
    wait_for_label(&mut app, "Bob Staff");
    app
}

#[test]
fn admins_see_members_with_role_and_last_sign_in_and_pending_invitations() {
    let app = people_page("admin");
    assert_eq!(app.state().screen.name(), "people");
    assert!(shown(&app, "Ada Admin (you)"));
    assert!(shown(&app, "2030-01-02 08:30 UTC"), "Bob's last sign-in");
    assert!(shown(&app, "never"), "Ada never signed in (as far as the data goes)");
    assert!(shown(&app, "carol@acme.example.com"));
    assert!(shown(&app, "Pending invitations (1)"));
    assert_eq!(app.query_all_by_label("Remove…").count(), 1, "nobody removes themselves from here");
    assert!(shown(&app, "Send invitation") && shown(&app, "Resend") && shown(&app, "Revoke…"));
}

#[test]
fn managers_read_the_people_page_but_change_nothing() {
    let app = people_page("manager");
    assert!(shown(&app, "Only admins can invite people or change their roles."));
    for control in ["Send invitation", "Remove…", "Revoke…", "Resend"] {
        assert!(!shown(&app, control), "{control} is hidden from managers");
    }
    assert!(app.query_all_by_label("Staff").count() >= 2, "roles are shown as text (Bob's, the invitation's)");
}

#[test]
fn an_invitation_shows_errors_at_the_field_then_joins_the_list() {
    let mut app = people_page("admin");
    click(&mut app, "Send invitation");
    wait_for_label(&mut app, "Enter an e-mail address like name@company.com.");

    type_into(&mut app, "Invitee's e-mail", "bob@acme.example.com");
    click(&mut app, "Manager");
    click(&mut app, "Send invitation");
    // The real call fails (nobody answers); the control plane would say 409. Wait for that
    // call itself: a late real answer would overwrite the fed one.
    wait_for(&mut app, "the invitation call to fail", |app| workspace(app).is_some_and(|w| !w.people.invite.busy));
    let conflict = refused(409, "already_member", "bob@acme.example.com is already a member", None);
    feed(&mut app, Msg::People(PeopleAnswer::Invited(Err(conflict))));
    wait_for_label(&mut app, "bob@acme.example.com is already a member");

    let invalid = refused(422, "invalid_field", "full_name: must not be blank", Some("full_name"));
    feed(&mut app, Msg::People(PeopleAnswer::Invited(Err(invalid))));
    wait_for_label(&mut app, "must not be blank");

    let sent = Invitation { role: Role::Manager, ..invitation(11, "dan@acme.example.com") };
    feed(&mut app, Msg::People(PeopleAnswer::Invited(Ok(sent))));
    wait_for_label(&mut app, "Invitation sent to dan@acme.example.com.");
    assert!(shown(&app, "Pending invitations (2)"));
    assert_eq!(field(&app, "Invitee's e-mail").value().as_deref(), Some(""), "the form is cleared");
}

#[test]
fn revoking_an_invitation_asks_first_and_removes_the_row() {
    let mut app = people_page("admin");
    click(&mut app, "Revoke…");
    wait_for_label(&mut app, "Revoke invitation");
    click(&mut app, "Cancel");
    assert!(!shown(&app, "Revoke invitation"));
    assert!(shown(&app, "carol@acme.example.com"), "cancel changes nothing");

    click(&mut app, "Revoke…");
    click(&mut app, "Yes, revoke");
    wait_for_label_containing(&mut app, "Could not revoke the invitation");
    feed(&mut app, Msg::People(PeopleAnswer::Revoked(Uuid::from_u128(10), Ok(()))));
    wait_for_label(&mut app, "Invitation for carol@acme.example.com revoked.");
    assert!(shown(&app, "No pending invitations."));
}

#[test]
fn removing_a_member_asks_first_and_the_last_admin_is_explained() {
    let mut app = people_page("admin");
    click(&mut app, "Remove…");
    wait_for_label_containing(&mut app, "Remove Bob Staff from the company?");
    click(&mut app, "Yes, remove");
    wait_for_label_containing(&mut app, "Could not remove the member");

    let last_admin = refused(409, "last_admin", "the company must keep an admin", None);
    feed(&mut app, Msg::People(PeopleAnswer::Removed(Uuid::from_u128(2), Err(last_admin))));
    wait_for_label(&mut app, "The company needs at least one admin: make someone else admin first.");

    feed(&mut app, Msg::People(PeopleAnswer::Removed(Uuid::from_u128(2), Ok(()))));
    wait_for_label(&mut app, "Bob Staff was removed from the company.");
    assert!(!shown(&app, "bob@acme.example.com"));
}

#[test]
fn a_role_change_answered_by_the_server_updates_the_row() {
    let mut app = people_page("admin");
    let promoted = member(2, "Bob Staff", "bob@acme.example.com", Role::Manager);
    feed(&mut app, Msg::People(PeopleAnswer::RoleChanged(Uuid::from_u128(2), Ok(promoted))));
    wait_for_label(&mut app, "Bob Staff is now manager.");
    let desktop_egui::app::Screen::Company(w) = &app.state().screen else { panic!("signed out") };
    assert_eq!(w.people.members.iter().find(|m| m.email.starts_with("bob")).map(|m| m.role), Some(Role::Manager));
    assert!(w.people.busy.is_empty(), "his row takes input again");
}
