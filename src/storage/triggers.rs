//! Pipeline trigger tokens: records, the digest index, and `last_used`.

use super::codec::{decode, encode, get_json};
use super::tables::{PROJECT_TRIGGERS, TRIGGER_DIGESTS, TRIGGER_LAST_USED, TRIGGERS};
use super::{Error, Refusal, Store, ids_under, next_id};
use crate::domain::{Millis, Trigger};

/// What is needed to create a trigger token.
#[derive(Debug, Clone)]
pub struct NewTrigger {
    /// The project.
    pub project_id: u64,
    /// The creator, whom pipelines run as.
    pub owner_id: u64,
    /// Free text.
    pub description: Option<String>,
    /// The token sealed with the data dir's key.
    pub token_sealed: Vec<u8>,
    /// The token's keyed digest.
    pub token_digest: [u8; 32],
    /// The 4-character short token.
    pub short_token: String,
    /// Expiry, if any.
    pub expires_at: Option<Millis>,
    /// The refs it may run; empty: any.
    pub ref_patterns: Vec<String>,
    /// The variable and input keys it may send; `None`: any.
    pub allowed_variables: Option<Vec<String>>,
    /// Creation time.
    pub now: Millis,
}

impl Store {
    /// Stores a new trigger token.
    pub async fn create_trigger(&self, new: NewTrigger) -> Result<Trigger, Error> {
        self.write(move |tx| {
            let trigger = Trigger {
                id: next_id(tx, "next_trigger_id")?,
                project_id: new.project_id,
                owner_id: new.owner_id,
                description: new.description,
                token_sealed: new.token_sealed,
                token_digest: new.token_digest.to_vec(),
                short_token: new.short_token,
                created_at: new.now,
                updated_at: new.now,
                expires_at: new.expires_at,
                ref_patterns: new.ref_patterns,
                allowed_variables: new.allowed_variables,
                previous: None,
            };
            tx.open_table(TRIGGERS)?
                .insert(trigger.id, encode(&trigger)?.as_slice())?;
            tx.open_table(TRIGGER_DIGESTS)?
                .insert(new.token_digest.as_slice(), trigger.id)?;
            tx.open_table(PROJECT_TRIGGERS)?
                .insert((trigger.project_id, trigger.id), ())?;
            Ok(trigger)
        })
        .await
    }

    /// The trigger with `id`, with its `last_used` time.
    pub fn trigger(&self, id: u64) -> Result<Option<(Trigger, Option<Millis>)>, Error> {
        self.read(|tx| {
            let Some(t) = get_json::<_, Trigger>(&tx.open_table(TRIGGERS)?, id)? else {
                return Ok(None);
            };
            let last = tx.open_table(TRIGGER_LAST_USED)?.get(id)?.map(|g| g.value());
            Ok(Some((t, last)))
        })
    }

    /// The trigger whose token has `digest`.
    pub fn trigger_by_digest(&self, digest: &[u8; 32]) -> Result<Option<Trigger>, Error> {
        self.read(|tx| {
            let Some(id) = tx
                .open_table(TRIGGER_DIGESTS)?
                .get(digest.as_slice())?
                .map(|g| g.value())
            else {
                return Ok(None);
            };
            get_json(&tx.open_table(TRIGGERS)?, id)
        })
    }

    /// A project's triggers in id order, each with its `last_used` time.
    pub fn project_triggers(&self, project_id: u64) -> Result<Vec<(Trigger, Option<Millis>)>, Error> {
        self.read(|tx| {
            let ids = ids_under(&tx.open_table(PROJECT_TRIGGERS)?, project_id)?;
            let triggers = tx.open_table(TRIGGERS)?;
            let last_used = tx.open_table(TRIGGER_LAST_USED)?;
            let mut out = Vec::with_capacity(ids.len());
            for id in ids {
                if let Some(g) = triggers.get(id)? {
                    let t: Trigger = decode(g.value())?;
                    out.push((t, last_used.get(id)?.map(|g| g.value())));
                }
            }
            Ok(out)
        })
    }

    /// The client address of the trigger's last use, if known.
    pub fn trigger_last_address(&self, id: u64) -> Result<Option<String>, Error> {
        self.read(|tx| {
            Ok(tx
                .open_table(super::tables::TRIGGER_LAST_ADDRESS)?
                .get(id)?
                .map(|g| g.value().to_string()))
        })
    }

    /// Sets what a trigger may run: its ref patterns and allowed keys (`None`: unchanged).
    pub async fn update_trigger_scope(
        &self,
        id: u64,
        ref_patterns: Option<Vec<String>>,
        allowed_variables: Option<Option<Vec<String>>>,
        now: Millis,
    ) -> Result<Result<Trigger, Refusal>, Error> {
        self.write(move |tx| {
            change_trigger(tx, id, now, |t, _| {
                if let Some(p) = ref_patterns {
                    t.ref_patterns = p;
                }
                if let Some(a) = allowed_variables {
                    t.allowed_variables = a;
                }
                Ok(())
            })
        })
        .await
    }

