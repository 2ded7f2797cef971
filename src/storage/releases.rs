//! Releases and their asset links.

use super::codec::{decode, encode};
use super::tables::RELEASES;
use super::{Error, Store, next_id};
use crate::domain::Release;
use redb::{ReadableTable, WriteTransaction};

/// Most releases a project keeps.
pub const MAX_RELEASES: usize = 10_000;

impl Store {
    /// A project's releases, in tag order.
    pub fn releases(&self, project_id: u64) -> Result<Vec<Release>, Error> {
        self.read(|tx| {
            let table = tx.open_table(RELEASES)?;
            let mut out = Vec::new();
            for entry in table.range((project_id, "")..(project_id + 1, ""))? {
                out.push(decode(entry?.1.value())?);
            }
            Ok(out)
        })
    }

    /// The release of `tag`.
    pub fn release(&self, project_id: u64, tag: &str) -> Result<Option<Release>, Error> {
        self.read(|tx| {
            let table = tx.open_table(RELEASES)?;
            let found = table.get((project_id, tag))?;
            found.map(|g| decode(g.value())).transpose()
        })
    }

    /// Stores a new release, giving its links ids; `None` when the tag has one already or the
    /// project has as many as it may keep.
    pub async fn create_release(&self, release: Release) -> Result<Option<Release>, Error> {
        self.write(move |tx| {
            let mut release = release;
            {
                let table = tx.open_table(RELEASES)?;
                let key = (release.project_id, release.tag_name.as_str());
                if table.get(key)?.is_some() {
                    return Ok(None);
                }
                let count = table
                    .range((release.project_id, "")..(release.project_id + 1, ""))?
                    .count();
                if count >= MAX_RELEASES {
                    return Ok(None);
                }
            }
            number_links(tx, &mut release)?;
            let mut table = tx.open_table(RELEASES)?;
            table.insert(
                (release.project_id, release.tag_name.as_str()),
                encode(&release)?.as_slice(),
            )?;
            Ok(Some(release))
        })
        .await
    }

    /// Replaces a release, giving new links ids; `None` when it is gone.
    pub async fn save_release(&self, release: Release) -> Result<Option<Release>, Error> {
        self.write(move |tx| {
            let mut release = release;
            if tx
                .open_table(RELEASES)?
                .get((release.project_id, release.tag_name.as_str()))?
                .is_none()
            {
                return Ok(None);
            }
            number_links(tx, &mut release)?;
            let mut table = tx.open_table(RELEASES)?;
            table.insert(
                (release.project_id, release.tag_name.as_str()),
                encode(&release)?.as_slice(),
            )?;
            Ok(Some(release))
        })
        .await
    }

    /// Deletes the release of `tag`; it, when there was one.
    pub async fn delete_release(&self, project_id: u64, tag: String) -> Result<Option<Release>, Error> {
        self.write(move |tx| {
            let mut table = tx.open_table(RELEASES)?;
            let removed = table.remove((project_id, tag.as_str()))?;
            removed.map(|g| decode(g.value())).transpose()
        })
        .await
    }
}

/// Gives every link without an id (0) the next link id.
fn number_links(tx: &WriteTransaction, release: &mut Release) -> Result<(), Error> {
    for link in release.links.iter_mut().filter(|l| l.id == 0) {
        link.id = next_id(tx, "next_release_link_id")?;
    }
    Ok(())
}
