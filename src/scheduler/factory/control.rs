//! What people and agents ask of live runs: stop, kill, retry, leases, work in progress.

use super::*;

impl Factory {
    /// Stop the live runs of a ticket (it was cancelled) within a second.
    pub fn stop_ticket(&self, id: TicketId) {
        let live = self.live.lock().expect("live lock");
        for l in live.values().filter(|l| l.ticket == Some(id)) {
            let _ = l.stop.send(Stop::Cancel);
        }
    }

    /// Stop a live run within a second.
    pub fn kill_run(&self, id: RunId) -> Result<(), FactoryError> {
        if self.stop_run(id, Stop::Cancel) {
            Ok(())
        } else {
            Err(FactoryError::Other(format!(
                "run {id} is not running; `shopfloor run list` shows the live runs"
            )))
        }
    }

    /// Ask a live run to stop for `why`; false if it is not live.
    pub(super) fn stop_run(&self, id: RunId, why: Stop) -> bool {
        let live = self.live.lock().expect("live lock");
        match live.get(&id) {
            Some(l) => {
                let _ = l.stop.send(why);
                true
            }
            None => false,
        }
    }

    /// Stop a live run for a retry: its ticket is queued again. False if it is not live.
    pub fn retry_run(&self, id: RunId) -> bool {
        self.stop_run(id, Stop::Retry)
    }

    pub fn lease(
        &self,
        run: RunId,
        paths: &[String],
        ttl: SignedDuration,
    ) -> Result<Vec<Lease>, Conflict> {
        let agent = self
            .live
            .lock()
            .expect("live lock")
            .get(&run)
            .map(|l| l.agent.clone())
            .unwrap_or_default();
        self.leases
            .lock()
            .expect("lease lock")
            .acquire(run, &agent, paths, ttl, now())
    }

    pub fn release(&self, run: RunId, paths: &[String]) -> usize {
        self.leases.lock().expect("lease lock").release(run, paths)
    }

    pub fn leases(&self) -> Vec<Lease> {
        self.leases.lock().expect("lease lock").live(now())
    }

    /// Runs in flight with their tickets and the files they have touched so far, by id.
    pub fn wip(&self) -> Vec<Wip> {
        let mut v: Vec<Wip> = self
            .live
            .lock()
            .expect("live lock")
            .iter()
            // Review runs change nothing: not work in progress.
            .filter_map(|(id, l)| {
                Some(Wip {
                    run: *id,
                    ticket: l.ticket?,
                    agent: l.agent.clone(),
                    title: l.title.clone(),
                    files: l.files.lock().expect("files lock").clone(),
                })
            })
            .collect();
        v.sort_by_key(|w| w.run);
        v
    }

    /// Runs in flight, by id.
    pub fn live_runs(&self) -> Vec<RunId> {
        let mut v: Vec<RunId> = self
            .live
            .lock()
            .expect("live lock")
            .keys()
            .copied()
            .collect();
        v.sort();
        v
    }
}
