//! `S3Store` against a real moto server over HTTP: every operation of the trait, listing
//! pagination, multipart uploads (and their abort on failure), conditional writes, and the
//! error classification of a missing bucket and an unreachable endpoint.

use crate::support;

use std::collections::BTreeMap;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::context::{
    BeforeDeserializationInterceptorContextRef, BeforeTransmitInterceptorContextRef,
};
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;
use bytes::Bytes;
use emr_driver::aws::{s3_config_builder, sdk_config, AwsSettings};
use emr_driver::store::s3::{S3Store, MIN_PART_SIZE};
use emr_driver::store::{ObjectReader, ObjectStore, ObjectUri, StoreError};
use support::moto::MotoServer;
use support::requests::RequestLog;
use tokio::io::{AsyncRead, AsyncReadExt, ReadBuf};

/// Tracks how many requests are on the wire at once, and the most ever.
#[derive(Debug, Clone, Default)]
struct InFlight(Arc<Mutex<(usize, usize)>>);

impl Intercept for InFlight {
    fn name(&self) -> &'static str {
        "InFlight"
    }

    fn read_before_transmit(
        &self,
        _context: &BeforeTransmitInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let mut counts = self.0.lock().unwrap();
        counts.0 += 1;
        counts.1 = counts.1.max(counts.0);
        Ok(())
    }

    fn read_before_deserialization(
        &self,
        _context: &BeforeDeserializationInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        self.0.lock().unwrap().0 -= 1;
        Ok(())
    }
}

async fn client(endpoint: &str, log: &RequestLog) -> aws_sdk_s3::Client {
    let settings = AwsSettings { region: Some("us-east-1".into()), profile: None, endpoint_url: Some(endpoint.into()) };
    let sdk = sdk_config(&settings).await;
    aws_sdk_s3::Client::from_conf(s3_config_builder(&sdk).interceptor(log.clone()).build())
}

async fn setup(moto: &MotoServer) -> (S3Store, RequestLog) {
    let log = RequestLog::paths();
    let client = client(&moto.endpoint, &log).await;
    client.create_bucket().bucket("raw").send().await.unwrap();
    log.take();
    (S3Store::new(client), log)
}

fn uri(s: &str) -> ObjectUri {
    ObjectUri::parse(s).unwrap()
}

fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8).collect()
}

#[tokio::test]
async fn small_objects_round_trip_and_list_in_pages() {
    let moto = MotoServer::start();
    let (store, log) = setup(&moto).await;
    let store = store.with_list_page_size(2);
    for i in 0..5 {
        store
            .put_bytes(&uri(&format!("s3://raw/incoming/dt=2021-10-31/f{i}.csv")), Bytes::from(format!("row {i}")))
            .await
            .unwrap();
    }
    store.put_bytes(&uri("s3://raw/incoming/dt=2021-11-01/other.csv"), Bytes::from_static(b"x")).await.unwrap();
    log.take();

    let listed = store.list(&uri("s3://raw/incoming/dt=2021-10-31/")).await.unwrap();
    let keys: Vec<String> = listed.iter().map(|m| m.uri.key.clone()).collect();
    let expected: Vec<String> = (0..5).map(|i| format!("incoming/dt=2021-10-31/f{i}.csv")).collect();
    assert_eq!(keys, expected);
    assert_eq!(listed[0].size, 5);
    assert!(listed[0].last_modified.is_some());
    assert_eq!(log.take().len(), 3, "5 keys in pages of 2 take 3 ListObjectsV2 calls");

    let one = uri("s3://raw/incoming/dt=2021-10-31/f3.csv");
    assert_eq!(store.get_bytes(&one).await.unwrap(), Bytes::from_static(b"row 3"));
    let mut text = String::new();
    store.reader(&one).await.unwrap().read_to_string(&mut text).await.unwrap();
    assert_eq!(text, "row 3");
    assert_eq!(store.head(&one).await.unwrap().unwrap().size, 5);

    store.delete(&one).await.unwrap();
    store.delete(&one).await.unwrap();
    assert!(store.head(&one).await.unwrap().is_none());
    assert!(matches!(store.get_bytes(&one).await, Err(StoreError::NotFound { .. })));
    assert!(matches!(store.reader(&one).await, Err(StoreError::NotFound { .. })));
}

#[tokio::test]
async fn put_if_absent_has_one_winner() {
    let moto = MotoServer::start();
    let (store, _log) = setup(&moto).await;
    let lock = uri("s3://raw/_locks/dt=2021-10-31.json");
    assert!(store.put_if_absent(&lock, Bytes::from_static(b"first")).await.unwrap());
    assert!(!store.put_if_absent(&lock, Bytes::from_static(b"second")).await.unwrap());
    assert_eq!(store.get_bytes(&lock).await.unwrap(), Bytes::from_static(b"first"));
    store.delete(&lock).await.unwrap();
    assert!(store.put_if_absent(&lock, Bytes::from_static(b"third")).await.unwrap());
}

