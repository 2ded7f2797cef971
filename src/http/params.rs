//! Request parameters the way GitLab (Grape on Rack) sees them: the query string and the body
//! (urlencoded, multipart or JSON) merged into one ordered map, body over query, with Rack's
//! bracket syntax (`variables[KEY]=v`, `scopes[]=api`) turned into nested objects and arrays.

use super::error::ApiError;
use actix_web::HttpRequest;
use actix_web::web::{Bytes, Payload};
use futures_util::StreamExt;
use serde_json::{Map, Value};

/// A parameter whose value has the wrong type (Grape's `is invalid`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Invalid;

/// Merged request parameters, in the order they were first seen.
#[derive(Debug, Default, Clone)]
pub struct Params(pub Map<String, Value>);

impl Params {
    /// Reads the query string and the body (at most `limit` bytes, else 413).
    pub async fn read(req: &HttpRequest, payload: Payload, limit: usize) -> Result<Params, ApiError> {
        let body = read_body(req, payload, limit).await?;
        Params::parse(req, body).await
    }

    /// Parses the query string and an already-read body.
    pub async fn parse(req: &HttpRequest, body: Bytes) -> Result<Params, ApiError> {
        let mut map = Map::new();
        for (k, v) in form_pairs(req.query_string().as_bytes()) {
            insert_bracketed(&mut map, &k, Value::String(v))?;
        }
        if body.is_empty() {
            return Ok(Params(map));
        }
        let content_type = req
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_ascii_lowercase();
        if content_type.starts_with("application/json") {
            match serde_json::from_slice::<Value>(&body) {
                Ok(Value::Object(obj)) => map.extend(obj),
                Ok(_) => return Err(ApiError::bad_request("the JSON body must be an object")),
                Err(_) => return Err(ApiError::bad_request("the body is not valid JSON")),
            }
        } else if content_type.starts_with("multipart/form-data") {
            for (k, v) in multipart_pairs(req, body).await? {
                insert_bracketed(&mut map, &k, Value::String(v))?;
            }
        } else if content_type.starts_with("application/x-www-form-urlencoded") || content_type.is_empty() {
            for (k, v) in form_pairs(&body) {
                insert_bracketed(&mut map, &k, Value::String(v))?;
            }
        }
        Ok(Params(map))
    }

    /// The raw value of `key`.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.0.get(key).filter(|v| !v.is_null())
    }

    /// `key` as a string: strings as they are, numbers and booleans as text; `Err` for objects
    /// and arrays (Grape's `is invalid`).
    pub fn string(&self, key: &str) -> Result<Option<String>, Invalid> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(Value::Number(n)) => Ok(Some(n.to_string())),
            Some(Value::Bool(b)) => Ok(Some(b.to_string())),
            Some(_) => Err(Invalid),
        }
    }

    /// `key` as a boolean (Grape's: `true`/`True`/`1`/`t`/`yes`/`y`/`on` and their opposites),
    /// `Err` if it is something else.
    pub fn boolean(&self, key: &str) -> Result<Option<bool>, Invalid> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(Value::String(s)) => truthy(s).map(Some).ok_or(Invalid),
            Some(Value::Number(n)) => Ok(Some(n.as_i64() != Some(0))),
            Some(_) => Err(Invalid),
        }
    }

    /// `key` as an integer, `Err` if it is not one.
    pub fn integer(&self, key: &str) -> Result<Option<i64>, Invalid> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Number(n)) => n.as_i64().map(Some).ok_or(Invalid),
            Some(Value::String(s)) => s.trim().parse().map(Some).map_err(|_| Invalid),
            Some(_) => Err(Invalid),
        }
    }

    /// `key` as a list of strings (`a[]=x&a[]=y`, a JSON array, or one comma-separated string).
    pub fn string_list(&self, key: &str) -> Result<Option<Vec<String>>, Invalid> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Array(items)) => items
                .iter()
                .map(|v| v.as_str().map(str::to_string).ok_or(Invalid))
                .collect::<Result<Vec<_>, _>>()
                .map(Some),
            Some(Value::String(s)) => Ok(Some(
                s.split(',')
                    .map(|p| p.trim().to_string())
                    .filter(|p| !p.is_empty())
                    .collect(),
            )),
            Some(_) => Err(Invalid),
        }
    }
}

/// Collects Grape-style validation failures and reports them together, in declaration order.
#[derive(Default)]
pub struct Validation(Vec<String>);

