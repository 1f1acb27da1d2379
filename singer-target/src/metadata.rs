//! The Meltano SDK's `_sdc_*` record metadata columns, which follow the data columns when
//! `add_record_metadata` is on.

use arrow::array::Int64Array;
use arrow::datatypes::{DataType, Field};
use arrow::record_batch::RecordBatch;

use crate::fields::timestamp_type;

/// `_sdc_extracted_at`: when the tap extracted the record (`time_extracted`).
pub const SDC_EXTRACTED_AT: &str = "_sdc_extracted_at";
/// `_sdc_received_at`: when the target read the record.
pub const SDC_RECEIVED_AT: &str = "_sdc_received_at";
/// `_sdc_batched_at`: when the record's batch was loaded.
pub const SDC_BATCHED_AT: &str = "_sdc_batched_at";
/// `_sdc_deleted_at`: when the record was deleted at the source (or by a version switch).
pub const SDC_DELETED_AT: &str = "_sdc_deleted_at";
/// `_sdc_sequence`: a number that orders records of one stream across runs.
pub const SDC_SEQUENCE: &str = "_sdc_sequence";
/// `_sdc_table_version`: the full-table version of the record.
pub const SDC_TABLE_VERSION: &str = "_sdc_table_version";

/// The metadata columns, in the order they are appended.
pub const METADATA_COLUMNS: [&str; 6] = [
    SDC_EXTRACTED_AT,
    SDC_RECEIVED_AT,
    SDC_BATCHED_AT,
    SDC_DELETED_AT,
    SDC_SEQUENCE,
    SDC_TABLE_VERSION,
];

/// The Arrow fields of the metadata columns.
pub fn metadata_fields() -> Vec<Field> {
    let ts = timestamp_type();
    vec![
        Field::new(SDC_EXTRACTED_AT, ts.clone(), true),
        Field::new(SDC_RECEIVED_AT, ts.clone(), true),
        Field::new(SDC_BATCHED_AT, ts.clone(), true),
        Field::new(SDC_DELETED_AT, ts, true),
        Field::new(SDC_SEQUENCE, DataType::Int64, true),
        Field::new(SDC_TABLE_VERSION, DataType::Int64, true),
    ]
}

/// `batch` with `by` added to its `_sdc_sequence` (a worker numbers a segment's records from
/// 0; the runtime knows how many came before). Batches without the column are unchanged.
pub(crate) fn shift_sequence(
    batch: RecordBatch,
    by: i64,
) -> Result<RecordBatch, arrow::error::ArrowError> {
    let Ok(index) = batch.schema().index_of(SDC_SEQUENCE) else {
        return Ok(batch);
    };
    let shifted =
        arrow::compute::kernels::numeric::add(batch.column(index), &Int64Array::new_scalar(by))?;
    let mut columns = batch.columns().to_vec();
    columns[index] = shifted;
    RecordBatch::try_new(batch.schema(), columns)
}
