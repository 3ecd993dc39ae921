//! The control room without a terminal: every screen drawn on ratatui's TestBackend and
//! snapshotted (ids, hashes and times masked), and key sequences typed into the app with
//! the effects it asks for checked. The data is real: a Claude Code trace imported into a
//! real workspace, the demo's memories recalled by the real memory bank, read through the
//! same operations the API serves.

use crate::common;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use jiff::{SignedDuration, Timestamp};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use shopfloor::api::ops;
use shopfloor::model::{Author, QueueEntry, Run, RunState, TicketState};
use shopfloor::tui::app::{App, Effect, Layer, Load, Msg, Screen};
use shopfloor::tui::keymap::Keymap;
use shopfloor::tui::theme::Theme;
use shopfloor::tui::view;
use shopfloor::wire::{FactoryStatus, MemorySearch, NewTicket, QueueDetail, QueueView};
use shopfloor::workspace::{Home, Workspace};

struct Fixture {
    _dir: tempfile::TempDir,
    ws: Workspace,
    run: Run,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path().join("repo");
    std::fs::create_dir_all(&repo).unwrap();
    common::init_repo(&repo);
    let info = Home::at(dir.path().join("home"))
        .create("snap", &repo)
        .unwrap();
    let ws = Workspace::open(info).unwrap();
    let trace = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("assets/demo/traces/claude-release.stream.jsonl");
    let r = ws
        .import_trace(&trace, shopfloor::trace::Format::ClaudeStream, None)
        .unwrap();
    ws.memory
        .import_jsonl(
            std::io::Cursor::new(include_str!("../assets/demo/memories.jsonl")),
            Author::Human {
                name: "demo".into(),
            },
        )
        .unwrap();
    for (title, state) in [
        ("Add Stock.release()", TicketState::Running),
        ("Simplify Stock.reserve()", TicketState::Queued),
        ("Run CI on Python 3.12", TicketState::Review),
        ("Document the API", TicketState::Merged),
    ] {
        let t = ops::add_ticket(
            &ws,
            NewTicket {
                title: title.into(),
                body: String::new(),
                priority: 1,
                agent: Some("claude".into()),
                paths: vec![],
                labels: vec![],
            },
        )
        .unwrap();
        ws.store
            .update_ticket(t.id, move |t| {
                t.state = state;
                Ok(())
            })
            .unwrap();
    }
    let run = ops::run(&ws, r.run).unwrap();
    Fixture { _dir: dir, ws, run }
}

fn entry(id: u64, state: &str, needs_human: bool) -> QueueEntry {
    serde_json::from_value(serde_json::json!({
        "id": id, "ticket": id, "run": 1, "branch": format!("shopfloor/{id}-1"),
        "head": "0123456789abcdef0123456789abcdef01234567", "priority": 0, "state": state,
        "enqueued": "2026-11-20T10:00:00Z",
        "verdict": {"allowed": true, "needs_human": needs_human,
            "reasons": if needs_human { vec!["`migrations/0002.sql` needs a human's approval: `approve migrations/**`"] } else { vec![] },
            "denied": [], "gated": if needs_human { vec!["migrations/0002.sql"] } else { vec![] },
            "changed_lines": 3, "files": 2},
        "tests": [{"commit": "0123456789", "ok": true, "exit_code": 0, "seconds": 1.5,
                   "log": "..\nRan 2 tests in 0.001s\n\nOK\n", "batch": [id], "retry": 0}]
    }))
    .unwrap()
}

const PATCH: &str = "diff --git a/migrations/0002.sql b/migrations/0002.sql\nnew file mode 100644\n--- /dev/null\n+++ b/migrations/0002.sql\n@@ -0,0 +1 @@\n+ALTER TABLE stock ADD COLUMN reserved INTEGER;\ndiff --git a/README.md b/README.md\n--- a/README.md\n+++ b/README.md\n@@ -1,2 +1,3 @@\n # inventory\n-old line\n+new line\n+CI runs on Python 3.12.\n";

