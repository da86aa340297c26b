//! Staff accounts against the real platform: an admin invites from the People page, the
//! invitee accepts in their app with the code from the mail (a real SMTP sink) and lands
//! signed in as staff with no edit controls; a role change or removal by the admin reaches
//! the member's running app through the live socket.

use egui_kittest::kittest::Queryable;

use crate::helpers::*;

const STAFF_PASSWORD: &str = "Staff-Pass-2026!";

#[test]
fn an_admin_invites_in_the_app_and_the_invitee_accepts_and_lands_signed_in_as_staff() {
    let stack = Stack::start_mailing();
    let company = stack.signup(&unique("invite-"));
    stack.add_employee(&company, "Grace", "Hopper");
    let staff_email = format!("sam@{}.example.com", company.slug);

    let mut admin = stack.app();
    sign_in(&mut admin, &company);
    click(&mut admin, "People");
    wait_for_label(&mut admin, "Ada Admin (you)");
    type_into(&mut admin, "Invitee's e-mail", &staff_email);
    click(&mut admin, "Send invitation");
    wait_for_label(&mut admin, &format!("Invitation sent to {staff_email}."));
    assert!(admin.query_by_label("Pending invitations (1)").is_some());

    // The link from the mail, pasted whole.
    let code = code_in(&stack.mail_to(&staff_email, "Accept an invitation"));
    let mut sam = stack.app();
    wait_for_label_containing(&mut sam, "Connected to NexaCore");
    click(&mut sam, "Accept an invitation…");
    type_into(&mut sam, "Invitation code or link", &format!("nexacore://accept?code={code}"));
    type_into(&mut sam, "Your e-mail", &staff_email);
    type_into(&mut sam, "Your full name", "Sam Staff");
    type_into(&mut sam, "Choose a password", STAFF_PASSWORD);
    type_into(&mut sam, "Confirm new password", STAFF_PASSWORD);
    click(&mut sam, "Accept invitation");
    wait_for_label(&mut sam, &company.name);
    wait_for_label(&mut sam, "Live");
    wait_for_label(&mut sam, "Hopper");
    assert!(sam.query_by_label("Add employee").is_none(), "staff add nothing");
    assert!(sam.query_by_label("People").is_none(), "staff have no People page");
    click(&mut sam, "Hopper");
    wait_for_label(&mut sam, "Employee");
    assert!(sam.query_by_label("Save").is_none() && sam.query_by_label("Delete").is_none());

    click(&mut admin, "Refresh");
    wait_for_label(&mut admin, "Sam Staff");
    wait_for_label(&mut admin, "No pending invitations.");
}

#[test]
fn a_role_change_and_a_removal_reach_the_members_running_app() {
    let stack = Stack::start_mailing();
    let company = stack.signup(&unique("rolechg-"));
    let staff_email = format!("sam@{}.example.com", company.slug);
    let staff_id = stack.invite_and_accept(&company, &staff_email, "staff", STAFF_PASSWORD);

    let mut sam = stack.app();
    wait_for_label_containing(&mut sam, "Connected to NexaCore");
    type_into(&mut sam, "E-mail", &staff_email);
    type_into(&mut sam, "Password", STAFF_PASSWORD);
    click(&mut sam, "Sign in");
    wait_for_label(&mut sam, &company.name);
    wait_for_label(&mut sam, "Live");
    assert!(sam.query_by_label("Add employee").is_none());

    // Promoted: the live socket closes, the app asks, and the new role shows without a restart.
    stack.set_role(&company, &staff_id, "manager");
    wait_for_label(&mut sam, &format!("Your access to {} changed; sign in again.", company.name));
    type_into(&mut sam, "Your password", STAFF_PASSWORD);
    click(&mut sam, "Continue");
    wait_for(&mut sam, "the dialog to close", |app| app.state().reauth.is_none());
    wait_for_label(&mut sam, "Add employee");
    assert!(sam.query_by_label("People").is_some(), "managers read the member list");
    wait_for_label(&mut sam, "Live");

    // Removed: asked again, and signing in says why it cannot.
    stack.remove_member(&company, &staff_id);
    wait_for_label(&mut sam, &format!("Your access to {} changed; sign in again.", company.name));
    type_into(&mut sam, "Your password", STAFF_PASSWORD);
    click(&mut sam, "Continue");
    wait_for_label(&mut sam, &format!("You are no longer a member of {}. Sign out.", company.name));
}

#[test]
fn a_changed_password_signs_the_user_in_again_by_itself() {
    let stack = Stack::start_mailing();
    let company = stack.signup(&unique("chpw-"));
    let mut app = stack.app();
    sign_in(&mut app, &company);
    click(&mut app, &company.email);
    click(&mut app, "Change password…");
    type_into(&mut app, "Current password", PASSWORD);
    type_into(&mut app, "New password", STAFF_PASSWORD);
    type_into(&mut app, "Confirm new password", STAFF_PASSWORD);
    click(&mut app, "Save new password");
    wait_for_label(&mut app, "Your password was changed.");
    assert!(app.state().reauth.is_none(), "no sign-in dialog: the app did it");
    wait_for_label(&mut app, "Live");
    click(&mut app, "Add employee");
    type_into(&mut app, "First name", "Ada");
    type_into(&mut app, "Last name", "Lovelace");
    type_into(&mut app, "Work e-mail", "ada@example.com");
    click(&mut app, "Save");
    wait_for_label(&mut app, "Saved Ada Lovelace.");
}

#[test]
fn forgot_password_sends_a_code_that_sets_a_new_password_and_signs_in() {
    let stack = Stack::start_mailing();
    let company = stack.signup(&unique("forgot-"));
    let mut app = stack.app();
    wait_for_label_containing(&mut app, "Connected to NexaCore");
    type_into(&mut app, "E-mail", &company.email);
    click(&mut app, "Forgot password?");
    click(&mut app, "Send reset code");
    wait_for_label_containing(&mut app, "a reset code is on its way");
    let code = code_in(&stack.mail_to(&company.email, "Forgot password"));
    type_into(&mut app, "Reset code", &code);
    type_into(&mut app, "New password", STAFF_PASSWORD);
    type_into(&mut app, "Confirm new password", STAFF_PASSWORD);
    click(&mut app, "Set new password");
    wait_for_label(&mut app, &company.name);
    wait_for_label(&mut app, "Live");
}
