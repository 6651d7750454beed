//! The credentials the client sends (the API key, `Authorization`, URL credentials, secret `-H`
//! headers), so that a server echoing one back never gets it written: every text a record carries
//! from the answer is scrubbed of them before anything is logged, stored or printed.

use crate::record::{Record, SavedBody};
use std::sync::Arc;

/// What replaces a secret wherever it would be written.
pub const REDACTED: &str = "<redacted>";

/// Values shorter than this are not scrubbed: they would match ordinary text.
const SHORTEST: usize = 8;

/// The secret values, longest first (a Bearer header before the key inside it).
#[derive(Debug, Default, Clone)]
pub struct Secrets(Arc<[Vec<u8>]>);

impl Secrets {
    /// From the values sent as credentials (duplicates and short values dropped).
    pub fn new<I, S>(values: I) -> Secrets
    where
        I: IntoIterator<Item = S>,
        S: AsRef<[u8]>,
    {
        let mut values: Vec<Vec<u8>> = values
            .into_iter()
            .map(|v| v.as_ref().trim_ascii().to_vec())
            .filter(|v| v.len() >= SHORTEST)
            .collect();
        values.sort_by_key(|v| std::cmp::Reverse(v.len()));
        values.dedup();
        Secrets(values.into())
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// `text` with every secret replaced by `<redacted>`; untouched (no allocation) when it holds none.
    pub fn scrub(&self, text: &mut String) {
        if self.0.is_empty() {
            return;
        }
        for secret in self.0.iter() {
            if memchr::memmem::find(text.as_bytes(), secret).is_none() {
                continue;
            }
            // Secrets are header values: ASCII, so the text stays UTF-8 around them.
            let Ok(secret) = std::str::from_utf8(secret) else {
                continue;
            };
            *text = text.replace(secret, REDACTED);
        }
    }

    /// Every text of `record` that came from the server (or could echo what was sent).
    pub fn scrub_record(&self, record: &mut Record) {
        if self.0.is_empty() {
            return;
        }
        if let Some(error) = &mut record.error {
            self.scrub(&mut error.kind);
            self.scrub(&mut error.message);
        }
        for text in [
            &mut record.output_text,
            &mut record.refusal,
            &mut record.model,
            &mut record.response_id,
            &mut record.previous_response_id,
            &mut record.request_id,
            &mut record.finish,
            &mut record.incomplete_reason,
            &mut record.service_tier,
        ]
        .into_iter()
        .flatten()
        {
            self.scrub(text);
        }
        for text in record
            .notes
            .iter_mut()
            .chain(record.attempt_errors.iter_mut())
        {
            self.scrub(text);
        }
        for call in &mut record.tool_calls {
            self.scrub(&mut call.name);
            self.scrub(&mut call.call_id);
            self.scrub(&mut call.arguments);
        }
        match &mut record.response {
            Some(SavedBody::Text(text)) => self.scrub(text),
            Some(SavedBody::Json(raw)) if self.found_in(raw.get()) => {
                let mut text = raw.get().to_string();
                let before = text.len();
                self.scrub(&mut text);
                if text.len() != before
                    && let Ok(scrubbed) = serde_json::value::RawValue::from_string(text)
                {
                    *raw = scrubbed;
                }
            }
            Some(SavedBody::Json(_)) | None => {}
        }
    }

    /// Whether `text` holds any secret (no copy).
    fn found_in(&self, text: &str) -> bool {
        self.0
            .iter()
            .any(|secret| memchr::memmem::find(text.as_bytes(), secret).is_some())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::Status;

    #[test]
    fn an_echoed_key_is_redacted_everywhere_a_record_carries_text() {
        let secrets = Secrets::new(["Bearer sk-test-1234567890", "sk-test-1234567890", "short"]);
        let mut r = Record::empty("1".into(), 1, Status::Ok);
        r.fail(
            Status::HttpError,
            "invalid_api_key",
            "HTTP 401: Incorrect API key provided: sk-test-1234567890 (header: Bearer sk-test-1234567890)",
        );
        r.output_text = Some("your key is sk-test-1234567890".into());
        r.notes.push("short stays short".into());
        secrets.scrub_record(&mut r);
        let e = r.error.unwrap();
        assert_eq!(
            e.message,
            "HTTP 401: Incorrect API key provided: <redacted> (header: <redacted>)"
        );
        assert_eq!(r.output_text.as_deref(), Some("your key is <redacted>"));
        assert_eq!(r.notes[0], "short stays short");
    }
}
