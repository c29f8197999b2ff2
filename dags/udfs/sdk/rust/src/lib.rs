//! trace_udf: the Rust SDK for Trace UDFs (protocol "trace-udf/1").
//!
//! Standard library only, so it builds offline.  A UDF is a binary whose
//! main calls [`run`]:
//!
//! ```no_run
//! use trace_udf::{run, Json, UdfError};
//! fn main() {
//!     run(|task, out| {
//!         out.row("demo.rows", "p1", Json::object([("a", Json::from(1))]));
//!         out.event("demo.rows", "p1", Json::empty_object());
//!         Ok(Json::object([("rows", Json::from(1))]))
//!     })
//! }
//! ```
//!
//! Return `Err(UdfError::Retryable(..))` to fail the attempt with a retry,
//! `Err(UdfError::Fatal(..))` to fail it for good; a panic fails it too.
//! Rows and events are written by the worker only when the UDF returns Ok.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{self, BufRead, BufWriter, Write};

pub const PROTOCOL: &str = "trace-udf/1";

/// A JSON value.  Numbers keep their text, so 256-bit integers survive.
#[derive(Clone, Debug, PartialEq)]
pub enum Json {
    Null,
    Bool(bool),
    Number(String),
    String(String),
    Array(Vec<Json>),
    Object(BTreeMap<String, Json>),
}

impl Json {
    pub fn object<K: Into<String>, I: IntoIterator<Item = (K, Json)>>(items: I) -> Json {
        Json::Object(items.into_iter().map(|(k, v)| (k.into(), v)).collect())
    }
    pub fn empty_object() -> Json {
        Json::Object(BTreeMap::new())
    }
    pub fn get(&self, key: &str) -> Option<&Json> {
        match self {
            Json::Object(m) => m.get(key),
            _ => None,
        }
    }
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Json::String(s) => Some(s),
            _ => None,
        }
    }
    pub fn as_array(&self) -> Option<&Vec<Json>> {
        match self {
            Json::Array(a) => Some(a),
            _ => None,
        }
    }
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Json::Number(n) => n.parse().ok(),
            _ => None,
        }
    }
    /// A non-negative integer given as a number or a decimal/0x string.
    pub fn as_u128(&self) -> Option<u128> {
        let s = match self {
            Json::Number(n) | Json::String(n) => n.as_str(),
            _ => return None,
        };
        match s.strip_prefix("0x") {
            Some(hex) => u128::from_str_radix(hex, 16).ok(),
            None => s.parse().ok(),
        }
    }
    /// Serializes compactly (ASCII only: non-ASCII is \u-escaped).
    pub fn to_json(&self) -> String {
        let mut s = String::new();
        self.write(&mut s);
        s
    }
    fn write(&self, out: &mut String) {
        match self {
            Json::Null => out.push_str("null"),
            Json::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            Json::Number(n) => out.push_str(n),
            Json::String(s) => write_string(out, s),
            Json::Array(a) => {
                out.push('[');
                for (i, v) in a.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    v.write(out);
                }
                out.push(']');
            }
            Json::Object(m) => {
                out.push('{');
                for (i, (k, v)) in m.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    write_string(out, k);
                    out.push(':');
                    v.write(out);
                }
                out.push('}');
            }
        }
    }
    /// Parses one JSON document.
    pub fn parse(text: &str) -> Result<Json, String> {
        let mut p = Parser { s: text.as_bytes(), i: 0, depth: 0 };
        let v = p.value()?;
        p.ws();
        if p.i != p.s.len() {
            return Err(format!("trailing characters at byte {}", p.i));
        }
        Ok(v)
    }
}

impl From<&str> for Json {
    fn from(s: &str) -> Json {
        Json::String(s.to_string())
    }
}
impl From<String> for Json {
    fn from(s: String) -> Json {
        Json::String(s)
    }
}
impl From<bool> for Json {
    fn from(b: bool) -> Json {
        Json::Bool(b)
    }
}
macro_rules! from_int {
    ($($t:ty),*) => { $(impl From<$t> for Json { fn from(n: $t) -> Json { Json::Number(n.to_string()) } })* };
}
from_int!(i32, i64, u32, u64, usize);
impl From<Vec<Json>> for Json {
    fn from(v: Vec<Json>) -> Json {
        Json::Array(v)
    }
}

