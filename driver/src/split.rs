//! Cuts a vendor CSV into record-aligned parts (issue #14), streaming: a gzipped CSV is one
//! Spark task whatever the cluster (gzip does not split, and `multiLine` CSV never splits), so
//! `ingest` cuts each vendor file into parts of about `ingest.part_size_mb` that Spark reads as
//! one task each.
//!
//! Records are found with `csv_core`, the parser under the `csv` crate (RFC 4180: a quoted
//! field may hold commas, doubled quotes, CR and LF), so a cut never falls inside a record.
//! Every part starts with the file's header record, byte for byte (a BOM included), so the
//! parts all have the same header and the concatenation of the parts without their repeated
//! headers is the original file. A part is closed once it holds `part_size` bytes or more (the
//! record that crosses the size stays whole: a record bigger than the part size is a part of
//! its own); blank lines between records go with the record before them.
//!
//! Memory is bounded whatever the file size: one read buffer, a scratch buffer the parser
//! writes field bytes into (discarded), the header, and what the sink keeps (a gzip encoder).

use std::io::{self, BufRead, Read};

use sha2::{Digest, Sha256};

/// The longest header record accepted: a header is a line of column names, not data.
pub const MAX_HEADER_BYTES: usize = 1 << 20;

/// A file at least this big is cut into two parts at least (see [`balanced_part_size`]).
pub const MIN_SPLIT_BYTES: u64 = 8 << 20;

/// The part size that cuts a file of about `estimate` bytes into an even number of parts of
/// about the same size, none much bigger than `part_size` (pure).
///
/// Spark packs a folder's gzipped parts into tasks by their compressed size and runs a
/// gzipped part as one task: parts of one size, two or an even number of them, give every
/// core the same share. Cut at a fixed size, the 100,000 logs (21 MiB) were one part (one
/// core parsed them, or a shuffle spread them) and 88 MiB of reviews three parts of 32, 32
/// and 24 MiB, which Spark ran as two tasks of 36% and 64% of the records. A file of at least
/// [`MIN_SPLIT_BYTES`] is cut in two at least. The estimate only shapes the cut: wrong, it
/// gives more or fewer parts, never a wrong one.
pub fn balanced_part_size(part_size: u64, estimate: u64) -> u64 {
    let part_size = part_size.max(1);
    let mut parts = estimate.div_ceil(part_size).max(1);
    if estimate >= MIN_SPLIT_BYTES {
        parts = parts.max(2);
    }
    if parts > 1 && parts % 2 == 1 {
        parts += 1;
    }
    estimate.div_ceil(parts).clamp(1, part_size)
}

/// Where the parts go: told when a part begins, given its bytes in order, told when it ends.
pub trait PartSink {
    /// What the sink reports about a finished part (e.g. the gzipped object's digest).
    type Done;
    fn begin(&mut self, index: usize) -> io::Result<()>;
    fn write(&mut self, bytes: &[u8]) -> io::Result<()>;
    fn finish(&mut self) -> io::Result<Self::Done>;
}

/// One part, as the splitter saw it (uncompressed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartStats<D> {
    pub index: usize,
    /// Records after the header.
    pub rows: u64,
    /// Bytes of the part, header included, before compression.
    pub bytes: u64,
    /// sha256 (hex) of those bytes: what identifies the part's content.
    pub sha256: String,
    pub done: D,
}

/// The whole file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SplitSummary<D> {
    /// sha256 (hex) of the file as given (compressed, if it was).
    pub source_sha256: String,
    /// Bytes of the file as given.
    pub source_bytes: u64,
    /// Records after the header, over all parts.
    pub records: u64,
    pub parts: Vec<PartStats<D>>,
}

/// `part-00000.csv.gz`: the name of part `index` in the input's folder.
pub fn part_name(index: usize) -> String {
    format!("part-{index:05}.csv.gz")
}

