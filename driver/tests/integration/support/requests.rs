//! Counts what an SDK client really sends: an interceptor that records one line per HTTP
//! request (how the line is made is the test's choice: the method, the path, the operation).

use std::fmt;
use std::sync::{Arc, Mutex};

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::context::BeforeTransmitInterceptorContextRef;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_runtime_api::http::Request;
use aws_smithy_types::config_bag::ConfigBag;

type Describe = dyn Fn(&Request) -> String + Send + Sync;

#[derive(Clone)]
pub struct RequestLog {
    lines: Arc<Mutex<Vec<String>>>,
    describe: Arc<Describe>,
}

impl RequestLog {
    /// Records `describe(request)` for every request sent.
    pub fn new(describe: impl Fn(&Request) -> String + Send + Sync + 'static) -> Self {
        RequestLog { lines: Arc::default(), describe: Arc::new(describe) }
    }

    /// The HTTP method of each request.
    pub fn methods() -> Self {
        RequestLog::new(|request| request.method().to_string())
    }

    /// `METHOD /path?query` of each request.
    pub fn paths() -> Self {
        RequestLog::new(|request| {
            let uri = request.uri().to_string();
            format!("{} /{}", request.method(), uri.splitn(4, '/').nth(3).unwrap_or(""))
        })
    }

    /// The operation (`X-Amz-Target` without the service prefix) of each JSON-protocol request.
    pub fn operations() -> Self {
        RequestLog::new(|request| {
            let target = request.headers().get("x-amz-target").unwrap_or("?");
            target.rsplit('.').next().unwrap_or(target).to_string()
        })
    }

    /// The lines recorded since the last call.
    pub fn take(&self) -> Vec<String> {
        std::mem::take(&mut *self.lines.lock().unwrap())
    }
}

impl fmt::Debug for RequestLog {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RequestLog").field("lines", &self.lines).finish()
    }
}

impl Intercept for RequestLog {
    fn name(&self) -> &'static str {
        "RequestLog"
    }

    fn read_before_transmit(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let line = (self.describe)(context.request());
        self.lines.lock().unwrap().push(line);
        Ok(())
    }
}
