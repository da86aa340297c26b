//! The messages the platform sends: plain text and HTML, with the company's name. Every value
//! from users is HTML-escaped in the HTML part.

use uuid::Uuid;

use super::Mail;

fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;").replace('\'', "&#39;")
}

fn html(paragraphs: &[String]) -> String {
    let body: String = paragraphs.iter().map(|p| format!("<p>{p}</p>\n")).collect();
    format!("<!DOCTYPE html>\n<html><body style=\"font-family: sans-serif\">\n{body}</body></html>\n")
}

/// The link the desktop app opens to accept an invitation.
pub fn accept_link(code: &str) -> String {
    format!("nexacore://accept?code={code}")
}

pub struct Invitation<'a> {
    pub tenant: Uuid,
    pub company: &'a str,
    pub to: &'a str,
    pub invited_by: &'a str,
    pub role: &'a str,
    pub code: &'a str,
    pub expires: &'a str,
}

pub fn invitation(i: &Invitation<'_>) -> Mail {
    let link = accept_link(i.code);
    let text = format!(
        "{by} invited you to join {company} on NexaCore as {role}.\n\n\
         Open the NexaCore app, choose \"Accept an invitation\" and enter this code:\n\n    {code}\n\n\
         or open this link on a computer with the app installed:\n{link}\n\n\
         The code works once and expires on {expires}. If you did not expect this, ignore this e-mail.\n",
        by = i.invited_by,
        company = i.company,
        role = i.role,
        code = i.code,
        expires = i.expires,
    );
    let html = html(&[
        format!(
            "{} invited you to join <strong>{}</strong> on NexaCore as {}.",
            escape(i.invited_by),
            escape(i.company),
            escape(i.role)
        ),
        format!(
            "Open the NexaCore app, choose <em>Accept an invitation</em> and enter this code: <code>{}</code>",
            escape(i.code)
        ),
        format!("Or open <a href=\"{0}\">{0}</a> on a computer with the app installed.", escape(&link)),
        format!(
            "The code works once and expires on {}. If you did not expect this, ignore this e-mail.",
            escape(i.expires)
        ),
    ]);
    Mail {
        kind: "invitation",
        tenant: Some(i.tenant),
        to: i.to.to_owned(),
        subject: format!("You are invited to {} on NexaCore", i.company),
        text,
        html,
    }
}

pub fn welcome(tenant: Uuid, company: &str, to: &str, download_url: &str) -> Mail {
    let text = format!(
        "Welcome to NexaCore! Your company {company} is ready.\n\n\
         Sign in to the desktop app with {to} and the password you chose.\n\
         Download the desktop app: {download_url}\n\n\
         Invite your colleagues from the People screen once you are signed in.\n"
    );
    let html = html(&[
        format!("Welcome to NexaCore! Your company <strong>{}</strong> is ready.", escape(company)),
        format!("Sign in to the desktop app with <strong>{}</strong> and the password you chose.", escape(to)),
        format!("<a href=\"{0}\">Download the desktop app</a> ({0}).", escape(download_url)),
        "Invite your colleagues from the People screen once you are signed in.".into(),
    ]);
    Mail {
        kind: "welcome",
        tenant: Some(tenant),
        to: to.to_owned(),
        subject: format!("Welcome to NexaCore, {company}"),
        text,
        html,
    }
}

pub fn password_reset(to: &str, code: &str, expires: &str) -> Mail {
    let text = format!(
        "Someone asked to reset the NexaCore password of {to}.\n\n\
         In the NexaCore app, choose \"Forgot password\" and enter this code with your new password:\n\n    {code}\n\n\
         The code works once and expires at {expires}. If it was not you, ignore this e-mail: your password stays as it is.\n"
    );
    let html = html(&[
        format!("Someone asked to reset the NexaCore password of {}.", escape(to)),
        format!(
            "In the NexaCore app, choose <em>Forgot password</em> and enter this code with your new password: <code>{}</code>",
            escape(code)
        ),
        format!(
            "The code works once and expires at {}. If it was not you, ignore this e-mail: your password stays as it is.",
            escape(expires)
        ),
    ]);
    Mail {
        kind: "password_reset",
        tenant: None,
        to: to.to_owned(),
        subject: "Reset your NexaCore password".into(),
        text,
        html,
    }
}

pub fn password_changed(to: &str) -> Mail {
    let text = format!(
        "The NexaCore password of {to} was just changed, and every session signed in before was ended.\n\n\
         If it was not you, reset your password from the app's sign-in screen at once.\n"
    );
    let html = html(&[
        format!(
            "The NexaCore password of {} was just changed, and every session signed in before was ended.",
            escape(to)
        ),
        "If it was not you, reset your password from the app's sign-in screen at once.".into(),
    ]);
    Mail {
        kind: "password_changed",
        tenant: None,
        to: to.to_owned(),
        subject: "Your NexaCore password was changed".into(),
        text,
        html,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_text_is_escaped_in_html_and_kept_in_text() {
        let mail = invitation(&Invitation {
            tenant: Uuid::nil(),
            company: "Smith & <Sons>",
            to: "a@b.example",
            invited_by: "Ada",
            role: "staff",
            code: "ABCD-EFGH",
            expires: "2026-12-10",
        });
        assert!(mail.html.contains("Smith &amp; &lt;Sons&gt;") && !mail.html.contains("<Sons>"));
        assert!(mail.text.contains("Smith & <Sons>") && mail.text.contains("ABCD-EFGH"));
        assert!(mail.text.contains("nexacore://accept?code=ABCD-EFGH"));
    }
}
