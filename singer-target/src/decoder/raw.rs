//! Records from JSON text straight into the column builders, with no `Value` in between.
//!
//! One serde pass over the record's bytes looks each key up among the columns by its hash,
//! converts the value into that column's builder, applies the compiled [`Check`]s, and
//! computes the record's canonical hash for the ack ledger on the way
//! ([`crate::ack::canon`], equal to [`crate::ack::record_hash`] of the parsed record).
//! Strings without escapes are borrowed from the input, not allocated.
//!
//! Anything it is not sure of (a type error, a failed check, a duplicate key) makes it give
//! up the record with [`GiveUp`]: the caller truncates the builders and takes the `Value`
//! path, which words the error exactly as before (or accepts the record, where the checks
//! were stricter than jsonschema).

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

use super::check::{Check, Num};
use super::column::{
    Builder, Columns, MAX_EXACT_FLOAT_INT, days_since_epoch, string_bool, time_micros,
};
use crate::ack::canon;
use crate::metadata::SDC_DELETED_AT;

/// The raw decoder gave up a record; the `Value` path decides.
#[derive(Debug)]
pub(super) struct GiveUp;

impl fmt::Display for GiveUp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("handed to the Value path")
    }
}

impl std::error::Error for GiveUp {}

/// What one record added besides its columns.
pub(crate) struct Decoded {
    /// The record's object hash (before the stream is mixed in).
    pub(super) hash: u64,
    /// `_sdc_deleted_at`, when record metadata is on and the record has one.
    pub(super) deleted_at: Option<i64>,
}

/// Decodes one record object into `columns`. On `Err` the builders may hold part of the
/// record: the caller truncates them.
pub(super) fn decode(
    columns: &mut Columns,
    check: Option<&Check>,
    with_metadata: bool,
    json: &str,
) -> Result<Decoded, GiveUp> {
    let mut de = serde_json::Deserializer::from_str(json);
    let decoded = RecordSeed {
        columns,
        check,
        with_metadata,
    }
    .deserialize(&mut de)
    .map_err(|_| GiveUp)?;
    de.end().map_err(|_| GiveUp)?;
    Ok(decoded)
}

/// A record object at any place in a JSON document (the `record` of a RECORD line being
/// parsed), into `columns`. On error the builders may hold part of the record.
pub(crate) struct RecordSeed<'a> {
    pub(super) columns: &'a mut Columns,
    pub(super) check: Option<&'a Check>,
    pub(super) with_metadata: bool,
}

impl<'de> DeserializeSeed<'de> for RecordSeed<'_> {
    type Value = Decoded;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Decoded, D::Error> {
        let mut deleted_at = None;
        let hash = ObjectSeed {
            columns: self.columns,
            check: self.check,
            deleted_at: self.with_metadata.then_some(&mut deleted_at),
        }
        .deserialize(d)?;
        Ok(Decoded { hash, deleted_at })
    }
}

fn give_up<E: de::Error>() -> E {
    E::custom("")
}

/// An object into a set of columns; its value is the object's canonical hash.
struct ObjectSeed<'a, 'd> {
    columns: &'a mut Columns,
    check: Option<&'a Check>,
    /// At the top level with metadata on: where `_sdc_deleted_at` goes.
    deleted_at: Option<&'d mut Option<i64>>,
}

impl<'de> DeserializeSeed<'de> for ObjectSeed<'_, '_> {
    type Value = u64;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<u64, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for ObjectSeed<'_, '_> {
    type Value = u64;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<u64, A::Error> {
        let ObjectSeed {
            columns,
            check,
            mut deleted_at,
        } = self;
        columns.seen.fill(false);
        columns.others.clear();
        let mut acc = canon::OBJECT;
        while let Some(key) = map.next_key_seed(KeySeed)? {
            let key_hash = canon::key(&key);
            if let Some(i) = columns.index.find(key_hash, &key, &columns.names) {
                if std::mem::replace(&mut columns.seen[i], true) {
                    return Err(give_up());
                }
                let value_hash = map.next_value_seed(ValueSeed {
                    builder: &mut columns.builders[i],
                    check: check.map(|c| &c.children[i]),
                })?;
                acc = canon::member(acc, key_hash, value_hash);
                continue;
            }
            if check.is_some_and(|c| c.closed) {
                return Err(give_up());
            }
            columns.others.push(key_hash);
            let value_hash = match deleted_at.as_deref_mut() {
                Some(slot) if key == SDC_DELETED_AT => map.next_value_seed(DeletedAtSeed(slot))?,
                _ => map.next_value_seed(HashSeed)?,
            };
            acc = canon::member(acc, key_hash, value_hash);
        }
        if has_duplicates(&mut columns.others) {
            return Err(give_up());
        }
        for (i, seen) in columns.seen.iter().enumerate() {
            if !seen {
                if check.is_some_and(|c| c.required.contains(&i)) {
                    return Err(give_up());
                }
                columns.builders[i].append_null();
            }
        }
        Ok(acc)
    }
}

fn has_duplicates(hashes: &mut [u64]) -> bool {
    if hashes.len() < 2 {
        return false;
    }
    hashes.sort_unstable();
    hashes.windows(2).any(|w| w[0] == w[1])
}

/// A member name, borrowed from the input when it has no escapes.
struct KeySeed;

impl<'de> DeserializeSeed<'de> for KeySeed {
    type Value = Cow<'de, str>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Cow<'de, str>, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for KeySeed {
    type Value = Cow<'de, str>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a string")
    }
    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Cow::Borrowed(v))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Cow::Owned(v.to_owned()))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
        Ok(Cow::Owned(v))
    }
}