/// Counts and hashes the bytes read through it (the file as given).
struct Hashing<R> {
    inner: R,
    hasher: Sha256,
    bytes: u64,
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }
}

/// The part being written.
struct Open {
    index: usize,
    rows: u64,
    bytes: u64,
    hasher: Sha256,
}

struct Splitter<'s, S: PartSink> {
    sink: &'s mut S,
    part_size: u64,
    header: Vec<u8>,
    open: Option<Open>,
    /// The open part reached the part size: the next record starts a new part.
    full: bool,
    next_index: usize,
    parts: Vec<PartStats<S::Done>>,
    records: u64,
}

impl<S: PartSink> Splitter<'_, S> {
    fn write_open(&mut self, bytes: &[u8]) -> io::Result<()> {
        if bytes.is_empty() {
            return Ok(());
        }
        let open = self.open.as_mut().expect("a part is open");
        open.bytes += bytes.len() as u64;
        open.hasher.update(bytes);
        self.sink.write(bytes)
    }

    fn begin(&mut self) -> io::Result<()> {
        let index = self.next_index;
        self.next_index += 1;
        self.sink.begin(index)?;
        self.open = Some(Open { index, rows: 0, bytes: 0, hasher: Sha256::new() });
        self.full = false;
        let header = std::mem::take(&mut self.header);
        let written = self.write_open(&header);
        self.header = header;
        written
    }

    fn close(&mut self) -> io::Result<()> {
        if let Some(open) = self.open.take() {
            let done = self.sink.finish()?;
            self.parts.push(PartStats {
                index: open.index,
                rows: open.rows,
                bytes: open.bytes,
                sha256: hex::encode(open.hasher.finalize()),
                done,
            });
        }
        Ok(())
    }

    /// Bytes of a data record (or of the blank lines before it). While the open part is full,
    /// line ends still go to it; the first other byte is the start of a record: a new part.
    fn data(&mut self, mut bytes: &[u8]) -> io::Result<()> {
        if self.full {
            let ends = bytes.iter().take_while(|b| **b == b'\n' || **b == b'\r').count();
            self.write_open(&bytes[..ends])?;
            bytes = &bytes[ends..];
            if bytes.is_empty() {
                return Ok(());
            }
            self.close()?;
        }
        if self.open.is_none() {
            self.begin()?;
        }
        self.write_open(bytes)
    }

    fn record_ended(&mut self) {
        self.records += 1;
        let open = self.open.as_mut().expect("a record is written to an open part");
        open.rows += 1;
        if open.bytes >= self.part_size {
            self.full = true;
        }
    }
}

