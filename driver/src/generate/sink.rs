//! Writing CSV rows fast: a buffered (optionally gzip) file, plus helpers that append fields
//! to a reusable row buffer so the hot loop allocates nothing.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use flate2::write::GzEncoder;
use flate2::Compression;

const BUFFER_BYTES: usize = 1 << 20;

enum Out {
    Plain(BufWriter<File>),
    // Boxed: zlib-rs keeps its stream state inline, which makes the encoder some 260 bytes.
    Gzip(Box<GzEncoder<BufWriter<File>>>),
}

/// One output file, counting the data rows written to it.
pub struct Sink {
    out: Out,
    path: PathBuf,
    rows: u64,
}

impl Sink {
    /// Creates `path` (plain, or gzip when `gzip`). The gzip header carries no time or file
    /// name, so the bytes depend on the content only.
    pub fn create(path: &Path, gzip: bool) -> io::Result<Self> {
        let file = BufWriter::with_capacity(BUFFER_BYTES, File::create(path)?);
        let out = if gzip { Out::Gzip(Box::new(GzEncoder::new(file, Compression::fast()))) } else { Out::Plain(file) };
        Ok(Sink { out, path: path.to_path_buf(), rows: 0 })
    }

    pub fn header(&mut self, line: &[u8]) -> io::Result<()> {
        self.write(line)
    }

    /// Writes one complete data row (line end included).
    pub fn row(&mut self, row: &[u8]) -> io::Result<()> {
        self.rows += 1;
        self.write(row)
    }

    fn write(&mut self, bytes: &[u8]) -> io::Result<()> {
        match &mut self.out {
            Out::Plain(w) => w.write_all(bytes),
            Out::Gzip(w) => w.write_all(bytes),
        }
    }

    /// Flushes and closes the file; returns (data rows, bytes on disk).
    pub fn finish(self) -> io::Result<(u64, u64)> {
        let file = match self.out {
            Out::Plain(w) => w,
            Out::Gzip(w) => w.finish()?,
        };
        file.into_inner().map_err(|e| e.into_error())?;
        let bytes = std::fs::metadata(&self.path)?.len();
        Ok((self.rows, bytes))
    }
}

/// Appends `field` as an RFC 4180 field: quoted, with doubled quotes, only when it holds a
/// comma, a quote or a line break — the minimal quoting the vendor files use.
pub fn push_field(row: &mut Vec<u8>, field: &str) {
    let bytes = field.as_bytes();
    if !bytes.iter().any(|b| matches!(b, b',' | b'"' | b'\n' | b'\r')) {
        row.extend_from_slice(bytes);
        return;
    }
    row.push(b'"');
    let mut pieces = bytes.split(|b| *b == b'"');
    if let Some(first) = pieces.next() {
        row.extend_from_slice(first);
    }
    for piece in pieces {
        row.extend_from_slice(b"\"\"");
        row.extend_from_slice(piece);
    }
    row.push(b'"');
}

/// Appends the decimal digits of `n` (no allocation, unlike `format!`).
pub fn push_u64(row: &mut Vec<u8>, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    loop {
        at -= 1;
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    row.extend_from_slice(&digits[at..]);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(s: &str) -> String {
        let mut row = Vec::new();
        push_field(&mut row, s);
        String::from_utf8(row).unwrap()
    }

    #[test]
    fn quotes_only_when_needed_and_doubles_quotes() {
        assert_eq!(field("plain text"), "plain text");
        assert_eq!(field("a,b"), "\"a,b\"");
        assert_eq!(field("7\" frame"), "\"7\"\" frame\"");
        assert_eq!(field("\"x\""), "\"\"\"x\"\"\"");
        assert_eq!(field("line\nbreak"), "\"line\nbreak\"");
        assert_eq!(field(""), "");
    }

    #[test]
    fn formats_numbers() {
        let mut row = Vec::new();
        push_u64(&mut row, 0);
        row.push(b' ');
        push_u64(&mut row, 18446744073709551615);
        assert_eq!(String::from_utf8(row).unwrap(), "0 18446744073709551615");
    }
}
