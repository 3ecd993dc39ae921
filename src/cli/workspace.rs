//! `shopfloor workspace ...`

use std::path::PathBuf;

use anyhow::{Result, bail};
use clap::Subcommand;
use shopfloor::store::Store;

use super::Ctx;
use super::output::{print_json, print_rows, say, when};

#[derive(Subcommand, Debug)]
pub enum WorkspaceCmd {
    /// Create a workspace for a repository
    Create {
        /// Name of the workspace (letters, digits, `-`, `_`, `.`)
        name: String,
        /// The git repository it serves [default: the one around the current directory]
        #[arg(long, value_name = "PATH")]
        repo: Option<PathBuf>,
    },
    /// List workspaces
    List {
        #[arg(long)]
        json: bool,
    },
    /// Show a workspace: its repository, data directory and contents
    Show {
        /// [default: -w, or the workspace around the current directory]
        name: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Remove a workspace's data (the repository itself is never touched)
    Rm { name: String },
}

pub fn run(ctx: &Ctx, cmd: WorkspaceCmd) -> Result<()> {
    match cmd {
        WorkspaceCmd::Create { name, repo } => {
            let repo = repo.unwrap_or_else(|| ctx.cwd.clone());
            let info = ctx.home.create(&name, &repo)?;
            // Create the store now so a broken data dir shows up here, not later.
            Store::open(&info.store_path())?;
            say!(
                "created workspace `{}` for {}",
                info.name,
                info.repo.display()
            );
            say!("data: {}", info.dir.display());
            Ok(())
        }
        WorkspaceCmd::List { json } => {
            let list = ctx.home.list()?;
            if json {
                return print_json(
                    &list
                        .iter()
                        .map(|w| serde_json::json!({"name": w.name, "repo": w.repo, "dir": w.dir, "created": w.created}))
                        .collect::<Vec<_>>(),
                );
            }
            print_rows(
                &list,
                &["NAME", "REPO", "CREATED"],
                |w| {
                    vec![
                        w.name.clone(),
                        w.repo.display().to_string(),
                        when(w.created),
                    ]
                },
                "no workspaces yet; `shopfloor workspace create NAME` in a git repository makes one",
            );
            Ok(())
        }
        WorkspaceCmd::Show { name, json } => {
            let info = match name {
                Some(n) => ctx.home.get(&n)?,
                None => ctx.info()?,
            };
            let c = super::backend(info.clone())?.counts()?;
            let (tickets, runs, steps, memories) = (c.tickets, c.runs, c.steps, c.memories);
            if json {
                return print_json(&serde_json::json!({
                    "name": info.name, "repo": info.repo, "dir": info.dir, "created": info.created,
                    "tickets": tickets, "runs": runs, "steps": steps, "memories": memories,
                }));
            }
            say!("workspace  {}", info.name);
            say!("repo       {}", info.repo.display());
            say!("data       {}", info.dir.display());
            say!("created    {}", when(info.created));
            say!("tickets    {tickets}");
            say!("runs       {runs} ({steps} steps)");
            say!("memories   {memories}");
            Ok(())
        }
        WorkspaceCmd::Rm { name } => {
            let info = ctx.home.get(&name)?;
            // Refuse while a factory holds the store: its data would vanish under it.
            if let Err(e) = Store::open(&info.store_path()) {
                bail!("cannot remove workspace `{name}`: {e}");
            }
            let info = ctx.home.remove(&name)?;
            say!(
                "removed workspace `{}` ({}); {} is untouched",
                info.name,
                info.dir.display(),
                info.repo.display()
            );
            Ok(())
        }
    }
}
