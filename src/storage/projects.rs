//! Projects, their paths and their members.

use super::codec::{all_json, decode, encode, get_json};
use super::tables::GROUP_MEMBERS;
use super::tables::{
    PIPELINE_IIDS, PIPELINE_VARIABLES, PIPELINES, PROJECT_MEMBERS, PROJECT_PATHS, PROJECT_PIPELINES, PROJECT_TRIGGERS,
    PROJECTS, TRIGGER_DIGESTS, TRIGGER_LAST_USED, TRIGGERS,
};
use super::{Error, Refusal, Store, ids_under, next_id};
use crate::domain::{AccessLevel, Membership, Millis, Project, Trigger, VariablesOverrideRole, Visibility};
use redb::{ReadableTable, WriteTransaction};

/// What is needed to create a project.
#[derive(Debug, Clone)]
pub struct NewProject {
    /// Display name.
    pub name: String,
    /// Path inside the namespace.
    pub path: String,
    /// The namespace.
    pub namespace_id: u64,
    /// The namespace's path, to build the full path.
    pub namespace_path: String,
    /// Free text.
    pub description: String,
    /// Who may see it.
    pub visibility: Visibility,
    /// Where the repository comes from.
    pub import_url: Option<String>,
    /// Folder name under `<data-dir>/repositories`.
    pub repo_name: String,
    /// The branch HEAD points at.
    pub default_branch: Option<String>,
    /// The creator, who becomes its Owner.
    pub creator_id: u64,
    /// Sealed credentials of `import_url`.
    pub import_credentials: Option<Vec<u8>>,
    /// The deploy key of an SSH origin.
    pub deploy_key: Option<crate::domain::DeployKey>,
    /// Creation time.
    pub now: Millis,
}

/// Whether group `group_id` still has a live Owner once `user_id` becomes `new` (a role and
/// expiry; `None`: removed). A group without any live Owner before is left to administrators.
/// Checked inside the write, so two concurrent demotions cannot both pass.
fn owner_remains(
    members: &redb::Table<(u64, u64), super::tables::Json>,
    group_id: u64,
    user_id: u64,
    new: Option<(AccessLevel, Option<Millis>)>,
    now: Millis,
) -> Result<bool, Error> {
    let live_owner = |m: &Membership| m.access_level == AccessLevel::Owner && m.expires_at.is_none_or(|t| t > now);
    let (mut before, mut others) = (0usize, 0usize);
    for entry in members.range((group_id, 0)..=(group_id, u64::MAX))? {
        let (key, value) = entry?;
        let m: Membership = decode(value.value())?;
        if live_owner(&m) {
            before += 1;
            if key.value().1 != user_id {
                others += 1;
            }
        }
    }
    let stays = new.is_some_and(|(level, expires)| level == AccessLevel::Owner && expires.is_none_or(|t| t > now));
    Ok(before == 0 || others > 0 || stays)
}

/// The project or group members table.
type MembersTable = redb::TableDefinition<'static, (u64, u64), super::tables::Json>;

impl Store {
    /// Creates a project; its creator becomes an Owner member.
    pub async fn create_project(&self, new: NewProject) -> Result<Result<Project, Refusal>, Error> {
        self.write(move |tx| create_project_in(tx, new)).await
    }

    /// The project with `id`.
    pub fn project(&self, id: u64) -> Result<Option<Project>, Error> {
        self.read(|tx| get_json(&tx.open_table(PROJECTS)?, id))
    }

    /// The project at `namespace/path` (case-insensitive).
    pub fn project_by_path(&self, full_path: &str) -> Result<Option<Project>, Error> {
        let key = full_path.to_lowercase();
        self.read(|tx| {
            let Some(id) = tx.open_table(PROJECT_PATHS)?.get(key.as_str())?.map(|g| g.value()) else {
                return Ok(None);
            };
            get_json(&tx.open_table(PROJECTS)?, id)
        })
    }

    /// Every project, by id.
    pub fn projects(&self) -> Result<Vec<Project>, Error> {
        self.read(|tx| all_json(&tx.open_table(PROJECTS)?))
    }

