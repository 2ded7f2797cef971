//! `resource_group:`: at most one job of a group (per project) runs at a time. An executor or
//! runner takes a queued job of a group only when no other job holding the group is still
//! active; waiting jobs keep their place in the queue, so the group's jobs run in the order
//! they were queued (GitLab's `unordered` and `oldest_first`).

use super::queue::QueuedJob;
use std::collections::HashMap;
use std::sync::Mutex;

/// Which job holds each (project, group).
#[derive(Default)]
pub struct ResourceGroups {
    holders: Mutex<HashMap<(u64, String), u64>>,
    /// Jobs the built-in executor is still running (a canceled job's `after_script` included).
    executing: Mutex<std::collections::HashSet<u64>>,
}

impl ResourceGroups {
    /// Whether `job` may be taken now; if it may and has a group, it holds the group from now
    /// on. `active` says whether a job is still unfinished (the holder lets go when it ends).
    pub fn try_claim(&self, job: &QueuedJob, active: impl Fn(u64) -> bool) -> bool {
        let Some(key) = &job.resource_group else {
            return true;
        };
        let Ok(mut holders) = self.holders.lock() else {
            return false;
        };
        let executing = |id: u64| self.executing.lock().map_or(true, |e| e.contains(&id));
        if let Some(&holder) = holders.get(key)
            && holder != job.job_id
            && (active(holder) || executing(holder))
        {
            return false;
        }
        holders.insert(key.clone(), job.job_id);
        true
    }

    /// The built-in executor runs `job_id` (its group stays held until `executed`, whatever
    /// the job's status says meanwhile).
    pub fn executing(&self, job_id: u64) {
        if let Ok(mut e) = self.executing.lock() {
            e.insert(job_id);
        }
    }

    /// The built-in executor is done with `job_id`.
    pub fn executed(&self, job_id: u64) {
        if let Ok(mut e) = self.executing.lock() {
            e.remove(&job_id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(id: u64, group: Option<&str>) -> QueuedJob {
        QueuedJob::new(
            id,
            super::super::queue::JobClass {
                tags: Vec::new(),
                protected_ref: false,
                resource_group: group.map(|g| (1, g.to_string())),
            },
        )
    }

    #[test]
    fn one_job_of_a_group_at_a_time() {
        let groups = ResourceGroups::default();
        let running = std::cell::RefCell::new(vec![1u64]);
        let active = |id: u64| running.borrow().contains(&id);
        assert!(groups.try_claim(&job(1, Some("prod")), active));
        assert!(!groups.try_claim(&job(2, Some("prod")), active), "1 holds prod");
        assert!(groups.try_claim(&job(3, Some("staging")), active), "another group");
        assert!(groups.try_claim(&job(4, None), active), "no group");
        running.borrow_mut().clear();
        assert!(groups.try_claim(&job(2, Some("prod")), |id: u64| running.borrow().contains(&id)));
    }
}
