//! The language server's wire: JSON-RPC messages framed by `Content-Length`
//! headers (LSP's base protocol), read so that nothing a client sends ends the
//! server. A frame that is not a message is answered with JSON-RPC's error
//! (-32700 for what does not parse, -32600 for what is not a request, a
//! notification or a response) and reading goes on; after a frame whose length
//! is missing, unreadable or over `MAX_FRAME`, at the next `Content-Length`.

use std::io::{self, BufRead, Read, Write};

use lsp_server::Message;
use serde_json::{json, Value};

/// The longest message read: far above any real one (a 10,000-service file
/// is a few megabytes), so that a length of 99999999999999 cannot take the
/// machine's memory. A body is read as it arrives, never allocated ahead.
pub const MAX_FRAME: usize = 256 << 20;

/// The longest header line: a real one is some twenty bytes.
const MAX_HEADER_LINE: usize = 1024;

/// JSON-RPC's codes for what is not a message.
pub const PARSE_ERROR: i32 = -32700;
pub const INVALID_REQUEST: i32 = -32600;

/// What a frame held.
#[derive(Debug)]
pub enum Incoming {
    Message(Message),
    /// Not a message: the error to answer, with the request's id when one
    /// was readable (else `null`).
    Invalid {
        id: Value,
        code: i32,
        message: String,
    },
}

impl Incoming {
    fn invalid(id: Value, code: i32, message: impl Into<String>) -> Incoming {
        Incoming::Invalid {
            id,
            code,
            message: message.into(),
        }
    }
}

/// Reads frames from `input`.
pub struct Reader<R> {
    input: R,
    /// After a frame whose length could not be used: skip to the next
    /// `Content-Length`.
    lost: bool,
    /// The next header line comes after a `Content-Length:` that skipping
    /// consumed.
    resumed: bool,
}

impl<R: BufRead> Reader<R> {
    pub fn new(input: R) -> Reader<R> {
        Reader {
            input,
            lost: false,
            resumed: false,
        }
    }

    /// The next frame, or `None` at the end of the input.
    pub fn read(&mut self) -> io::Result<Option<Incoming>> {
        if std::mem::take(&mut self.lost) && !self.skip_to_header()? {
            return Ok(None);
        }
        let Some(length) = self.frame_length()? else {
            return Ok(None);
        };
        let length = match length {
            Ok(n) if n <= MAX_FRAME => n,
            Ok(n) => {
                self.lost = true;
                let why = format!("a message of {n} bytes is over the limit of {MAX_FRAME}");
                return Ok(Some(Incoming::invalid(Value::Null, INVALID_REQUEST, why)));
            }
            Err(why) => {
                self.lost = true;
                return Ok(Some(Incoming::invalid(Value::Null, PARSE_ERROR, why)));
            }
        };
        let mut body = Vec::new();
        (&mut self.input)
            .take(length as u64)
            .read_to_end(&mut body)?;
        if body.len() < length {
            return Ok(None);
        }
        Ok(Some(decode(&body)))
    }

    /// A frame's headers, read to their empty line: the body's length, or why
    /// there is none to use. `None` at the end of the input.
    fn frame_length(&mut self) -> io::Result<Option<Result<usize, String>>> {
        let mut length = None;
        let mut problem = None;
        let mut any = false;
        loop {
            let Some(mut line) = self.header_line()? else {
                return Ok(None);
            };
            if std::mem::take(&mut self.resumed) {
                line = match line {
                    HeaderLine::Text(rest) => HeaderLine::Text(format!("Content-Length:{rest}")),
                    HeaderLine::End => HeaderLine::Text("Content-Length:".into()),
                    HeaderLine::TooLong => HeaderLine::TooLong,
                };
            }
            let text = match line {
                HeaderLine::End if any => break,
                // Blank lines between frames.
                HeaderLine::End => continue,
                HeaderLine::TooLong => {
                    problem = Some(format!("a header line is over {MAX_HEADER_LINE} bytes"));
                    any = true;
                    continue;
                }
                HeaderLine::Text(text) => text,
            };
            any = true;
            match text.split_once(':') {
                Some((name, value)) if name.trim().eq_ignore_ascii_case("content-length") => {
                    let value = value.trim();
                    length = Some(value.parse::<usize>().map_err(|_| {
                        format!("the Content-Length `{value}` is not a number of bytes")
                    }));
                }
                Some(_) => {}
                None => problem = Some(format!("`{text}` is not a header")),
            }
        }
        Ok(Some(match (problem, length) {
            (Some(why), _) => Err(why),
            (None, None) => Err("a message without a Content-Length header".to_string()),
            (None, Some(length)) => length,
        }))
    }