fn write_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 || (c as u32) > 0x7e => {
                let mut buf = [0u16; 2];
                for unit in c.encode_utf16(&mut buf) {
                    let _ = write!(out, "\\u{:04x}", unit);
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
    depth: usize,
}

impl<'a> Parser<'a> {
    fn ws(&mut self) {
        while self.i < self.s.len() && matches!(self.s[self.i], b' ' | b'\t' | b'\n' | b'\r') {
            self.i += 1;
        }
    }
    fn err<T>(&self, what: &str) -> Result<T, String> {
        Err(format!("{} at byte {}", what, self.i))
    }
    fn lit(&mut self, word: &str, v: Json) -> Result<Json, String> {
        if self.s[self.i..].starts_with(word.as_bytes()) {
            self.i += word.len();
            Ok(v)
        } else {
            self.err("invalid literal")
        }
    }
    fn value(&mut self) -> Result<Json, String> {
        self.ws();
        if self.i >= self.s.len() {
            return self.err("unexpected end");
        }
        match self.s[self.i] {
            b'n' => self.lit("null", Json::Null),
            b't' => self.lit("true", Json::Bool(true)),
            b'f' => self.lit("false", Json::Bool(false)),
            b'"' => Ok(Json::String(self.string()?)),
            b'[' => {
                self.nest()?;
                self.i += 1;
                let mut a = Vec::new();
                self.ws();
                if self.s.get(self.i) == Some(&b']') {
                    self.i += 1;
                    self.depth -= 1;
                    return Ok(Json::Array(a));
                }
                loop {
                    a.push(self.value()?);
                    self.ws();
                    match self.s.get(self.i) {
                        Some(b',') => self.i += 1,
                        Some(b']') => {
                            self.i += 1;
                            self.depth -= 1;
                            return Ok(Json::Array(a));
                        }
                        _ => return self.err("expected , or ]"),
                    }
                }
            }
            b'{' => {
                self.nest()?;
                self.i += 1;
                let mut m = BTreeMap::new();
                self.ws();
                if self.s.get(self.i) == Some(&b'}') {
                    self.i += 1;
                    self.depth -= 1;
                    return Ok(Json::Object(m));
                }
                loop {
                    self.ws();
                    if self.s.get(self.i) != Some(&b'"') {
                        return self.err("expected a key");
                    }
                    let k = self.string()?;
                    self.ws();
                    if self.s.get(self.i) != Some(&b':') {
                        return self.err("expected :");
                    }
                    self.i += 1;
                    let v = self.value()?;
                    m.insert(k, v);
                    self.ws();
                    match self.s.get(self.i) {
                        Some(b',') => self.i += 1,
                        Some(b'}') => {
                            self.i += 1;
                            self.depth -= 1;
                            return Ok(Json::Object(m));
                        }
                        _ => return self.err("expected , or }"),
                    }
                }
            }
            b'-' | b'0'..=b'9' => {
                let start = self.i;
                self.i += 1;
                while self.i < self.s.len()
                    && matches!(self.s[self.i], b'0'..=b'9' | b'.' | b'e' | b'E' | b'+' | b'-')
                {
                    self.i += 1;
                }
                Ok(Json::Number(String::from_utf8_lossy(&self.s[start..self.i]).into_owned()))
            }
            _ => self.err("unexpected character"),
        }
    }
    fn nest(&mut self) -> Result<(), String> {
        self.depth += 1;
        if self.depth > 512 {
            return self.err("nesting too deep");
        }
        Ok(())
    }
    fn hex4(&mut self) -> Result<u32, String> {
        let h = self.s.get(self.i..self.i + 4).ok_or("short \\u escape")?;
        let v = u32::from_str_radix(std::str::from_utf8(h).map_err(|e| e.to_string())?, 16)
            .map_err(|e| e.to_string())?;
        self.i += 4;
        Ok(v)
    }
    fn string(&mut self) -> Result<String, String> {
        self.i += 1;
        let mut out = String::new();
        loop {
            let start = self.i;
            while self.i < self.s.len() && self.s[self.i] != b'"' && self.s[self.i] != b'\\' {
                self.i += 1;
            }
            out.push_str(std::str::from_utf8(&self.s[start..self.i]).map_err(|e| e.to_string())?);
            match self.s.get(self.i) {
                Some(b'"') => {
                    self.i += 1;
                    return Ok(out);
                }
                Some(b'\\') => {
                    self.i += 1;
                    let c = *self.s.get(self.i).ok_or("unterminated escape")?;
                    self.i += 1;
                    match c {
                        b'"' => out.push('"'),
                        b'\\' => out.push('\\'),
                        b'/' => out.push('/'),
                        b'b' => out.push('\u{8}'),
                        b'f' => out.push('\u{c}'),
                        b'n' => out.push('\n'),
                        b'r' => out.push('\r'),
                        b't' => out.push('\t'),
                        b'u' => {
                            let mut cp = self.hex4()?;
                            if (0xd800..0xdc00).contains(&cp) && self.s[self.i..].starts_with(b"\\u") {
                                self.i += 2;
                                let lo = self.hex4()?;
                                cp = 0x10000 + ((cp - 0xd800) << 10) + (lo.wrapping_sub(0xdc00) & 0x3ff);
                            }
                            out.push(char::from_u32(cp).ok_or("invalid \\u escape")?);
                        }
                        _ => return self.err("invalid escape"),
                    }
                }
                _ => return self.err("unterminated string"),
            }
        }
    }
}

/// The task as the worker sends it.
#[derive(Debug)]
pub struct Task {
    pub task_id: Json,
    pub attempt: Json,
    pub mode: String,
    pub payload: Json,
    pub config: Json,
    pub inputs: Json,
    /// The job's output dataset ids (an array) when the worker knows them.
    pub outputs: Json,
    /// The input event that made this task, if any.
    pub event: Json,
    pub raw: Json,
}

/// Why an attempt failed.
#[derive(Debug)]
pub enum UdfError {
    Retryable(String),
    Fatal(String),
}

/// Writes protocol lines to stdout (buffered; flushed at the end).
pub struct Output {
    w: BufWriter<io::Stdout>,
}

impl Output {
    fn line(&mut self, j: Json) {
        let mut s = j.to_json();
        s.push('\n');
        // A closed stdout means the worker gave up on us: nothing to do.
        let _ = self.w.write_all(s.as_bytes());
    }
    pub fn row(&mut self, dataset: &str, partition_key: &str, row: Json) {
        self.line(Json::object([
            ("type", Json::from("row")),
            ("dataset", Json::from(dataset)),
            ("partition_key", Json::from(partition_key)),
            ("row", row),
        ]));
    }
    pub fn event(&mut self, dataset: &str, partition_key: &str, payload: Json) {
        self.line(Json::object([
            ("type", Json::from("event")),
            ("dataset", Json::from(dataset)),
            ("partition_key", Json::from(partition_key)),
            ("payload", payload),
        ]));
    }
    pub fn log(&mut self, level: &str, message: &str) {
        self.line(Json::object([
            ("type", Json::from("log")),
            ("level", Json::from(level)),
            ("message", Json::from(message)),
        ]));
    }
}

/// Reads and checks the task line.
pub fn read_task() -> Result<Task, UdfError> {
    let mut first = String::new();
    io::stdin().lock().read_line(&mut first).map_err(|e| UdfError::Fatal(e.to_string()))?;
    let doc = Json::parse(first.trim_end()).map_err(|e| UdfError::Fatal(format!("bad task line: {e}")))?;
    if doc.get("type").and_then(Json::as_str) != Some("task")
        || doc.get("protocol").and_then(Json::as_str) != Some(PROTOCOL)
    {
        return Err(UdfError::Fatal(format!("unsupported protocol (this SDK speaks {PROTOCOL})")));
    }
    let t = doc.get("task").cloned().unwrap_or(Json::Null);
    let field = |k: &str| t.get(k).cloned().unwrap_or(Json::Null);
    Ok(Task {
        task_id: field("task_id"),
        attempt: field("attempt"),
        mode: field("mode").as_str().unwrap_or("").to_string(),
        payload: field("payload"),
        config: field("config"),
        inputs: field("inputs"),
        outputs: field("outputs"),
        event: field("event"),
        raw: t.clone(),
    })
}

/// Runs the handler and writes the result line; exits 0.
pub fn run<F>(handle: F) -> !
where
    F: FnOnce(&Task, &mut Output) -> Result<Json, UdfError> + std::panic::UnwindSafe,
{
    let mut out = Output { w: BufWriter::new(io::stdout()) };
    let outcome = match read_task() {
        Err(e) => Err(e),
        Ok(task) => {
            let mut out2 = Output { w: BufWriter::new(io::stdout()) };
            let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| handle(&task, &mut out2)));
            let _ = out2.w.flush();
            match r {
                Ok(r) => r,
                Err(p) => {
                    let msg = p
                        .downcast_ref::<&str>()
                        .map(|s| s.to_string())
                        .or_else(|| p.downcast_ref::<String>().cloned())
                        .unwrap_or_else(|| "panic".to_string());
                    Err(UdfError::Retryable(format!("panic: {msg}")))
                }
            }
        }
    };
    let line = match outcome {
        Ok(result) => Json::object([("type", Json::from("result")), ("ok", Json::from(true)), ("result", result)]),
        Err(UdfError::Retryable(e)) => Json::object([
            ("type", Json::from("result")),
            ("ok", Json::from(false)),
            ("error", Json::from(e)),
            ("retryable", Json::from(true)),
        ]),
        Err(UdfError::Fatal(e)) => Json::object([
            ("type", Json::from("result")),
            ("ok", Json::from(false)),
            ("error", Json::from(e)),
            ("retryable", Json::from(false)),
        ]),
    };
    out.line(line);
    let _ = out.w.flush();
    std::process::exit(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let text = r#"{"a":[1,2.5,"x\u00e9\n",true,null],"b":{"c":"0xff"}}"#;
        let v = Json::parse(text).unwrap();
        assert_eq!(v.get("b").unwrap().get("c").unwrap().as_u128(), Some(255));
        assert_eq!(Json::parse(&v.to_json()).unwrap(), v);
        assert!(Json::parse("[1,").is_err());
        assert!(Json::parse("{} x").is_err());
    }
}
