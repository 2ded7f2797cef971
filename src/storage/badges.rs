//! Project badges.

use super::codec::{decode, encode};
use super::tables::PROJECT_BADGES;
use super::{Error, Store, next_id};
use crate::domain::Badge;
use redb::ReadableTable;

/// Most badges a project keeps.
pub const MAX_BADGES: usize = 100;

impl Store {
    /// A project's badges, by id.
    pub fn badges(&self, project_id: u64) -> Result<Vec<Badge>, Error> {
        self.read(|tx| {
            let table = tx.open_table(PROJECT_BADGES)?;
            let mut out = Vec::new();
            for entry in table.range((project_id, 0)..=(project_id, u64::MAX))? {
                out.push(decode(entry?.1.value())?);
            }
            Ok(out)
        })
    }

    /// Stores a new badge (its id assigned here); `None` when the project has as many as it
    /// may keep.
    pub async fn create_badge(&self, badge: Badge) -> Result<Option<Badge>, Error> {
        self.write(move |tx| {
            let mut table = tx.open_table(PROJECT_BADGES)?;
            let project = badge.project_id;
            if table.range((project, 0)..=(project, u64::MAX))?.count() >= MAX_BADGES {
                return Ok(None);
            }
            let badge = Badge {
                id: next_id(tx, "next_badge_id")?,
                ..badge
            };
            table.insert((badge.project_id, badge.id), encode(&badge)?.as_slice())?;
            Ok(Some(badge))
        })
        .await
    }

    /// Replaces a badge; false if it is gone.
    pub async fn update_badge(&self, badge: Badge) -> Result<bool, Error> {
        self.write(move |tx| {
            let mut table = tx.open_table(PROJECT_BADGES)?;
            if table.get((badge.project_id, badge.id))?.is_none() {
                return Ok(false);
            }
            table.insert((badge.project_id, badge.id), encode(&badge)?.as_slice())?;
            Ok(true)
        })
        .await
    }

    /// Deletes a badge; false if there was none.
    pub async fn delete_badge(&self, project_id: u64, badge_id: u64) -> Result<bool, Error> {
        self.write(move |tx| Ok(tx.open_table(PROJECT_BADGES)?.remove((project_id, badge_id))?.is_some()))
            .await
    }
}