/// An app loaded with the fixture's data, as the runtime would after its first loads.
fn app(f: &Fixture) -> App {
    let now = f.run.started + SignedDuration::from_secs(95);
    let theme = Theme::load("dark", None, false).0;
    let mut app = App::new(Keymap::builtin(), theme, "alice".into(), now);
    let _ = app.update(Msg::Connected);
    let _ = app.update(Msg::Status(FactoryStatus {
        workspace: "snap".into(),
        main_branch: "main".into(),
        main_head: Some("f00dfacecafe".into()),
        running: 2,
        limit: 4,
        queue_len: 2,
        waiting: 1,
        paused: false,
        queue_paused: false,
        address: "/tmp/snap/factory.sock".into(),
        sandbox: Some("worktree".into()),
        held: None,
    }));
    let _ = app.update(Msg::Tickets(ops::tickets(&f.ws, None).unwrap()));
    // Two live panes from the imported run: the same steps under two agents.
    let mut runs = vec![];
    for (id, agent) in [(1, "claude"), (2, "codex")] {
        let mut r = f.run.clone();
        r.id = id;
        r.agent = agent.into();
        r.ticket = Some(id);
        r.state = RunState::Running;
        r.ended = None;
        runs.push(r);
    }
    let _ = app.update(Msg::Runs(runs));
    let steps = ops::steps(&f.ws, f.run.id, 0, u64::MAX).unwrap();
    for id in [1, 2] {
        let steps = steps
            .iter()
            .cloned()
            .map(|mut s| {
                s.run = id;
                s
            })
            .collect();
        let _ = app.update(Msg::PaneSteps { run: id, steps });
    }
    let _ = app.update(Msg::Queue(QueueView {
        paused: false,
        entries: vec![
            entry(3, "awaiting_approval", true),
            entry(4, "testing", false),
            entry(1, "merged", false),
        ],
    }));
    let _ = app.update(Msg::QueueDetail(Box::new(QueueDetail {
        entry: entry(3, "awaiting_approval", true),
        files: vec!["README.md".into(), "migrations/0002.sql".into()],
        changed_lines: 4,
        title: Some("Run CI on Python 3.12".into()),
        patch: PATCH.into(),
    })));
    app
}

fn key(c: char) -> Msg {
    Msg::Key(KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE))
}

fn code(c: KeyCode) -> Msg {
    Msg::Key(KeyEvent::new(c, KeyModifiers::NONE))
}

/// Type keys as the keymap writes them, space-separated ("g g", "enter").
fn type_keys(app: &mut App, keys: &str) -> Vec<Effect> {
    let mut fx = vec![];
    for k in keys.split_whitespace() {
        let m = match k {
            "enter" => code(KeyCode::Enter),
            "esc" => code(KeyCode::Esc),
            "tab" => code(KeyCode::Tab),
            "space" => key(' '),
            k if k.chars().count() == 1 => key(k.chars().next().unwrap()),
            k => panic!("no key {k}"),
        };
        fx.extend(app.update(m));
    }
    fx
}

/// Type `text` into whatever has the focus, a character at a time.
fn type_text(app: &mut App, text: &str) -> Vec<Effect> {
    text.chars().flat_map(|c| app.update(key(c))).collect()
}

/// Answer the app's loads from the workspace, as the runtime does through the API.
fn serve(app: &mut App, ws: &Workspace, mut fx: Vec<Effect>) {
    for _ in 0..50 {
        let mut next = vec![];
        for e in fx {
            let msg = match e {
                Effect::Load(Load::Outline(run), a) => Msg::Outline {
                    run,
                    from: a.from,
                    rows: ops::outline(ws, 1, a.from, a.from + 25_000)
                        .unwrap()
                        .into_iter()
                        .collect(),
                },
                Effect::Load(Load::Step(run, seq), _) => {
                    let mut s = ops::step(ws, 1, seq).unwrap();
                    s.run = run;
                    Msg::Step(Box::new(s))
                }
                Effect::FileAt { run, seq, path } => Msg::FileAt {
                    run,
                    seq,
                    file: ops::file_at(ws, 1, seq, &path).map_err(|e| e.to_string()),
                },
                Effect::SearchMemory { generation, query } => Msg::Memories {
                    generation,
                    hits: ops::search_memory(ws, query).unwrap(),
                },
                _ => continue,
            };
            next.extend(app.update(msg));
        }
        if next.is_empty() {
            return;
        }
        fx = next;
    }
}

fn render(app: &App, w: u16, h: u16) -> Terminal<TestBackend> {
    let mut t = Terminal::new(TestBackend::new(w, h)).unwrap();
    t.draw(|f| view::draw(f, app)).unwrap();
    t
}

fn snapshot(name: &str, app: &App) {
    let t = render(app, 120, 34);
    insta::with_settings!({
        filters => vec![
            // Padding too: the width of "9d ago" and "15d ago" differ as days pass.
            (r"\b\d+[smhd] ago *", "[ago]"),
            (r"\b\d+m\d{2}s\b", "[elapsed]"),
            (r"\b\d{2}:\d{2}:\d{2}\b", "[time]"),
            (r"\(\d\.\d{3}\)", "([score])"),
            (r"/tmp/[^\s│]+", "[path]"),
        ],
        snapshot_path => "snapshots",
        prepend_module_to_snapshot => false,
    }, {
        insta::assert_snapshot!(name, t.backend());
    });
}

