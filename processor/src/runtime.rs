//! The Kinesis event read straight from the invocation's body, ahead of `lambda_runtime`.
//!
//! `lambda_runtime` reads every event through `serde_path_to_error`, which keeps the path of every
//! key and element it passes (a `String` for each of a record's keys, thousands of records an
//! event) so that an error can say where it was: 8 to 12% of the function's CPU on a full
//! storefront event, measured (docs/performance.md, B1). [`EventReader`], a layer of the runtime,
//! reads the event first with [`KinesisEvent::from_slice`] (the envelope's own reader, or
//! `serde_json` alone), keeps it for the handler under the invocation's
//! request id and hands `lambda_runtime` the body `null` in its place, which its reading turns into
//! `None`. A body that is not a Kinesis event is left as it came: `lambda_runtime` reads it again
//! and its error, with the path, is the invocation's, as it always was.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};

use bytes::Bytes;
use lambda_runtime::tower::{Layer, Service};
use lambda_runtime::LambdaInvocation;

use crate::kinesis::KinesisEvent;

/// The events the layer has read and the handler has not yet taken, by request id.
#[derive(Clone, Default)]
pub struct EventReader {
    read: Arc<Mutex<HashMap<String, KinesisEvent>>>,
}

#[derive(Debug, thiserror::Error)]
#[error("the invocation's event is null, not a Kinesis event")]
pub struct NullEvent;

impl EventReader {
    /// The handler's event: `payload` as `lambda_runtime` read it, or, when that is `None` (the
    /// body `null`), the event this reader read for `request_id`.
    pub fn event(&self, payload: Option<KinesisEvent>, request_id: &str) -> Result<KinesisEvent, NullEvent> {
        match payload {
            Some(event) => Ok(event),
            None => self.lock().remove(request_id).ok_or(NullEvent),
        }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, KinesisEvent>> {
        // Each use is one map operation: a panic elsewhere cannot leave it half-done.
        self.read.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl<S> Layer<S> for EventReader {
    type Service = ReadEvents<S>;

    fn layer(&self, inner: S) -> ReadEvents<S> {
        ReadEvents { reader: self.clone(), inner }
    }
}

/// The service of [`EventReader`]'s layer.
pub struct ReadEvents<S> {
    reader: EventReader,
    inner: S,
}

impl<S: Service<LambdaInvocation>> Service<LambdaInvocation> for ReadEvents<S> {
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut invocation: LambdaInvocation) -> S::Future {
        if let Ok(event) = KinesisEvent::from_slice(&invocation.body) {
            self.reader.lock().insert(invocation.context.request_id.clone(), event);
            invocation.body = Bytes::from_static(b"null");
        }
        self.inner.call(invocation)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lambda_runtime::service_fn;

    /// `body` through the layer: what the runtime's own reading is then given.
    async fn through(reader: &EventReader, request_id: &str, body: &'static [u8]) -> Bytes {
        let inner = service_fn(|invocation: LambdaInvocation| async move { Ok::<_, NullEvent>(invocation.body) });
        let mut context = lambda_runtime::Context::default();
        context.request_id = request_id.to_string();
        let parts = http::Response::new(()).into_parts().0;
        let invocation = LambdaInvocation { parts, body: Bytes::from_static(body), context };
        reader.layer(inner).call(invocation).await.unwrap()
    }

    #[tokio::test]
    async fn a_kinesis_event_is_read_once_and_kept_for_its_invocation() {
        let reader = EventReader::default();
        let body = br#"{"Records": [{"eventID": "shardId-000000000003:49", "eventSourceARN": "arn:aws:kinesis:eu-west-1:1:stream/orders",
            "kinesis": {"data": "eyJhIjoxfQ==", "sequenceNumber": "49", "partitionKey": "k", "approximateArrivalTimestamp": 1763903100.5}}]}"#;
        assert_eq!(through(&reader, "r-1", body).await, Bytes::from_static(b"null"));
        // Another invocation's event is not this one's.
        assert!(reader.event(None, "r-2").is_err());
        let event = reader.event(None, "r-1").unwrap();
        let record = &event.records[0];
        assert_eq!((&*record.stream, &*record.meta.shard_id), ("orders", "shardId-000000000003"));
        assert_eq!((record.data.as_slice(), record.meta.arrival_ms), (&br#"{"a":1}"#[..], 1_763_903_100_500));
        // Taken once: a second take finds nothing.
        assert_eq!(reader.event(None, "r-1").unwrap_err().to_string(), NullEvent.to_string());
    }

    #[tokio::test]
    async fn a_body_that_is_not_a_kinesis_event_goes_on_as_it_came() {
        let reader = EventReader::default();
        for body in [&br#"{"Records": "not a list"}"#[..], b"null", b"[1, 2", b"\xff"] {
            assert_eq!(through(&reader, "r-1", body).await, Bytes::from_static(body));
            assert!(reader.event(None, "r-1").is_err(), "{body:?}");
        }
        // What lambda_runtime read is the event, when it read one.
        let read = KinesisEvent { records: Vec::new() };
        assert!(reader.event(Some(read), "r-1").unwrap().records.is_empty());
    }
}
