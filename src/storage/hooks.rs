//! Project webhooks and commit-status integrations.

use super::codec::{decode, encode, get_json};
use super::tables::{HOOK_LOGS, PROJECT_HOOKS, STATUS_INTEGRATIONS};
use super::{Error, Store, next_id};
use crate::domain::{HookLog, ProjectHook, StatusIntegration};

/// Logs kept per webhook.
pub const MAX_HOOK_LOGS: usize = 100;
use redb::ReadableTable;

impl Store {
    /// A project's webhooks, by id.
    pub fn project_hooks(&self, project_id: u64) -> Result<Vec<ProjectHook>, Error> {
        self.read(|tx| {
            let table = tx.open_table(PROJECT_HOOKS)?;
            let mut out = Vec::new();
            for entry in table.range((project_id, 0)..=(project_id, u64::MAX))? {
                out.push(decode(entry?.1.value())?);
            }
            Ok(out)
        })
    }

    /// Stores a new webhook (its id assigned here).
    pub async fn create_project_hook(&self, hook: ProjectHook) -> Result<ProjectHook, Error> {
        self.write(move |tx| {
            let hook = ProjectHook {
                id: next_id(tx, "next_hook_id")?,
                ..hook
            };
            tx.open_table(PROJECT_HOOKS)?
                .insert((hook.project_id, hook.id), encode(&hook)?.as_slice())?;
            Ok(hook)
        })
        .await
    }

    /// Replaces a webhook; false if it is gone.
    pub async fn update_project_hook(&self, hook: ProjectHook) -> Result<bool, Error> {
        self.write(move |tx| {
            let mut table = tx.open_table(PROJECT_HOOKS)?;
            if table.get((hook.project_id, hook.id))?.is_none() {
                return Ok(false);
            }
            table.insert((hook.project_id, hook.id), encode(&hook)?.as_slice())?;
            Ok(true)
        })
        .await
    }

    /// Deletes a webhook and its logs; false if there was none.
    pub async fn delete_project_hook(&self, project_id: u64, hook_id: u64) -> Result<bool, Error> {
        self.write(move |tx| {
            tx.open_table(HOOK_LOGS)?
                .retain_in((hook_id, 0)..=(hook_id, u64::MAX), |_, _| false)?;
            Ok(tx.open_table(PROJECT_HOOKS)?.remove((project_id, hook_id))?.is_some())
        })
        .await
    }

    /// Records a delivery's log (its id assigned here), keeping the hook's newest
    /// [`MAX_HOOK_LOGS`].
    pub async fn add_hook_log(&self, log: HookLog) -> Result<HookLog, Error> {
        self.write(move |tx| {
            let log = HookLog {
                id: next_id(tx, "next_hook_log_id")?,
                ..log
            };
            let mut table = tx.open_table(HOOK_LOGS)?;
            table.insert((log.hook_id, log.id), encode(&log)?.as_slice())?;
            let range = (log.hook_id, 0)..=(log.hook_id, u64::MAX);
            let count = table.range(range.clone())?.count();
            if count > MAX_HOOK_LOGS {
                let old: Vec<u64> = table
                    .range(range)?
                    .take(count - MAX_HOOK_LOGS)
                    .map(|e| e.map(|(k, _)| k.value().1))
                    .collect::<Result<_, _>>()?;
                for id in old {
                    table.remove((log.hook_id, id))?;
                }
            }
            Ok(log)
        })
        .await
    }

    /// A hook's logs, newest first.
    pub fn hook_logs(&self, hook_id: u64) -> Result<Vec<HookLog>, Error> {
        self.read(|tx| {
            let table = tx.open_table(HOOK_LOGS)?;
            let mut out = Vec::new();
            for entry in table.range((hook_id, 0)..=(hook_id, u64::MAX))?.rev() {
                out.push(decode(entry?.1.value())?);
            }
            Ok(out)
        })
    }

