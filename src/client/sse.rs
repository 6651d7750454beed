//! Server-Sent Events framing (WHATWG rules), incremental and allocation-free once warm.
//!
//! Hand-written rather than a crate because the hot path needs events parsed straight from the
//! receive buffer into reused storage (the maintained crates allocate Strings per event and field);
//! the property tests below hold it to the spec's split-invariance and never-panic guarantees.

/// One dispatched event: the `event:` name (empty when none) and the joined `data:` lines.
#[derive(Debug, PartialEq, Eq)]
pub struct SseEvent<'a> {
    pub event: &'a str,
    pub data: &'a str,
}

/// The longest line accepted before the stream is declared broken (a hostile or broken server).
pub const MAX_LINE_BYTES: usize = 64 * 1024 * 1024;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SseError {
    LineTooLong,
}

/// Where a field's text is: nowhere yet, a span of the receive buffer (the common single-line case,
/// never copied), or the owned string (several `data:` lines, or a field kept across a `push`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum Text {
    #[default]
    None,
    Span(usize, usize),
    Owned,
}

/// Feed bytes with `push`, then take events with `next_event` until it returns `None`.
#[derive(Default)]
pub struct SseParser {
    buf: Vec<u8>,
    /// Start of the unprocessed bytes in `buf`.
    pos: usize,
    event: Text,
    event_owned: String,
    data: Text,
    data_owned: String,
    /// The previous chunk ended with `\r`: a `\n` starting the next one belongs to it.
    skip_lf: bool,
    started: bool,
    /// The last event returned; its fields are cleared before the next line is read.
    dispatched: bool,
}

impl SseParser {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn push(&mut self, chunk: &[u8]) -> Result<(), SseError> {
        if self.pos == self.buf.len() {
            // Everything was read: nothing to keep, nothing to copy.
            self.own_fields();
            self.buf.clear();
            self.pos = 0;
        } else if self.pos > 0 && self.buf.len() - self.pos <= self.pos {
            // The unread part (an event split across reads) fits at the front: move it there, so
            // the buffer stays the size of one event, not of the stream. Spans would move with the
            // bytes: the fields of the event being read are kept first.
            self.own_fields();
            self.buf.copy_within(self.pos.., 0);
            self.buf.truncate(self.buf.len() - self.pos);
            self.pos = 0;
        }
        self.buf.extend_from_slice(chunk);
        if self.buf.len() - self.pos > MAX_LINE_BYTES
            && memchr::memchr2(b'\n', b'\r', &self.buf[self.pos..]).is_none()
        {
            return Err(SseError::LineTooLong);
        }
        Ok(())
    }

    /// The next complete event, if the bytes pushed so far hold one.
    pub fn next_event(&mut self) -> Option<SseEvent<'_>> {
        if self.dispatched {
            self.dispatched = false;
            self.event = Text::None;
            self.data = Text::None;
        }
        loop {
            if self.skip_lf && self.pos < self.buf.len() {
                if self.buf[self.pos] == b'\n' {
                    self.pos += 1;
                }
                self.skip_lf = false;
            }
            if !self.started {
                if self.buf.len() - self.pos < 3
                    && b"\xEF\xBB\xBF".starts_with(&self.buf[self.pos..])
                {
                    return None;
                }
                if self.buf[self.pos..].starts_with(b"\xEF\xBB\xBF") {
                    self.pos += 3;
                }
                self.started = true;
            }
            let rest = &self.buf[self.pos..];
            let end = memchr::memchr2(b'\n', b'\r', rest)?;
            let line_start = self.pos;
            let line_end = line_start + end;
            self.pos = line_end + 1;
            if self.buf[line_end] == b'\r' {
                self.skip_lf = true;
            }
            if line_end == line_start {
                if self.data != Text::None {
                    return Some(self.dispatch());
                }
                self.event = Text::None;
                continue;
            }
            self.field(line_start, line_end);
        }
    }

    /// At end of stream: an event whose closing blank line never came. The spec drops it; we return
    /// it so that a server omitting the last blank line still has its final event read.
    pub fn finish(&mut self) -> Option<SseEvent<'_>> {
        if self.dispatched {
            return None;
        }
        let (start, end) = (self.pos, self.buf.len());
        if start < end {
            self.field(start, end);
            self.pos = end;
        }
        if self.data != Text::None {
            return Some(self.dispatch());
        }
        None
    }

    fn dispatch(&mut self) -> SseEvent<'_> {
        self.dispatched = true;
        // One UTF-8 check per field: valid text is borrowed in place, invalid is replaced (owned).
        SseEvent {
            event: resolve(&self.buf, self.event, &mut self.event_owned),
            data: resolve(&self.buf, self.data, &mut self.data_owned),
        }
    }

    fn own_fields(&mut self) {
        for (text, owned) in [
            (&mut self.event, &mut self.event_owned),
            (&mut self.data, &mut self.data_owned),
        ] {
            if let Text::Span(a, b) = *text {
                owned.clear();
                owned.push_str(&String::from_utf8_lossy(&self.buf[a..b]));
                *text = Text::Owned;
            }
        }
    }

    fn field(&mut self, start: usize, end: usize) {
        let line = &self.buf[start..end];
        if line[0] == b':' {
            return;
        }
        let (name_end, value_start) = match memchr::memchr(b':', line) {
            Some(colon) if line.get(colon + 1) == Some(&b' ') => (colon, colon + 2),
            Some(colon) => (colon, colon + 1),
            None => (line.len(), line.len()),
        };
        let (value_start, value_end) = (start + value_start, end);
        match &line[..name_end] {
            b"data" => match self.data {
                Text::None => self.data = Text::Span(value_start, value_end),
                Text::Span(a, b) => {
                    self.data_owned.clear();
                    self.data_owned
                        .push_str(&String::from_utf8_lossy(&self.buf[a..b]));
                    self.data_owned.push('\n');
                    self.data_owned
                        .push_str(&String::from_utf8_lossy(&self.buf[value_start..value_end]));
                    self.data = Text::Owned;
                }
                Text::Owned => {
                    self.data_owned.push('\n');
                    self.data_owned
                        .push_str(&String::from_utf8_lossy(&self.buf[value_start..value_end]));
                }
            },
            b"event" => self.event = Text::Span(value_start, value_end),
            _ => {}
        }
    }
}

