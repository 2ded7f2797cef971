//! Idempotency keys for the endpoints that create pipelines (the IETF httpapi
//! `Idempotency-Key` draft): the first request with a key creates the pipeline and the key is
//! stored in the same commit; a repeat of the same request within 24 hours is answered from
//! that record and creates nothing; the same key with another request is refused; a repeat
//! that arrives while the first is in flight waits for it. Keys are scoped to the project and
//! the credential. Knows nothing of HTTP.

use crate::context::Spur;
use crate::domain::{Millis, Pipeline};
use crate::keyed_lock::{Held, KeyedLocks};
use crate::storage::IdempotencyTag;
use serde_json::Value;
use std::sync::LazyLock;

/// How long a key is remembered.
pub const LIFETIME: Millis = 24 * 3600 * 1000;
/// The longest key taken.
pub const MAX_KEY_BYTES: usize = 255;

/// What a key found.
#[derive(Debug)]
pub enum Prior {
    /// Never used (or expired): go on and create.
    Fresh,
    /// The same request made this pipeline: answer it again.
    Replay(Box<Pipeline>),
    /// The key was used for a different request.
    Conflict,
}

/// The in-flight lock of each key being used now, by key id.
static IN_FLIGHT: LazyLock<KeyedLocks<[u8; 32]>> = LazyLock::new(KeyedLocks::new);

/// Holds a key while its request runs; repeats wait until it is dropped.
pub type InFlight = Held<'static, [u8; 32]>;

/// Whether a header value is a usable key: 1 to 255 visible ASCII characters.
pub fn valid_key(key: &str) -> bool {
    !key.is_empty() && key.len() <= MAX_KEY_BYTES && key.bytes().all(|b| b.is_ascii_graphic() || b == b' ')
}

/// The key's id (scoped to the project and the credential) and the request's fingerprint
/// (`request` as parsed, object keys in any order).
pub fn tag(spur: &Spur, project_id: u64, credential: &str, key: &str, request: &Value) -> IdempotencyTag {
    let mut id = blake3::Hasher::new();
    id.update(b"spur idempotency key\0");
    id.update(&project_id.to_le_bytes());
    id.update(&spur.secrets.digest(credential));
    id.update(key.as_bytes());
    let mut canonical = String::new();
    write_canonical(request, &mut canonical);
    IdempotencyTag {
        id: *id.finalize().as_bytes(),
        fingerprint: *blake3::hash(canonical.as_bytes()).as_bytes(),
    }
}

/// JSON text with every object's keys sorted.
fn write_canonical(v: &Value, out: &mut String) {
    match v {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(k.clone()).to_string());
                out.push(':');
                write_canonical(&map[k], out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}

/// Takes the key's in-flight lock (waiting for a request with the key that is still running),
/// then reads what the key made before.
pub async fn begin(spur: &Spur, tag: IdempotencyTag) -> Result<(InFlight, Prior), crate::storage::Error> {
    let held = IN_FLIGHT.lock(tag.id).await;
    let prior = match spur.store.idempotency_record(&tag.id)? {
        // A pipeline deleted since is not answered again: the retry creates afresh.
        Some(r) if r.created_at + LIFETIME > crate::clock::now() && spur.store.pipeline(r.pipeline.id)?.is_some() => {
            let fingerprint: String = tag.fingerprint.iter().map(|b| format!("{b:02x}")).collect();
            if r.fingerprint == fingerprint {
                Prior::Replay(Box::new(r.pipeline))
            } else {
                Prior::Conflict
            }
        }
        _ => Prior::Fresh,
    };
    Ok((held, prior))
}

/// Forgets keys older than their lifetime; answers how many.
pub async fn sweep(spur: &Spur) -> Result<usize, crate::storage::Error> {
    spur.store
        .delete_idempotency_before(crate::clock::now() - LIFETIME)
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_json_ignores_key_order() {
        let (mut a, mut b) = (String::new(), String::new());
        write_canonical(
            &serde_json::json!({"ref": "main", "variables": {"B": "2", "A": "1"}}),
            &mut a,
        );
        write_canonical(
            &serde_json::json!({"variables": {"A": "1", "B": "2"}, "ref": "main"}),
            &mut b,
        );
        assert_eq!(a, b);
        assert_eq!(a, r#"{"ref":"main","variables":{"A":"1","B":"2"}}"#);
    }

    #[test]
    fn keys_are_visible_ascii_up_to_255_bytes() {
        assert!(valid_key("retry-7f3c"));
        assert!(!valid_key(""));
        assert!(!valid_key(&"k".repeat(256)));
        assert!(!valid_key("new\nline"));
    }
}