    /// The events waiting to become deliveries, oldest first (at most `limit`).
    pub fn pending_events(&self, limit: usize) -> Result<Vec<(u64, crate::events::Event)>, Error> {
        self.read(|tx| {
            let mut out = Vec::new();
            for entry in tx.open_table(super::tables::PENDING_EVENTS)?.iter()?.take(limit) {
                let (seq, bytes) = entry?;
                out.push((seq.value(), decode(bytes.value())?));
            }
            Ok(out)
        })
    }

    /// Stores deliveries (sealed) in the outbox and removes the events they came from, in one
    /// commit; answers the deliveries' ids, in order.
    pub async fn events_to_deliveries(&self, events: Vec<u64>, sealed: Vec<Vec<u8>>) -> Result<Vec<u64>, Error> {
        self.write(move |tx| {
            let mut pending = tx.open_table(super::tables::PENDING_EVENTS)?;
            for seq in &events {
                pending.remove(*seq)?;
            }
            drop(pending);
            let mut ids = Vec::with_capacity(sealed.len());
            for item in &sealed {
                let id = next_id(tx, "next_delivery_id")?;
                tx.open_table(super::tables::OUTBOX)?.insert(id, item.as_slice())?;
                ids.push(id);
            }
            Ok(ids)
        })
        .await
    }

    /// Stores deliveries (sealed) in the outbox and answers their ids, in order.
    pub async fn add_deliveries(&self, sealed: Vec<Vec<u8>>) -> Result<Vec<u64>, Error> {
        self.write(move |tx| {
            let mut ids = Vec::with_capacity(sealed.len());
            for item in &sealed {
                let id = next_id(tx, "next_delivery_id")?;
                tx.open_table(super::tables::OUTBOX)?.insert(id, item.as_slice())?;
                ids.push(id);
            }
            Ok(ids)
        })
        .await
    }

    /// Removes a delivery that was made or given up.
    pub async fn remove_delivery(&self, id: u64) -> Result<(), Error> {
        self.write(move |tx| {
            tx.open_table(super::tables::OUTBOX)?.remove(id)?;
            Ok(())
        })
        .await
    }

    /// Every delivery still waiting, oldest first (after a restart).
    pub fn waiting_deliveries(&self) -> Result<Vec<(u64, Vec<u8>)>, Error> {
        self.read(|tx| {
            let mut out = Vec::new();
            for entry in tx.open_table(super::tables::OUTBOX)?.iter()? {
                let (id, bytes) = entry?;
                out.push((id.value(), bytes.value().to_vec()));
            }
            Ok(out)
        })
    }

    /// Whether any project has a webhook or a status integration.
    pub fn any_listener(&self) -> Result<bool, Error> {
        self.read(|tx| {
            Ok(tx.open_table(PROJECT_HOOKS)?.first()?.is_some()
                || tx.open_table(STATUS_INTEGRATIONS)?.first()?.is_some())
        })
    }

    /// A project's commit-status integration.
    pub fn status_integration(&self, project_id: u64) -> Result<Option<StatusIntegration>, Error> {
        self.read(|tx| get_json(&tx.open_table(STATUS_INTEGRATIONS)?, project_id))
    }

    /// Sets (or with `None` removes) a project's commit-status integration.
    pub async fn set_status_integration(
        &self,
        project_id: u64,
        integration: Option<StatusIntegration>,
    ) -> Result<(), Error> {
        self.write(move |tx| {
            let mut table = tx.open_table(STATUS_INTEGRATIONS)?;
            match integration {
                Some(i) => {
                    table.insert(project_id, encode(&i)?.as_slice())?;
                }
                None => {
                    table.remove(project_id)?;
                }
            }
            Ok(())
        })
        .await
    }
}

/// Records events in the write that makes the change they announce.
pub(super) fn record_events(tx: &redb::WriteTransaction, events: &[crate::events::Event]) -> Result<(), Error> {
    if events.is_empty() {
        return Ok(());
    }
    let mut pending = tx.open_table(super::tables::PENDING_EVENTS)?;
    for event in events {
        let seq = next_id(tx, "next_event_seq")?;
        pending.insert(seq, encode(event)?.as_slice())?;
    }
    Ok(())
}