    /// One header line without its line break, `End` for the empty line,
    /// `None` at the end of the input.
    fn header_line(&mut self) -> io::Result<Option<HeaderLine>> {
        let mut line = Vec::new();
        let mut too_long = false;
        loop {
            let buf = self.input.fill_buf()?;
            if buf.is_empty() {
                return Ok(None);
            }
            let (used, done) = match buf.iter().position(|&b| b == b'\n') {
                Some(i) => (i + 1, true),
                None => (buf.len(), false),
            };
            if line.len() + used <= MAX_HEADER_LINE {
                line.extend_from_slice(&buf[..used]);
            } else {
                too_long = true;
            }
            self.input.consume(used);
            if done {
                break;
            }
        }
        if too_long {
            return Ok(Some(HeaderLine::TooLong));
        }
        let text = String::from_utf8_lossy(&line);
        let text = text.trim_end_matches(['\r', '\n']);
        Ok(Some(if text.is_empty() {
            HeaderLine::End
        } else {
            HeaderLine::Text(text.to_string())
        }))
    }

    /// Reads through the next `Content-Length:` (any case), keeping only
    /// the bytes of a mark begun, never a whole line (a body without line
    /// breaks may be gigabytes); `resumed` tells `read` the name was there.
    /// False at the end of the input.
    fn skip_to_header(&mut self) -> io::Result<bool> {
        const MARK: &[u8] = b"content-length:";
        // The bytes of a mark begun at the end of the last buffer.
        let mut matched = 0;
        loop {
            let buf = self.input.fill_buf()?;
            if buf.is_empty() {
                return Ok(false);
            }
            let mut i = 0;
            while i < buf.len() {
                if buf[i].eq_ignore_ascii_case(&MARK[matched]) {
                    matched += 1;
                    if matched == MARK.len() {
                        // Consumed with the mark (which may have begun in an
                        // earlier buffer): `read` puts the name back.
                        self.input.consume(i + 1);
                        self.resumed = true;
                        return Ok(true);
                    }
                } else {
                    matched = usize::from(buf[i].eq_ignore_ascii_case(&MARK[0]));
                }
                i += 1;
            }
            let n = buf.len();
            self.input.consume(n);
        }
    }
}

enum HeaderLine {
    End,
    Text(String),
    TooLong,
}

/// A frame's body as a message, or the error that answers it.
fn decode(body: &[u8]) -> Incoming {
    let text = match std::str::from_utf8(body) {
        Ok(text) => text,
        Err(e) => {
            let why = format!("the message is not UTF-8 (at byte {})", e.valid_up_to());
            return Incoming::invalid(Value::Null, PARSE_ERROR, why);
        }
    };
    let value: Value = match serde_json::from_str(text) {
        Ok(v) => v,
        Err(e) => {
            return Incoming::invalid(Value::Null, PARSE_ERROR, format!("not JSON: {e}"));
        }
    };
    let Some(object) = value.as_object() else {
        return Incoming::invalid(
            Value::Null,
            INVALID_REQUEST,
            "a message is a JSON object (batches are not part of LSP)",
        );
    };
    let has_method = object.contains_key("method");
    let is_response = object.contains_key("id")
        && (object.contains_key("result") || object.contains_key("error"));
    if !(has_method || is_response) {
        return Incoming::invalid(
            object.get("id").cloned().unwrap_or(Value::Null),
            INVALID_REQUEST,
            "neither a request, a notification nor a response (no `method`)",
        );
    }
    // By its members, not by the first shape that fits: an id the server
    // cannot take must not make a request a notification.
    let id = object.get("id").cloned();
    let message = match (has_method, id.is_some()) {
        (true, true) => serde_json::from_value(value).map(Message::Request),
        (true, false) => serde_json::from_value(value).map(Message::Notification),
        _ => serde_json::from_value(value).map(Message::Response),
    };
    message.map_or_else(
        |e| {
            Incoming::invalid(
                id.unwrap_or(Value::Null),
                INVALID_REQUEST,
                format!("not a valid message: {e}"),
            )
        },
        Incoming::Message,
    )
}

/// Writes one message, framed, and flushes it.
pub fn write(out: &mut impl Write, message: &Value) -> io::Result<()> {
    let body = message.to_string();
    write!(out, "Content-Length: {}\r\n\r\n{body}", body.len())?;
    out.flush()
}

/// The error response to a frame that is not a message.
pub fn error_response(id: Value, code: i32, message: &str) -> Value {
    json!({ "jsonrpc": "2.0", "id": id, "error": { "code": code, "message": message } })
}
