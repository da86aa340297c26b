//! Inviting people: create, list, revoke, resend (admins), and accepting (public, by code).

use api_types::people::{Invitation, InvitationStatus, NewInvitation, Role};
use secrecy::{ExposeSecret as _, SecretString};
use serde_json::json;
use time::OffsetDateTime;
use uuid::Uuid;

use super::{Caller, People, PeopleError, full_name, is_unique_violation, new_code, readable};
use crate::catalog::audit::{self, Actor};
use crate::catalog::invitations::{self as rows, InvitationRow};
use crate::catalog::{tenants, users};
use crate::domain::Email;
use crate::identity::gate::GateError;
use crate::identity::password;
use crate::identity::sessions::SignedIn;
use crate::mail::{self, templates};

fn view(row: InvitationRow) -> Invitation {
    let status = match row.status.as_str() {
        "pending" if row.expires_at <= OffsetDateTime::now_utc() => InvitationStatus::Expired,
        "pending" => InvitationStatus::Pending,
        "accepted" => InvitationStatus::Accepted,
        _ => InvitationStatus::Revoked,
    };
    Invitation {
        id: row.id,
        email: row.email,
        role: Role::parse(&row.role).unwrap_or_default(),
        full_name: row.full_name,
        status,
        expires_at: row.expires_at,
        created_at: row.created_at,
    }
}

/// A signed-in session from an accepted invitation.
pub struct Accepted {
    pub signed: SignedIn,
    pub tenant: tenants::TenantRow,
    pub role: Role,
}

impl People {
    pub async fn invite(&self, caller: Caller, new: NewInvitation) -> Result<Invitation, PeopleError> {
        caller.require(caller.role.may_manage_people(), "invite people")?;
        let email = Email::parse(&new.email).map_err(|m| PeopleError::invalid("email", m))?;
        let name = new.full_name.as_deref().map(|n| full_name("full_name", n)).transpose()?;
        let code = new_code();
        let expires_at = OffsetDateTime::now_utc() + self.settings.invitation_ttl;

        let mut tx = self.catalog.begin().await?;
        let tenant = tenants::get(&mut *tx, caller.tenant).await?.ok_or_else(gone)?;
        rows::expire_stale(&mut *tx, caller.tenant, email.as_str()).await?;
        if users::is_member_by_email(&mut *tx, caller.tenant, email.as_str()).await? {
            return Err(PeopleError::Conflict {
                code: "already_member",
                message: format!("{} is already a member of {}", email.as_str(), tenant.name),
            });
        }
        let inserted = rows::insert(
            &mut *tx,
            rows::NewInvitation {
                id: Uuid::new_v4(),
                tenant_id: caller.tenant,
                email: email.as_str(),
                role: new.role.as_str(),
                full_name: name.as_deref(),
                code_hash: &self.master.code_hash(&code),
                invited_by: caller.as_user(),
                expires_at,
            },
        )
        .await;
        let row = match inserted {
            Ok(row) => row,
            Err(e) if is_unique_violation(&e) => {
                return Err(PeopleError::Conflict {
                    code: "invitation_pending",
                    message: format!("{} already has a pending invitation; resend or revoke it", email.as_str()),
                });
            }
            Err(e) => return Err(e.into()),
        };
        self.enqueue_invitation(&mut tx, &tenant, &row, caller.as_user(), &code).await?;
        let details = json!({ "invitation": row.id, "email": row.email, "role": row.role });
        audit::record(&mut *tx, &caller.actor(), "invitation.created", Some(caller.tenant), details).await?;
        tx.commit().await?;
        self.mail.wake();
        Ok(view(row))
    }

