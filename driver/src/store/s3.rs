//! S3 implementation of [`super::ObjectStore`] (thin adapter over `aws-sdk-s3`).
//!
//! Large uploads go multipart: the body is read one part at a time and at most
//! `max_in_flight` parts are uploading at once, so memory stays at about
//! `part_size * max_in_flight` whatever the object's size. A failed multipart upload is
//! aborted so that no orphan parts keep costing storage.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use async_trait::async_trait;
use aws_sdk_s3::error::ProvideErrorMetadata;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_runtime_api::http::Response as HttpResponse;
use bytes::Bytes;
use futures::stream::{FuturesUnordered, StreamExt};
use tokio::io::{AsyncRead, AsyncReadExt};

use super::{ObjectMeta, ObjectReader, ObjectStore, ObjectUri, StoreError, Versioned};
use crate::aws::classify;

/// S3's smallest part size (all parts but the last).
pub const MIN_PART_SIZE: usize = 5 * 1024 * 1024;
pub const DEFAULT_PART_SIZE: usize = 8 * 1024 * 1024;
pub const DEFAULT_MULTIPART_THRESHOLD: u64 = 16 * 1024 * 1024;
pub const DEFAULT_MAX_IN_FLIGHT: usize = 4;

#[derive(Debug, Clone)]
pub struct S3Store {
    client: aws_sdk_s3::Client,
    part_size: usize,
    multipart_threshold: u64,
    max_in_flight: usize,
    /// `MaxKeys` per `ListObjectsV2` page; `None` lets S3 choose (1000).
    list_page_size: Option<i32>,
}

impl S3Store {
    pub fn new(client: aws_sdk_s3::Client) -> Self {
        S3Store {
            client,
            part_size: DEFAULT_PART_SIZE,
            multipart_threshold: DEFAULT_MULTIPART_THRESHOLD,
            max_in_flight: DEFAULT_MAX_IN_FLIGHT,
            list_page_size: None,
        }
    }

    /// Smaller listing pages (tests use it to exercise pagination).
    pub fn with_list_page_size(mut self, size: i32) -> Self {
        self.list_page_size = Some(size.max(1));
        self
    }

    /// Multipart tuning: parts of `part_size` bytes (at least S3's 5 MiB), files above
    /// `threshold` bytes go multipart, at most `max_in_flight` parts at once.
    pub fn with_multipart(mut self, part_size: usize, threshold: u64, max_in_flight: usize) -> Self {
        self.part_size = part_size.max(MIN_PART_SIZE);
        self.multipart_threshold = threshold;
        self.max_in_flight = max_in_flight.max(1);
        self
    }

    pub fn client(&self) -> &aws_sdk_s3::Client {
        &self.client
    }

    /// Uploads `body` as a multipart object; `first` is a part already read from it.
    async fn multipart(
        &self,
        uri: &ObjectUri,
        first: Vec<u8>,
        body: &mut (dyn AsyncRead + Send + Unpin),
        metadata: Option<HashMap<String, String>>,
    ) -> Result<u64, StoreError> {
        let created = self
            .client
            .create_multipart_upload()
            .bucket(&uri.bucket)
            .key(&uri.key)
            .set_metadata(metadata)
            .send()
            .await
            .map_err(|e| s3_err("start a multipart upload of", uri, &e))?;
        let upload_id = created.upload_id().unwrap_or_default().to_string();
        match self.upload_parts(uri, &upload_id, first, body).await {
            Ok((parts, total)) => {
                self.client
                    .complete_multipart_upload()
                    .bucket(&uri.bucket)
                    .key(&uri.key)
                    .upload_id(&upload_id)
                    .multipart_upload(CompletedMultipartUpload::builder().set_parts(Some(parts)).build())
                    .send()
                    .await
                    .map_err(|e| s3_err("complete the multipart upload of", uri, &e))?;
                Ok(total)
            }
            Err(error) => {
                // Best effort: the original error is the one worth reporting.
                if let Err(abort) = self
                    .client
                    .abort_multipart_upload()
                    .bucket(&uri.bucket)
                    .key(&uri.key)
                    .upload_id(&upload_id)
                    .send()
                    .await
                {
                    tracing::warn!(
                        "could not abort multipart upload {upload_id} of {uri}: {}",
                        classify(&abort).message
                    );
                }
                Err(error)
            }
        }
    }

