//! Protected branch and tag rules of projects.

use super::codec::{decode, encode};
use super::tables::PROTECTED_REFS;
use super::{Error, Store, next_id};
use crate::domain::{ProtectedRef, RefKind};
use redb::{ReadableTable, WriteTransaction};

/// The storage key of a rule: its kind and name.
fn key(kind: RefKind, name: &str) -> String {
    format!("{}:{name}", kind.as_str())
}

impl Store {
    /// Every rule of a project, branches then tags, by name.
    pub fn protected_refs(&self, project_id: u64) -> Result<Vec<ProtectedRef>, Error> {
        self.read(|tx| {
            let table = tx.open_table(PROTECTED_REFS)?;
            let mut out = Vec::new();
            for entry in table.range((project_id, "")..(project_id + 1, ""))? {
                out.push(decode(entry?.1.value())?);
            }
            Ok(out)
        })
    }

    /// Adds a rule; `None` if one with that kind and name exists.
    pub async fn create_protected_ref(&self, rule: ProtectedRef) -> Result<Option<ProtectedRef>, Error> {
        self.write(move |tx| insert_rule(tx, rule)).await
    }

    /// Replaces an existing rule (found by its kind and name) with `rule`'s levels and force
    /// push flag; `None` if there is none.
    pub async fn update_protected_ref(&self, rule: ProtectedRef) -> Result<Option<ProtectedRef>, Error> {
        self.write(move |tx| {
            let k = key(rule.kind, &rule.name);
            let mut table = tx.open_table(PROTECTED_REFS)?;
            let Some(old) = table
                .get((rule.project_id, k.as_str()))?
                .map(|g| decode::<ProtectedRef>(g.value()))
            else {
                return Ok(None);
            };
            let updated = ProtectedRef { id: old?.id, ..rule };
            table.insert(
                (updated.project_id, k.as_str()),
                super::codec::encode(&updated)?.as_slice(),
            )?;
            Ok(Some(updated))
        })
        .await
    }

    /// Removes a rule; false if there was none.
    pub async fn delete_protected_ref(&self, project_id: u64, kind: RefKind, name: String) -> Result<bool, Error> {
        self.write(move |tx| {
            let k = key(kind, &name);
            Ok(tx
                .open_table(PROTECTED_REFS)?
                .remove((project_id, k.as_str()))?
                .is_some())
        })
        .await
    }
}

/// Inserts a rule with a fresh id unless its kind and name exist; the project's own transaction
/// uses it to protect a new default branch.
pub(super) fn insert_rule(tx: &WriteTransaction, rule: ProtectedRef) -> Result<Option<ProtectedRef>, Error> {
    let k = key(rule.kind, &rule.name);
    let mut table = tx.open_table(PROTECTED_REFS)?;
    if table.get((rule.project_id, k.as_str()))?.is_some() {
        return Ok(None);
    }
    let rule = ProtectedRef {
        id: next_id(tx, "next_protected_ref_id")?,
        ..rule
    };
    table.insert((rule.project_id, k.as_str()), encode(&rule)?.as_slice())?;
    Ok(Some(rule))
}

/// GitLab's protection of a new project's default branch ("protected against pushes"):
/// Maintainers push, Developers merge (and so run pipelines on it).
pub fn default_branch_rule(project_id: u64, branch: &str) -> ProtectedRef {
    ProtectedRef {
        id: 0,
        project_id,
        kind: RefKind::Branch,
        name: branch.to_string(),
        push_access_level: 40,
        merge_access_level: 30,
        create_access_level: 40,
        allow_force_push: false,
    }
}

/// A project's refs as spur last saw them: full name → commit.
pub type RefSnapshot = std::collections::BTreeMap<String, String>;

impl Store {
    /// The refs recorded for a project; `None` if none were ever recorded.
    pub fn project_refs(&self, project_id: u64) -> Result<Option<RefSnapshot>, Error> {
        self.read(|tx| {
            let table = tx.open_table(super::tables::PROJECT_REFS)?;
            if table.get((project_id, ""))?.is_none() {
                return Ok(None);
            }
            let mut out = RefSnapshot::new();
            for entry in table.range((project_id, "\u{1}")..(project_id + 1, ""))? {
                let (k, v) = entry?;
                out.insert(k.value().1.to_string(), v.value().to_string());
            }
            Ok(Some(out))
        })
    }

    /// Replaces the refs recorded for a project.
    pub async fn set_project_refs(&self, project_id: u64, refs: RefSnapshot) -> Result<(), Error> {
        self.write(move |tx| {
            let mut table = tx.open_table(super::tables::PROJECT_REFS)?;
            table.retain_in((project_id, "")..(project_id + 1, ""), |_, _| false)?;
            table.insert((project_id, ""), "")?;
            for (name, sha) in &refs {
                table.insert((project_id, name.as_str()), sha.as_str())?;
            }
            Ok(())
        })
        .await
    }
}
