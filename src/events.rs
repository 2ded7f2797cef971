//! What happened to pipelines and jobs, for whoever listens outside the engine (webhooks,
//! commit statuses). The scheduler and pipeline creation send an event after the change is
//! durable; `hooks` receives them. Sending never blocks and never fails the sender.

use std::sync::Mutex;
use tokio::sync::mpsc;

/// A change worth telling the outside world about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// A pipeline was created or its status changed.
    Pipeline(u64),
    /// A job's status changed.
    Job(u64),
}

/// The sending end, shared by every part of spur, and the receiving end until taken.
pub struct Events {
    tx: mpsc::UnboundedSender<Event>,
    rx: Mutex<Option<mpsc::UnboundedReceiver<Event>>>,
}

impl Default for Events {
    fn default() -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        Events {
            tx,
            rx: Mutex::new(Some(rx)),
        }
    }
}

impl Events {
    /// Tells listeners about `event` (dropped when nobody listens).
    pub fn send(&self, event: Event) {
        let _ = self.tx.send(event);
    }

    /// The receiving end; `None` after the first call.
    pub fn take_receiver(&self) -> Option<mpsc::UnboundedReceiver<Event>> {
        self.rx.lock().ok()?.take()
    }
}