    async fn enqueue_invitation(
        &self,
        tx: &mut sqlx::PgConnection,
        tenant: &tenants::TenantRow,
        row: &InvitationRow,
        inviter: Option<Uuid>,
        code: &str,
    ) -> Result<(), PeopleError> {
        let inviter = match inviter {
            Some(id) => users::by_id(&mut *tx, id).await?.map(|u| u.full_name),
            None => None,
        };
        let inviter = inviter.unwrap_or_else(|| format!("The {} team", tenant.name));
        let message = templates::invitation(&templates::Invitation {
            tenant: tenant.id,
            company: &tenant.name,
            to: &row.email,
            invited_by: &inviter,
            role: &row.role,
            code,
            expires: &readable(row.expires_at),
        });
        mail::enqueue(&mut *tx, &self.master, &message).await?;
        Ok(())
    }

    /// Pending invitations (expired ones marked so), newest first.
    pub async fn invitations(&self, caller: Caller) -> Result<Vec<Invitation>, PeopleError> {
        caller.require(caller.role.may_see_people(), "see invitations")?;
        Ok(rows::pending(&self.catalog, caller.tenant).await?.into_iter().map(view).collect())
    }

    pub async fn revoke(&self, caller: Caller, id: Uuid) -> Result<(), PeopleError> {
        caller.require(caller.role.may_manage_people(), "revoke invitations")?;
        let mut tx = self.catalog.begin().await?;
        let row = pending_invitation(&mut tx, caller.tenant, id).await?;
        rows::set_status(&mut *tx, row.id, "revoked").await?;
        let details = json!({ "invitation": row.id, "email": row.email });
        audit::record(&mut *tx, &caller.actor(), "invitation.revoked", Some(caller.tenant), details).await?;
        tx.commit().await?;
        Ok(())
    }

    /// A new code (the old one stops working) and a new expiry, mailed again.
    pub async fn resend(&self, caller: Caller, id: Uuid) -> Result<Invitation, PeopleError> {
        caller.require(caller.role.may_manage_people(), "resend invitations")?;
        let code = new_code();
        let expires_at = OffsetDateTime::now_utc() + self.settings.invitation_ttl;
        let mut tx = self.catalog.begin().await?;
        let tenant = tenants::get(&mut *tx, caller.tenant).await?.ok_or_else(gone)?;
        let row = pending_invitation(&mut tx, caller.tenant, id).await?;
        let row = rows::renew(&mut *tx, row.id, &self.master.code_hash(&code), expires_at).await?;
        self.enqueue_invitation(&mut tx, &tenant, &row, caller.as_user(), &code).await?;
        let details = json!({ "invitation": row.id, "email": row.email });
        audit::record(&mut *tx, &caller.actor(), "invitation.resent", Some(caller.tenant), details).await?;
        tx.commit().await?;
        self.mail.wake();
        Ok(view(row))
    }

