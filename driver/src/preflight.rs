//! Checks the vendor files of a run before anything is loaded (DESIGN.md 2.3, "Unusable files
//! fail loudly"): a file that is missing, empty, not text, or without the required header
//! columns fails the run up front, naming the file and the problem, and the warehouse is not
//! touched. Row-level problems are the jobs' business (rejects); this only looks at the head of
//! each file, so it costs one small read per file whatever its size.

use async_compression::tokio::bufread::GzipDecoder;
use tokio::io::{AsyncRead, AsyncReadExt, BufReader};

use crate::error::{ExitCode, ExitStatus};
use crate::store::{ObjectStore, ObjectUri, StoreError};

/// How much of the (decompressed) head of a file is read: enough for the header and a record.
const SAMPLE_BYTES: usize = 256 * 1024;

/// One vendor input: its file name and the header columns the pipeline needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InputSpec {
    pub name: &'static str,
    pub required_columns: &'static [&'static str],
}

pub const MOVIE_REVIEW: InputSpec =
    InputSpec { name: "movie_review.csv", required_columns: &["cid", "review_str", "id_review"] };
pub const LOG_REVIEWS: InputSpec = InputSpec { name: "log_reviews.csv", required_columns: &["id_review", "log"] };
pub const USER_PURCHASE: InputSpec = InputSpec {
    name: "user_purchase.csv",
    required_columns: &[
        "InvoiceNo",
        "StockCode",
        "Description",
        "Quantity",
        "InvoiceDate",
        "UnitPrice",
        "CustomerID",
        "Country",
    ],
};

/// What is wrong with a file as a whole.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Problem {
    #[error("the file does not exist")]
    Missing,
    #[error("both {0}.csv and {0}.csv.gz exist; keep exactly one of them")]
    Ambiguous(String),
    #[error("the file is empty")]
    Empty,
    #[error("the file has a header but no data rows: a vendor file with no records is not loaded as an empty day")]
    HeaderOnly,
    #[error("the file is not text ({0})")]
    NotText(String),
    #[error("{0}")]
    Parts(String),
    #[error("the header lacks the required column(s) {missing:?} (found {found:?}); the vendor format changed or this is the wrong file")]
    MissingColumns { missing: Vec<String>, found: Vec<String> },
}

