//! Upserts into Delta tables (`load_method: upsert` on a stream with key properties): a
//! merge on the keys done as Delta's MERGE does it, copy-on-write. The commit's rows are
//! reduced to the last row of each key; every data file of the table is scanned on its key
//! columns only; a file holding any of those keys is rewritten without them (the old file
//! removed and the rest added back in the same transaction as the new rows). delta-rs has
//! MERGE only with its DataFusion engine (a 27-minute build here), so this is ours.

use std::collections::HashSet;
use std::sync::Arc;

use arrow::array::{ArrayRef, BooleanArray, UInt32Array, new_null_array};
use arrow::compute::{concat_batches, filter_record_batch, take_record_batch};
use arrow::datatypes::{Field, Schema, SchemaRef};
use arrow::record_batch::RecordBatch;
use arrow::row::{RowConverter, SortField};
use singer_target::Error;

type Result<T, E = Error> = std::result::Result<T, E>;

/// The keys of the rows a commit upserts.
pub struct Keys {
    names: Vec<String>,
    fields: Vec<Field>,
    converter: RowConverter,
    set: HashSet<Box<[u8]>>,
}

fn key_columns(
    batch: &RecordBatch,
    names: &[String],
    fields: &[Field],
    stream: &str,
) -> Result<Vec<ArrayRef>> {
    names
        .iter()
        .zip(fields)
        .map(|(name, field)| {
            let Some(column) = batch.column_by_name(name) else {
                return Ok(new_null_array(field.data_type(), batch.num_rows()));
            };
            if column.data_type() == field.data_type() {
                return Ok(column.clone());
            }
            let source = batch.schema().field_with_name(name)?.clone();
            crate::delta::widen_array(column, &source, field)?.ok_or_else(|| {
                Error::sink(
                    stream,
                    format!(
                        "key property '{name}': a data file holds it as {}, the table as {}",
                        column.data_type(),
                        field.data_type()
                    ),
                )
            })
        })
        .collect()
}

