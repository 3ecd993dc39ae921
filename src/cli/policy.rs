//! `shopfloor policy check`: what the `[policy]` of shopfloor.toml says of a branch, judged
//! on what merging it into main would change, in the factory's own clone.

use std::io::Write;

use anyhow::{Context, Result};
use clap::Subcommand;
use serde::Serialize;
use shopfloor::model::Verdict;
use shopfloor::policy::{MergePreview, Policy};

use super::Ctx;
use super::output::{print_json, say};

/// Exit codes of `policy check`, so a script or hook can act on the verdict.
pub const EXIT_NEEDS_APPROVAL: i32 = 3;
pub const EXIT_REJECTED: i32 = 4;
pub const EXIT_CONFLICTS: i32 = 5;

#[derive(Subcommand, Debug)]
pub enum PolicyCmd {
    /// Judge what merging BRANCH into main would change: allowed, needs approval or
    /// rejected, and why. Exit code 0: allowed; 3: needs approval; 4: rejected;
    /// 5: conflicts with main; 1: an error
    Check {
        /// A factory branch (`shopfloor/<ticket>-<attempt>`) or a branch of your repository
        branch: String,
        /// What BRANCH would merge into [default: main, your repository's checked-out branch]
        #[arg(long, value_name = "REF")]
        base: Option<String>,
        #[arg(long)]
        json: bool,
    },
}

/// `--json`: the verdict's fields with what was compared.
#[derive(Serialize)]
struct Report {
    branch: String,
    base: String,
    branch_commit: String,
    base_commit: String,
    /// `allowed`, `needs_approval`, `rejected` or `conflicts`.
    verdict: &'static str,
    #[serde(flatten)]
    detail: Option<Verdict>,
    /// The paths that conflict with main (only for `conflicts`).
    conflicts: Vec<String>,
    required_checks: Vec<String>,
}

pub fn run(ctx: &Ctx, cmd: PolicyCmd) -> Result<()> {
    let PolicyCmd::Check { branch, base, json } = cmd;
    let info = ctx.info()?;
    // Read here, not through the workspace's store, so this works while the factory runs.
    let config = shopfloor::workspace::load_config(&info.config_path())?;
    let policy = Policy::from_config(&config.policy)?;
    let (clone, main) = shopfloor::mergeq::clone::ensure(&info)
        .context("refreshing the workspace's clone of your repository")?;
    let repo = git2::Repository::open(&clone)?;
    if base.is_none() && branch == main {
        // The factory takes the branch checked out in the user's repository for main.
        anyhow::bail!(
            "`{branch}` is what it would merge into (the branch checked out in {}); pass --base with the branch it should land on",
            info.repo.display()
        );
    }
    let base = base.unwrap_or(main);
    let base_commit = resolve(&repo, &info.repo, &base)?;
    let branch_commit = resolve(&repo, &info.repo, &branch)?;
    let preview = shopfloor::policy::preview_merge(&repo, base_commit, branch_commit)?;
    let mut report = Report {
        branch,
        base,
        branch_commit: branch_commit.to_string(),
        base_commit: base_commit.to_string(),
        verdict: "conflicts",
        detail: None,
        conflicts: vec![],
        required_checks: policy.required_checks().to_vec(),
    };
    let code = match preview {
        MergePreview::Conflicts(paths) => {
            report.conflicts = paths;
            EXIT_CONFLICTS
        }
        MergePreview::Clean { tree, .. } => {
            let v = policy.evaluate(&repo, base_commit, tree)?;
            let word = v.outcome();
            let code = match word {
                "rejected" => EXIT_REJECTED,
                "needs_approval" => EXIT_NEEDS_APPROVAL,
                _ => 0,
            };
            report.verdict = word;
            report.detail = Some(v);
            code
        }
    };
    if json {
        print_json(&report)?;
    } else {
        print_report(&report, &policy);
    }
    if code != 0 {
        std::io::stdout().flush()?;
        std::process::exit(code);
    }
    Ok(())
}

fn print_report(r: &Report, policy: &Policy) {
    let short = |c: &str| c[..c.len().min(7)].to_string();
    say!("verdict: {}", r.verdict.replace('_', " "));
    let what = format!(
        "`{}` ({}) merged into `{}` ({})",
        r.branch,
        short(&r.branch_commit),
        r.base,
        short(&r.base_commit)
    );
    let Some(v) = &r.detail else {
        say!(
            "{what} conflicts in {} path(s); rebase or merge `{}` onto `{}` first:",
            r.conflicts.len(),
            r.branch,
            r.base
        );
        for p in &r.conflicts {
            say!("  {p}");
        }
        return;
    };
    let limit = match policy.max_changed_lines() {
        0 => String::new(),
        n => format!(" (max_changed_lines = {n})"),
    };
    say!(
        "{what}: {} file(s), {} changed line(s){limit}",
        v.files,
        v.changed_lines
    );
    if v.reasons.is_empty() {
        say!("why: no [policy] line gates or denies these paths");
    } else {
        say!("why:");
        for reason in &v.reasons {
            say!("  - {reason}");
        }
    }
    for (title, paths) in [
        ("denied (never lands)", &v.denied),
        ("gated (a human must approve)", &v.gated),
    ] {
        if !paths.is_empty() {
            say!("{title}:");
            for p in paths {
                say!("  {p}");
            }
        }
    }
    if !r.required_checks.is_empty() {
        say!(
            "required checks before landing: {}",
            r.required_checks.join(", ")
        );
    }
}

/// A commit named by `name`: a branch of the clone (the factory's), one of the user's
/// repository (fetched into origin/* by the clone's refresh), anything `git rev-parse`
/// takes, or, last, any ref of the user's repository fetched under
/// `refs/shopfloor/check/`.
fn resolve(repo: &git2::Repository, user_repo: &std::path::Path, name: &str) -> Result<git2::Oid> {
    let candidates = [
        format!("refs/heads/{name}"),
        format!("refs/remotes/origin/{name}"),
    ];
    for r in &candidates {
        if let Ok(reference) = repo.find_reference(r) {
            return Ok(reference.peel_to_commit()?.id());
        }
    }
    if let Ok(obj) = repo.revparse_single(name)
        && let Ok(c) = obj.peel_to_commit()
    {
        return Ok(c.id());
    }
    let local = format!("refs/shopfloor/check/{}", name.trim_start_matches("refs/"));
    let fetched = git2::Reference::is_valid_name(&local)
        && repo
            .remote_anonymous(&user_repo.to_string_lossy())
            .and_then(|mut remote| remote.fetch(&[format!("+{name}:{local}")], None, None))
            .is_ok();
    if fetched && let Ok(reference) = repo.find_reference(&local) {
        return Ok(reference.peel_to_commit()?.id());
    }
    anyhow::bail!(
        "no branch or commit `{name}` in the factory's clone or in {}; `git branch` lists yours",
        user_repo.display()
    )
}
