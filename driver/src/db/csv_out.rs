//! Writes CSV fields exactly as PostgreSQL's `COPY ... TO STDOUT (FORMAT csv)` does, so a
//! file written by the driver and a file exported from the database are byte-identical.
//!
//! PostgreSQL quotes a field when it contains the delimiter, a quote, CR or LF, or when it is
//! the empty string (so that it differs from NULL, which is an empty unquoted field).

/// Appends one field (`None` = NULL) to `out`, with a leading comma unless `first`.
pub fn push_field(out: &mut Vec<u8>, value: Option<&str>, first: bool) {
    if !first {
        out.push(b',');
    }
    let Some(value) = value else { return };
    let needs_quotes = value.is_empty() || value.bytes().any(|b| matches!(b, b',' | b'"' | b'\r' | b'\n'));
    if !needs_quotes {
        out.extend_from_slice(value.as_bytes());
        return;
    }
    out.push(b'"');
    for byte in value.bytes() {
        if byte == b'"' {
            out.push(b'"');
        }
        out.push(byte);
    }
    out.push(b'"');
}

/// Counts CSV records in a byte stream split anywhere: a record ends at an LF outside quotes.
/// (Counting raw newlines would count the newlines inside quoted descriptions.)
#[derive(Debug, Default, Clone)]
pub struct RecordCounter {
    in_quotes: bool,
    records: u64,
}

impl RecordCounter {
    pub fn feed(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            match byte {
                // A doubled quote toggles twice: it stays inside the field.
                b'"' => self.in_quotes = !self.in_quotes,
                b'\n' if !self.in_quotes => self.records += 1,
                _ => {}
            }
        }
    }

    pub fn records(&self) -> u64 {
        self.records
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(fields: &[Option<&str>]) -> String {
        let mut out = Vec::new();
        for (i, field) in fields.iter().enumerate() {
            push_field(&mut out, *field, i == 0);
        }
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn quotes_like_postgres() {
        assert_eq!(
            line(&[Some("a"), None, Some(""), Some("x,y"), Some("say \"hi\""), Some("l1\nl2")]),
            "a,,\"\",\"x,y\",\"say \"\"hi\"\"\",\"l1\nl2\""
        );
        assert_eq!(line(&[Some("caf\u{fffd} "), Some("12.500")]), "caf\u{fffd} ,12.500");
    }

    #[test]
    fn counts_records_across_chunk_boundaries_and_quoted_newlines() {
        let text = b"h1,h2\n1,\"a\nb\"\n2,\"say \"\"x\"\"\"\n3,\n";
        for split in 0..text.len() {
            let mut counter = RecordCounter::default();
            counter.feed(&text[..split]);
            counter.feed(&text[split..]);
            assert_eq!(counter.records(), 4, "split at {split}");
        }
    }
}
