//! The routes the control room reads through, on a real `serve`: the status bar's
//! figures, a run's outline, a file rebuilt at a step, the event stream, priority and
//! retry, with the API client the control room itself uses.

use crate::common;

use std::time::Duration;

use common::Env;
use common::serve::Serve;
use shopfloor::api::{ApiError, Client};
use shopfloor::wire::FactoryEvent;
use shopfloor::wire::{ErrorKind, NewTicket};

fn kind(e: &ApiError) -> Option<ErrorKind> {
    match e {
        ApiError::Op(op) => Some(op.kind),
        _ => None,
    }
}

#[test]
fn the_control_rooms_routes_answer_on_a_real_factory() {
    let env = Env::new();
    env.ok(&["workspace", "create", "cr"]);
    let trace = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("assets/demo/traces/claude-release.stream.jsonl");
    env.ok(&["trace", "import", trace.to_str().unwrap()]);
    let serve = Serve::paused(&env);
    let client = Client::new(serve.socket());
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let status = client.status().await.unwrap();
        assert_eq!(status.workspace, "cr");
        assert_eq!((status.running, status.limit), (0, 4));
        assert!(status.paused);
        assert!(status.address.ends_with("factory.sock"), "{status:?}");
        assert_eq!(status.sandbox.as_deref(), Some("worktree"));

        // The outline: every step, no payloads, in order.
        let run = client.run(1).await.unwrap();
        let rows = client.outline(1, 0, u64::MAX).await.unwrap();
        assert_eq!(rows.len() as u64, run.steps);
        assert!(rows.windows(2).all(|w| w[0].seq + 1 == w[1].seq));
        let page = client.outline(1, 2, 5).await.unwrap();
        assert_eq!(page.iter().map(|r| r.seq).collect::<Vec<_>>(), [2, 3, 4]);
        let edit = rows.iter().find(|r| r.kind == "file_edit").unwrap();

        // The file as it was at that edit, rebuilt by the factory.
        let step = client.step(1, edit.seq).await.unwrap();
        let path = match &step.kind {
            shopfloor::model::StepKind::FileEdit { path, .. } => path.clone(),
            k => panic!("not an edit: {k:?}"),
        };
        let file = client.file_at(1, edit.seq, &path).await.unwrap();
        assert_eq!((file.state.as_str(), file.edited_at), ("known", edit.seq));
        assert!(file.content.unwrap().contains("class Stock"));
        let e = client.file_at(1, 0, &path).await.unwrap_err();
        assert_eq!(kind(&e), Some(ErrorKind::NotFound), "{e}");
        assert!(e.to_string().contains("has not edited"), "{e}");

        // Events: what the CLI or another control room does reaches every watcher.
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let watcher = client.clone();
        let follow =
            tokio::spawn(async move { watcher.follow_events(move |e| tx.send(e).is_ok()).await });
        tokio::time::sleep(Duration::from_millis(200)).await;
        let t = client
            .add_ticket(&NewTicket {
                title: "Write the changelog".into(),
                body: String::new(),
                priority: 0,
                agent: None,
                paths: vec![],
                labels: vec![],
            })
            .await
            .unwrap();
        let t = client.set_priority(t.id, 8).await.unwrap();
        assert_eq!(t.priority, 8);
        let mut seen = vec![];
        while seen.len() < 2 {
            let e = tokio::time::timeout(Duration::from_secs(5), rx.recv())
                .await
                .expect("the events arrive")
                .unwrap();
            seen.push(e);
        }
        assert!(
            seen.iter()
                .all(|e| matches!(e, FactoryEvent::TicketState { ticket, .. } if *ticket == t.id)),
            "{seen:?}"
        );
        // Pausing the queue is news to every watcher too.
        client
            .queue_pause(
                true,
                &shopfloor::wire::QueueAction {
                    by: "tester".into(),
                    note: None,
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        let e = tokio::time::timeout(Duration::from_secs(5), rx.recv())
            .await
            .expect("the queue event arrives")
            .unwrap();
        assert!(matches!(e, FactoryEvent::Queue { .. }), "{e:?}");
        follow.abort();

        // Retry: an imported run has no ticket to retry; a queued ticket is not retried
        // twice; a cancelled one is queued again.
        let e = client.retry_run(1).await.unwrap_err();
        assert_eq!(kind(&e), Some(ErrorKind::Conflict), "{e}");
        client.cancel_ticket(t.id).await.unwrap();
        let e = client.set_priority(t.id, 1).await.unwrap_err();
        assert_eq!(kind(&e), Some(ErrorKind::Conflict), "{e}");
    });
    assert!(serve.stop().success());
}
