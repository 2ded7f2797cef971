//! What happened to pipelines and jobs, for whoever listens outside the engine (webhooks,
//! commit statuses). While anything listens, the engine and pipeline creation write each event
//! into the `PENDING_EVENTS` table in the commit of the change it announces, then send it here
//! as a wake-up; `hooks` turns pending events into deliveries. Sending never blocks and never
//! fails the sender.

use crate::domain::{JobStatus, PipelineStatus};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use tokio::sync::mpsc;

/// A change worth telling the outside world about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Event {
    /// A pipeline (id, project id) was created or its status changed (to this one).
    Pipeline(u64, u64, PipelineStatus),
    /// A job's (id, project id) status changed (to this one).
    Job(u64, u64, JobStatus),
}

impl Event {
    /// The project it happened in.
    pub fn project_id(self) -> u64 {
        match self {
            Event::Pipeline(_, project, _) | Event::Job(_, project, _) => project,
        }
    }
}

/// The sending end, shared by every part of spur, and the receiving end until taken. Events
/// are only sent once some project has a listener (a webhook or a status integration): until
/// then the trigger path pays nothing for them.
pub struct Events {
    tx: mpsc::UnboundedSender<Event>,
    rx: Mutex<Option<mpsc::UnboundedReceiver<Event>>>,
    listened: AtomicBool,
}

impl Default for Events {
    fn default() -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        Events {
            tx,
            rx: Mutex::new(Some(rx)),
            listened: AtomicBool::new(false),
        }
    }
}

impl Events {
    /// Tells listeners about `event` (dropped when nobody listens).
    pub fn send(&self, event: Event) {
        if self.listened.load(Ordering::Relaxed) {
            let _ = self.tx.send(event);
        }
    }

    /// Whether anything listens (so that changes must record their events).
    pub fn listened(&self) -> bool {
        self.listened.load(Ordering::Relaxed)
    }

    /// Starts sending events: a webhook or integration exists.
    pub fn listen(&self) {
        self.listened.store(true, Ordering::Relaxed);
    }

    /// The receiving end; `None` after the first call.
    pub fn take_receiver(&self) -> Option<mpsc::UnboundedReceiver<Event>> {
        self.rx.lock().ok()?.take()
    }
}