    /// Changes a project's editable settings.
    pub async fn update_project(
        &self,
        id: u64,
        change: ProjectChange,
        now: Millis,
    ) -> Result<Result<Project, Refusal>, Error> {
        self.write(move |tx| {
            let mut projects = tx.open_table(PROJECTS)?;
            let Some(mut project) = get_json::<_, Project>(&projects, id)? else {
                return Ok(Err(Refusal::NotFound));
            };
            if let Some(v) = change.name {
                project.name = v;
            }
            if let Some(v) = change.description {
                project.description = v;
            }
            if let Some(v) = change.visibility {
                project.visibility = v;
            }
            if let Some(v) = change.variables_override_role {
                project.variables_override_role = v;
            }
            if let Some(v) = change.mirror_interval_secs {
                project.mirror_interval_secs = (v > 0).then_some(v);
            }
            project.updated_at = now;
            projects.insert(id, encode(&project)?.as_slice())?;
            Ok(Ok(project))
        })
        .await
    }

    /// Gives a project without a default branch (a hosted one before its first push) `branch`
    /// as its default, protected as GitLab protects a new default branch. False if it had one.
    pub async fn set_first_default_branch(&self, id: u64, branch: String) -> Result<bool, Error> {
        self.write(move |tx| {
            let mut projects = tx.open_table(PROJECTS)?;
            let Some(mut project) = get_json::<_, Project>(&projects, id)? else {
                return Ok(false);
            };
            if project.default_branch.is_some() {
                return Ok(false);
            }
            project.default_branch = Some(branch.clone());
            projects.insert(id, encode(&project)?.as_slice())?;
            drop(projects);
            super::protected_refs::insert_rule(tx, super::protected_refs::default_branch_rule(id, &branch))?;
            Ok(true)
        })
        .await
    }

    /// Deletes a project and everything that belongs to it: members, triggers, pipelines.
    pub async fn delete_project(&self, id: u64) -> Result<Result<Project, Refusal>, Error> {
        self.write(move |tx| delete_project_in(tx, id)).await
    }

    /// A user's direct membership of a project.
    pub fn project_member(&self, project_id: u64, user_id: u64) -> Result<Option<Membership>, Error> {
        self.read(|tx| get_json(&tx.open_table(PROJECT_MEMBERS)?, (project_id, user_id)))
    }

    /// A project's direct members, by user id.
    pub fn project_members(&self, project_id: u64) -> Result<Vec<(u64, Membership)>, Error> {
        self.members_of(PROJECT_MEMBERS, project_id)
    }

    /// A group's direct members, by user id.
    pub fn group_members(&self, group_id: u64) -> Result<Vec<(u64, Membership)>, Error> {
        self.members_of(GROUP_MEMBERS, group_id)
    }

    /// Adds a group member (`create_only`: refuse if already one) or changes an existing one.
    pub async fn put_group_member(
        &self,
        group_id: u64,
        user_id: u64,
        level: AccessLevel,
        expires_at: Option<Millis>,
        create_only: bool,
        now: Millis,
    ) -> Result<Result<Membership, Refusal>, Error> {
        self.put_member(GROUP_MEMBERS, group_id, user_id, level, expires_at, create_only, now)
            .await
    }

    /// Removes a group member.
    pub async fn remove_group_member(
        &self,
        group_id: u64,
        user_id: u64,
        now: Millis,
    ) -> Result<Result<(), Refusal>, Error> {
        self.write(move |tx| {
            let mut members = tx.open_table(GROUP_MEMBERS)?;
            if !owner_remains(&members, group_id, user_id, None, now)? {
                return Ok(Err(Refusal::Taken("owner")));
            }
            let removed = members.remove((group_id, user_id))?.is_some();
            Ok(if removed { Ok(()) } else { Err(Refusal::NotFound) })
        })
        .await
    }

    fn members_of(&self, table: MembersTable, owner: u64) -> Result<Vec<(u64, Membership)>, Error> {
        self.read(|tx| {
            let project_id = owner;
            let table = tx.open_table(table)?;
            let mut out = Vec::new();
            for entry in table.range((project_id, 0)..=(project_id, u64::MAX))? {
                let (key, value) = entry?;
                out.push((key.value().1, decode(value.value())?));
            }
            Ok(out)
        })
    }

