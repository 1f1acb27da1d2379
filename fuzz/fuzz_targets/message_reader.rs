//! Any bytes through the message reader: errors are fine, panics are not.
#![no_main]

use libfuzzer_sys::fuzz_target;
use singer_core::message::MessageReader;

fuzz_target!(|data: &[u8]| {
    let mut reader = MessageReader::new(data).with_max_line_bytes(1 << 16);
    for _ in 0..10_000 {
        match reader.next_message() {
            Ok(Some((_, message))) => {
                let _ = message.to_json_line();
            }
            Ok(None) => break,
            Err(_) => continue,
        }
    }
});