    /// Reads parts from `body` and uploads them with at most `max_in_flight` at once.
    async fn upload_parts(
        &self,
        uri: &ObjectUri,
        upload_id: &str,
        first: Vec<u8>,
        body: &mut (dyn AsyncRead + Send + Unpin),
    ) -> Result<(Vec<CompletedPart>, u64), StoreError> {
        let mut in_flight = FuturesUnordered::new();
        let mut done = Vec::new();
        let mut total = 0u64;
        let mut next = Some(first);
        let mut part_number = 1i32;
        let result = 'parts: loop {
            let Some(chunk) = next.take() else { break Ok(()) };
            total += chunk.len() as u64;
            let request = self
                .client
                .upload_part()
                .bucket(&uri.bucket)
                .key(&uri.key)
                .upload_id(upload_id)
                .part_number(part_number)
                .body(ByteStream::from(chunk));
            let number = part_number;
            in_flight.push(tokio::spawn(async move { (number, request.send().await) }));
            part_number += 1;
            while in_flight.len() >= self.max_in_flight {
                match finish_part(uri, in_flight.next().await.expect("non-empty")) {
                    Ok(part) => done.push(part),
                    Err(e) => break 'parts Err(e),
                }
            }
            match read_part(body, self.part_size).await {
                Ok(chunk) if chunk.is_empty() => break Ok(()),
                Ok(chunk) => next = Some(chunk),
                Err(e) => break Err(read_err(uri, e)),
            }
        };
        // Wait for every part in flight even after a failure: a part landing after the
        // abort would be stored (and billed) with no upload left to complete or abort it.
        let mut first_error = result.err();
        while let Some(joined) = in_flight.next().await {
            match finish_part(uri, joined) {
                Ok(part) => done.push(part),
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        if let Some(error) = first_error {
            return Err(error);
        }
        done.sort_by_key(|p| p.part_number());
        Ok((done, total))
    }
}

type PartResult = (
    i32,
    Result<
        aws_sdk_s3::operation::upload_part::UploadPartOutput,
        SdkError<aws_sdk_s3::operation::upload_part::UploadPartError, HttpResponse>,
    >,
);

fn finish_part(
    uri: &ObjectUri,
    joined: Result<PartResult, tokio::task::JoinError>,
) -> Result<CompletedPart, StoreError> {
    let (number, result) = joined.map_err(|e| StoreError::S3 {
        op: "upload a part of",
        uri: uri.to_string(),
        message: e.to_string(),
        hint: String::new(),
        transient: false,
    })?;
    let output = result.map_err(|e| s3_err("upload a part of", uri, &e))?;
    Ok(CompletedPart::builder().set_e_tag(output.e_tag().map(str::to_string)).part_number(number).build())
}

/// Reads up to `size` bytes, stopping early only at the end of the input.
async fn read_part(body: &mut (dyn AsyncRead + Send + Unpin), size: usize) -> std::io::Result<Vec<u8>> {
    let mut buf = Vec::with_capacity(size);
    let mut limited = body.take(size as u64);
    limited.read_to_end(&mut buf).await?;
    Ok(buf)
}

fn read_err(uri: &ObjectUri, source: std::io::Error) -> StoreError {
    StoreError::Local { op: "read the body for", uri: uri.to_string(), source }
}

fn s3_err<E>(op: &'static str, uri: &ObjectUri, error: &SdkError<E, HttpResponse>) -> StoreError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    let failure = classify(error);
    StoreError::S3 {
        op,
        uri: uri.to_string(),
        message: failure.message,
        hint: failure.hint,
        transient: failure.transient,
    }
}

fn status_of<E>(error: &SdkError<E, HttpResponse>) -> Option<u16> {
    match error {
        SdkError::ServiceError(context) => Some(context.raw().status().as_u16()),
        _ => None,
    }
}

fn to_chrono(time: &aws_sdk_s3::primitives::DateTime) -> Option<chrono::DateTime<chrono::Utc>> {
    chrono::DateTime::from_timestamp(time.secs(), time.subsec_nanos())
}

fn metadata_arg(metadata: &BTreeMap<String, String>) -> Option<HashMap<String, String>> {
    (!metadata.is_empty()).then(|| metadata.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
}

#[async_trait]
impl ObjectStore for S3Store {
    async fn head(&self, uri: &ObjectUri) -> Result<Option<ObjectMeta>, StoreError> {
        match self.client.head_object().bucket(&uri.bucket).key(&uri.key).send().await {
            Ok(out) => Ok(Some(ObjectMeta {
                uri: uri.clone(),
                size: out.content_length().unwrap_or(0).max(0) as u64,
                last_modified: out.last_modified().and_then(to_chrono),
                metadata: out
                    .metadata()
                    .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
                    .unwrap_or_default(),
            })),
            Err(e) if status_of(&e) == Some(404) => Ok(None),
            Err(e) => Err(s3_err("read the metadata of", uri, &e)),
        }
    }

    async fn list(&self, prefix: &ObjectUri) -> Result<Vec<ObjectMeta>, StoreError> {
        let mut pages = self
            .client
            .list_objects_v2()
            .bucket(&prefix.bucket)
            .prefix(&prefix.key)
            .set_max_keys(self.list_page_size)
            .into_paginator()
            .send();
        let mut out = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| s3_err("list", prefix, &e))?;
            for object in page.contents() {
                let Some(key) = object.key() else { continue };
                out.push(ObjectMeta {
                    uri: ObjectUri::new(prefix.bucket.clone(), key),
                    size: object.size().unwrap_or(0).max(0) as u64,
                    last_modified: object.last_modified().and_then(to_chrono),
                    metadata: BTreeMap::new(),
                });
            }
        }
        out.sort_by(|a, b| a.uri.key.cmp(&b.uri.key));
        Ok(out)
    }

