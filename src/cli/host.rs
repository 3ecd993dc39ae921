//! `shopfloor host`: the machines runs may go to over SSH (`[[hosts]]`), and `local`.

use anyhow::{Result, bail};
use clap::Subcommand;
use shopfloor::config::Config;
use shopfloor::hosts::{self, HostConfig, HostState};
use shopfloor::model::LOCAL;

use super::Ctx;
use super::output::{print_json, print_list, say};

#[derive(Subcommand, Debug)]
pub enum HostCmd {
    /// Every host with its slots, backend, labels and state (`local` first)
    List {
        #[arg(long)]
        json: bool,
    },
    /// Check a host as the factory will use it: SSH, git, Docker and its image where asked,
    /// its work directory, a socket forwarded back; marks it down or up again
    Check {
        name: String,
        #[arg(long)]
        json: bool,
    },
    /// Send no new run to a host (live runs finish)
    Drain { name: String },
    /// Send runs to a drained host again
    Undrain { name: String },
}

#[derive(serde::Serialize)]
struct Row<'a> {
    name: &'a str,
    ssh: Option<&'a str>,
    slots: usize,
    backend: String,
    labels: &'a [String],
    #[serde(flatten)]
    state: HostState,
}

fn find<'a>(config: &'a Config, name: &str) -> Result<&'a HostConfig> {
    match config.hosts.iter().find(|h| h.name == name) {
        Some(h) => Ok(h),
        None if name == LOCAL => bail!(
            "`{LOCAL}` is this machine: the factory checks it itself (`shopfloor serve` says what it lacks)"
        ),
        None => bail!(
            "no host `{name}`; the hosts are: {} (add one as [[hosts]] in shopfloor.toml)",
            std::iter::once(LOCAL)
                .chain(config.hosts.iter().map(|h| h.name.as_str()))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

pub fn run(ctx: &Ctx, cmd: HostCmd) -> Result<()> {
    let info = ctx.info()?;
    let config = shopfloor::workspace::load_config(&info.config_path())?;
    match cmd {
        HostCmd::List { json } => {
            let mut rows = vec![Row {
                name: LOCAL,
                ssh: None,
                slots: config.factory.local_slots(),
                backend: format!("{:?}", config.sandbox.backend).to_lowercase(),
                labels: &config.factory.local_labels,
                state: HostState::Up,
            }];
            for h in &config.hosts {
                rows.push(Row {
                    name: &h.name,
                    ssh: Some(&h.ssh),
                    slots: h.slots,
                    backend: h.backend.name().to_string(),
                    labels: &h.labels,
                    state: hosts::state(&info, &h.name),
                });
            }
            // Never empty: the local host is always one.
            print_list(
                json,
                &rows,
                &["HOST", "SSH", "SLOTS", "BACKEND", "LABELS", "STATE"],
                |r| {
                    vec![
                        r.name.to_string(),
                        r.ssh.unwrap_or("-").to_string(),
                        r.slots.to_string(),
                        r.backend.clone(),
                        if r.labels.is_empty() {
                            "-".into()
                        } else {
                            r.labels.join(",")
                        },
                        match &r.state {
                            HostState::Up => "up".into(),
                            HostState::Drained => "drained".into(),
                            HostState::Down(why) => format!("down: {why}"),
                        },
                    ]
                },
                "no hosts",
            )
        }
        HostCmd::Check { name, json } => {
            let host = find(&config, &name)?;
            let findings = hosts::check(&info, host, &config.sandbox.image);
            if json {
                print_json(&findings)?;
            } else {
                for f in &findings {
                    say!(
                        "{} {:<10} {}",
                        if f.ok { "ok " } else { "bad" },
                        f.what,
                        f.detail
                    );
                }
            }
            match findings.iter().find(|f| !f.ok) {
                Some(f) => bail!("host `{name}` is down: {}", f.detail),
                None => {
                    if !json {
                        say!("host `{name}` is up");
                    }
                    Ok(())
                }
            }
        }
        HostCmd::Drain { name } | HostCmd::Undrain { name } if name == LOCAL => bail!(
            "`{LOCAL}` is not drained: pause the factory instead (`shopfloor serve --paused`)"
        ),
        HostCmd::Drain { name } => {
            find(&config, &name)?;
            hosts::set_drained(&info, &name, true)?;
            say!("host `{name}` is drained: no new run goes there; live ones finish");
            Ok(())
        }
        HostCmd::Undrain { name } => {
            find(&config, &name)?;
            hosts::set_drained(&info, &name, false)?;
            say!("host `{name}` takes runs again");
            Ok(())
        }
    }
}