#[test]
fn a_run_on_another_host_says_where_in_its_pane() {
    let f = fixture();
    let mut app = app(&f);
    let mut runs = vec![];
    for (id, host) in [(1, Some("build-1")), (2, None)] {
        let mut r = f.run.clone();
        r.id = id;
        r.ticket = Some(id);
        r.state = RunState::Running;
        r.ended = None;
        r.host = host.map(str::to_string);
        runs.push(r);
    }
    let _ = app.update(Msg::Runs(runs));
    let screen = format!("{:?}", render(&app, 120, 34).backend());
    assert!(screen.contains("on build-1"), "{screen}");
    assert_eq!(screen.matches("on build-1").count(), 1, "{screen}");
    assert!(
        !screen.contains("on local"),
        "a local run says nothing: {screen}"
    );
}

#[test]
fn every_screen_snapshots() {
    let f = fixture();
    let mut app = app(&f);
    snapshot("fleet", &app);
    type_keys(&mut app, "enter");
    snapshot("fleet_zoomed", &app);
    type_keys(&mut app, "esc 2");
    snapshot("tickets", &app);
    type_keys(&mut app, "n");
    snapshot("ticket_editor", &app);
    type_keys(&mut app, "esc 3");
    snapshot("replay_runs", &app);
    let fx = type_keys(&mut app, "enter");
    serve(&mut app, &f.ws, fx);
    let fx = type_keys(&mut app, "J");
    serve(&mut app, &f.ws, fx);
    snapshot("replay_edit", &app);
    let fx = type_keys(&mut app, "f");
    assert!(
        fx.iter().any(|e| matches!(e, Effect::FileAt { .. })),
        "the file view asks for the file rebuilt at the step: {fx:?}"
    );
    serve(&mut app, &f.ws, fx);
    let seq = app.replay.at_seq().unwrap();
    let rebuilt = app.replay.files.get(&seq).unwrap().as_ref().unwrap();
    assert_eq!(rebuilt.state, "known");
    assert!(rebuilt.content.as_ref().unwrap().contains("class Stock"));
    snapshot("replay_file_at_step", &app);
    type_keys(&mut app, "4");
    snapshot("queue", &app);
    type_keys(&mut app, "t");
    snapshot("queue_test_log", &app);
    let fx = type_keys(&mut app, "5");
    serve(&mut app, &f.ws, fx);
    let fx = type_text(&mut app, "stock");
    serve(&mut app, &f.ws, fx);
    snapshot("memory", &app);
    type_keys(&mut app, "esc ?");
    snapshot("help_memory", &app);
}

#[test]
fn states_show_without_colour() {
    let f = fixture();
    let mut app = app(&f);
    app.theme = Theme::load("dark", None, true).0;
    type_keys(&mut app, "4");
    let t = render(&app, 120, 34);
    let text = format!("{}", t.backend());
    // The selection and the waiting entry are marked by symbols, not only by colour.
    assert!(text.contains("▶ ⚑ awaiting-approval"), "{text}");
    assert!(text.contains("⚑ 1 waiting for approval"), "{text}");
    for cell in t.backend().buffer().content() {
        assert_eq!(
            cell.fg,
            ratatui::style::Color::Reset,
            "no colour under NO_COLOR"
        );
    }
}

#[test]
fn approving_asks_first_then_approves_as_the_user() {
    let f = fixture();
    let mut app = app(&f);
    type_keys(&mut app, "4");
    let fx = type_keys(&mut app, "a");
    assert!(fx.is_empty(), "nothing happens before the confirm: {fx:?}");
    assert!(matches!(app.layers.last(), Some(Layer::Confirm(_))));
    let fx = type_keys(&mut app, "y");
    assert_eq!(
        fx,
        vec![Effect::QueueAct {
            id: 3,
            verb: "approve",
            note: None
        }]
    );
    assert!(app.layers.is_empty());
    // `n` at the confirm leaves the entry alone.
    type_keys(&mut app, "a");
    assert!(type_keys(&mut app, "n").is_empty());
}

