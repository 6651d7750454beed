//! Property tests: the workload reader and the answer parsers never panic, whatever the bytes.
//! A longer search than CI's: `PROPTEST_CASES=100000 cargo test --release --test integration never_panics`.

use llmvolley::client::{read_error_body, read_success_body};
use llmvolley::record::{Record, Status};
use llmvolley::workload::{DefaultRoute, Route, WorkItem, WorkloadReader};
use proptest::prelude::*;

fn record() -> Record {
    Record::empty("1".into(), 1, Status::Ok)
}

/// JSON-ish text: more likely than random bytes to get deep into the parsers.
fn jsonish() -> impl Strategy<Value = String> {
    proptest::collection::vec(
        prop_oneof![
            Just("{".to_string()),
            Just("}".to_string()),
            Just("[".to_string()),
            Just("]".to_string()),
            Just(",".to_string()),
            Just(":".to_string()),
            Just("\"custom_id\"".to_string()),
            Just("\"body\"".to_string()),
            Just("\"url\"".to_string()),
            Just("\"output\"".to_string()),
            Just("\"choices\"".to_string()),
            Just("\"usage\"".to_string()),
            Just("\"error\"".to_string()),
            Just("null".to_string()),
            Just("1e999".to_string()),
            Just("-1".to_string()),
            Just("\"\\ud800\"".to_string()),
            "[ -~]{0,6}".prop_map(|s| format!("\"{s}\"")),
        ],
        0..40,
    )
    .prop_map(|parts| parts.concat())
}

proptest! {
    #[test]
    fn workload_reader_never_panics_and_keeps_one_item_per_non_blank_line(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let items: Vec<WorkItem> = WorkloadReader::new(&bytes[..], DefaultRoute::ByShape).map(|r| r.unwrap()).collect();
        let non_blank = bytes
            .split(|b| *b == b'\n')
            .enumerate()
            .filter(|(i, l)| {
                let l = if *i == 0 { l.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(l) } else { l };
                !l.iter().all(u8::is_ascii_whitespace)
            })
            .count();
        prop_assert_eq!(items.len(), non_blank);
    }

    #[test]
    fn workload_reader_never_panics_on_json_like_lines(lines in proptest::collection::vec(jsonish(), 0..20)) {
        let text = lines.join("\n");
        let items: Vec<WorkItem> = WorkloadReader::new(text.as_bytes(), DefaultRoute::Forced(Route::Chat)).map(|r| r.unwrap()).collect();
        prop_assert!(items.len() <= lines.len());
    }

    #[test]
    fn answer_parsers_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..1024), text in jsonish(), code in 100u16..600) {
        let mut r = record();
        read_success_body(&bytes, &mut r);
        read_success_body(text.as_bytes(), &mut record());
        read_error_body(code, &bytes, &mut record());
        read_error_body(code, text.as_bytes(), &mut record());
    }
}
