//! `Content-Encoding` of an answer: gzip and deflate bodies decoded as they arrive, whatever the
//! request asked for (some servers and proxies compress SSE although no `Accept-Encoding` was sent).

use flate2::write::{GzDecoder, ZlibDecoder};
use http::HeaderMap;
use http::header::CONTENT_ENCODING;
use std::io::Write;

/// Decoded bytes an answer may grow to: past it the answer is refused (a compression bomb).
const DECODED_LIMIT: usize = 256 << 20;

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

    /// The decoded bytes of `bytes` (which may end mid-block: the rest comes with the next).
    pub(super) fn decode(&mut self, bytes: bytes::Bytes) -> Result<bytes::Bytes, DecodeError> {
        fn run<W: Write>(
            decoder: &mut W,
            out: impl FnOnce(&mut W) -> Vec<u8>,
            total: &mut usize,
            bytes: &[u8],
            name: &str,
        ) -> Result<bytes::Bytes, DecodeError> {
            decoder
                .write_all(bytes)
                .and_then(|()| decoder.flush())
                .map_err(|e| {
                    (
                        "bad_encoding",
                        format!("the {name} body does not decode: {e}"),
                    )
                })?;
            let decoded = out(decoder);
            *total += decoded.len();
            if *total > DECODED_LIMIT {
                return Err((
                    "decoded_too_large",
                    format!(
                        "the {name} body decodes to more than {} MiB",
                        DECODED_LIMIT >> 20
                    ),
                ));
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
                "gzip",
            ),
            Decoder::Deflate(d, total) => run(
                d.as_mut(),
                |d| std::mem::take(d.get_mut()),
                total,
                &bytes,
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
                    &decoder.decode(bytes::Bytes::copy_from_slice(part)).unwrap(),
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