/// A field's text: a span of the buffer when it is valid UTF-8, else its lossy copy in `owned`.
fn resolve<'a>(buf: &'a [u8], text: Text, owned: &'a mut String) -> &'a str {
    match text {
        Text::None => "",
        Text::Owned => owned,
        Text::Span(a, b) => match std::str::from_utf8(&buf[a..b]) {
            Ok(text) => text,
            Err(_) => {
                owned.clear();
                owned.push_str(&String::from_utf8_lossy(&buf[a..b]));
                owned
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn parse_chunks(chunks: &[&[u8]]) -> Vec<(String, String)> {
        let mut parser = SseParser::new();
        let mut events = Vec::new();
        for chunk in chunks {
            parser.push(chunk).unwrap();
            while let Some(e) = parser.next_event() {
                events.push((e.event.to_string(), e.data.to_string()));
            }
        }
        if let Some(e) = parser.finish() {
            events.push((e.event.to_string(), e.data.to_string()));
        }
        events
    }

    fn ev(event: &str, data: &str) -> (String, String) {
        (event.to_string(), data.to_string())
    }

    #[test]
    fn named_events_and_bare_data_lines() {
        let text = b"event: response.created\ndata: {\"a\":1}\n\ndata: [DONE]\n\n";
        assert_eq!(
            parse_chunks(&[text]),
            vec![ev("response.created", "{\"a\":1}"), ev("", "[DONE]")]
        );
    }

    #[test]
    fn crlf_cr_comments_multiline_data_and_bom() {
        let text = b"\xEF\xBB\xBF: keep-alive\r\nevent:x\r\ndata:a\r\ndata: b\r\rdata:c\n\n";
        assert_eq!(parse_chunks(&[text]), vec![ev("x", "a\nb"), ev("", "c")]);
    }

    #[test]
    fn split_crlf_is_one_line_ending() {
        assert_eq!(
            parse_chunks(&[b"data: a\r", b"\n\r", b"\n"]),
            vec![ev("", "a")]
        );
    }

    #[test]
    fn event_name_without_data_is_dropped() {
        assert_eq!(
            parse_chunks(&[b"event: ping\n\ndata: x\n\n"]),
            vec![ev("", "x")]
        );
    }

    #[test]
    fn last_event_without_blank_line_is_kept() {
        assert_eq!(
            parse_chunks(&[b"data: a\n\ndata: last"]),
            vec![ev("", "a"), ev("", "last")]
        );
    }

    #[test]
    fn the_buffer_stays_the_size_of_an_event_when_events_arrive_split() {
        let mut parser = SseParser::new();
        let event = format!("event: e\ndata: {}\n\n", "x".repeat(200));
        let bytes = event.as_bytes();
        let mut events = 0;
        for cut in [5, 100, 150, 209, 210] {
            for _ in 0..200 {
                for piece in [&bytes[..cut], &bytes[cut..]] {
                    parser.push(piece).unwrap();
                    while let Some(e) = parser.next_event() {
                        assert_eq!((e.event, e.data.len()), ("e", 200));
                        events += 1;
                    }
                }
            }
        }
        assert_eq!(events, 1000);
        assert!(
            parser.buf.capacity() <= 2 * bytes.len(),
            "{} bytes kept for {}-byte events",
            parser.buf.capacity(),
            bytes.len()
        );
    }

    proptest! {
        #[test]
        fn never_panics_on_arbitrary_bytes_split_anywhere(bytes in proptest::collection::vec(any::<u8>(), 0..512), cuts in proptest::collection::vec(any::<usize>(), 0..8)) {
            let mut points: Vec<usize> = cuts.iter().map(|c| c % (bytes.len() + 1)).collect();
            points.sort_unstable();
            let mut chunks = Vec::new();
            let mut last = 0;
            for p in points {
                chunks.push(&bytes[last..p]);
                last = p;
            }
            chunks.push(&bytes[last..]);
            let _ = parse_chunks(&chunks);
        }

        #[test]
        fn splitting_never_changes_the_events(
            events in proptest::collection::vec(("[a-z.]{0,12}", "[ -~]{0,40}"), 0..6),
            crlf in any::<bool>(),
            cuts in proptest::collection::vec(any::<usize>(), 0..10),
        ) {
            let nl = if crlf { "\r\n" } else { "\n" };
            let mut text = String::new();
            for (name, data) in &events {
                if !name.is_empty() {
                    text.push_str(&format!("event: {name}{nl}"));
                }
                text.push_str(&format!("data: {data}{nl}{nl}"));
            }
            let bytes = text.as_bytes();
            let whole = parse_chunks(&[bytes]);
            let mut points: Vec<usize> = cuts.iter().map(|c| c % (bytes.len() + 1)).collect();
            points.sort_unstable();
            let mut chunks = Vec::new();
            let mut last = 0;
            for p in points {
                chunks.push(&bytes[last..p]);
                last = p;
            }
            chunks.push(&bytes[last..]);
            prop_assert_eq!(&parse_chunks(&chunks), &whole);
            let expected: Vec<(String, String)> = events.iter().map(|(n, d)| (n.clone(), d.clone())).collect();
            prop_assert_eq!(whole, expected);
        }
    }
}
