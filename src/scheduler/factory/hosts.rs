//! The factory's hosts: where each run goes ([`super::super::placement`]), and the held
//! connection to each `[[hosts]]` machine its runs there ride. A host whose connection is
//! lost is marked down (until `shopfloor host check` passes); its runs end interrupted and
//! go elsewhere, counted as no attempt of the agent's.

use std::collections::HashMap;
use std::sync::Arc;

use super::{Factory, FactoryError, FactoryEvent};
use crate::hosts::link::Link;
use crate::hosts::{self, HostConfig, HostState};
use crate::model::LOCAL;
use crate::sandbox::remote::RemoteSandbox;
use crate::scheduler::placement::{self, Placed, Spot};

/// Where a run happens: this machine, or a host over its held connection.
#[derive(Clone)]
pub(super) enum Site {
    Local,
    Remote(Arc<RemoteSandbox>),
}

/// One `[[hosts]]` machine and its connection, when open.
pub(super) struct Host {
    pub(super) cfg: HostConfig,
    /// Taken for the length of a connect, so two runs placed at once open one connection.
    site: tokio::sync::Mutex<Option<Arc<RemoteSandbox>>>,
}

impl Host {
    pub(super) fn new(cfg: HostConfig) -> Host {
        Host {
            cfg,
            site: tokio::sync::Mutex::new(None),
        }
    }
}

impl Factory {
    /// What placement knows of every host now: `local` first, then `[[hosts]]` in order,
    /// with the live runs on each.
    fn spots<'a>(&'a self, busy: &HashMap<String, usize>) -> Vec<Spot<'a>> {
        let mut v = vec![Spot {
            name: LOCAL,
            slots: self.cfg.local_slots,
            busy: busy.get(LOCAL).copied().unwrap_or(0),
            labels: &self.cfg.local_labels,
            up: true,
            has_objects: true,
        }];
        for h in &self.hosts {
            let has_objects = h
                .site
                .try_lock()
                .map(|s| s.as_ref().is_some_and(|s| s.has_objects()))
                .unwrap_or(false);
            v.push(Spot {
                name: &h.cfg.name,
                slots: h.cfg.slots,
                busy: busy.get(&h.cfg.name).copied().unwrap_or(0),
                labels: &h.cfg.labels,
                up: hosts::state(&self.ws.info, &h.cfg.name) == HostState::Up,
                has_objects,
            });
        }
        v
    }

    /// Where a ticket asking for `labels` goes now, with `busy` runs per host (a start
    /// already placed this tick counts).
    pub(super) fn place(&self, labels: &[String], busy: &HashMap<String, usize>) -> Placed {
        placement::place(labels, &self.spots(busy))
    }

    /// Live runs per host.
    pub(super) fn busy_hosts(&self) -> HashMap<String, usize> {
        let mut busy = HashMap::new();
        for l in self.live.lock().expect("live lock").values() {
            *busy.entry(l.host.clone()).or_default() += 1;
        }
        busy
    }

    /// The site of a run placed on `host`: this machine, or the host's connection (opened
    /// when there is none, or the last one was lost). A host that cannot be reached is
    /// marked down and the error is transient: the run goes elsewhere.
    pub(super) async fn site_on(self: &Arc<Self>, host: &str) -> Result<Site, FactoryError> {
        if host == LOCAL {
            return Ok(Site::Local);
        }
        let Some(h) = self.hosts.iter().find(|h| h.cfg.name == host) else {
            return Err(FactoryError::Other(format!(
                "no host `{host}` in [[hosts]] any more"
            )));
        };
        // Read before the host's lock: `sandbox_socket` is taken alone (the lock order).
        let socket = self.sandbox_socket.lock().expect("socket lock").clone();
        let mut site = h.site.lock().await;
        if let Some(s) = site.as_ref()
            && !s.link().is_lost()
        {
            return Ok(Site::Remote(s.clone()));
        }
        let opened = Link::open(
            &self.ws.info,
            &h.cfg,
            &self.ws.info.sandbox_label(),
            &self.main_branch,
            socket.as_deref(),
            &self.exe,
        )
        .await;
        let link = match opened {
            Ok(l) => l,
            Err(e) => {
                self.mark_down(host, &e.to_string());
                return Err(FactoryError::Sandbox(e.into()));
            }
        };
        if link.reaped > 0 {
            tracing::warn!(
                host,
                reaped = link.reaped,
                "reaped runs an earlier factory left on the host"
            );
        }
        tracing::info!(host, root = %link.root, "connected");
        let remote = Arc::new(RemoteSandbox::new(
            link.clone(),
            &self.cfg.sandbox,
            self.ws.info.sandbox_label(),
            self.main_branch.clone(),
            self.clone.clone(),
        ));
        // A connection that ends without the factory closing it: the host is lost.
        let me = Arc::downgrade(self);
        let name = host.to_string();
        tokio::spawn(async move {
            link.lost().await;
            if link.was_lost()
                && let Some(f) = me.upgrade()
            {
                f.mark_down(&name, &link.lost_error().to_string());
            }
        });
        *site = Some(remote.clone());
        Ok(Site::Remote(remote))
    }

    /// Mark `host` down with `why` (placement skips it until `host check` passes) and say
    /// so to the watchers.
    pub(super) fn mark_down(&self, host: &str, why: &str) {
        tracing::warn!(host, "host down: {why}");
        if let Err(e) = hosts::write_marker(&self.ws.info, host, "down", why) {
            tracing::error!(host, error = %e, "could not record the host as down");
        }
        self.emit(FactoryEvent::HostDown {
            host: host.to_string(),
            why: why.to_string(),
        });
        self.wake();
    }

    /// Open the connection to every host that is not down, so what an earlier factory
    /// left running there is reaped now rather than when a run is next placed there.
    pub(super) fn connect_hosts(self: &Arc<Self>) {
        for h in &self.hosts {
            if matches!(hosts::state(&self.ws.info, &h.cfg.name), HostState::Down(_)) {
                continue;
            }
            let me = self.clone();
            let name = h.cfg.name.clone();
            tokio::spawn(async move {
                if let Err(e) = me.site_on(&name).await {
                    tracing::warn!(host = %name, error = %e, "could not connect");
                }
            });
        }
    }

    /// Close every held connection (the factory is stopping).
    pub(super) async fn close_hosts(&self) {
        for h in &self.hosts {
            if let Some(s) = h.site.lock().await.take() {
                s.link().close().await;
            }
        }
    }
}
