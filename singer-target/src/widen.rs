//! Widening column types when a stream's schema changes, without losing values.

use std::sync::Arc;

use arrow::datatypes::{DataType, Field};

/// The type a column must take to hold both its current values and values of `new`, or
/// `None` when no lossless widening exists. Integers widen to floats, numbers and other
/// scalars to text; structs widen field by field and gain new fields; lists widen their items.
pub fn widen(current: &DataType, new: &DataType) -> Option<DataType> {
    use DataType as D;
    if current == new {
        return Some(current.clone());
    }
    match (current, new) {
        (D::Int64, D::Float64) | (D::Float64, D::Int64) => Some(D::Float64),
        (D::Struct(a), D::Struct(b)) => {
            let mut fields: Vec<Field> = a.iter().map(|f| f.as_ref().clone()).collect();
            for nf in b.iter() {
                match fields.iter_mut().find(|f| f.name() == nf.name()) {
                    Some(f) => {
                        let t = widen(f.data_type(), nf.data_type())?;
                        *f = Field::new(f.name(), t, true);
                    }
                    None => fields.push(nf.as_ref().clone().with_nullable(true)),
                }
            }
            Some(D::Struct(fields.into()))
        }
        (D::List(a), D::List(b)) => {
            let t = widen(a.data_type(), b.data_type())?;
            Some(D::List(Arc::new(Field::new("item", t, true))))
        }
        (D::Utf8, D::Struct(_) | D::List(_))
        | (D::Struct(_) | D::List(_), _)
        | (_, D::Struct(_) | D::List(_)) => None,
        (D::Utf8, _) | (_, D::Utf8) => Some(D::Utf8),
        (
            D::Int64 | D::Float64 | D::Boolean | D::Date32 | D::Time64(_) | D::Timestamp(..),
            D::Int64 | D::Float64 | D::Boolean | D::Date32 | D::Time64(_) | D::Timestamp(..),
        ) => Some(D::Utf8),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fields::data_type;
    use singer_core::schema::{Column, Kind};

    #[test]
    fn widening_rules() {
        use DataType as D;
        assert_eq!(widen(&D::Int64, &D::Float64), Some(D::Float64));
        assert_eq!(widen(&D::Float64, &D::Int64), Some(D::Float64));
        assert_eq!(widen(&D::Float64, &D::Utf8), Some(D::Utf8));
        assert_eq!(widen(&D::Utf8, &D::Int64), Some(D::Utf8));
        assert_eq!(widen(&D::Boolean, &D::Int64), Some(D::Utf8));
        let s1 = data_type(&Kind::Object(vec![Column {
            name: "a".into(),
            kind: Kind::Integer,
        }]));
        let s2 = data_type(&Kind::Object(vec![
            Column {
                name: "a".into(),
                kind: Kind::Number,
            },
            Column {
                name: "b".into(),
                kind: Kind::String,
            },
        ]));
        assert_eq!(widen(&s1, &s2), Some(s2.clone()));
        assert_eq!(
            widen(&s1, &D::Int64),
            None,
            "struct to scalar is incompatible"
        );
        assert_eq!(widen(&D::Utf8, &s1), None);
    }
}