#[test]
fn rejecting_needs_a_typed_reason() {
    let f = fixture();
    let mut app = app(&f);
    type_keys(&mut app, "4");
    type_keys(&mut app, "x");
    assert!(
        type_keys(&mut app, "enter").is_empty(),
        "no reason, no rejection"
    );
    assert!(app.flash.as_ref().is_some_and(|f| f.error));
    type_keys(&mut app, "x");
    let mut fx = vec![];
    for c in "touches prod".chars() {
        fx.extend(app.update(key(c)));
    }
    fx.extend(type_keys(&mut app, "enter"));
    assert_eq!(
        fx,
        vec![Effect::QueueAct {
            id: 3,
            verb: "reject",
            note: Some("touches prod".into())
        }]
    );
}

#[test]
fn a_comment_goes_on_the_diff_line_under_the_cursor_and_r_sends_them_back() {
    let f = fixture();
    let mut app = app(&f);
    type_keys(&mut app, "4");
    // Not in the diff yet: `c` says how to get there.
    assert!(type_keys(&mut app, "c").is_empty());
    assert!(app.flash.as_ref().is_some_and(|f| f.error));
    // Nothing to send back yet.
    assert!(type_keys(&mut app, "R").is_empty());
    assert!(
        app.flash
            .as_ref()
            .is_some_and(|f| f.error && f.text.contains("no comments"))
    );
    // `l` moves into the diff, on its first line a comment can go on: migrations/0002.sql:1.
    type_keys(&mut app, "l");
    assert!(
        app.queue.diff_focus,
        "{:?}",
        app.flash.as_ref().map(|f| f.text.clone())
    );
    type_keys(&mut app, "c");
    assert!(matches!(app.layers.last(), Some(Layer::Prompt(_))));
    let mut fx = type_text(&mut app, "add a NOT NULL default");
    fx.extend(type_keys(&mut app, "enter"));
    assert_eq!(
        fx,
        vec![Effect::QueueComment {
            id: 3,
            path: "migrations/0002.sql".into(),
            line: 1,
            text: "add a NOT NULL default".into(),
        }]
    );
    // The next file, on the kept line 1 of README.md, then down to the added line 2.
    type_keys(&mut app, "]");
    type_keys(&mut app, "l j j");
    type_keys(&mut app, "c");
    let mut fx = type_text(&mut app, "say which CI");
    fx.extend(type_keys(&mut app, "enter"));
    assert!(
        matches!(&fx[..], [Effect::QueueComment { path, line: 2, .. }] if path == "README.md"),
        "{fx:?}"
    );
    // A removed line has no line in the new file.
    type_keys(&mut app, "k");
    assert!(type_keys(&mut app, "c").is_empty());
    assert!(
        app.flash
            .as_ref()
            .is_some_and(|f| f.error && f.text.contains("removed"))
    );

    // Comments show inline under their line, and `R` asks, then sends them back.
    let mut e = entry(3, "awaiting_approval", true);
    e.comments.push(shopfloor::model::LineComment {
        path: "README.md".into(),
        line: 2,
        text: "say which CI".into(),
        by: "alice".into(),
        ts: f.run.started,
    });
    let _ = app.update(Msg::Queue(QueueView {
        paused: false,
        entries: vec![e],
    }));
    let text = format!("{:?}", render(&app, 120, 34).backend());
    assert!(text.contains("+new line"), "{text}");
    assert!(text.contains("┃ alice: say which CI"), "{text}");
    assert!(text.contains("1 comment to send back"), "{text}");
    type_keys(&mut app, "h");
    assert!(!app.queue.diff_focus);
    assert!(type_keys(&mut app, "R").is_empty(), "asks first");
    assert!(matches!(app.layers.last(), Some(Layer::Confirm(_))));
    assert_eq!(
        type_keys(&mut app, "y"),
        vec![Effect::QueueAct {
            id: 3,
            verb: "send-back",
            note: None
        }]
    );

    // Replay of the entry's run shows them at the edits of the file they are on.
    type_keys(&mut app, "3");
    let fx = type_keys(&mut app, "enter");
    serve(&mut app, &f.ws, fx);
    let fx = type_keys(&mut app, "J");
    serve(&mut app, &f.ws, fx);
    let seq = app.replay.rows[app.replay.cursor.at].seq;
    let path = match &app.replay.steps[&seq].kind {
        shopfloor::model::StepKind::FileEdit { path, .. } => path.clone(),
        other => panic!("{other:?}"),
    };
    let mut e = entry(3, "bounced", false);
    e.run = Some(app.replay.run.unwrap());
    e.comments.push(shopfloor::model::LineComment {
        path: path.clone(),
        line: 4,
        text: "REPLAY-SEES-THIS".into(),
        by: "alice".into(),
        ts: f.run.started,
    });
    let _ = app.update(Msg::Queue(QueueView {
        paused: false,
        entries: vec![e],
    }));
    let text = format!("{:?}", render(&app, 160, 50).backend());
    assert!(
        text.contains(&format!("comments on {path} in review")),
        "{text}"
    );
    assert!(text.contains("line 4: REPLAY-SEES-THIS (alice)"), "{text}");
}

