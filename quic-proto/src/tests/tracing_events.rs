//! The connection's lifecycle and errors reach `tracing` subscribers, inside
//! a per-connection span.

use std::sync::{Arc, Mutex};

use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Metadata, Subscriber};

use crate::stream_id::Side;
use crate::testing::pair::Pair;
use crate::varint::VarInt;

/// Collects event messages and the names of spans created.
#[derive(Clone, Default)]
struct Collector {
    messages: Arc<Mutex<Vec<String>>>,
    spans: Arc<Mutex<Vec<String>>>,
}

struct Message(String);

impl Visit for Message {
    fn record_debug(&mut self, field: &Field, value: &dyn core::fmt::Debug) {
        if field.name() == "message" {
            self.0 = format!("{value:?}");
        }
    }
}

impl Subscriber for Collector {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, span: &Attributes<'_>) -> Id {
        let mut spans = self.spans.lock().unwrap();
        spans.push(span.metadata().name().to_owned());
        Id::from_u64(spans.len() as u64)
    }
    fn record(&self, _: &Id, _: &Record<'_>) {}
    fn record_follows_from(&self, _: &Id, _: &Id) {}
    fn event(&self, event: &Event<'_>) {
        let mut m = Message(String::new());
        event.record(&mut m);
        self.messages.lock().unwrap().push(m.0);
    }
    fn enter(&self, _: &Id) {}
    fn exit(&self, _: &Id) {}
}

#[test]
fn lifecycle_events_are_traced_in_a_connection_span() {
    let collector = Collector::default();
    let (messages, spans) = (collector.messages.clone(), collector.spans.clone());
    tracing::subscriber::with_default(collector, || {
        let mut pair = Pair::new(81);
        pair.handshake();
        let now = pair.now();
        pair.conn(Side::Client).close(now, VarInt::from_u32(0), b"bye");
        pair.drive_until_drained(core::time::Duration::from_secs(10));
    });
    let messages = messages.lock().unwrap().clone();
    for expected in ["handshake complete", "handshake confirmed", "connection lost", "drained"] {
        assert!(messages.iter().any(|m| m == expected), "no {expected:?} in {messages:?}");
    }
    assert!(spans.lock().unwrap().iter().filter(|s| *s == "quic_connection").count() >= 2);
}