    /// Accepts an invitation: a new account with `password`, or an existing account proving
    /// its password; either way a membership with the invitation's role, and a token.
    pub async fn accept(
        &self,
        code: &str,
        password: SecretString,
        name: &str,
        client: Option<&str>,
    ) -> Result<Accepted, PeopleError> {
        self.code_attempts.hit(client.unwrap_or("unknown")).await.map_err(PeopleError::Throttled)?;
        let code_hash = self.master.code_hash(code);
        // First without a lock, to know the account: hashing must not run inside a transaction.
        let invitation = self.usable_invitation(&mut *self.catalog.acquire().await?, &code_hash).await?;
        let existing = users::by_email(&self.catalog, &invitation.email).await?;
        let new_account = match &existing {
            Some(user) => {
                let ok = self
                    .passwords
                    .check(&invitation.email, client, password, Some(user.password_hash.clone()))
                    .await
                    .map_err(|e| match e {
                        GateError::Throttled(wait) => PeopleError::Throttled(wait),
                        GateError::Busy(busy) => PeopleError::Busy(busy.retry_after),
                    })?;
                if !ok {
                    return Err(PeopleError::Invalid {
                        code: "bad_credentials",
                        field: "password",
                        message: "you already have an account: enter its password".into(),
                    });
                }
                None
            }
            None => {
                let name = full_name("full_name", name)?;
                let local = invitation.email.split('@').next().unwrap_or_default().to_owned();
                password::check_strength(password.expose_secret(), &[&local])
                    .map_err(|m| PeopleError::invalid("password", m))?;
                let hash = self.passwords.hash(password).await.map_err(|b| PeopleError::Busy(b.retry_after))?;
                Some((name, hash))
            }
        };

        let mut tx = self.catalog.begin().await?;
        let invitation = self.usable_invitation(&mut tx, &code_hash).await?;
        let tenant = tenants::get(&mut *tx, invitation.tenant_id).await?.ok_or_else(gone)?;
        if tenant.status != "active" {
            return Err(PeopleError::Forbidden(format!("{} is not active", tenant.name)));
        }
        let user = match (existing, new_account) {
            (Some(user), _) => user.id,
            (None, Some((full_name, password_hash))) => {
                let id = Uuid::new_v4();
                let row = users::UserRow { id, email: invitation.email.clone(), full_name, password_hash };
                match users::insert(&mut *tx, &row).await {
                    Ok(()) => id,
                    // The address signed up meanwhile: its owner must accept with that password.
                    Err(e) if is_unique_violation(&e) => {
                        return Err(PeopleError::Conflict {
                            code: "account_exists",
                            message: "an account with this address was just created; accept again with its password"
                                .into(),
                        });
                    }
                    Err(e) => return Err(e.into()),
                }
            }
            (None, None) => unreachable!("a new account always has a name and hash"),
        };
        let role = Role::parse(&invitation.role).unwrap_or_default();
        let epoch = match users::add_membership(&mut *tx, user, tenant.id, role.as_str()).await {
            Ok(epoch) => epoch,
            Err(e) if is_unique_violation(&e) => {
                return Err(PeopleError::Conflict {
                    code: "already_member",
                    message: format!("you are already a member of {}", tenant.name),
                });
            }
            Err(e) => return Err(e.into()),
        };
        rows::mark_accepted(&mut *tx, invitation.id, user).await?;
        let actor = Actor(format!("user:{user}"));
        let details = json!({ "invitation": invitation.id, "user": user, "role": role.as_str() });
        audit::record(&mut *tx, &actor, "invitation.accepted", Some(tenant.id), details).await?;
        tx.commit().await?;

        let signed = self.sessions.start(user, tenant.id, role, epoch).await?;
        users::touch_login(&self.catalog, user).await?;
        Ok(Accepted { signed, tenant, role })
    }

    /// The invitation of a code, locked, if it can still be accepted; else why not.
    async fn usable_invitation(
        &self,
        db: &mut sqlx::PgConnection,
        code_hash: &[u8],
    ) -> Result<InvitationRow, PeopleError> {
        let refused = |code, message: &str| PeopleError::Invalid { code, field: "code", message: message.into() };
        let row = rows::by_code_for_update(&mut *db, code_hash)
            .await?
            .ok_or_else(|| refused("invalid_code", "this code is not valid; check it or ask for a new invitation"))?;
        match row.status.as_str() {
            "accepted" => Err(refused("code_used", "this invitation was already accepted")),
            "revoked" => Err(refused("code_revoked", "this invitation was withdrawn; ask for a new one")),
            _ if row.expires_at <= OffsetDateTime::now_utc() => {
                Err(refused("code_expired", "this invitation has expired; ask for a new one"))
            }
            _ => Ok(row),
        }
    }
}

async fn pending_invitation(tx: &mut sqlx::PgConnection, tenant: Uuid, id: Uuid) -> Result<InvitationRow, PeopleError> {
    let row = rows::get_for_update(&mut *tx, tenant, id)
        .await?
        .ok_or_else(|| PeopleError::NotFound("no such invitation".into()))?;
    if row.status != "pending" {
        return Err(PeopleError::Conflict {
            code: "not_pending",
            message: format!("the invitation was already {}", row.status),
        });
    }
    Ok(row)
}

fn gone() -> PeopleError {
    PeopleError::NotFound("the company no longer exists".into())
}
