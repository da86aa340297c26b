//! `ops users …` and `ops mail …`: a tenant's people and the e-mail outbox, through the
//! control plane's operator API. Tables for people, `--json` for scripts.

use clap::{Subcommand, ValueEnum};
use comfy_table::{Table, presets::UTF8_FULL_CONDENSED};
use reqwest::Method;
use serde_json::{Value, json};

use crate::api::{Api, Target};

#[derive(Clone, Copy, ValueEnum)]
pub enum Role {
    Admin,
    Manager,
    Staff,
}

impl Role {
    fn as_str(self) -> &'static str {
        match self {
            Self::Admin => "admin",
            Self::Manager => "manager",
            Self::Staff => "staff",
        }
    }
}

#[derive(Subcommand)]
pub enum UsersCommand {
    /// Lists a tenant's members and pending invitations.
    List {
        #[arg(long)]
        tenant: String,
        #[arg(long)]
        json: bool,
    },
    /// Invites someone by e-mail; they get a single-use code.
    Invite {
        #[arg(long)]
        tenant: String,
        email: String,
        #[arg(long, value_enum)]
        role: Role,
        /// The invitee's name, proposed when they accept.
        #[arg(long)]
        name: Option<String>,
    },
    /// Removes a member (by e-mail or id); the last admin cannot be removed.
    Remove {
        #[arg(long)]
        tenant: String,
        user: String,
    },
    /// Changes a member's role (by e-mail or id); the last admin cannot be demoted.
    SetRole {
        #[arg(long)]
        tenant: String,
        user: String,
        #[arg(long, value_enum)]
        role: Role,
    },
}

#[derive(Subcommand)]
pub enum MailCommand {
    /// Lists outgoing e-mail, newest first: pending (waiting or retrying), sent, failed.
    List {
        /// Only `pending`, `sent` or `failed`.
        #[arg(long)]
        status: Option<String>,
        #[arg(long, default_value_t = 100)]
        limit: u32,
        #[arg(long)]
        json: bool,
    },
}

/// A tenant's id from its id or slug.
async fn tenant_id(api: &Api, tenant: &str) -> anyhow::Result<String> {
    if uuid::Uuid::parse_str(tenant).is_ok() {
        return Ok(tenant.to_owned());
    }
    let page =
        api.call(Method::GET, &format!("/tenants?limit=500&q={}", crate::tenants::urlencode(tenant)), None).await?;
    let found = page["items"].as_array().into_iter().flatten().find(|t| t["slug"] == tenant);
    found
        .and_then(|t| t["id"].as_str().map(str::to_owned))
        .ok_or_else(|| anyhow::anyhow!("--tenant: no tenant has the id or slug {tenant:?}"))
}

/// A member's id from their id or e-mail.
async fn member_id(api: &Api, tenant: &str, user: &str) -> anyhow::Result<String> {
    if uuid::Uuid::parse_str(user).is_ok() {
        return Ok(user.to_owned());
    }
    let members = api.call(Method::GET, &format!("/tenants/{tenant}/users"), None).await?;
    let found = members
        .as_array()
        .into_iter()
        .flatten()
        .find(|m| m["email"].as_str().is_some_and(|e| e.eq_ignore_ascii_case(user)));
    found
        .and_then(|m| m["id"].as_str().map(str::to_owned))
        .ok_or_else(|| anyhow::anyhow!("no member of this tenant has the id or e-mail {user:?}"))
}

pub async fn run_users(command: UsersCommand, target: Target) -> anyhow::Result<()> {
    let api = Api::from_target(target)?;
    match command {
        UsersCommand::List { tenant, json } => {
            let tenant = tenant_id(&api, &tenant).await?;
            let members = api.call(Method::GET, &format!("/tenants/{tenant}/users"), None).await?;
            let invitations = api.call(Method::GET, &format!("/tenants/{tenant}/invitations"), None).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&json!({"members": members, "invitations": invitations}))?);
            } else {
                print_people(&members, &invitations);
            }
        }
        UsersCommand::Invite { tenant, email, role, name } => {
            let tenant = tenant_id(&api, &tenant).await?;
            let mut body = json!({"email": email, "role": role.as_str()});
            if let Some(name) = name {
                body["full_name"] = json!(name);
            }
            let invitation = api.call(Method::POST, &format!("/tenants/{tenant}/invitations"), Some(&body)).await?;
            println!(
                "invited {} as {} (expires {})",
                invitation["email"].as_str().unwrap_or(&email),
                role.as_str(),
                invitation["expires_at"].as_str().unwrap_or("?")
            );
        }
        UsersCommand::Remove { tenant, user } => {
            let tenant = tenant_id(&api, &tenant).await?;
            let id = member_id(&api, &tenant, &user).await?;
            api.call(Method::DELETE, &format!("/tenants/{tenant}/users/{id}"), None).await?;
            println!("removed {user}");
        }
        UsersCommand::SetRole { tenant, user, role } => {
            let tenant = tenant_id(&api, &tenant).await?;
            let id = member_id(&api, &tenant, &user).await?;
            let body = json!({"role": role.as_str()});
            let member = api.call(Method::PATCH, &format!("/tenants/{tenant}/users/{id}"), Some(&body)).await?;
            println!("{} is now {}", member["email"].as_str().unwrap_or(&user), role.as_str());
        }
    }
    Ok(())
}

pub async fn run_mail(command: MailCommand, target: Target) -> anyhow::Result<()> {
    let api = Api::from_target(target)?;
    match command {
        MailCommand::List { status, limit, json } => {
            let mut path = format!("/mail?limit={limit}");
            if let Some(s) = &status {
                path.push_str(&format!("&status={}", crate::tenants::urlencode(s)));
            }
            let items = api.call(Method::GET, &path, None).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&items)?);
                return Ok(());
            }
            let mut table = Table::new();
            table.load_preset(UTF8_FULL_CONDENSED).set_header([
                "created",
                "kind",
                "to",
                "status",
                "attempts",
                "last error",
            ]);
            let rows = items.as_array().cloned().unwrap_or_default();
            for m in &rows {
                let s = |k: &str| m[k].as_str().unwrap_or("").to_owned();
                table.add_row([
                    s("created_at"),
                    s("kind"),
                    s("recipient"),
                    s("status"),
                    m["attempts"].to_string(),
                    s("last_error"),
                ]);
            }
            println!("{table}");
            let failed = rows.iter().filter(|m| m["status"] == "failed").count();
            println!("{} message(s), {failed} failed", rows.len());
        }
    }
    Ok(())
}

fn print_people(members: &Value, invitations: &Value) {
    let mut table = Table::new();
    table.load_preset(UTF8_FULL_CONDENSED).set_header(["e-mail", "name", "role", "status", "last sign-in / expires"]);
    for m in members.as_array().into_iter().flatten() {
        let s = |k: &str| m[k].as_str().unwrap_or("").to_owned();
        table.add_row([s("email"), s("full_name"), s("role"), "member".into(), s("last_login_at")]);
    }
    for i in invitations.as_array().into_iter().flatten() {
        let s = |k: &str| i[k].as_str().unwrap_or("").to_owned();
        table.add_row([s("email"), s("full_name"), s("role"), format!("invited ({})", s("status")), s("expires_at")]);
    }
    println!("{table}");
    println!(
        "{} member(s), {} invitation(s)",
        members.as_array().map_or(0, Vec::len),
        invitations.as_array().map_or(0, Vec::len)
    );
}