impl Validation {
    /// Records `<param> <reason>`.
    pub fn fail(&mut self, param: &str, reason: &str) {
        self.0.push(format!("{param} {reason}"));
    }

    /// `Ok` if nothing failed, else the 400 `{"error": "a is missing, b is invalid"}`.
    pub fn finish(self) -> Result<(), ApiError> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(ApiError::Params(self.0.join(", ")))
        }
    }

    /// A required string parameter.
    pub fn required_string(&mut self, params: &Params, key: &str) -> Option<String> {
        match params.string(key) {
            Ok(Some(s)) => Some(s),
            Ok(None) => {
                self.fail(key, "is missing");
                None
            }
            Err(Invalid) => {
                self.fail(key, "is invalid");
                None
            }
        }
    }

    /// An optional string parameter.
    pub fn optional_string(&mut self, params: &Params, key: &str) -> Option<String> {
        params.string(key).unwrap_or_else(|Invalid| {
            self.fail(key, "is invalid");
            None
        })
    }

    /// An optional boolean parameter.
    pub fn optional_bool(&mut self, params: &Params, key: &str) -> Option<bool> {
        params.boolean(key).unwrap_or_else(|Invalid| {
            self.fail(key, "is invalid");
            None
        })
    }

    /// An optional date or date-time parameter, as milliseconds.
    pub fn optional_datetime(&mut self, params: &Params, key: &str) -> Option<i64> {
        match params.string(key) {
            Ok(None) => None,
            Ok(Some(s)) if s.trim().is_empty() => None,
            Ok(Some(s)) => crate::clock::parse_datetime(&s).or_else(|| {
                self.fail(key, "is invalid");
                None
            }),
            Err(Invalid) => {
                self.fail(key, "is invalid");
                None
            }
        }
    }
}

