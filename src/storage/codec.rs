//! How records are encoded in table values: JSON, so fields can be added without a migration.

use super::Error;
use redb::{Key, ReadableTable};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::borrow::Borrow;

/// Encodes a record.
pub fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, Error> {
    serde_json::to_vec(value).map_err(|e| Error::Codec(e.to_string()))
}

/// Decodes a record.
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, Error> {
    serde_json::from_slice(bytes).map_err(|e| Error::Codec(e.to_string()))
}

/// Reads and decodes one record from a table of JSON values.
pub fn get_json<'a, K: Key + 'static, T: DeserializeOwned>(
    table: &impl ReadableTable<K, &'static [u8]>,
    key: impl Borrow<K::SelfType<'a>>,
) -> Result<Option<T>, Error> {
    match table.get(key)? {
        Some(guard) => Ok(Some(decode(guard.value())?)),
        None => Ok(None),
    }
}

/// Decodes every record of a table of JSON values, in key order.
pub fn all_json<K: Key + 'static, T: DeserializeOwned>(
    table: &impl ReadableTable<K, &'static [u8]>,
) -> Result<Vec<T>, Error> {
    let mut out = Vec::new();
    for entry in table.iter()? {
        out.push(decode(entry?.1.value())?);
    }
    Ok(out)
}
