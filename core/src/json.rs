//! JSON parsing that refuses duplicate member names at any depth.
//!
//! serde_json keeps the last of two equal keys; an upstream parser that keeps the first
//! would then see a different role or audience (docs/threat-model.md E7). We refuse both.

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};
use std::fmt;

const DUPLICATE: &str = "duplicate member name";

/// Deepest nesting accepted (the outermost object or array is level 1). Whatever accepts a
/// document must be able to store and read it back: the identity carrier wraps the claims in
/// a few more levels, far below serde_json's own limit of 128.
pub const MAX_DEPTH: usize = 32;

#[derive(Debug, PartialEq, Eq)]
pub enum JsonError {
    Duplicate,
    Invalid,
    TooDeep,
}

/// Parses one JSON document; duplicate names anywhere, trailing bytes and nesting deeper
/// than `MAX_DEPTH` are errors.
pub fn parse_strict(bytes: &[u8]) -> Result<Value, JsonError> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let parsed = Strict::deserialize(&mut de).and_then(|v| de.end().map(|_| v));
    match parsed {
        Ok(Strict(v)) if depth(&v) > MAX_DEPTH => Err(JsonError::TooDeep),
        Ok(Strict(v)) => Ok(v),
        Err(e) if e.to_string().starts_with(DUPLICATE) => Err(JsonError::Duplicate),
        Err(_) => Err(JsonError::Invalid),
    }
}

/// Nesting depth of a value: scalars 0, an object or array one more than its deepest member.
pub fn depth(v: &Value) -> usize {
    match v {
        Value::Array(a) => 1 + a.iter().map(depth).max().unwrap_or(0),
        Value::Object(o) => 1 + o.values().map(depth).max().unwrap_or(0),
        _ => 0,
    }
}

struct Strict(Value);

impl<'de> Deserialize<'de> for Strict {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(StrictVisitor).map(Strict)
    }
}

struct StrictVisitor;

impl<'de> Visitor<'de> for StrictVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        serde_json::Number::from_f64(v)
            .map(Value::Number)
            .ok_or_else(|| E::custom("non-finite number"))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut out = Vec::new();
        while let Some(Strict(v)) = seq.next_element()? {
            out.push(v);
        }
        Ok(Value::Array(out))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            let Strict(value) = map.next_value()?;
            if out.insert(key, value).is_some() {
                return Err(de::Error::custom(DUPLICATE));
            }
        }
        Ok(Value::Object(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_plain_documents() {
        let v = parse_strict(br#"{"a":[1,{"b":null}],"c":"x"}"#).unwrap();
        assert_eq!(v["a"][1]["b"], Value::Null);
    }

    #[test]
    fn refuses_duplicates_at_any_depth() {
        assert_eq!(
            parse_strict(br#"{"role":"anon","role":"postgres"}"#),
            Err(JsonError::Duplicate)
        );
        assert_eq!(parse_strict(br#"{"x":{"a":1,"a":2}}"#), Err(JsonError::Duplicate));
        assert_eq!(parse_strict(br#"[{"a":1,"a":1}]"#), Err(JsonError::Duplicate));
    }

    #[test]
    fn escaped_duplicate_names_are_duplicates() {
        // "\u0072ole" decodes to "role".
        assert_eq!(
            parse_strict(br#"{"role":"a","\u0072ole":"b"}"#),
            Err(JsonError::Duplicate)
        );
    }

    #[test]
    fn refuses_garbage_trailing_bom_and_deep_nesting() {
        assert_eq!(parse_strict(br#"{"a":1} x"#), Err(JsonError::Invalid));
        assert_eq!(parse_strict(b"\xef\xbb\xbf{}"), Err(JsonError::Invalid));
        assert_eq!(parse_strict(b"{\"a\":\"\xff\"}"), Err(JsonError::Invalid));
        assert_eq!(parse_strict(br#"{"a":"\ud800"}"#), Err(JsonError::Invalid));
        let deep = "[".repeat(100_000);
        assert_eq!(parse_strict(deep.as_bytes()), Err(JsonError::Invalid));
    }

    fn nested(levels: usize) -> String {
        format!("{}1{}", r#"{"a":"#.repeat(levels), "}".repeat(levels))
    }

    #[test]
    fn nesting_is_capped_at_max_depth() {
        assert!(parse_strict(nested(MAX_DEPTH).as_bytes()).is_ok());
        assert_eq!(parse_strict(nested(MAX_DEPTH + 1).as_bytes()), Err(JsonError::TooDeep));
        assert_eq!(parse_strict(nested(100).as_bytes()), Err(JsonError::TooDeep));
        assert_eq!(depth(&serde_json::json!({"a": [1, {"b": []}], "c": 2})), 4);
    }
}