/// Splits the CSV read from `raw` (gzipped when `gz`) into parts of about `part_size` bytes,
/// handing them to `sink`. An empty file gives no part; a header-only file one part holding
/// the header.
pub fn split<R: Read, S: PartSink>(
    raw: R,
    gz: bool,
    part_size: u64,
    sink: &mut S,
) -> io::Result<SplitSummary<S::Done>> {
    let mut hashing = Hashing { inner: raw, hasher: Sha256::new(), bytes: 0 };
    let (records, parts) = {
        let decoded: Box<dyn Read + '_> =
            if gz { Box::new(flate2::read::MultiGzDecoder::new(&mut hashing)) } else { Box::new(&mut hashing) };
        let mut input = io::BufReader::with_capacity(1 << 16, decoded);
        let mut splitter = Splitter {
            sink,
            part_size: part_size.max(1),
            header: Vec::new(),
            open: None,
            full: false,
            next_index: 0,
            parts: Vec::new(),
            records: 0,
        };
        let mut parser = csv_core::ReaderBuilder::new().quote(b'"').double_quote(true).build();
        // Field bytes and field ends are of no interest: the parser writes them here, again
        // and again.
        let mut scratch = vec![0u8; 1 << 16];
        let mut ends = vec![0usize; 1024];
        let mut in_header = true;
        let mut header_cr = false;
        loop {
            let chunk = input.fill_buf()?;
            let (result, nin, _, _) = parser.read_record(chunk, &mut scratch, &mut ends);
            let consumed = &chunk[..nin];
            if in_header {
                splitter.header.extend_from_slice(consumed);
            } else if header_cr && !consumed.is_empty() {
                // The parser ends a record at the CR of a CRLF: the LF is still the header's.
                header_cr = false;
                let lf = usize::from(consumed.first() == Some(&b'\n'));
                splitter.header.extend_from_slice(&consumed[..lf]);
                splitter.data(&consumed[lf..])?;
                if splitter.header.len() > MAX_HEADER_BYTES {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("the header record is longer than {MAX_HEADER_BYTES} bytes: this is not a vendor CSV"),
                    ));
                }
            } else {
                splitter.data(consumed)?;
            }
            input.consume(nin);
            match result {
                csv_core::ReadRecordResult::InputEmpty
                | csv_core::ReadRecordResult::OutputFull
                | csv_core::ReadRecordResult::OutputEndsFull => {}
                csv_core::ReadRecordResult::Record if in_header => {
                    in_header = false;
                    header_cr = splitter.header.last() == Some(&b'\r');
                }
                csv_core::ReadRecordResult::Record => splitter.record_ended(),
                csv_core::ReadRecordResult::End => break,
            }
        }
        // Header only (or blank lines only): one part of just that, so nothing is lost.
        if splitter.parts.is_empty() && splitter.open.is_none() && !splitter.header.is_empty() {
            splitter.begin()?;
        }
        splitter.close()?;
        (splitter.records, splitter.parts)
    };
    // Read what the decoder left (a gzip trailer) so the digest covers the whole file.
    io::copy(&mut hashing, &mut io::sink())?;
    Ok(SplitSummary {
        source_sha256: hex::encode(hashing.hasher.finalize()),
        source_bytes: hashing.bytes,
        records,
        parts,
    })
}

/// A sink that keeps nothing: the parts' digests and rows without writing them anywhere
/// (what `render` and `run --dry-run` compute for a folder of vendor files).
pub struct Discard;