#[test]
fn bump_and_replay_link_from_the_queue() {
    let f = fixture();
    let mut app = app(&f);
    type_keys(&mut app, "4 j");
    let fx = type_keys(&mut app, "b");
    assert_eq!(
        fx,
        vec![Effect::QueueAct {
            id: 4,
            verb: "bump",
            note: None
        }]
    );
    let fx = type_keys(&mut app, "enter");
    assert_eq!(app.screen, Screen::Replay);
    assert_eq!(app.replay.run, Some(1));
    assert!(
        fx.iter()
            .any(|e| matches!(e, Effect::Load(Load::Outline(1), _)))
    );
}

#[test]
fn replay_keys_walk_the_run() {
    let f = fixture();
    let mut app = app(&f);
    type_keys(&mut app, "3");
    let fx = type_keys(&mut app, "enter");
    serve(&mut app, &f.ws, fx);
    let rows = app.replay.rows.clone();
    assert_eq!(rows.len() as u64, f.run.steps);
    let first_edit = rows.iter().position(|r| r.kind == "file_edit").unwrap();
    let fx = type_keys(&mut app, "J");
    assert_eq!(app.replay.cursor.at, first_edit);
    serve(&mut app, &f.ws, fx);
    assert!(app.replay.steps.contains_key(&rows[first_edit].seq));
    type_keys(&mut app, "m G");
    assert_eq!(app.replay.cursor.at, rows.len() - 1);
    type_keys(&mut app, "'");
    assert_eq!(app.replay.cursor.at, first_edit);
    type_keys(&mut app, "g g");
    assert_eq!(app.replay.cursor.at, 0);
    type_keys(&mut app, "j n");
    assert_eq!(app.replay.cursor.at, 2);
    type_keys(&mut app, "k p");
    assert_eq!(app.replay.cursor.at, 0);
    // Space plays: each tick is one step; space again pauses.
    type_keys(&mut app, "space");
    let now = app.now;
    app.update(Msg::Tick(now));
    app.update(Msg::Tick(now));
    assert_eq!(app.replay.cursor.at, 2);
    type_keys(&mut app, "space");
    app.update(Msg::Tick(now));
    assert_eq!(app.replay.cursor.at, 2);
    // `/` searches the run through the API and jumps to the next match.
    let mut fx = type_keys(&mut app, "/");
    for c in "release".chars() {
        fx.extend(app.update(key(c)));
    }
    fx.extend(type_keys(&mut app, "enter"));
    assert!(
        fx.iter()
            .any(|e| matches!(e, Effect::SearchRun { query, .. } if query == "release")),
        "{fx:?}"
    );
    let hit = rows
        .iter()
        .rposition(|r| r.summary.contains("release"))
        .unwrap();
    app.update(Msg::RunHits {
        run: app.replay.run.unwrap(),
        query: "release".into(),
        seqs: vec![rows[hit].seq],
    });
    assert_eq!(app.replay.cursor.at, hit);
}

#[test]
fn jumping_in_a_hundred_thousand_step_run_is_instant() {
    let f = fixture();
    let mut app = app(&f);
    app.open_replay(1, None, &mut vec![]);
    let rows: Vec<_> = (0..100_000u64)
        .map(|seq| shopfloor::wire::OutlineRow {
            seq,
            kind: if seq % 997 == 0 { "file_edit" } else { "agent" }.into(),
            error: seq == 99_001,
            parent: None,
            summary: format!("step {seq}"),
            ts: Timestamp::UNIX_EPOCH,
        })
        .collect();
    for chunk in rows.chunks(25_000) {
        let from = chunk[0].seq;
        app.update(Msg::Outline {
            run: 1,
            from,
            rows: chunk.to_vec(),
        });
    }
    assert_eq!(app.replay.rows.len(), 100_000);
    let start = std::time::Instant::now();
    type_keys(&mut app, "G");
    assert_eq!(app.replay.cursor.at, 99_999);
    type_keys(&mut app, "g g e");
    assert_eq!(app.replay.cursor.at, 99_001);
    type_keys(&mut app, "K");
    assert_eq!(app.replay.cursor.at, 98_703);
    let keys = start.elapsed();
    let start = std::time::Instant::now();
    render(&app, 200, 60);
    let frame = start.elapsed();
    assert!(keys.as_millis() < 50, "jumps took {keys:?}");
    assert!(frame.as_millis() < 100, "a frame took {frame:?}");
}

