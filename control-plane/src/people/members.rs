//! A company's members: the list, role changes and removals. A role change or removal gives
//! the membership a new epoch (or none), so the member's tokens stop working on every router
//! within a catalog notice's delay.

use api_types::people::{Member, Role};
use serde_json::json;
use uuid::Uuid;

use super::{Caller, People, PeopleError};
use crate::catalog::audit;
use crate::catalog::refresh_tokens;
use crate::catalog::users::{self, MemberRow};

fn view(row: MemberRow) -> Member {
    Member {
        id: row.id,
        email: row.email,
        full_name: row.full_name,
        role: Role::parse(&row.role).unwrap_or_default(),
        created_at: row.created_at,
        last_login_at: row.last_login_at,
    }
}

impl People {
    pub async fn members(&self, caller: Caller) -> Result<Vec<Member>, PeopleError> {
        caller.require(caller.role.may_see_people(), "see the member list")?;
        Ok(users::members(&self.catalog, caller.tenant).await?.into_iter().map(view).collect())
    }

    pub async fn set_role(&self, caller: Caller, user: Uuid, role: Role) -> Result<Member, PeopleError> {
        caller.require(caller.role.may_manage_people(), "change roles")?;
        let mut tx = self.catalog.begin().await?;
        let admins = users::lock_admins(&mut *tx, caller.tenant).await?;
        let member = member(&mut tx, caller.tenant, user).await?;
        if member.role == role.as_str() {
            return Ok(view(member));
        }
        if member.role == Role::Admin.as_str() && admins.len() <= 1 {
            return Err(last_admin("demoted"));
        }
        users::set_role(&mut *tx, caller.tenant, user, role.as_str()).await?;
        let details = json!({ "user": user, "from": member.role, "to": role.as_str() });
        audit::record(&mut *tx, &caller.actor(), "member.role_changed", Some(caller.tenant), details).await?;
        let changed = users::member(&mut *tx, caller.tenant, user).await?.ok_or_else(not_found)?;
        tx.commit().await?;
        Ok(view(changed))
    }

    pub async fn remove(&self, caller: Caller, user: Uuid) -> Result<(), PeopleError> {
        caller.require(caller.role.may_manage_people(), "remove members")?;
        let mut tx = self.catalog.begin().await?;
        let admins = users::lock_admins(&mut *tx, caller.tenant).await?;
        let member = member(&mut tx, caller.tenant, user).await?;
        if member.role == Role::Admin.as_str() && admins.len() <= 1 {
            return Err(last_admin("removed"));
        }
        users::remove_membership(&mut *tx, caller.tenant, user).await?;
        refresh_tokens::revoke_user(&mut *tx, user, Some(caller.tenant)).await?;
        let details = json!({ "user": user, "email": member.email, "role": member.role });
        audit::record(&mut *tx, &caller.actor(), "member.removed", Some(caller.tenant), details).await?;
        tx.commit().await?;
        Ok(())
    }
}

async fn member(tx: &mut sqlx::PgConnection, tenant: Uuid, user: Uuid) -> Result<MemberRow, PeopleError> {
    users::member(&mut *tx, tenant, user).await?.ok_or_else(not_found)
}

fn not_found() -> PeopleError {
    PeopleError::NotFound("no such member".into())
}

fn last_admin(what: &str) -> PeopleError {
    PeopleError::Conflict {
        code: "last_admin",
        message: format!("the company's last admin cannot be {what}; make someone else admin first"),
    }
}
