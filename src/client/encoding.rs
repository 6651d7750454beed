//! `Content-Encoding` of an answer: gzip and deflate bodies decoded as they arrive, whatever the
//! request asked for (some servers and proxies compress SSE although no `Accept-Encoding` was sent).

use flate2::write::{GzDecoder, ZlibDecoder};
use http::HeaderMap;
use http::header::CONTENT_ENCODING;
use std::io::Write;

/// Undoes an answer's `Content-Encoding`, chunk by chunk (flate2's streaming decoders), and holds
/// the answer to its size cap: every decoded byte, identity included, is counted here.
pub(super) struct Decoder {
    /// The encoding's name and its decoder; None for identity.
    inflate: Option<(&'static str, Box<dyn Inflate>)>,
    /// Decoded bytes so far.
    total: usize,
}

/// A streaming decoder that writes into a buffer of its own.
trait Inflate: Write + Send {
    /// What was decoded since the last call.
    fn drain(&mut self) -> Vec<u8>;
}

impl Inflate for GzDecoder<Vec<u8>> {
    fn drain(&mut self) -> Vec<u8> {
        std::mem::take(self.get_mut())
    }
}

impl Inflate for ZlibDecoder<Vec<u8>> {
    fn drain(&mut self) -> Vec<u8> {
        std::mem::take(self.get_mut())
    }
}

/// Why an answer's body could not be decoded, or was too large: the record's kind and message.
pub(super) type DecodeError = (&'static str, String);

impl Decoder {
    /// The decoder `headers` call for; an encoding llmvolley cannot decode is an error naming it.
    pub(super) fn of(headers: &HeaderMap) -> Result<Decoder, DecodeError> {
        let value = headers.get(CONTENT_ENCODING).map(|v| {
            String::from_utf8_lossy(v.as_bytes())
                .trim()
                .to_ascii_lowercase()
        });
        let inflate: Option<(&'static str, Box<dyn Inflate>)> = match value.as_deref() {
            None | Some("" | "identity") => None,
            Some("gzip" | "x-gzip") => Some(("gzip", Box::new(GzDecoder::new(Vec::new())))),
            Some("deflate") => Some(("deflate", Box::new(ZlibDecoder::new(Vec::new())))),
            Some(other) => {
                return Err((
                    "content_encoding",
                    format!(
                        "the answer is Content-Encoding {other:?}, which llmvolley does not decode (it sends no Accept-Encoding; gzip and deflate are decoded)"
                    ),
                ));
            }
        };
        Ok(Decoder { inflate, total: 0 })
    }

    /// The encoding's name for a note, or None for identity.
    pub(super) fn name(&self) -> Option<&'static str> {
        self.inflate.as_ref().map(|(name, _)| *name)
    }

    /// The decoded bytes of `bytes` (which may end mid-block: the rest comes with the next), or
    /// `answer_too_large` once the answer's decoded bytes pass `limit`. Compressed input is fed a
    /// KiB at a time, so no more than about `limit` decoded bytes are ever held: a small
    /// compressed chunk can expand a thousandfold.
    pub(super) fn decode(
        &mut self,
        bytes: bytes::Bytes,
        limit: usize,
    ) -> Result<bytes::Bytes, DecodeError> {
        const SLICE: usize = 1024;
        let too_large = || {
            (
                "answer_too_large",
                format!(
                    "the answer passed --max-answer-bytes ({limit} bytes, decoded): it was cut there and its connection dropped"
                ),
            )
        };
        let Some((name, inflate)) = &mut self.inflate else {
            self.total += bytes.len();
            return if self.total > limit {
                Err(too_large())
            } else {
                Ok(bytes)
            };
        };
        let mut decoded = Vec::new();
        for slice in bytes.chunks(SLICE) {
            inflate
                .write_all(slice)
                .and_then(|()| inflate.flush())
                .map_err(|e| {
                    (
                        "bad_encoding",
                        format!("the {name} body does not decode: {e}"),
                    )
                })?;
            let more = inflate.drain();
            self.total += more.len();
            if self.total > limit {
                return Err(too_large());
            }
            decoded.extend_from_slice(&more);
        }
        Ok(decoded.into())
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