#[test]
fn a_ticket_is_added_from_the_editor() {
    let f = fixture();
    let mut app = app(&f);
    type_keys(&mut app, "2 n");
    // Submitting with no title keeps the editor open and says why.
    let fx = app.update(Msg::Key(KeyEvent::new(
        KeyCode::Char('s'),
        KeyModifiers::CONTROL,
    )));
    assert!(fx.is_empty());
    assert!(matches!(app.layers.last(), Some(Layer::TicketForm(f)) if f.error.is_some()));
    for c in "Add a CLI".chars() {
        app.update(key(c));
    }
    type_keys(&mut app, "tab");
    for c in "so people can script it".chars() {
        app.update(key(c));
    }
    app.update(code(KeyCode::Tab));
    app.update(code(KeyCode::Backspace));
    for c in "7".chars() {
        app.update(key(c));
    }
    app.update(code(KeyCode::Tab));
    for c in "codex".chars() {
        app.update(key(c));
    }
    app.update(code(KeyCode::Tab));
    for c in "src/cli/**, README.md".chars() {
        app.update(key(c));
    }
    let fx = type_keys(&mut app, "enter");
    assert_eq!(
        fx,
        vec![Effect::AddTicket(NewTicket {
            title: "Add a CLI".into(),
            body: "so people can script it".into(),
            priority: 7,
            agent: Some("codex".into()),
            paths: vec!["src/cli/**".into(), "README.md".into()],
            labels: vec![],
        })]
    );
    // `p` changes the selected ticket's priority; `c` cancels after a confirm.
    let fx = type_keys(&mut app, "p");
    assert!(fx.is_empty());
    app.update(code(KeyCode::Backspace));
    let fx: Vec<Effect> = [key('9'), code(KeyCode::Enter)]
        .into_iter()
        .flat_map(|m| app.update(m))
        .collect();
    let id = app.selected_ticket().unwrap().id;
    assert_eq!(fx, vec![Effect::SetPriority(id, 9)]);
    type_keys(&mut app, "c");
    assert_eq!(type_keys(&mut app, "y"), vec![Effect::CancelTicket(id)]);
}

#[test]
fn fleet_kill_asks_first_and_memory_opens_its_source() {
    let f = fixture();
    let mut app = app(&f);
    type_keys(&mut app, "l x");
    assert!(matches!(app.layers.last(), Some(Layer::Confirm(_))));
    assert_eq!(type_keys(&mut app, "y"), vec![Effect::KillRun(2)]);
    assert_eq!(type_keys(&mut app, "r y"), vec![Effect::RetryRun(2)]);
    // A memory with a source step opens it in replay.
    let hits = ops::search_memory(
        &f.ws,
        MemorySearch {
            text: "stock".into(),
            limit: 5,
            ..Default::default()
        },
    )
    .unwrap();
    type_keys(&mut app, "5");
    let mut hits = hits;
    hits[0].memory.source = Some(shopfloor::model::StepRef { run: 1, step: 7 });
    let generation = app.memory.generation;
    app.update(Msg::Memories { generation, hits });
    let fx = type_keys(&mut app, "enter");
    assert_eq!(app.screen, Screen::Replay);
    serve(&mut app, &f.ws, fx);
    assert_eq!(app.replay.at_seq(), Some(7));
}

#[test]
fn the_mouse_clicks_tabs_and_rows_and_scrolls() {
    use crossterm::event::{MouseButton, MouseEvent, MouseEventKind};
    let f = fixture();
    let mut app = app(&f);
    let mouse = |kind, column, row| {
        Msg::Mouse(MouseEvent {
            kind,
            column,
            row,
            modifiers: KeyModifiers::NONE,
        })
    };
    render(&app, 120, 34);
    // The tab bar: " 1 Fleet   2 Tickets   3 Replay   4 Merge queue ..."
    let t = render(&app, 120, 34);
    let top: String = (0..120)
        .map(|x| t.backend().buffer()[(x, 0)].symbol().to_string())
        .collect();
    let x = top.find("4 Merge").unwrap() as u16;
    app.update(mouse(MouseEventKind::Down(MouseButton::Left), x + 2, 0));
    assert_eq!(app.screen, Screen::Queue);
    // Rows of the queue start under the list's border: click the second one.
    render(&app, 120, 34);
    app.update(mouse(MouseEventKind::Down(MouseButton::Left), 5, 3));
    assert_eq!(app.queue.selected, 1);
    app.update(mouse(MouseEventKind::ScrollDown, 5, 5));
    assert_eq!(app.queue.selected, 2);
    app.update(mouse(MouseEventKind::ScrollUp, 5, 5));
    assert_eq!(app.queue.selected, 1);
}