impl PartSink for Discard {
    type Done = ();
    fn begin(&mut self, _index: usize) -> io::Result<()> {
        Ok(())
    }
    fn write(&mut self, _bytes: &[u8]) -> io::Result<()> {
        Ok(())
    }
    fn finish(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// What a gzipped part file is: its size and sha256 as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GzPart {
    pub path: std::path::PathBuf,
    pub gz_bytes: u64,
    pub gz_sha256: String,
}

/// Writes each part gzipped into a folder, as `part-00000.csv.gz`... The gzip header carries
/// no name and no time, so the same content always gives the same bytes. Level 1 (fast): on
/// the real movie_review.csv it cuts and compresses in 1.2 s against 4.4 s at level 6, for
/// parts of 13 MB instead of 6.7 MB, which the jobs read as fast.
pub struct GzFiles {
    dir: std::path::PathBuf,
    level: flate2::Compression,
    current: Option<(std::path::PathBuf, flate2::write::GzEncoder<HashingWriter<io::BufWriter<std::fs::File>>>)>,
}

impl GzFiles {
    pub fn new(dir: &std::path::Path) -> Self {
        GzFiles { dir: dir.to_path_buf(), level: flate2::Compression::fast(), current: None }
    }
}

/// Counts and hashes what is written through it (the gzipped part).
pub struct HashingWriter<W> {
    inner: W,
    hasher: Sha256,
    bytes: u64,
}

impl<W: io::Write> io::Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

impl PartSink for GzFiles {
    type Done = GzPart;
    fn begin(&mut self, index: usize) -> io::Result<()> {
        let path = self.dir.join(part_name(index));
        let file = io::BufWriter::with_capacity(1 << 16, std::fs::File::create(&path)?);
        let writer = HashingWriter { inner: file, hasher: Sha256::new(), bytes: 0 };
        let encoder = flate2::GzBuilder::new().mtime(0).write(writer, self.level);
        self.current = Some((path, encoder));
        Ok(())
    }
    fn write(&mut self, bytes: &[u8]) -> io::Result<()> {
        let (_, encoder) = self.current.as_mut().expect("a part is open");
        io::Write::write_all(encoder, bytes)
    }
    fn finish(&mut self) -> io::Result<GzPart> {
        let (path, encoder) = self.current.take().expect("a part is open");
        let mut writer = encoder.finish()?;
        io::Write::flush(&mut writer)?;
        Ok(GzPart { path, gz_bytes: writer.bytes, gz_sha256: hex::encode(writer.hasher.finalize()) })
    }
}

/// Like [`GzFiles`], but each part is compressed on a thread of its own, up to `threads`
/// parts at once, while the splitter reads on: gzip is most of a part's cost (1M reviews: 3.3 s
/// for 930 MB cut and compressed on one core) and the parts are independent. The files hold
/// the same bytes once gunzipped as [`GzFiles`]' and are as deterministic (same level, no
/// name, no time, the same chunks for the same file); the gzip streams themselves may differ
/// from [`GzFiles`]', whose encoder is given a record at a time. Memory stays bounded: each
/// compressing part holds at most [`ParallelGzFiles::QUEUED_CHUNKS`] chunks of
/// [`ParallelGzFiles::CHUNK_BYTES`] besides its encoder. The parts' files come with
/// [`SplitSummary::written`].
pub struct ParallelGzFiles {
    dir: std::path::PathBuf,
    threads: usize,
    /// How many parts are being compressed, and the signal that one finished.
    running: std::sync::Arc<(std::sync::Mutex<usize>, std::sync::Condvar)>,
    current: Option<(std::sync::mpsc::SyncSender<Vec<u8>>, CompressingThread)>,
    /// The open part's bytes not sent yet.
    chunk: Vec<u8>,
}

type CompressingThread = std::thread::JoinHandle<io::Result<GzPart>>;

/// A part being compressed on its thread.
#[derive(Debug)]
pub struct PendingGz(CompressingThread);

impl PendingGz {
    /// The part's file, once its thread has written it.
    pub fn wait(self) -> io::Result<GzPart> {
        self.0.join().unwrap_or_else(|_| Err(io::Error::other("the thread compressing a part panicked (a bug)")))
    }
}

impl SplitSummary<PendingGz> {
    /// The same summary once every part's file is written (or the first part's error).
    pub fn written(self) -> io::Result<SplitSummary<GzPart>> {
        let parts = self
            .parts
            .into_iter()
            .map(|p| {
                Ok(PartStats { done: p.done.wait()?, index: p.index, rows: p.rows, bytes: p.bytes, sha256: p.sha256 })
            })
            .collect::<io::Result<_>>()?;
        Ok(SplitSummary {
            parts,
            source_sha256: self.source_sha256,
            source_bytes: self.source_bytes,
            records: self.records,
        })
    }
}

impl ParallelGzFiles {
    /// Chunks queued for a part's thread, at most.
    pub const QUEUED_CHUNKS: usize = 4;
    /// Bytes gathered before a chunk is sent.
    pub const CHUNK_BYTES: usize = 256 << 10;

    fn send_chunk(&mut self) -> io::Result<()> {
        let chunk = std::mem::replace(&mut self.chunk, Vec::with_capacity(Self::CHUNK_BYTES));
        let (chunks, _) = self.current.as_ref().expect("a part is open");
        if chunks.send(chunk).is_ok() {
            return Ok(());
        }
        // The thread stopped early: its error is the part's.
        let (_, thread) = self.current.take().expect("a part is open");
        Err(PendingGz(thread).wait().err().unwrap_or_else(|| io::Error::other("a part's thread stopped early")))
    }

