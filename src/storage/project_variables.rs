//! Project and group CI/CD variables, stored sealed: storage sees only ciphertext, callers seal
//! and unseal.

use super::tables::{GROUP_VARIABLES, PROJECT_VARIABLES};
use super::{Error, Refusal, Store};
use redb::ReadableTable;

/// The project or group variables table.
type VariablesTable = redb::TableDefinition<'static, (u64, &'static str), &'static [u8]>;

fn table(group: bool) -> VariablesTable {
    if group { GROUP_VARIABLES } else { PROJECT_VARIABLES }
}

impl Store {
    /// A project's sealed variables, by key.
    pub fn project_variables_sealed(&self, project_id: u64) -> Result<Vec<(String, Vec<u8>)>, Error> {
        self.variables_sealed(false, project_id)
    }

    /// A group's sealed variables, by key.
    pub fn group_variables_sealed(&self, group_id: u64) -> Result<Vec<(String, Vec<u8>)>, Error> {
        self.variables_sealed(true, group_id)
    }

    /// Stores a sealed group variable (as `put_project_variable`).
    pub async fn put_group_variable(
        &self,
        group_id: u64,
        key: String,
        sealed: Vec<u8>,
        create_only: bool,
    ) -> Result<Result<(), Refusal>, Error> {
        self.put_variable(true, group_id, key, sealed, create_only).await
    }

    /// Deletes a group variable.
    pub async fn delete_group_variable(&self, group_id: u64, key: String) -> Result<Result<(), Refusal>, Error> {
        self.delete_variable(true, group_id, key).await
    }

    fn variables_sealed(&self, group: bool, project_id: u64) -> Result<Vec<(String, Vec<u8>)>, Error> {
        self.read(|tx| {
            let table = tx.open_table(table(group))?;
            let mut out = Vec::new();
            for entry in table.range((project_id, "")..)? {
                let (key, value) = entry?;
                let (pid, name) = key.value();
                if pid != project_id {
                    break;
                }
                out.push((name.to_string(), value.value().to_vec()));
            }
            Ok(out)
        })
    }

    /// Stores a sealed variable: `create_only` refuses an existing key (`Taken`), otherwise the
    /// key must exist (`NotFound`).
    pub async fn put_project_variable(
        &self,
        project_id: u64,
        key: String,
        sealed: Vec<u8>,
        create_only: bool,
    ) -> Result<Result<(), Refusal>, Error> {
        self.put_variable(false, project_id, key, sealed, create_only).await
    }

    async fn put_variable(
        &self,
        group: bool,
        project_id: u64,
        key: String,
        sealed: Vec<u8>,
        create_only: bool,
    ) -> Result<Result<(), Refusal>, Error> {
        self.write(move |tx| {
            let mut table = tx.open_table(table(group))?;
            let exists = table.get((project_id, key.as_str()))?.is_some();
            match (exists, create_only) {
                (true, true) => return Ok(Err(Refusal::Taken("key"))),
                (false, false) => return Ok(Err(Refusal::NotFound)),
                _ => {}
            }
            table.insert((project_id, key.as_str()), sealed.as_slice())?;
            Ok(Ok(()))
        })
        .await
    }

    /// Deletes a variable.
    pub async fn delete_project_variable(&self, project_id: u64, key: String) -> Result<Result<(), Refusal>, Error> {
        self.delete_variable(false, project_id, key).await
    }

    async fn delete_variable(&self, group: bool, project_id: u64, key: String) -> Result<Result<(), Refusal>, Error> {
        self.write(move |tx| {
            let removed = tx
                .open_table(table(group))?
                .remove((project_id, key.as_str()))?
                .is_some();
            Ok(if removed { Ok(()) } else { Err(Refusal::NotFound) })
        })
        .await
    }
}