/// Text an agent, a transcript or a ticket's author controls, holding what a terminal acts
/// on: a clipboard write, a title change, a screen clear (7- and 8-bit) and bidi overrides.
const HOSTILE: &str = "pwned\x1b]52;c;cHduZWQ=\x07\x1b]0;title\x07\x1b[2J\u{9b}2J\u{202e}txt.exe\u{2066}x\u{2069}\x7f";

/// The symbols of the cells that hold a character a terminal would act on.
fn unsafe_cells(t: &Terminal<TestBackend>) -> Vec<String> {
    t.backend()
        .buffer()
        .content()
        .iter()
        .map(|c| c.symbol())
        .filter(|s| s.chars().any(shopfloor::safe_text::is_unsafe))
        .map(|s| format!("{s:?}"))
        .collect()
}

#[test]
fn ratatui_drops_control_characters_but_not_always_bidi_overrides() {
    use ratatui::text::{Line, Span};
    use ratatui::widgets::{Block, Paragraph};
    let drawn = |draw: &dyn Fn(&mut ratatui::Frame)| {
        let mut t = Terminal::new(TestBackend::new(80, 3)).unwrap();
        t.draw(|f| draw(f)).unwrap();
        let cells: String = t
            .backend()
            .buffer()
            .content()
            .iter()
            .map(|c| c.symbol())
            .collect();
        cells
    };
    let paragraph = drawn(&|f| f.render_widget(Paragraph::new(HOSTILE), f.area()));
    let line = drawn(&|f| f.render_widget(Line::raw(HOSTILE), f.area()));
    let span = drawn(&|f| f.render_widget(Span::raw(HOSTILE), f.area()));
    let title = drawn(&|f| f.render_widget(Block::bordered().title(HOSTILE), f.area()));
    let set_string = drawn(&|f| {
        f.buffer_mut()
            .set_string(0, 0, HOSTILE, ratatui::style::Style::new())
    });
    // Control characters (C0, DEL, C1) never reach a cell, whatever draws the text...
    for (what, cells) in [
        ("paragraph", &paragraph),
        ("line", &line),
        ("span", &span),
        ("title", &title),
        ("set_string", &set_string),
    ] {
        assert!(!cells.chars().any(char::is_control), "{what}: {cells:?}");
    }
    // ...but bidi overrides, zero-width, are skipped by a paragraph and `set_string` and
    // appended to the cell before by a line, a span or a block's title: this is why the
    // view sweeps its whole frame.
    assert!(!paragraph.contains('\u{202e}') && !set_string.contains('\u{202e}'));
    for cells in [&line, &span, &title] {
        assert!(
            cells.contains("\u{202e}txt.exe\u{2066}x\u{2069}"),
            "{cells:?}"
        );
    }
}

