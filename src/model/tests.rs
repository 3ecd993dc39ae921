//! Unit tests of the shared data types: serialization shapes and names.

use jiff::Timestamp;

use super::*;

#[test]
fn step_round_trips_through_json_with_flat_kind() {
    let step = Step {
        run: 3,
        seq: 7,
        ts: Timestamp::UNIX_EPOCH,
        agent: "claude".into(),
        parent: Some(6),
        kind: StepKind::ToolResult {
            call_id: Some("toolu_1".into()),
            output: "ok".into(),
            is_error: false,
        },
    };
    let json = serde_json::to_string(&step).unwrap();
    assert!(json.contains(r#""type":"tool_result""#), "{json}");
    let back: Step = serde_json::from_str(&json).unwrap();
    assert_eq!(back, step);
}

#[test]
fn blob_payload_serializes_as_object_and_text_as_string() {
    let text = serde_json::to_string(&Payload::Text("hi".into())).unwrap();
    assert_eq!(text, r#""hi""#);
    let blob = Payload::Blob(BlobRef {
        blob: BlobHash::of(b"x"),
        len: 1,
        preview: "x".into(),
    });
    let json = serde_json::to_string(&blob).unwrap();
    let back: Payload = serde_json::from_str(&json).unwrap();
    assert_eq!(back, blob);
}

#[test]
fn memory_kind_parses_its_names() {
    for k in MemoryKind::ALL {
        assert_eq!(k.name().parse::<MemoryKind>().unwrap(), k);
    }
    assert!(
        "bogus"
            .parse::<MemoryKind>()
            .unwrap_err()
            .contains("use one of")
    );
}

#[test]
fn failed_command_counts_as_error() {
    let k = StepKind::Command {
        argv: vec!["cargo".into(), "test".into()],
        exit_code: Some(101),
        output: "".into(),
    };
    assert!(k.is_error());
    assert_eq!(k.summary(), "$ cargo test -> 101");
}
