//! Browser sessions, stored under a keyed digest of their id.

use super::codec::{encode, get_json};
use super::tables::SESSIONS;
use super::{Error, Store};
use crate::domain::Session;

impl Store {
    /// Records a session.
    pub async fn create_session(&self, digest: Vec<u8>, session: Session) -> Result<(), Error> {
        self.write(move |tx| {
            tx.open_table(SESSIONS)?
                .insert(digest.as_slice(), encode(&session)?.as_slice())?;
            Ok(())
        })
        .await
    }

    /// The session with this digest, if any.
    pub fn session(&self, digest: &[u8]) -> Result<Option<Session>, Error> {
        self.read(|tx| get_json(&tx.open_table(SESSIONS)?, digest))
    }

    /// Ends a session (sign-out, or found expired).
    pub async fn delete_session(&self, digest: Vec<u8>) -> Result<(), Error> {
        self.write(move |tx| {
            tx.open_table(SESSIONS)?.remove(digest.as_slice())?;
            Ok(())
        })
        .await
    }
}
