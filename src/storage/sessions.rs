//! Browser sessions, stored under a keyed digest of their id.

use super::codec::{encode, get_json};
use super::tables::SESSIONS;
use super::{Error, Store};
use crate::domain::Session;
use redb::ReadableTable;

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

    /// Deletes every session that ended before `now`; answers how many.
    pub async fn delete_expired_sessions(&self, now: i64) -> Result<usize, Error> {
        self.write(move |tx| {
            let mut table = tx.open_table(SESSIONS)?;
            let mut expired = Vec::new();
            for entry in table.iter()? {
                let (digest, bytes) = entry?;
                let session: Session = super::codec::decode(bytes.value())?;
                if session.expires_at <= now {
                    expired.push(digest.value().to_vec());
                }
            }
            for digest in &expired {
                table.remove(digest.as_slice())?;
            }
            Ok(expired.len())
        })
        .await
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

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn ended_sessions_are_swept_and_live_ones_kept() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("spur.redb")).unwrap();
        let session = |expires_at| Session {
            user_id: 1,
            csrf_token: "c".into(),
            created_at: 0,
            expires_at,
        };
        store.create_session(b"old".to_vec(), session(100)).await.unwrap();
        store.create_session(b"new".to_vec(), session(10_000)).await.unwrap();
        assert_eq!(store.delete_expired_sessions(5_000).await.unwrap(), 1);
        assert!(store.session(b"old").unwrap().is_none());
        assert!(store.session(b"new").unwrap().is_some());
    }
}