    pub fn new(dir: &std::path::Path, threads: usize) -> Self {
        ParallelGzFiles {
            dir: dir.to_path_buf(),
            threads: threads.max(1),
            running: std::sync::Arc::new((std::sync::Mutex::new(0), std::sync::Condvar::new())),
            current: None,
            chunk: Vec::with_capacity(Self::CHUNK_BYTES),
        }
    }

    /// One thread per available CPU, two at most (the other vendor file is cut beside).
    pub fn for_this_machine(dir: &std::path::Path) -> Self {
        let cpus = std::thread::available_parallelism().map_or(1, usize::from);
        ParallelGzFiles::new(dir, cpus.min(2))
    }
}

impl PartSink for ParallelGzFiles {
    type Done = PendingGz;
    fn begin(&mut self, index: usize) -> io::Result<()> {
        let (count, finished) = &*self.running;
        let mut running = count.lock().unwrap_or_else(|p| p.into_inner());
        while *running >= self.threads {
            running = finished.wait(running).unwrap_or_else(|p| p.into_inner());
        }
        *running += 1;
        drop(running);
        let (chunks, received) = std::sync::mpsc::sync_channel::<Vec<u8>>(Self::QUEUED_CHUNKS);
        let mut part = GzFiles::new(&self.dir);
        let running = std::sync::Arc::clone(&self.running);
        let compress = move || -> io::Result<GzPart> {
            let written = (|| {
                part.begin(index)?;
                for chunk in received {
                    part.write(&chunk)?;
                }
                part.finish()
            })();
            let (count, finished) = &*running;
            *count.lock().unwrap_or_else(|p| p.into_inner()) -= 1;
            finished.notify_all();
            written
        };
        let thread = std::thread::Builder::new().name(format!("gzip part {index}")).spawn(compress)?;
        self.current = Some((chunks, thread));
        Ok(())
    }
    fn write(&mut self, bytes: &[u8]) -> io::Result<()> {
        // The splitter writes a record at a time: gathered into chunks, so the thread gets a
        // few thousand sends per part, not one per record.
        self.chunk.extend_from_slice(bytes);
        if self.chunk.len() >= Self::CHUNK_BYTES {
            self.send_chunk()?;
        }
        Ok(())
    }
    fn finish(&mut self) -> io::Result<PendingGz> {
        if !self.chunk.is_empty() {
            self.send_chunk()?;
        }
        let (chunks, thread) = self.current.take().expect("a part is open");
        drop(chunks);
        Ok(PendingGz(thread))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Keeps every part in memory, for the tests.
    #[derive(Default)]
    struct Collect {
        parts: Vec<Vec<u8>>,
    }

    impl PartSink for Collect {
        type Done = ();
        fn begin(&mut self, index: usize) -> io::Result<()> {
            assert_eq!(index, self.parts.len(), "parts come in order");
            self.parts.push(Vec::new());
            Ok(())
        }
        fn write(&mut self, bytes: &[u8]) -> io::Result<()> {
            self.parts.last_mut().unwrap().extend_from_slice(bytes);
            Ok(())
        }
        fn finish(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn balanced_parts_are_an_even_number_of_about_one_size() {
        const MIB: u64 = 1 << 20;
        // The real night at 32 MiB: logs in two halves, reviews in four quarters.
        assert_eq!(balanced_part_size(32 * MIB, 21_713_304), 10_856_652);
        assert_eq!(balanced_part_size(32 * MIB, 92_257_872), 23_064_468);
        // Small files stay whole; from MIN_SPLIT_BYTES on, two parts at least.
        assert_eq!(balanced_part_size(32 * MIB, 3 * MIB), 3 * MIB);
        assert_eq!(balanced_part_size(32 * MIB, MIN_SPLIT_BYTES), MIN_SPLIT_BYTES / 2);
        // Never bigger than the part size; an odd count is made even.
        assert_eq!(balanced_part_size(10, 100), 10);
        assert_eq!(balanced_part_size(10, 90), 9); // 9 parts of 10 -> 10 parts of 9
        assert_eq!(balanced_part_size(32 * MIB, 0), 1);
        assert_eq!(balanced_part_size(0, 5), 1);
        for (size, estimate) in [(7, 1000), (32 * MIB, 927_509_348), (1, 3), (1000, 999)] {
            let part = balanced_part_size(size, estimate);
            assert!((1..=size).contains(&part), "{size} {estimate}: {part}");
        }
    }

    fn split_text(text: &str, part_size: u64) -> (SplitSummary<()>, Vec<String>) {
        let mut sink = Collect::default();
        let summary = split(text.as_bytes(), false, part_size, &mut sink).unwrap();
        let parts = sink.parts.into_iter().map(|p| String::from_utf8(p).unwrap()).collect();
        (summary, parts)
    }

    /// The parts without their headers, after the first part's: the original file.
    fn rejoin(parts: &[String], header: &str) -> String {
        let mut out = String::new();
        for (i, part) in parts.iter().enumerate() {
            assert!(part.starts_with(header), "part {i} starts with the header: {part:?}");
            out.push_str(if i == 0 { part } else { &part[header.len()..] });
        }
        out
    }

    fn records(text: &str) -> u64 {
        crate::ingest::count_records(text.as_bytes(), false).unwrap()
    }

    #[test]
    fn cuts_only_between_records_with_the_header_in_every_part() {
        let header = "cid,review_str,id_review\n";
        let text = format!(
            "{header}1,\"good\nreally \"\"good\"\", yes\",1\n2,plain,2\n3,\"a,\nb\n\nc\",3\n4,\"\"\"\",4\n5,x,5\n"
        );
        for size in [1, 10, 30, 45, 60, 1000] {
            let (summary, parts) = split_text(&text, size);
            assert_eq!(rejoin(&parts, header), text, "size {size}");
            assert_eq!(summary.records, 5, "size {size}");
            assert_eq!(summary.parts.iter().map(|p| p.rows).sum::<u64>(), 5);
            for (part, stats) in parts.iter().zip(&summary.parts) {
                // Each part is a CSV of its own whose record count the csv crate agrees with.
                assert_eq!(records(part), stats.rows, "size {size}: {part:?}");
                assert_eq!(stats.bytes, part.len() as u64);
                assert_eq!(stats.sha256, hex::encode(Sha256::digest(part.as_bytes())));
                assert!(stats.rows >= 1, "no part without a record: {part:?}");
            }
        }
        // Size 1: every record is a part of its own; the quoted newlines stay inside theirs.
        let (_, parts) = split_text(&text, 1);
        assert_eq!(parts.len(), 5);
        assert_eq!(parts[2], format!("{header}3,\"a,\nb\n\nc\",3\n"));
        assert_eq!(parts[3], format!("{header}4,\"\"\"\",4\n"));
    }

    /// Hands out one byte per read: every chunk boundary falls everywhere once (inside a
    /// quoted field, between the CR and the LF of a line end, inside the BOM).
    struct OneByte<'a>(&'a [u8]);

    impl Read for OneByte<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            match (self.0.split_first(), buf.is_empty()) {
                (Some((b, rest)), false) => {
                    buf[0] = *b;
                    self.0 = rest;
                    Ok(1)
                }
                _ => Ok(0),
            }
        }
    }

