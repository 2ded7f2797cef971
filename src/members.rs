//! Project membership: adding, changing and removing members, the one place API and UI change
//! them through.

use crate::context::Spur;

/// Adds a member (`create_only`: refuse if already a member) or changes an existing one.
pub async fn put_project_member(
    spur: &Spur,
    project_id: u64,
    user_id: u64,
    level: crate::domain::AccessLevel,
    expires_at: Option<crate::domain::Millis>,
    create_only: bool,
    now: crate::domain::Millis,
) -> Result<Result<crate::domain::Membership, crate::storage::Refusal>, crate::storage::Error> {
    spur.store
        .put_project_member(project_id, user_id, level, expires_at, create_only, now)
        .await
}

/// Removes a member.
pub async fn remove_project_member(
    spur: &Spur,
    project_id: u64,
    user_id: u64,
) -> Result<Result<(), crate::storage::Refusal>, crate::storage::Error> {
    spur.store.remove_project_member(project_id, user_id).await
}

/// Adds a group member (`create_only`: refuse if already one) or changes an existing one;
/// the group's projects inherit the role.
pub async fn put_group_member(
    spur: &Spur,
    group_id: u64,
    user_id: u64,
    level: crate::domain::AccessLevel,
    expires_at: Option<crate::domain::Millis>,
    create_only: bool,
    now: crate::domain::Millis,
) -> Result<Result<crate::domain::Membership, crate::storage::Refusal>, crate::storage::Error> {
    spur.store
        .put_group_member(group_id, user_id, level, expires_at, create_only, now)
        .await
}

/// Removes a group member.
pub async fn remove_group_member(
    spur: &Spur,
    group_id: u64,
    user_id: u64,
) -> Result<Result<(), crate::storage::Refusal>, crate::storage::Error> {
    spur.store
        .remove_group_member(group_id, user_id, crate::clock::now())
        .await
}