#[tokio::test]
async fn put_and_delete_if_match_send_if_match_and_lose_on_a_changed_etag() {
    let moto = MotoServer::start();
    let (store, _log) = setup(&moto).await;
    let lock = uri("s3://raw/_locks/dt=2021-10-31.json");
    assert_eq!(store.get_versioned(&lock).await.unwrap(), None);
    // If-Match on a missing object: 404, so no winner.
    assert_eq!(store.put_if_match(&lock, Bytes::from_static(b"x"), "\"abc\"").await.unwrap(), None);
    assert!(store.put_if_absent(&lock, Bytes::from_static(b"first")).await.unwrap());
    let v1 = store.get_versioned(&lock).await.unwrap().unwrap();
    assert_eq!(v1.body, Bytes::from_static(b"first"));
    assert!(!v1.etag.is_empty());
    let tag = store.put_if_match(&lock, Bytes::from_static(b"second"), &v1.etag).await.unwrap().unwrap();
    // The first version's ETag no longer matches (412): neither a swap nor a delete with it.
    assert_eq!(store.put_if_match(&lock, Bytes::from_static(b"third"), &v1.etag).await.unwrap(), None);
    assert!(!store.delete_if_match(&lock, &v1.etag).await.unwrap());
    let v2 = store.get_versioned(&lock).await.unwrap().unwrap();
    assert_eq!((v2.body.clone(), v2.etag.clone()), (Bytes::from_static(b"second"), tag));
    assert!(store.delete_if_match(&lock, &v2.etag).await.unwrap());
    assert_eq!(store.get_versioned(&lock).await.unwrap(), None);
}

#[tokio::test]
async fn large_files_go_multipart_with_metadata_and_small_ones_in_one_put() {
    let moto = MotoServer::start();
    let (store, log) = setup(&moto).await;
    let store = store.with_multipart(MIN_PART_SIZE, (MIN_PART_SIZE + 1) as u64, 2);
    let dir = tempfile::tempdir().unwrap();
    let big = dir.path().join("big.bin");
    let content = pattern(2 * MIN_PART_SIZE + 1234);
    std::fs::write(&big, &content).unwrap();
    let meta = BTreeMap::from([("sha256".to_string(), "abc123".to_string())]);

    let target = uri("s3://raw/artifacts/abc123/big.bin");
    store.put_file(&target, &big, &meta).await.unwrap();
    let requests = log.take();
    let methods: Vec<&str> = requests.iter().map(|r| r.split(' ').next().unwrap()).collect();
    assert_eq!(methods, vec!["POST", "PUT", "PUT", "PUT", "POST"], "{requests:?}");
    assert!(requests[1].contains("partNumber=") && requests[1].contains("uploadId="), "{requests:?}");

    let head = store.head(&target).await.unwrap().unwrap();
    assert_eq!(head.size, content.len() as u64);
    assert_eq!(head.metadata, meta);
    assert_eq!(store.get_bytes(&target).await.unwrap(), Bytes::from(content));

    log.take();
    let small = dir.path().join("small.txt");
    std::fs::write(&small, b"print('hi')\n").unwrap();
    store.put_file(&uri("s3://raw/artifacts/x/run_job.py"), &small, &meta).await.unwrap();
    let requests = log.take();
    assert_eq!(requests.len(), 1, "{requests:?}");
    assert!(requests[0].starts_with("PUT /raw/artifacts/x/run_job.py"), "{requests:?}");
    assert_eq!(store.head(&uri("s3://raw/artifacts/x/run_job.py")).await.unwrap().unwrap().metadata, meta);
}

#[tokio::test]
async fn streams_upload_in_parts_and_short_streams_in_one_put() {
    let moto = MotoServer::start();
    let (store, log) = setup(&moto).await;
    let store = store.with_multipart(MIN_PART_SIZE, MIN_PART_SIZE as u64, 4);
    let content = pattern(MIN_PART_SIZE * 2 + 10);
    let target = uri("s3://raw/user_purchase/dt=2021-10-31/user_purchase.csv.gz");
    let body: ObjectReader = Box::pin(std::io::Cursor::new(content.clone()));
    assert_eq!(store.put_stream(&target, body).await.unwrap(), content.len() as u64);
    let methods: Vec<String> = log.take().iter().map(|r| r.split(' ').next().unwrap().to_string()).collect();
    assert_eq!(methods, vec!["POST", "PUT", "PUT", "PUT", "POST"]);
    assert_eq!(store.get_bytes(&target).await.unwrap(), Bytes::from(content));
    log.take();

    let short: ObjectReader = Box::pin(std::io::Cursor::new(b"tiny".to_vec()));
    assert_eq!(store.put_stream(&uri("s3://raw/tiny"), short).await.unwrap(), 4);
    assert_eq!(log.take().len(), 1);
}