    #[test]
    fn cuts_are_the_same_whatever_the_reads_return() {
        let header = "\u{feff}cid,review_str,id_review\r\n";
        let text = format!("{header}1,\"a\r\nb \"\"q\"\"\",1\r\n\r\n2,x,2\r\n3,\"\",3\r\n");
        for size in [1, 20, 40, 1000] {
            let (whole, parts) = split_text(&text, size);
            let mut sink = Collect::default();
            let bytewise = split(OneByte(text.as_bytes()), false, size, &mut sink).unwrap();
            assert_eq!(bytewise, whole, "size {size}");
            let bytewise: Vec<String> = sink.parts.into_iter().map(|p| String::from_utf8(p).unwrap()).collect();
            assert_eq!(bytewise, parts, "size {size}");
            assert_eq!(rejoin(&parts, header), text);
        }
    }

    #[test]
    fn crlf_line_ends_stay_whole() {
        let header = "id_review,log\r\n";
        let text = format!("{header}1,\"<a>\r\n</a>\"\r\n2,<b/>\r\n3,<c/>\r\n");
        let (summary, parts) = split_text(&text, 20);
        assert_eq!(rejoin(&parts, header), text);
        assert!(parts.iter().all(|p| p.ends_with("\r\n")), "{parts:?}");
        assert_eq!(parts[0], format!("{header}1,\"<a>\r\n</a>\"\r\n"));
        assert_eq!(summary.records, 3);
    }