/// A value into one column's builder; its value is the value's canonical hash.
struct ValueSeed<'a> {
    builder: &'a mut Builder,
    check: Option<&'a Check>,
}

impl<'de> DeserializeSeed<'de> for ValueSeed<'_> {
    type Value = u64;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<u64, D::Error> {
        d.deserialize_any(self)
    }
}

impl ValueSeed<'_> {
    fn number<E: de::Error>(self, n: Num) -> Result<u64, E> {
        if self.check.is_some_and(|c| !c.number(n)) {
            return Err(give_up());
        }
        match self.builder {
            Builder::Integer(b) => b.push(match n {
                Num::I(i) => i,
                Num::U(u) => i64::try_from(u).map_err(|_| give_up())?,
                Num::F(f) if f.fract() == 0.0 && f.abs() <= MAX_EXACT_FLOAT_INT => f as i64,
                Num::F(_) => return Err(give_up()),
            }),
            Builder::Number(b) => b.push(match n {
                Num::I(i) => i as f64,
                Num::U(u) => u as f64,
                Num::F(f) => f,
            }),
            Builder::String(b) | Builder::Json(b) => {
                let number = match n {
                    Num::I(i) => serde_json::Number::from(i),
                    Num::U(u) => serde_json::Number::from(u),
                    Num::F(f) => serde_json::Number::from_f64(f).ok_or_else(give_up)?,
                };
                b.push(&number.to_string()).map_err(|_| give_up())?;
            }
            _ => return Err(give_up()),
        }
        Ok(match n {
            Num::I(i) => canon::integer(i.to_le_bytes()),
            Num::U(u) => canon::integer(u.to_le_bytes()),
            Num::F(f) => canon::float(f),
        })
    }

    fn string<E: de::Error>(self, s: &str) -> Result<u64, E> {
        if self.check.is_some_and(|c| !c.string(s)) {
            return Err(give_up());
        }
        let ok = match self.builder {
            Builder::String(b) => b.push(s).is_ok(),
            Builder::Json(b) => {
                serde_json::to_writer(&mut b.bytes, s).is_ok() && b.end_value().is_ok()
            }
            Builder::Integer(b) => s.trim().parse::<i64>().map(|v| b.push(v)).is_ok(),
            Builder::Number(b) => s.trim().parse::<f64>().map(|v| b.push(v)).is_ok(),
            Builder::Boolean(b) => string_bool(s).map(|v| b.push(v)).is_some(),
            Builder::DateTime(b) => singer_core::time::parse_datetime(s)
                .map(|t| b.push(t.timestamp_micros()))
                .is_ok(),
            Builder::Date(b) => singer_core::time::parse_date(s)
                .map(|d| b.push(days_since_epoch(d)))
                .is_ok(),
            Builder::Time(b) => singer_core::time::parse_time(s)
                .map(|t| b.push(time_micros(t)))
                .is_ok(),
            Builder::Struct(_) | Builder::List(_) => false,
        };
        if ok {
            Ok(canon::string(s))
        } else {
            Err(give_up())
        }
    }

    /// An array or object for a text column: checked inside, and kept as its JSON text, as
    /// the `Value` path writes it.
    fn text_of(builder: &mut Builder, check: Option<&Check>, value: &Value) -> bool {
        if check.is_some_and(|c| !c.value(value)) {
            return false;
        }
        match builder {
            Builder::String(b) | Builder::Json(b) => {
                serde_json::to_writer(&mut b.bytes, value).is_ok() && b.end_value().is_ok()
            }
            _ => false,
        }
    }
}

