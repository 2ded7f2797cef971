//! The instance's application settings, one record.

use super::codec::{encode, get_json};
use super::tables::SETTINGS;
use super::{Error, Store};
use crate::domain::ApplicationSettings;

/// The key the application settings are stored under.
const APPLICATION: &str = "application";

impl Store {
    /// The application settings (GitLab's defaults until an administrator changes them).
    pub fn application_settings(&self) -> Result<ApplicationSettings, Error> {
        self.read(|tx| {
            let table = tx.open_table(SETTINGS)?;
            Ok(get_json(&table, APPLICATION)?.unwrap_or_default())
        })
    }

    /// Replaces the application settings.
    pub async fn set_application_settings(&self, settings: ApplicationSettings) -> Result<(), Error> {
        self.write(move |tx| {
            tx.open_table(SETTINGS)?
                .insert(APPLICATION, encode(&settings)?.as_slice())?;
            Ok(())
        })
        .await
    }
}