#[derive(Debug, thiserror::Error)]
pub enum PreflightError {
    #[error("input {uri} is unusable: {problem}. Nothing was loaded; fix or replace the file and rerun the date")]
    Unusable { uri: String, problem: Problem },
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl ExitStatus for PreflightError {
    fn exit_code(&self) -> ExitCode {
        match self {
            PreflightError::Unusable { .. } => ExitCode::BadInput,
            PreflightError::Store(e) => e.exit_code(),
        }
    }
}

/// Finds `<prefix>/<name>` or `<prefix>/<name>.gz` (exactly one of them) in the store.
pub async fn locate(
    store: &dyn ObjectStore,
    prefix: &ObjectUri,
    spec: &InputSpec,
) -> Result<ObjectUri, PreflightError> {
    let plain = prefix.join(spec.name);
    let gz = prefix.join(&format!("{}.gz", spec.name));
    let found = (store.head(&plain).await?.is_some(), store.head(&gz).await?.is_some());
    match found {
        (true, false) => Ok(plain),
        (false, true) => Ok(gz),
        (true, true) => Err(PreflightError::Unusable {
            uri: plain.to_string(),
            problem: Problem::Ambiguous(spec.name.trim_end_matches(".csv").to_string()),
        }),
        (false, false) => Err(PreflightError::Unusable { uri: plain.to_string(), problem: Problem::Missing }),
    }
}

/// Reads the head of `uri` and checks it against `spec`.
pub async fn check(store: &dyn ObjectStore, uri: &ObjectUri, spec: &InputSpec) -> Result<(), PreflightError> {
    let unusable = |problem| PreflightError::Unusable { uri: uri.to_string(), problem };
    let reader = match store.reader(uri).await {
        Ok(reader) => reader,
        Err(StoreError::NotFound { .. }) => return Err(unusable(Problem::Missing)),
        Err(e) => return Err(e.into()),
    };
    check_reader(reader, uri.key.ends_with(".gz"), spec).await.map_err(unusable)
}

/// Checks the head of a stream (gzipped or not) against `spec`.
pub async fn check_reader(reader: impl AsyncRead + Send + Unpin, gzip: bool, spec: &InputSpec) -> Result<(), Problem> {
    let (sample, complete) = read_head(reader, gzip).await.map_err(Problem::NotText)?;
    check_head(&sample, complete, spec)
}

/// Up to SAMPLE_BYTES of the decompressed head; `complete` when that is the whole file.
async fn read_head(reader: impl AsyncRead + Send + Unpin, gzip: bool) -> Result<(Vec<u8>, bool), String> {
    let mut reader: Box<dyn AsyncRead + Send + Unpin> = if gzip {
        let mut decoder = GzipDecoder::new(BufReader::new(reader));
        decoder.multiple_members(true);
        Box::new(decoder)
    } else {
        Box::new(reader)
    };
    let mut sample = Vec::with_capacity(SAMPLE_BYTES);
    let mut limited = (&mut reader).take(SAMPLE_BYTES as u64 + 1);
    limited.read_to_end(&mut sample).await.map_err(|e| {
        if gzip {
            format!("not a valid gzip file: {e}")
        } else {
            e.to_string()
        }
    })?;
    let complete = sample.len() <= SAMPLE_BYTES;
    sample.truncate(SAMPLE_BYTES);
    Ok((sample, complete))
}

/// The pure check of a file's head: text, a header with the required columns, and at least one
/// record after it. `complete` says whether `head` is the whole file.
pub fn check_head(head: &[u8], complete: bool, spec: &InputSpec) -> Result<(), Problem> {
    if head.is_empty() {
        return Err(Problem::Empty);
    }
    if head.contains(&0) {
        return Err(Problem::NotText("it contains NUL bytes: a binary file?".into()));
    }
    if let Err(e) = std::str::from_utf8(head) {
        // A multi-byte character cut by the sample boundary is fine; anything else is not UTF-8.
        if e.error_len().is_some() || complete {
            return Err(Problem::NotText(format!("invalid UTF-8 at byte {}", e.valid_up_to())));
        }
    }
    let head = head.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(head);
    let mut csv = csv::ReaderBuilder::new().has_headers(true).flexible(true).from_reader(head);
    let found: Vec<String> = match csv.headers() {
        Ok(headers) => headers.iter().map(|h| h.trim().to_string()).collect(),
        Err(e) => return Err(Problem::NotText(format!("the header is not CSV: {e}"))),
    };
    let missing: Vec<String> = spec
        .required_columns
        .iter()
        .filter(|col| !found.iter().any(|f| f == *col))
        .map(|col| col.to_string())
        .collect();
    if !missing.is_empty() {
        return Err(Problem::MissingColumns { missing, found });
    }
    let mut record = csv::ByteRecord::new();
    match csv.read_byte_record(&mut record) {
        Ok(true) => Ok(()),
        // No record in the whole file: header only.
        Ok(false) if complete => Err(Problem::HeaderOnly),
        // The sample ended inside the first record: there is data.
        Ok(false) | Err(_) if !complete => Ok(()),
        Ok(false) => Err(Problem::HeaderOnly),
        Err(e) => Err(Problem::NotText(format!("the first record is not CSV: {e}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::local::LocalStore;
    use bytes::Bytes;
    use std::io::Write;

    #[test]
    fn accepts_a_vendor_file() {
        let head = b"cid,review_str,id_review\n13756,\"Good, \"\"really\"\" <br />good\",1\n";
        assert_eq!(check_head(head, true, &MOVIE_REVIEW), Ok(()));
        // Columns are found by name, in any order, with a BOM and CRLF.
        let head = "\u{feff}id_review,cid,review_str\r\n1,2,x\r\n".as_bytes();
        assert_eq!(check_head(head, true, &MOVIE_REVIEW), Ok(()));
    }

    #[test]
    fn names_what_is_wrong() {
        assert_eq!(check_head(b"", true, &LOG_REVIEWS), Err(Problem::Empty));
        assert_eq!(check_head(b"id_review,log\n", true, &LOG_REVIEWS), Err(Problem::HeaderOnly));
        assert!(matches!(check_head(b"\x1f\x8b\x08\x00\x00", true, &LOG_REVIEWS), Err(Problem::NotText(_))));
        assert!(matches!(check_head(b"id_review,log\n1,\xff\xfe\n", true, &LOG_REVIEWS), Err(Problem::NotText(_))));
        let err = check_head(b"review_id,xml\n1,<a/>\n", true, &LOG_REVIEWS).unwrap_err();
        assert_eq!(
            err,
            Problem::MissingColumns {
                missing: vec!["id_review".into(), "log".into()],
                found: vec!["review_id".into(), "xml".into()]
            }
        );
    }

    #[test]
    fn a_sample_cut_inside_a_record_or_a_character_is_not_an_error() {
        let head = "id_review,log\n1,\"<reviewlog>é".as_bytes();
        let cut = &head[..head.len() - 1]; // half of the two-byte é
        assert_eq!(check_head(cut, false, &LOG_REVIEWS), Ok(()));
    }

    #[tokio::test]
    async fn locates_and_checks_files_in_a_store() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::new(dir.path());
        let prefix = ObjectUri::parse("s3://raw/incoming/dt=2021-10-31").unwrap();

        let missing = locate(&store, &prefix, &LOG_REVIEWS).await.unwrap_err();
        assert!(missing.to_string().contains("log_reviews.csv is unusable: the file does not exist"), "{missing}");

        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(b"id_review,log\n1,<reviewlog/>\n").unwrap();
        let uri = prefix.join("log_reviews.csv.gz");
        store.put_bytes(&uri, Bytes::from(gz.finish().unwrap())).await.unwrap();
        assert_eq!(locate(&store, &prefix, &LOG_REVIEWS).await.unwrap(), uri);
        check(&store, &uri, &LOG_REVIEWS).await.unwrap();

        let bad = prefix.join("movie_review.csv.gz");
        store.put_bytes(&bad, Bytes::from_static(b"cid,review_str,id_review\n1,x,1\n")).await.unwrap();
        let err = check(&store, &bad, &MOVIE_REVIEW).await.unwrap_err();
        assert!(err.to_string().contains("not a valid gzip file"), "{err}");
        assert_eq!(err.exit_code(), ExitCode::BadInput);
    }
}