impl<'de> Visitor<'de> for ValueSeed<'_> {
    type Value = u64;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_unit<E: de::Error>(self) -> Result<u64, E> {
        if self.check.is_some_and(|c| !c.null()) {
            return Err(give_up());
        }
        self.builder.append_null();
        Ok(canon::NULL)
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<u64, E> {
        if self.check.is_some_and(|c| !c.boolean(v)) {
            return Err(give_up());
        }
        let text = if v { "true" } else { "false" };
        match self.builder {
            Builder::Boolean(b) => b.push(v),
            Builder::String(b) | Builder::Json(b) => b.push(text).map_err(|_| give_up())?,
            _ => return Err(give_up()),
        }
        Ok(canon::boolean(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<u64, E> {
        self.number(Num::I(v))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<u64, E> {
        self.number(Num::U(v))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<u64, E> {
        self.number(Num::F(v))
    }

    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<u64, E> {
        self.string(v)
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<u64, E> {
        self.string(v)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<u64, A::Error> {
        if self.check.is_some_and(|c| !c.array()) {
            return Err(give_up());
        }
        match self.builder {
            Builder::List(list) => {
                let items_check = self.check.and_then(|c| c.items.as_deref());
                let mut acc = canon::ARRAY;
                let mut items = 0usize;
                while let Some(h) = seq.next_element_seed(ValueSeed {
                    builder: &mut list.child,
                    check: items_check,
                })? {
                    acc = canon::item(acc, h);
                    items += 1;
                }
                list.end_value(items).map_err(|_| give_up())?;
                Ok(acc)
            }
            builder => {
                let value: Value =
                    serde::Deserialize::deserialize(de::value::SeqAccessDeserializer::new(seq))?;
                if !Self::text_of(builder, self.check, &value) {
                    return Err(give_up());
                }
                Ok(crate::ack::value_hash(&value))
            }
        }
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<u64, A::Error> {
        if self.check.is_some_and(|c| !c.object()) {
            return Err(give_up());
        }
        match self.builder {
            Builder::Struct(s) => {
                let hash = ObjectSeed {
                    columns: &mut s.columns,
                    check: self.check,
                    deleted_at: None,
                }
                .visit_map(map)?;
                s.end_value();
                Ok(hash)
            }
            builder => {
                let value: Value =
                    serde::Deserialize::deserialize(de::value::MapAccessDeserializer::new(map))?;
                if !Self::text_of(builder, self.check, &value) {
                    return Err(give_up());
                }
                Ok(crate::ack::value_hash(&value))
            }
        }
    }
}

/// `_sdc_deleted_at` of a record: null or a date-time.
struct DeletedAtSeed<'a>(&'a mut Option<i64>);

impl<'de> DeserializeSeed<'de> for DeletedAtSeed<'_> {
    type Value = u64;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<u64, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for DeletedAtSeed<'_> {
    type Value = u64;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a date-time or null")
    }
    fn visit_unit<E: de::Error>(self) -> Result<u64, E> {
        *self.0 = None;
        Ok(canon::NULL)
    }
    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<u64, E> {
        self.visit_str(v)
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<u64, E> {
        let t = singer_core::time::parse_datetime(v).map_err(|_| give_up())?;
        *self.0 = Some(t.timestamp_micros());
        Ok(canon::string(v))
    }
}

/// Any value, only hashed (a property the schema does not declare).
struct HashSeed;

impl<'de> DeserializeSeed<'de> for HashSeed {
    type Value = u64;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<u64, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for HashSeed {
    type Value = u64;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_unit<E: de::Error>(self) -> Result<u64, E> {
        Ok(canon::NULL)
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<u64, E> {
        Ok(canon::boolean(v))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<u64, E> {
        Ok(canon::integer(v.to_le_bytes()))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<u64, E> {
        Ok(canon::integer(v.to_le_bytes()))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<u64, E> {
        Ok(canon::float(v))
    }
    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<u64, E> {
        Ok(canon::string(v))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<u64, E> {
        Ok(canon::string(v))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<u64, A::Error> {
        let mut acc = canon::ARRAY;
        while let Some(h) = seq.next_element_seed(HashSeed)? {
            acc = canon::item(acc, h);
        }
        Ok(acc)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<u64, A::Error> {
        let mut acc = canon::OBJECT;
        let mut keys = Vec::new();
        while let Some(key) = map.next_key_seed(KeySeed)? {
            let key_hash = canon::key(&key);
            keys.push(key_hash);
            acc = canon::member(acc, key_hash, map.next_value_seed(HashSeed)?);
        }
        // A repeated key counts once in a parsed object: let the `Value` path hash it.
        if has_duplicates(&mut keys) {
            return Err(give_up());
        }
        Ok(acc)
    }
}