    /// Adds a member (`create_only`: refuse if already a member) or changes an existing one.
    pub async fn put_project_member(
        &self,
        project_id: u64,
        user_id: u64,
        level: AccessLevel,
        expires_at: Option<Millis>,
        create_only: bool,
        now: Millis,
    ) -> Result<Result<Membership, Refusal>, Error> {
        self.put_member(
            PROJECT_MEMBERS,
            project_id,
            user_id,
            level,
            expires_at,
            create_only,
            now,
        )
        .await
    }

    #[allow(clippy::too_many_arguments)]
    async fn put_member(
        &self,
        table: MembersTable,
        project_id: u64,
        user_id: u64,
        level: AccessLevel,
        expires_at: Option<Millis>,
        create_only: bool,
        now: Millis,
    ) -> Result<Result<Membership, Refusal>, Error> {
        self.write(move |tx| {
            let mut members = tx.open_table(table)?;
            if redb::TableHandle::name(&table) == redb::TableHandle::name(&GROUP_MEMBERS)
                && !owner_remains(&members, project_id, user_id, Some((level, expires_at)), now)?
            {
                return Ok(Err(Refusal::Taken("owner")));
            }
            let existing = get_json::<_, Membership>(&members, (project_id, user_id))?;
            let member = match (existing, create_only) {
                (Some(_), true) => return Ok(Err(Refusal::Taken("member"))),
                (None, false) => return Ok(Err(Refusal::NotFound)),
                (Some(m), false) => Membership {
                    access_level: level,
                    expires_at,
                    ..m
                },
                (None, true) => Membership {
                    access_level: level,
                    created_at: now,
                    expires_at,
                },
            };
            members.insert((project_id, user_id), encode(&member)?.as_slice())?;
            Ok(Ok(member))
        })
        .await
    }

    /// Removes a member.
    pub async fn remove_project_member(&self, project_id: u64, user_id: u64) -> Result<Result<(), Refusal>, Error> {
        self.remove_member(PROJECT_MEMBERS, project_id, user_id).await
    }

    async fn remove_member(
        &self,
        table: MembersTable,
        project_id: u64,
        user_id: u64,
    ) -> Result<Result<(), Refusal>, Error> {
        self.write(move |tx| {
            let removed = tx.open_table(table)?.remove((project_id, user_id))?.is_some();
            Ok(if removed { Ok(()) } else { Err(Refusal::NotFound) })
        })
        .await
    }
}

/// The editable settings of a project; `None` leaves a setting as it is.
#[derive(Debug, Clone, Default)]
pub struct ProjectChange {
    /// New display name.
    pub name: Option<String>,
    /// New description.
    pub description: Option<String>,
    /// New visibility.
    pub visibility: Option<Visibility>,
    /// New minimum role for pipeline variables.
    pub variables_override_role: Option<VariablesOverrideRole>,
    /// New mirror interval in seconds (0: back to the server's default).
    pub mirror_interval_secs: Option<u64>,
}

fn create_project_in(tx: &WriteTransaction, new: NewProject) -> Result<Result<Project, Refusal>, Error> {
    let full_path = format!("{}/{}", new.namespace_path, new.path);
    let key = full_path.to_lowercase();
    if tx.open_table(PROJECT_PATHS)?.get(key.as_str())?.is_some() {
        return Ok(Err(Refusal::Taken("path")));
    }
    let project = Project {
        id: next_id(tx, "next_project_id")?,
        name: new.name,
        path: new.path,
        namespace_id: new.namespace_id,
        full_path,
        description: new.description,
        visibility: new.visibility,
        import_url: new.import_url,
        repo_name: new.repo_name,
        default_branch: new.default_branch,
        variables_override_role: VariablesOverrideRole::Developer,
        creator_id: new.creator_id,
        created_at: new.now,
        updated_at: new.now,
        import_credentials: new.import_credentials,
        mirror_interval_secs: None,
        deploy_key: new.deploy_key,
    };
    tx.open_table(PROJECTS)?
        .insert(project.id, encode(&project)?.as_slice())?;
    tx.open_table(PROJECT_PATHS)?.insert(key.as_str(), project.id)?;
    let owner = Membership {
        access_level: AccessLevel::Owner,
        created_at: new.now,
        expires_at: None,
    };
    tx.open_table(PROJECT_MEMBERS)?
        .insert((project.id, new.creator_id), encode(&owner)?.as_slice())?;
    if let Some(branch) = &project.default_branch {
        super::protected_refs::insert_rule(tx, super::protected_refs::default_branch_rule(project.id, branch))?;
    }
    Ok(Ok(project))
}