    #[test]
    fn a_record_bigger_than_the_part_size_stays_whole_and_closes_its_part() {
        let header = "id_review,log\n";
        let big = "x,\n\"".repeat(2000);
        let big = format!("\"{}\"", big.replace('"', "\"\""));
        let text = format!("{header}1,a\n2,{big}\n3,b\n4,c\n");
        let (summary, parts) = split_text(&text, 100);
        assert_eq!(parts.len(), 2, "{parts:?}");
        assert_eq!(parts[0], format!("{header}1,a\n2,{big}\n"));
        assert_eq!(parts[1], format!("{header}3,b\n4,c\n"));
        assert_eq!(summary.parts.iter().map(|p| p.rows).collect::<Vec<_>>(), vec![2, 2]);
        assert_eq!(rejoin(&parts, header), text);
        // First in the file, it is a part of its own.
        let text = format!("{header}2,{big}\n3,b\n");
        let (_, parts) = split_text(&text, 100);
        assert_eq!(parts, vec![format!("{header}2,{big}\n"), format!("{header}3,b\n")]);
    }

    #[test]
    fn empty_header_only_and_no_final_newline() {
        let (summary, parts) = split_text("", 10);
        assert!(parts.is_empty() && summary.records == 0 && summary.source_bytes == 0);
        let (summary, parts) = split_text("id_review,log\n", 10);
        assert_eq!(parts, vec!["id_review,log\n".to_string()]);
        assert_eq!(summary.records, 0);
        let (summary, parts) = split_text("id_review,log\n1,a\n2,b", 1);
        assert_eq!(parts, vec!["id_review,log\n1,a\n".to_string(), "id_review,log\n2,b".to_string()]);
        assert_eq!(summary.records, 2);
    }

    #[test]
    fn a_byte_order_mark_is_part_of_every_header_and_blank_lines_are_no_records() {
        let header = "\u{feff}id_review,log\n";
        let text = format!("{header}1,a\n\n\n2,b\n\n");
        let (summary, parts) = split_text(&text, 1);
        assert_eq!(parts, vec![format!("{header}1,a\n\n\n"), format!("{header}2,b\n\n")]);
        assert_eq!(rejoin(&parts, header), text);
        assert_eq!(summary.records, records(&text));
        assert_eq!(summary.records, 2);
    }

    #[test]
    fn reads_gzip_and_digests_the_file_as_given() {
        let text = "id_review,log\n1,a\n2,b\n3,c\n";
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        io::Write::write_all(&mut gz, text.as_bytes()).unwrap();
        let gz = gz.finish().unwrap();
        let mut sink = Collect::default();
        let summary = split(&gz[..], true, 18, &mut sink).unwrap();
        assert_eq!(summary.source_sha256, hex::encode(Sha256::digest(&gz)));
        assert_eq!(summary.source_bytes, gz.len() as u64);
        assert_eq!(summary.records, 3);
        assert_eq!(sink.parts.len(), 3);
        // The same content gives the same part digests, compressed or not.
        let (plain, _) = split_text(text, 18);
        let digests = |s: &SplitSummary<()>| s.parts.iter().map(|p| p.sha256.clone()).collect::<Vec<_>>();
        assert_eq!(digests(&summary), digests(&plain));
    }

