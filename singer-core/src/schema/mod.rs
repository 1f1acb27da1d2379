//! JSON Schema handling shared by taps and targets: what a SCHEMA message's properties hold
//! ([`kind`]) and flattening nested objects ([`flatten`]).

pub mod flatten;
pub mod kind;

pub use flatten::{
    DEFAULT_MAX_KEY_LENGTH, FLATTEN_SEPARATOR, Flattening, flatten_record, flatten_schema,
    inline_refs,
};
pub use kind::{Column, Kind, MAX_COLUMNS, MAX_DEPTH, columns_of, count_columns, is_null_only};