/// Yields `good` bytes, then fails: a source that breaks in the middle of an upload.
struct FailingReader {
    good: usize,
}

impl AsyncRead for FailingReader {
    fn poll_read(mut self: Pin<&mut Self>, _cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        if self.good == 0 {
            return Poll::Ready(Err(std::io::Error::other("source broke")));
        }
        let n = self.good.min(buf.remaining());
        buf.put_slice(&vec![1u8; n]);
        self.good -= n;
        Poll::Ready(Ok(()))
    }
}

#[tokio::test]
async fn a_failed_multipart_upload_is_aborted() {
    let moto = MotoServer::start();
    let (store, log) = setup(&moto).await;
    let store = store.with_multipart(MIN_PART_SIZE, MIN_PART_SIZE as u64, 2);
    let body: ObjectReader = Box::pin(FailingReader { good: MIN_PART_SIZE + 100 });
    let target = uri("s3://raw/broken.bin");
    let err = store.put_stream(&target, body).await.unwrap_err();
    assert!(err.to_string().contains("source broke"), "{err}");
    let requests = log.take();
    assert!(requests.last().unwrap().starts_with("DELETE /raw/broken.bin?x-id=AbortMultipartUpload"), "{requests:?}");
    let uploads = store.client().list_multipart_uploads().bucket("raw").send().await.unwrap();
    assert!(uploads.uploads().is_empty(), "no multipart upload is left behind");
    assert!(store.head(&target).await.unwrap().is_none());
}

#[tokio::test]
async fn a_missing_bucket_and_an_unreachable_endpoint_say_what_to_check() {
    let moto = MotoServer::start();
    let (store, _log) = setup(&moto).await;
    let err = store.put_bytes(&uri("s3://no-such-bucket/k"), Bytes::from_static(b"x")).await.unwrap_err();
    match &err {
        StoreError::S3 { transient, hint, .. } => {
            assert!(!transient);
            assert!(hint.contains("buckets.raw"), "{err}");
        }
        other => panic!("{other}"),
    }

    // A port nothing listens on: connection refused, classified transient with an endpoint hint.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let settings = AwsSettings {
        region: Some("us-east-1".into()),
        profile: None,
        endpoint_url: Some(format!("http://127.0.0.1:{closed}")),
    };
    let sdk = sdk_config(&settings).await;
    let client = aws_sdk_s3::Client::from_conf(
        s3_config_builder(&sdk)
            .retry_config(aws_sdk_s3::config::retry::RetryConfig::standard().with_max_attempts(1))
            .build(),
    );
    let err = S3Store::new(client).head(&uri("s3://raw/k")).await.unwrap_err();
    match &err {
        StoreError::S3 { transient, hint, .. } => {
            assert!(*transient, "{err}");
            assert!(hint.contains("AWS_ENDPOINT_URL"), "{err}");
        }
        other => panic!("{other}"),
    }
    assert_eq!(emr_driver::error::ExitStatus::exit_code(&err), emr_driver::error::ExitCode::Aws);
}

#[tokio::test]
async fn multipart_concurrency_stays_within_its_bound() {
    let moto = MotoServer::start();
    let log = RequestLog::paths();
    let in_flight = InFlight::default();
    let settings =
        AwsSettings { region: Some("us-east-1".into()), profile: None, endpoint_url: Some(moto.endpoint.clone()) };
    let sdk = sdk_config(&settings).await;
    let client = aws_sdk_s3::Client::from_conf(
        s3_config_builder(&sdk).interceptor(log.clone()).interceptor(in_flight.clone()).build(),
    );
    client.create_bucket().bucket("raw").send().await.unwrap();
    let store = S3Store::new(client).with_multipart(MIN_PART_SIZE, MIN_PART_SIZE as u64, 2);
    let content = pattern(MIN_PART_SIZE * 5 + 1);
    let body: ObjectReader = Box::pin(std::io::Cursor::new(content.clone()));
    store.put_stream(&uri("s3://raw/six-parts.bin"), body).await.unwrap();
    let parts = log.take().iter().filter(|r| r.contains("x-id=UploadPart")).count();
    assert_eq!(parts, 6);
    let (now, most) = *in_flight.0.lock().unwrap();
    assert_eq!(now, 0);
    assert!(most <= 2, "{most} requests were in flight at once; the bound is 2");
    assert_eq!(store.get_bytes(&uri("s3://raw/six-parts.bin")).await.unwrap().len(), content.len());
}
