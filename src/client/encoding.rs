//! `Content-Encoding` of an answer: gzip and deflate bodies decoded as they arrive, whatever the
//! request asked for (some servers and proxies compress SSE although no `Accept-Encoding` was sent).

use flate2::write::{GzDecoder, ZlibDecoder};
use http::HeaderMap;
use http::header::CONTENT_ENCODING;
use std::io::Write;

/// Undoes an answer's `Content-Encoding`, chunk by chunk (flate2's streaming decoders).
pub(super) enum Decoder {
    Identity,
    Gzip(Box<GzDecoder<Vec<u8>>>, usize),
    Deflate(Box<ZlibDecoder<Vec<u8>>>, usize),
}

/// Why an answer's body could not be decoded: the record's kind and message.
pub(super) type DecodeError = (&'static str, String);

impl Decoder {
    /// The decoder `headers` call for; an encoding llmvolley cannot decode is an error naming it.
    pub(super) fn of(headers: &HeaderMap) -> Result<Decoder, DecodeError> {
        let Some(value) = headers.get(CONTENT_ENCODING) else {
            return Ok(Decoder::Identity);
        };
        let value = String::from_utf8_lossy(value.as_bytes())
            .trim()
            .to_ascii_lowercase();
        match value.as_str() {
            "" | "identity" => Ok(Decoder::Identity),
            "gzip" | "x-gzip" => Ok(Decoder::Gzip(Box::new(GzDecoder::new(Vec::new())), 0)),
            "deflate" => Ok(Decoder::Deflate(Box::new(ZlibDecoder::new(Vec::new())), 0)),
            other => Err((
                "content_encoding",
                format!(
                    "the answer is Content-Encoding {other:?}, which llmvolley does not decode (it sends no Accept-Encoding; gzip and deflate are decoded)"
                ),
            )),
        }
    }

    /// The encoding's name for a note, or None for identity.
    pub(super) fn name(&self) -> Option<&'static str> {
        match self {
            Decoder::Identity => None,
            Decoder::Gzip(..) => Some("gzip"),
            Decoder::Deflate(..) => Some("deflate"),
        }
    }

    /// The decoded bytes of `bytes` (which may end mid-block: the rest comes with the next), fed
    /// to the decoder a slice at a time so that no more than `limit` decoded bytes in all are ever
    /// held: a small compressed chunk can expand a thousandfold.
    pub(super) fn decode(
        &mut self,
        bytes: bytes::Bytes,
        limit: usize,
    ) -> Result<bytes::Bytes, DecodeError> {
        fn run<W: Write>(
            decoder: &mut W,
            out: impl Fn(&mut W) -> Vec<u8>,
            total: &mut usize,
            bytes: &[u8],
            limit: usize,
            name: &str,
        ) -> Result<bytes::Bytes, DecodeError> {
            const SLICE: usize = 1024;
            let mut decoded = Vec::new();
            for slice in bytes.chunks(SLICE) {
                decoder
                    .write_all(slice)
                    .and_then(|()| decoder.flush())
                    .map_err(|e| {
                        (
                            "bad_encoding",
                            format!("the {name} body does not decode: {e}"),
                        )
                    })?;
                let more = out(decoder);
                *total += more.len();
                if *total > limit {
                    return Err((
                        "answer_too_large",
                        format!(
                            "the {name} answer decodes to more than {limit} bytes (--max-answer-bytes): it was cut there and its connection dropped"
                        ),
                    ));
                }
                decoded.extend_from_slice(&more);
            }
            Ok(decoded.into())
        }
        match self {
            Decoder::Identity => Ok(bytes),
            Decoder::Gzip(d, total) => run(
                d.as_mut(),
                |d| std::mem::take(d.get_mut()),
                total,
                &bytes,
                limit,
                "gzip",
            ),
            Decoder::Deflate(d, total) => run(
                d.as_mut(),
                |d| std::mem::take(d.get_mut()),
                total,
                &bytes,
                limit,
                "deflate",
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::Compression;
    use flate2::write::GzEncoder;

    #[test]
    fn a_gzip_body_split_anywhere_decodes_to_the_same_bytes() {
        let text = b"data: {\"x\":1}\n\n".repeat(200);
        let mut encoder = GzEncoder::new(Vec::new(), Compression::default());
        encoder.write_all(&text).unwrap();
        let gz = encoder.finish().unwrap();
        for split in [1, 7, 100, gz.len()] {
            let mut headers = HeaderMap::new();
            headers.insert(CONTENT_ENCODING, "gzip".parse().unwrap());
            let mut decoder = Decoder::of(&headers).unwrap();
            let mut out = Vec::new();
            for part in gz.chunks(split) {
                out.extend_from_slice(
                    &decoder
                        .decode(bytes::Bytes::copy_from_slice(part), usize::MAX)
                        .unwrap(),
                );
            }
            assert_eq!(out, text, "split {split}");
        }
    }

    #[test]
    fn an_unknown_encoding_is_named() {
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_ENCODING, "br".parse().unwrap());
        let Err((kind, message)) = Decoder::of(&headers) else {
            panic!("br is refused")
        };
        assert_eq!(kind, "content_encoding");
        assert!(message.contains("\"br\""), "{message}");
    }
}

#[cfg(test)]
mod bomb {
    use super::*;
    use flate2::Compression;
    use flate2::write::GzEncoder;

    #[test]
    fn a_compression_bomb_is_stopped_at_the_limit_not_after_inflating() {
        let mut encoder = GzEncoder::new(Vec::new(), Compression::best());
        encoder.write_all(&vec![b' '; 64 << 20]).unwrap();
        let gz = encoder.finish().unwrap();
        assert!(gz.len() < 1 << 20, "{} bytes compressed", gz.len());
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_ENCODING, "gzip".parse().unwrap());
        let mut decoder = Decoder::of(&headers).unwrap();
        let Err((kind, _)) = decoder.decode(bytes::Bytes::from(gz), 1 << 20) else {
            panic!("64 MiB decoded past a 1 MiB limit")
        };
        assert_eq!(kind, "answer_too_large");
    }
}