fn delete_project_in(tx: &WriteTransaction, id: u64) -> Result<Result<Project, Refusal>, Error> {
    let Some(project) = tx
        .open_table(PROJECTS)?
        .remove(id)?
        .map(|g| decode::<Project>(g.value()))
        .transpose()?
    else {
        return Ok(Err(Refusal::NotFound));
    };
    tx.open_table(PROJECT_PATHS)?
        .remove(project.full_path.to_lowercase().as_str())?;
    tx.open_table(PROJECT_MEMBERS)?
        .retain_in((id, 0)..=(id, u64::MAX), |_, _| false)?;
    let trigger_ids = ids_under(&tx.open_table(PROJECT_TRIGGERS)?, id)?;
    {
        let mut triggers = tx.open_table(TRIGGERS)?;
        let mut digests = tx.open_table(TRIGGER_DIGESTS)?;
        let mut last_used = tx.open_table(TRIGGER_LAST_USED)?;
        let mut last_address = tx.open_table(super::tables::TRIGGER_LAST_ADDRESS)?;
        for tid in trigger_ids {
            if let Some(t) = triggers
                .remove(tid)?
                .map(|g| decode::<Trigger>(g.value()))
                .transpose()?
            {
                digests.remove(t.token_digest.as_slice())?;
                if let Some((older, _)) = &t.previous {
                    digests.remove(older.as_slice())?;
                }
            }
            last_used.remove(tid)?;
            last_address.remove(tid)?;
        }
    }
    tx.open_table(PROJECT_TRIGGERS)?
        .retain_in((id, 0)..=(id, u64::MAX), |_, _| false)?;
    let pipeline_ids = ids_under(&tx.open_table(PROJECT_PIPELINES)?, id)?;
    {
        let mut pipelines = tx.open_table(PIPELINES)?;
        let mut variables = tx.open_table(PIPELINE_VARIABLES)?;
        for pid in &pipeline_ids {
            pipelines.remove(*pid)?;
            variables.remove(*pid)?;
        }
    }
    tx.open_table(PROJECT_PIPELINES)?
        .retain_in((id, 0)..=(id, u64::MAX), |_, _| false)?;
    for pid in pipeline_ids {
        super::pipelines::remove_jobs(tx, id, pid)?;
    }
    tx.open_table(PIPELINE_IIDS)?.remove(id)?;
    tx.open_table(super::tables::PROJECT_VARIABLES)?
        .retain(|(pid, _), _| pid != id)?;
    tx.open_table(super::tables::PROTECTED_REFS)?
        .retain(|(pid, _), _| pid != id)?;
    tx.open_table(super::tables::PROJECT_REFS)?
        .retain(|(pid, _), _| pid != id)?;
    let hook_ids: Vec<u64> = {
        let hooks = tx.open_table(super::tables::PROJECT_HOOKS)?;
        hooks
            .range((id, 0)..=(id, u64::MAX))?
            .map(|e| e.map(|(k, _)| k.value().1))
            .collect::<Result<_, _>>()?
    };
    let mut logs = tx.open_table(super::tables::HOOK_LOGS)?;
    for hook in hook_ids {
        logs.retain_in((hook, 0)..=(hook, u64::MAX), |_, _| false)?;
    }
    drop(logs);
    tx.open_table(super::tables::PROJECT_HOOKS)?
        .retain_in((id, 0)..=(id, u64::MAX), |_, _| false)?;
    tx.open_table(super::tables::STATUS_INTEGRATIONS)?.remove(id)?;
    tx.open_table(super::tables::JOB_TOKEN_SCOPE_OFF)?.remove(id)?;
    tx.open_table(super::tables::PROJECT_BADGES)?
        .retain_in((id, 0)..=(id, u64::MAX), |_, _| false)?;
    tx.open_table(super::tables::RELEASES)?
        .retain_in((id, "")..(id + 1, ""), |_, _| false)?;
    super::schedules::remove_project_schedules(tx, id)?;
    super::environments::remove_project(tx, id)?;
    Ok(Ok(project))
}