    /// Gives a trigger a new token in one step: the new digest resolves in the commit that
    /// retires the old one, at once or (with `grace_until`) once that time has passed. A token
    /// two rotations old stops at once.
    pub async fn rotate_trigger(
        &self,
        id: u64,
        token_sealed: Vec<u8>,
        token_digest: [u8; 32],
        short_token: String,
        now: Millis,
        grace_until: Option<Millis>,
    ) -> Result<Result<Trigger, Refusal>, Error> {
        self.write(move |tx| {
            change_trigger(tx, id, now, |t, tx| {
                let mut digests = tx.open_table(TRIGGER_DIGESTS)?;
                if let Some((older, _)) = t.previous.take() {
                    digests.remove(older.as_slice())?;
                }
                match grace_until {
                    Some(until) if until > now => t.previous = Some((t.token_digest.clone(), until)),
                    _ => {
                        digests.remove(t.token_digest.as_slice())?;
                    }
                }
                digests.insert(token_digest.as_slice(), id)?;
                t.token_sealed = token_sealed;
                t.token_digest = token_digest.to_vec();
                t.short_token = short_token;
                Ok(())
            })
        })
        .await
    }

    /// Sets a trigger's description.
    pub async fn update_trigger_description(
        &self,
        id: u64,
        description: Option<String>,
        now: Millis,
    ) -> Result<Result<Trigger, Refusal>, Error> {
        self.write(move |tx| {
            change_trigger(tx, id, now, |t, _| {
                t.description = description;
                Ok(())
            })
        })
        .await
    }

    /// Deletes a trigger for good; its token never works again. With `unmodified_since`, refuses
    /// (`Refusal::Taken("updated_at")`) if the trigger changed after that time.
    pub async fn delete_trigger(
        &self,
        id: u64,
        unmodified_since: Option<Millis>,
    ) -> Result<Result<(), Refusal>, Error> {
        self.write(move |tx| {
            let mut triggers = tx.open_table(TRIGGERS)?;
            let Some(t) = get_json::<_, Trigger>(&triggers, id)? else {
                return Ok(Err(Refusal::NotFound));
            };
            if unmodified_since.is_some_and(|since| t.updated_at / 1000 > since / 1000) {
                return Ok(Err(Refusal::Taken("updated_at")));
            }
            triggers.remove(id)?;
            let mut digests = tx.open_table(TRIGGER_DIGESTS)?;
            digests.remove(t.token_digest.as_slice())?;
            if let Some((older, _)) = &t.previous {
                digests.remove(older.as_slice())?;
            }
            drop(digests);
            tx.open_table(PROJECT_TRIGGERS)?.remove((t.project_id, id))?;
            tx.open_table(TRIGGER_LAST_USED)?.remove(id)?;
            tx.open_table(super::tables::TRIGGER_LAST_ADDRESS)?.remove(id)?;
            Ok(Ok(()))
        })
        .await
    }
}

/// Changes trigger `id` with `change`, stamping `updated_at` strictly later than before: an
/// in-flight trigger request compares it (`NewPipeline::trigger_version`).
fn change_trigger(
    tx: &redb::WriteTransaction,
    id: u64,
    now: Millis,
    change: impl FnOnce(&mut Trigger, &redb::WriteTransaction) -> Result<(), Error>,
) -> Result<Result<Trigger, Refusal>, Error> {
    let Some(mut t) = get_json::<_, Trigger>(&tx.open_table(TRIGGERS)?, id)? else {
        return Ok(Err(Refusal::NotFound));
    };
    change(&mut t, tx)?;
    t.updated_at = now.max(t.updated_at + 1);
    tx.open_table(TRIGGERS)?.insert(id, encode(&t)?.as_slice())?;
    Ok(Ok(t))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::NewPipeline;

    fn pipeline_for(trigger: &Trigger, version: Millis) -> NewPipeline {
        NewPipeline {
            project_id: trigger.project_id,
            sha: "0".repeat(40),
            ref_name: "main".into(),
            tag: false,
            source: crate::domain::PipelineSource::Trigger,
            user_id: 1,
            trigger_id: Some(trigger.id),
            variables_sealed: Vec::new(),
            status: crate::domain::PipelineStatus::Created,
            yaml_errors: None,
            jobs: Vec::new(),
            now: 5,
            upstream: None,
            before_sha: "0".repeat(40),
            name: None,
            idempotency: None,
            client: None,
            trigger_version: Some((trigger.id, version)),
            schedule_run: None,
            announce: false,
        }
    }

    #[tokio::test]
    async fn a_token_rotated_while_its_request_ran_refuses_the_pipeline() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("spur.redb")).unwrap();
        let new = NewTrigger {
            project_id: 1,
            owner_id: 1,
            description: None,
            token_sealed: Vec::new(),
            token_digest: [1; 32],
            short_token: "abcd".into(),
            expires_at: None,
            ref_patterns: Vec::new(),
            allowed_variables: None,
            now: 1,
        };
        let t = store.create_trigger(new).await.unwrap();
        // Checked at version 1, then rotated (in the same millisecond, even): refused.
        let checked = t.updated_at;
        let rotated = store
            .rotate_trigger(t.id, Vec::new(), [2; 32], "efgh".into(), 1, None)
            .await
            .unwrap()
            .unwrap();
        assert!(rotated.updated_at > checked);
        assert!(store.create_pipeline(pipeline_for(&t, checked)).await.unwrap().is_err());
        assert!(
            store.trigger_by_digest(&[1; 32]).unwrap().is_none(),
            "the old digest is gone"
        );
        // Checked after the rotation: stored.
        assert!(
            store
                .create_pipeline(pipeline_for(&t, rotated.updated_at))
                .await
                .unwrap()
                .is_ok()
        );
    }
}