pub(crate) async fn read_body(req: &HttpRequest, mut payload: Payload, limit: usize) -> Result<Bytes, ApiError> {
    let declared = req
        .headers()
        .get("content-length")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(ApiError::too_large());
    }
    let mut body = actix_web::web::BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|_| ApiError::bad_request("the request body could not be read"))?;
        if body.len() + chunk.len() > limit {
            return Err(ApiError::too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}

/// Runs a body through the urlencoded reader and the bracket-key merger (for fuzzing).
/// A query or form value as Grape's `Boolean` reads it (dry-types' `Params::Bool`, any case):
/// `1 on t true y yes` or `0 off f false n no`; `None` for anything else.
pub fn truthy(value: &str) -> Option<bool> {
    match value.trim().to_ascii_lowercase().as_str() {
        "1" | "on" | "t" | "true" | "y" | "yes" => Some(true),
        "0" | "off" | "f" | "false" | "n" | "no" => Some(false),
        _ => None,
    }
}

#[cfg(test)]
pub(crate) fn merge_form(bytes: &[u8]) -> Map<String, Value> {
    let mut map = Map::new();
    for (k, v) in form_pairs(bytes) {
        let _ = insert_bracketed(&mut map, &k, Value::String(v));
    }
    map
}

pub(crate) fn form_pairs(bytes: &[u8]) -> Vec<(String, String)> {
    serde_urlencoded::from_bytes::<Vec<(String, String)>>(bytes).unwrap_or_default()
}

async fn multipart_pairs(req: &HttpRequest, body: Bytes) -> Result<Vec<(String, String)>, ApiError> {
    let stream = futures_util::stream::once(async move { Ok::<_, actix_web::error::PayloadError>(body) });
    let mut multipart = actix_multipart::Multipart::new(req.headers(), stream);
    let mut pairs = Vec::new();
    while let Some(field) = multipart.next().await {
        let mut field = field.map_err(|_| ApiError::bad_request("the multipart body is malformed"))?;
        let name = field.name().unwrap_or_default().to_string();
        let mut value = Vec::new();
        while let Some(chunk) = field.next().await {
            value.extend_from_slice(&chunk.map_err(|_| ApiError::bad_request("the multipart body is malformed"))?);
        }
        pairs.push((name, String::from_utf8_lossy(&value).into_owned()));
    }
    Ok(pairs)
}

/// Rack's `param_depth_limit`: a key nested deeper is refused.
const MAX_DEPTH: usize = 100;

/// A key nested deeper than [`MAX_DEPTH`] levels.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct TooDeep;

impl From<TooDeep> for ApiError {
    fn from(_: TooDeep) -> ApiError {
        // GitLab's middleware answers Rack's ParamsTooDeepError with a plain 400.
        ApiError::text(actix_web::http::StatusCode::BAD_REQUEST, "Bad Request")
    }
}

/// Inserts `key=value` where `key` may use Rack's bracket syntax.
fn insert_bracketed(map: &mut Map<String, Value>, key: &str, value: Value) -> Result<(), TooDeep> {
    let (head, rest) = match key.find('[') {
        Some(i) if i > 0 && key.ends_with(']') => (&key[..i], &key[i..]),
        _ => {
            map.insert(key.to_string(), value);
            return Ok(());
        }
    };
    let mut parts: Vec<&str> = Vec::new();
    let mut rest = rest;
    while let Some(stripped) = rest.strip_prefix('[') {
        let Some(end) = stripped.find(']') else { break };
        if parts.len() >= MAX_DEPTH {
            return Err(TooDeep);
        }
        parts.push(&stripped[..end]);
        rest = &stripped[end + 1..];
    }
    let slot = map.entry(head.to_string()).or_insert(Value::Null);
    insert_path(slot, &parts, value);
    Ok(())
}

/// Puts `value` at `parts` below `slot`, walking down one level per part (no recursion).
fn insert_path(slot: &mut Value, parts: &[&str], value: Value) {
    let mut slot = slot;
    for (i, part) in parts.iter().enumerate() {
        if part.is_empty() {
            if !slot.is_array() {
                *slot = Value::Array(Vec::new());
            }
            let Value::Array(items) = slot else { return };
            // Rack: `a[][k]=1&a[][v]=2` fills the last hash until a key repeats.
            let next = parts.get(i + 1).copied().unwrap_or_default();
            let fill_last = !next.is_empty()
                && items
                    .last()
                    .and_then(Value::as_object)
                    .is_some_and(|o| !o.contains_key(next));
            if !fill_last {
                items.push(Value::Null);
            }
            let Some(last) = items.last_mut() else { return };
            slot = last;
        } else {
            if !slot.is_object() {
                *slot = Value::Object(Map::new());
            }
            let Value::Object(obj) = slot else { return };
            slot = obj.entry(part.to_string()).or_insert(Value::Null);
        }
    }
    *slot = value;
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(pairs: &[(&str, &str)]) -> Value {
        let mut map = Map::new();
        for (k, v) in pairs {
            insert_bracketed(&mut map, k, json!(v)).unwrap();
        }
        Value::Object(map)
    }

    #[test]
    fn bracket_keys_nest_like_rack() {
        assert_eq!(
            parse(&[("variables[A]", "1"), ("variables[B]", "2")]),
            json!({"variables": {"A": "1", "B": "2"}})
        );
        assert_eq!(
            parse(&[("scopes[]", "api"), ("scopes[]", "read_api")]),
            json!({"scopes": ["api", "read_api"]})
        );
        assert_eq!(parse(&[("variables", "x")]), json!({"variables": "x"}));
        assert_eq!(parse(&[("variables[A][]", "x")]), json!({"variables": {"A": ["x"]}}));
        assert_eq!(parse(&[("a[b][c]", "x")]), json!({"a": {"b": {"c": "x"}}}));
        assert_eq!(
            parse(&[
                ("v[][key]", "A"),
                ("v[][value]", "1"),
                ("v[][key]", "B"),
                ("v[][value]", "2")
            ]),
            json!({"v": [{"key": "A", "value": "1"}, {"key": "B", "value": "2"}]})
        );
        assert_eq!(parse(&[("[x]", "1")]), json!({"[x]": "1"}));
        assert_eq!(
            parse(&[("variables[A]", "1"), ("variables[A]", "2")]),
            json!({"variables": {"A": "2"}})
        );
    }

    #[test]
    fn keys_nested_past_racks_limit_are_refused_without_recursion() {
        let mut map = Map::new();
        let ok = format!("a{}", "[b]".repeat(MAX_DEPTH));
        assert_eq!(insert_bracketed(&mut map, &ok, json!("x")), Ok(()));
        let deep = format!("a{}", "[b]".repeat(5000));
        assert_eq!(insert_bracketed(&mut map, &deep, json!("x")), Err(TooDeep));
    }
}