#[test]
fn hostile_text_reaches_no_screen_of_the_control_room() {
    let f = fixture();
    ops::add_ticket(
        &f.ws,
        NewTicket {
            title: format!("ticket {HOSTILE}"),
            body: format!("body {HOSTILE}"),
            priority: 9,
            agent: Some("claude".into()),
            paths: vec![],
            labels: vec![],
        },
    )
    .unwrap();
    f.ws.memory
        .add(shopfloor::memory::NewMemory::new(
            shopfloor::model::MemoryKind::Note,
            format!("stock memory {HOSTILE}"),
            Author::Human { name: "x".into() },
        ))
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let trace = dir.path().join("hostile.jsonl");
    let lines = [
        serde_json::json!({"type": "agent_message", "text": HOSTILE}),
        serde_json::json!({"type": "command", "argv": ["printf", HOSTILE], "exit_code": 0, "output": HOSTILE}),
        serde_json::json!({"type": "error", "message": HOSTILE}),
    ];
    let text: Vec<String> = lines.iter().map(|l| l.to_string()).collect();
    std::fs::write(&trace, text.join("\n")).unwrap();
    let hostile =
        f.ws.import_trace(
            &trace,
            shopfloor::trace::Format::Jsonl,
            Some(HOSTILE.into()),
        )
        .unwrap();
    let mut app = app(&f);
    let _ = app.update(Msg::Tickets(ops::tickets(&f.ws, None).unwrap()));
    let mut run = ops::run(&f.ws, hostile.run).unwrap();
    run.state = RunState::Running;
    run.ended = None;
    let _ = app.update(Msg::Runs(vec![run]));
    let steps = ops::steps(&f.ws, hostile.run, 0, u64::MAX).unwrap();
    let _ = app.update(Msg::PaneSteps {
        run: hostile.run,
        steps,
    });

    let mut shown = String::new();
    let mut check = |app: &App, screen: &str| {
        let t = render(app, 120, 34);
        let bad = unsafe_cells(&t);
        assert!(bad.is_empty(), "{screen}: {bad:?}");
        shown.push_str(&format!("{}", t.backend()));
    };
    check(&app, "fleet");
    type_keys(&mut app, "enter");
    check(&app, "fleet zoomed");
    type_keys(&mut app, "esc 2");
    check(&app, "tickets");
    type_keys(&mut app, "3");
    check(&app, "replay runs");
    let fx = type_keys(&mut app, "enter");
    serve(&mut app, &f.ws, fx);
    check(&app, "replay");
    let fx = type_keys(&mut app, "5");
    serve(&mut app, &f.ws, fx);
    let fx = type_text(&mut app, "stock memory");
    serve(&mut app, &f.ws, fx);
    check(&app, "memory");
    // The hostile text was on screen, minus what a terminal would act on.
    assert!(
        shown.contains("txt.exe") && shown.contains("pwned"),
        "{shown}"
    );
}

/// The control room rings for a person: an entry waiting for approval, a quiet agent and
/// a ticket failed for good each become a notification effect (the loop writes it to the
/// terminal as BEL + OSC 777 + OSC 9); a landing does not.
#[test]
fn events_that_need_a_person_notify_and_others_do_not() {
    use shopfloor::notify::NoticeKind;
    use shopfloor::wire::FactoryEvent;
    let f = fixture();
    let mut app = app(&f);
    let notices = |fx: Vec<Effect>| -> Vec<NoticeKind> {
        fx.into_iter()
            .filter_map(|e| match e {
                Effect::Notify(n) => Some(n.kind),
                _ => None,
            })
            .collect()
    };
    let fx = app.update(Msg::Event(FactoryEvent::Queue {
        landed: vec![],
        bounced: vec![],
        rejected: vec![],
        waiting: vec![3],
    }));
    assert_eq!(notices(fx), [NoticeKind::NeedsApproval]);
    let fx = app.update(Msg::Event(FactoryEvent::Quiet {
        run: 1,
        ticket: Some(1),
        agent: "claude".into(),
        seconds: 60,
    }));
    assert_eq!(notices(fx), [NoticeKind::AgentQuiet]);
    let fx = app.update(Msg::Event(FactoryEvent::TicketState {
        ticket: 1,
        state: TicketState::Failed,
    }));
    assert_eq!(notices(fx), [NoticeKind::TicketFailed]);
    let fx = app.update(Msg::Event(FactoryEvent::Queue {
        landed: vec![2],
        bounced: vec![],
        rejected: vec![],
        waiting: vec![],
    }));
    assert!(notices(fx).is_empty());
}

/// The Tickets screen shows what each ticket's runs cost.
#[test]
fn the_tickets_screen_shows_each_tickets_spend() {
    let f = fixture();
    let mut app = app(&f);
    let mut tickets = ops::tickets(&f.ws, None).unwrap();
    // The queued ticket, selected on the board: its card and its detail.
    let t = tickets
        .iter_mut()
        .find(|t| t.state == TicketState::Queued)
        .unwrap();
    let id = t.id;
    t.runs = vec![1, 2];
    let _ = app.update(Msg::Tickets(tickets));
    let mut runs = vec![];
    for (rid, cost) in [(1, 0.25), (2, 0.17)] {
        let mut r = f.run.clone();
        r.id = rid;
        r.ticket = Some(id);
        r.usage.cost_usd = Some(cost);
        runs.push(r);
    }
    let _ = app.update(Msg::Runs(runs));
    app.screen = Screen::Tickets;
    let text = format!("{:?}", render(&app, 160, 40).backend());
    assert!(text.contains("p1 · $0.42 · claude"), "the card: {text}");
    assert!(text.contains("spent $0.42"), "the detail: {text}");
}
