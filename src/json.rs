//! A leaf: JSON objects from untrusted parties (token responses, JWT headers and claims) read
//! strictly. A key given twice, at any depth, is refused: `{"aud":"evil","aud":"api"}` means
//! one thing to one parser and another to the next, so it is refused rather than guessed at.
//! Errors never quote the input (serde_json's messages can): only what kind and where.

use std::fmt;

use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

/// Why bytes are not a strict JSON object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ObjectError {
    /// A key appears twice in one object.
    DuplicateKey,
    /// Valid JSON, but not an object at the top.
    NotAnObject,
    /// Not JSON: where it broke.
    Malformed { line: usize, column: usize },
}

/// The JSON object in `bytes` (a leading UTF-8 byte order mark is allowed), every key unique.
pub(crate) fn object(bytes: &[u8]) -> Result<Map<String, Value>, ObjectError> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    match serde_json::from_slice::<Unique>(bytes) {
        Ok(Unique(Value::Object(map))) => Ok(map),
        Ok(_) => Err(ObjectError::NotAnObject),
        Err(e) if e.to_string().starts_with(DUPLICATE_KEY) => Err(ObjectError::DuplicateKey),
        Err(e) if e.classify() == serde_json::error::Category::Data => Err(ObjectError::NotAnObject),
        Err(e) => Err(ObjectError::Malformed {
            line: e.line(),
            column: e.column(),
        }),
    }
}

/// The marker matched above; the key itself is never repeated in an error.
const DUPLICATE_KEY: &str = "b2c-token: duplicate key";

/// A `Value` whose objects, at every depth, have unique keys.
struct Unique(Value);

impl<'de> Deserialize<'de> for Unique {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(UniqueVisitor)
    }
}

struct UniqueVisitor;

impl<'de> Visitor<'de> for UniqueVisitor {
    type Value = Unique;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("JSON")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Unique, E> {
        Ok(Unique(Value::Bool(v)))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Unique, E> {
        Ok(Unique(Value::Number(v.into())))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Unique, E> {
        Ok(Unique(Value::Number(v.into())))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Unique, E> {
        Ok(Unique(Number::from_f64(v).map_or(Value::Null, Value::Number)))
    }

    fn visit_str<E>(self, v: &str) -> Result<Unique, E> {
        Ok(Unique(Value::String(v.to_owned())))
    }

    fn visit_string<E>(self, v: String) -> Result<Unique, E> {
        Ok(Unique(Value::String(v)))
    }

    fn visit_unit<E>(self) -> Result<Unique, E> {
        Ok(Unique(Value::Null))
    }

    fn visit_none<E>(self) -> Result<Unique, E> {
        Ok(Unique(Value::Null))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut access: A) -> Result<Unique, A::Error> {
        let mut values = Vec::new();
        while let Some(Unique(value)) = access.next_element()? {
            values.push(value);
        }
        Ok(Unique(Value::Array(values)))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Unique, A::Error> {
        let mut map = Map::new();
        while let Some(key) = access.next_key::<String>()? {
            let Unique(value) = access.next_value()?;
            if map.insert(key, value).is_some() {
                return Err(serde::de::Error::custom(DUPLICATE_KEY));
            }
        }
        Ok(Unique(Value::Object(map)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicates_are_refused_at_any_depth() {
        assert_eq!(object(br#"{"a":1,"a":2}"#), Err(ObjectError::DuplicateKey));
        assert_eq!(object(br#"{"a":{"b":1,"b":2}}"#), Err(ObjectError::DuplicateKey));
        assert_eq!(object(br#"{"a":[{"b":1,"b":2}]}"#), Err(ObjectError::DuplicateKey));
        assert_eq!(object(br#"[1]"#), Err(ObjectError::NotAnObject));
        assert!(matches!(object(br#"{"a":"#), Err(ObjectError::Malformed { .. })));
        let map = object(b"\xEF\xBB\xBF{\"a\":{\"b\":[1,2.5,null,true,\"x\"]}}").expect("an object");
        assert_eq!(map["a"]["b"][1], 2.5);
    }
}