    #[test]
    fn gz_parts_are_deterministic_files() {
        let dir = tempfile::tempdir().unwrap();
        let text = "id_review,log\n1,a\n2,b\n";
        let mut sink = GzFiles::new(dir.path());
        let summary = split(text.as_bytes(), false, 1, &mut sink).unwrap();
        assert_eq!(summary.parts.len(), 2);
        let first = &summary.parts[0].done;
        assert_eq!(first.path, dir.path().join("part-00000.csv.gz"));
        let bytes = std::fs::read(&first.path).unwrap();
        assert_eq!(first.gz_sha256, hex::encode(Sha256::digest(&bytes)));
        let mut decoded = String::new();
        flate2::read::GzDecoder::new(&bytes[..]).read_to_string(&mut decoded).unwrap();
        assert_eq!(decoded, "id_review,log\n1,a\n");
        let again = split(text.as_bytes(), false, 1, &mut GzFiles::new(dir.path())).unwrap();
        assert_eq!(again.parts[0].done.gz_sha256, first.gz_sha256);
    }

    #[test]
    fn parts_compressed_on_threads_are_the_same_files() {
        // Enough records for many parts and many chunks per part (the splitter's reads).
        let mut text = String::from("id_review,log\n");
        for i in 0..40_000 {
            text.push_str(&format!("{i},\"<log><os>Linux {i}</os>\n<device>Mobile</device></log>\"\n"));
        }
        let (one, many) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let serial = split(text.as_bytes(), false, 300_000, &mut GzFiles::new(one.path())).unwrap();
        let threaded = |threads| {
            let mut sink = ParallelGzFiles::new(many.path(), threads);
            split(text.as_bytes(), false, 300_000, &mut sink).unwrap().written().unwrap()
        };
        let written = threaded(3);
        assert!(serial.parts.len() >= 6, "{} parts", serial.parts.len());
        assert_eq!(written.parts.len(), serial.parts.len());
        assert_eq!((written.records, &written.source_sha256), (serial.records, &serial.source_sha256));
        let gunzip = |path: &std::path::Path| {
            let mut text = String::new();
            flate2::read::GzDecoder::new(std::fs::File::open(path).unwrap()).read_to_string(&mut text).unwrap();
            text
        };
        for (part, serial) in written.parts.iter().zip(&serial.parts) {
            assert_eq!((part.index, part.rows, &part.sha256), (serial.index, serial.rows, &serial.sha256));
            let gz = &part.done;
            assert_eq!(gz.path, many.path().join(part_name(serial.index)));
            let bytes = std::fs::read(&gz.path).unwrap();
            assert_eq!((gz.gz_bytes, &gz.gz_sha256), (bytes.len() as u64, &hex::encode(Sha256::digest(&bytes))));
            assert_eq!(gunzip(&gz.path), gunzip(&serial.done.path));
        }
        // Deterministic: the same files with another number of threads.
        let digests =
            |summary: &SplitSummary<GzPart>| summary.parts.iter().map(|p| p.done.gz_sha256.clone()).collect::<Vec<_>>();
        assert_eq!(digests(&threaded(2)), digests(&written));
    }

    #[test]
    fn a_part_that_cannot_be_written_is_the_error() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("not-there");
        let text = "id_review,log\n1,a\n2,b\n";
        let error = split(text.as_bytes(), false, 1, &mut ParallelGzFiles::new(&missing, 2))
            .and_then(SplitSummary::written)
            .unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::NotFound, "{error}");
    }
}