    async fn get_bytes(&self, uri: &ObjectUri) -> Result<Bytes, StoreError> {
        let out = self.get(uri).await?;
        let body = out.body.collect().await.map_err(|e| StoreError::S3 {
            op: "read",
            uri: uri.to_string(),
            message: e.to_string(),
            hint: String::new(),
            transient: true,
        })?;
        Ok(body.into_bytes())
    }

    async fn reader(&self, uri: &ObjectUri) -> Result<ObjectReader, StoreError> {
        let out = self.get(uri).await?;
        Ok(Box::pin(out.body.into_async_read()))
    }

    async fn put_bytes(&self, uri: &ObjectUri, body: Bytes) -> Result<(), StoreError> {
        self.client
            .put_object()
            .bucket(&uri.bucket)
            .key(&uri.key)
            .body(ByteStream::from(body))
            .send()
            .await
            .map_err(|e| s3_err("write", uri, &e))?;
        Ok(())
    }

    async fn put_if_absent(&self, uri: &ObjectUri, body: Bytes) -> Result<bool, StoreError> {
        // S3 conditional write: 412 when the object exists, 409 when another conditional
        // write to the key is in flight. Either way someone else got there first.
        let result = self
            .client
            .put_object()
            .bucket(&uri.bucket)
            .key(&uri.key)
            .if_none_match("*")
            .body(ByteStream::from(body))
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(e) if matches!(status_of(&e), Some(412) | Some(409)) => Ok(false),
            Err(e) => Err(s3_err("create", uri, &e)),
        }
    }

    async fn get_versioned(&self, uri: &ObjectUri) -> Result<Option<Versioned>, StoreError> {
        let out = match self.get(uri).await {
            Ok(out) => out,
            Err(StoreError::NotFound { .. }) => return Ok(None),
            Err(e) => return Err(e),
        };
        let etag = out.e_tag().unwrap_or_default().to_string();
        let body = out.body.collect().await.map_err(|e| StoreError::S3 {
            op: "read",
            uri: uri.to_string(),
            message: e.to_string(),
            hint: String::new(),
            transient: true,
        })?;
        Ok(Some(Versioned { body: body.into_bytes(), etag }))
    }

    async fn put_if_match(&self, uri: &ObjectUri, body: Bytes, etag: &str) -> Result<Option<String>, StoreError> {
        // 412: the object changed; 404: it is gone; 409: another conditional write to the key
        // is in flight. In every case someone else's write won.
        let result = self
            .client
            .put_object()
            .bucket(&uri.bucket)
            .key(&uri.key)
            .if_match(etag)
            .body(ByteStream::from(body))
            .send()
            .await;
        match result {
            Ok(out) => Ok(Some(out.e_tag().unwrap_or_default().to_string())),
            Err(e) if matches!(status_of(&e), Some(412) | Some(409) | Some(404)) => Ok(None),
            Err(e) => Err(s3_err("replace", uri, &e)),
        }
    }

    async fn delete_if_match(&self, uri: &ObjectUri, etag: &str) -> Result<bool, StoreError> {
        // Conditional deletes work on general purpose buckets since September 2025.
        let result = self.client.delete_object().bucket(&uri.bucket).key(&uri.key).if_match(etag).send().await;
        match result {
            Ok(_) => Ok(true),
            Err(e) if matches!(status_of(&e), Some(412) | Some(409) | Some(404)) => Ok(false),
            Err(e) => Err(s3_err("delete", uri, &e)),
        }
    }

    async fn put_file(
        &self,
        uri: &ObjectUri,
        path: &Path,
        metadata: &BTreeMap<String, String>,
    ) -> Result<(), StoreError> {
        let local = |source| StoreError::Local { op: "read the local file for", uri: uri.to_string(), source };
        let size = tokio::fs::metadata(path).await.map_err(local)?.len();
        if size <= self.multipart_threshold {
            let body = ByteStream::from_path(path).await.map_err(|e| local(std::io::Error::other(e)))?;
            self.client
                .put_object()
                .bucket(&uri.bucket)
                .key(&uri.key)
                .set_metadata(metadata_arg(metadata))
                .body(body)
                .send()
                .await
                .map_err(|e| s3_err("upload", uri, &e))?;
            return Ok(());
        }
        let mut file = tokio::fs::File::open(path).await.map_err(local)?;
        let first = read_part(&mut file, self.part_size).await.map_err(local)?;
        self.multipart(uri, first, &mut file, metadata_arg(metadata)).await?;
        Ok(())
    }

    async fn put_stream(&self, uri: &ObjectUri, mut body: ObjectReader) -> Result<u64, StoreError> {
        let first = read_part(&mut body, self.part_size).await.map_err(|e| read_err(uri, e))?;
        if first.len() < self.part_size {
            // The whole body fits in one part: one PUT.
            let len = first.len() as u64;
            self.put_bytes(uri, Bytes::from(first)).await?;
            return Ok(len);
        }
        self.multipart(uri, first, &mut body, None).await
    }

    async fn delete(&self, uri: &ObjectUri) -> Result<(), StoreError> {
        self.client
            .delete_object()
            .bucket(&uri.bucket)
            .key(&uri.key)
            .send()
            .await
            .map_err(|e| s3_err("delete", uri, &e))?;
        Ok(())
    }
}

impl S3Store {
    async fn get(&self, uri: &ObjectUri) -> Result<aws_sdk_s3::operation::get_object::GetObjectOutput, StoreError> {
        match self.client.get_object().bucket(&uri.bucket).key(&uri.key).send().await {
            Ok(out) => Ok(out),
            Err(e) if status_of(&e) == Some(404) => Err(StoreError::NotFound { uri: uri.to_string() }),
            Err(e) => Err(s3_err("read", uri, &e)),
        }
    }
}