/// All rows of `batches` in one batch of `schema` (columns a batch lacks are null).
pub fn unify(batches: &[RecordBatch], stream: &str) -> Result<RecordBatch> {
    let mut fields: Vec<Field> = Vec::new();
    for batch in batches.iter().rev() {
        for f in batch.schema().fields() {
            if !fields.iter().any(|g| g.name() == f.name()) {
                fields.push(f.as_ref().clone());
            }
        }
    }
    let schema: SchemaRef = Arc::new(Schema::new(fields));
    let aligned = batches
        .iter()
        .map(|b| {
            let columns = schema
                .fields()
                .iter()
                .map(|f| match b.column_by_name(f.name()) {
                    Some(c) if c.data_type() == f.data_type() => Ok(c.clone()),
                    Some(c) => {
                        let source = b.schema().field_with_name(f.name())?.clone();
                        crate::delta::widen_array(c, &source, f)?.ok_or_else(|| {
                            Error::sink(
                                stream,
                                format!(
                                    "column '{}': {} and {} in one commit",
                                    f.name(),
                                    c.data_type(),
                                    f.data_type()
                                ),
                            )
                        })
                    }
                    None => Ok(new_null_array(f.data_type(), b.num_rows())),
                })
                .collect::<Result<Vec<_>>>()?;
            Ok(RecordBatch::try_new(schema.clone(), columns)?)
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(concat_batches(&schema, &aligned)?)
}

impl Keys {
    /// The last row of each key of `batch` (in input order), and the set of those keys.
    /// A null key property is refused: it could match no row.
    pub fn last_per_key(
        batch: &RecordBatch,
        names: &[String],
        stream: &str,
    ) -> Result<(Keys, RecordBatch)> {
        let schema = batch.schema();
        let fields = names
            .iter()
            .map(|n| {
                schema.field_with_name(n).cloned().map_err(|_| {
                    Error::sink(
                        stream,
                        format!("key property '{n}' is not a column of the stream"),
                    )
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let converter = RowConverter::new(
            fields
                .iter()
                .map(|f| SortField::new(f.data_type().clone()))
                .collect(),
        )?;
        let columns = key_columns(batch, names, &fields, stream)?;
        if let Some((name, _)) = names.iter().zip(&columns).find(|(_, c)| c.null_count() > 0) {
            return Err(Error::sink(
                stream,
                format!("key property '{name}' is null in a record to upsert"),
            ));
        }
        let rows = converter.convert_columns(&columns)?;
        let mut set: HashSet<Box<[u8]>> = HashSet::with_capacity(rows.num_rows());
        let mut keep = Vec::with_capacity(rows.num_rows());
        for i in (0..rows.num_rows()).rev() {
            if set.insert(rows.row(i).as_ref().into()) {
                keep.push(i as u32);
            }
        }
        keep.reverse();
        let last = if keep.len() == batch.num_rows() {
            batch.clone()
        } else {
            take_record_batch(batch, &UInt32Array::from(keep))?
        };
        Ok((
            Keys {
                names: names.to_vec(),
                fields,
                converter,
                set,
            },
            last,
        ))
    }

    /// The column names of the keys.
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// Which rows of `batch` (an existing file's, with at least the key columns) to keep:
    /// those whose key the commit does not bring again; `None` when all are kept.
    pub fn keep(&self, batch: &RecordBatch, stream: &str) -> Result<Option<BooleanArray>> {
        let columns = key_columns(batch, &self.names, &self.fields, stream)?;
        let rows = self.converter.convert_columns(&columns)?;
        let keep: BooleanArray = (0..rows.num_rows())
            .map(|i| Some(!self.set.contains(rows.row(i).as_ref())))
            .collect();
        Ok((keep.true_count() < keep.len()).then_some(keep))
    }
}

/// `batch` without the rows `keep` drops.
pub fn filtered(batch: &RecordBatch, keep: &BooleanArray) -> Result<RecordBatch> {
    Ok(filter_record_batch(batch, keep)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Int64Array, StringArray};

    fn batch(ids: &[i64], names: &[&str]) -> RecordBatch {
        RecordBatch::try_from_iter(vec![
            ("id", Arc::new(Int64Array::from(ids.to_vec())) as ArrayRef),
            (
                "name",
                Arc::new(StringArray::from(names.to_vec())) as ArrayRef,
            ),
        ])
        .expect("batch")
    }

    #[test]
    fn the_last_row_of_each_key_wins_and_old_rows_of_those_keys_go() {
        let new = batch(&[1, 2, 1, 3], &["a", "b", "a2", "c"]);
        let (keys, last) = Keys::last_per_key(&new, &["id".into()], "s").expect("keys");
        assert_eq!(last.num_rows(), 3);
        let names = last
            .column(1)
            .as_any()
            .downcast_ref::<StringArray>()
            .expect("names");
        assert_eq!(names.iter().flatten().collect::<Vec<_>>(), ["b", "a2", "c"]);
        let old = batch(&[5, 1, 6, 3], &["x", "y", "z", "w"]);
        let keep = keys.keep(&old, "s").expect("keep").expect("some rows go");
        let kept = filtered(&old, &keep).expect("filter");
        let ids = kept
            .column(0)
            .as_any()
            .downcast_ref::<Int64Array>()
            .expect("ids");
        assert_eq!(ids.values().to_vec(), [5, 6]);
        assert!(
            keys.keep(&batch(&[7], &["q"]), "s")
                .expect("keep")
                .is_none()
        );
    }

    #[test]
    fn a_null_key_is_refused() {
        let new = RecordBatch::try_from_iter(vec![(
            "id",
            Arc::new(Int64Array::from(vec![Some(1), None])) as ArrayRef,
        )])
        .expect("batch");
        let err = Keys::last_per_key(&new, &["id".into()], "users")
            .err()
            .expect("refused");
        assert!(err.to_string().contains("'id' is null"), "{err}");
    }
}
