//! The connection's lifecycle and errors reach `tracing` subscribers, inside
//! a per-connection span.
//!
//! tracing caches each call site's interest process-wide, and other tests
//! run the same call sites on other threads, so a subscriber scoped to this
//! thread (`with_default`) races with them. This test installs one global
//! collector instead and keeps only what its own thread logged.

use std::sync::{Mutex, Once};
use std::thread::ThreadId;

use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Metadata, Subscriber};

use crate::stream_id::Side;
use crate::testing::pair::Pair;
use crate::varint::VarInt;

/// (thread, event message) and (thread, span name), from every test thread.
static MESSAGES: Mutex<Vec<(ThreadId, String)>> = Mutex::new(Vec::new());
static SPANS: Mutex<Vec<(ThreadId, String)>> = Mutex::new(Vec::new());

struct Collector;

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
        let mut spans = SPANS.lock().unwrap_or_else(|e| e.into_inner());
        spans.push((std::thread::current().id(), span.metadata().name().to_owned()));
        Id::from_u64(spans.len() as u64)
    }
    fn record(&self, _: &Id, _: &Record<'_>) {}
    fn record_follows_from(&self, _: &Id, _: &Id) {}
    fn event(&self, event: &Event<'_>) {
        let mut m = Message(String::new());
        event.record(&mut m);
        let mut messages = MESSAGES.lock().unwrap_or_else(|e| e.into_inner());
        messages.push((std::thread::current().id(), m.0));
    }
    fn enter(&self, _: &Id) {}
    fn exit(&self, _: &Id) {}
}

fn mine(list: &Mutex<Vec<(ThreadId, String)>>) -> Vec<String> {
    let me = std::thread::current().id();
    let list = list.lock().unwrap_or_else(|e| e.into_inner());
    list.iter().filter(|(t, _)| *t == me).map(|(_, m)| m.clone()).collect()
}

#[test]
fn lifecycle_events_are_traced_in_a_connection_span() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        tracing::subscriber::set_global_default(Collector).expect("no other global subscriber");
    });
    let mut pair = Pair::new(81);
    pair.handshake();
    let now = pair.now();
    pair.conn(Side::Client).close(now, VarInt::from_u32(0), b"bye");
    pair.drive_until_drained(core::time::Duration::from_secs(10));

    let messages = mine(&MESSAGES);
    for expected in ["handshake complete", "handshake confirmed", "connection lost", "drained"] {
        assert!(messages.iter().any(|m| m == expected), "no {expected:?} in {messages:?}");
    }
    assert!(mine(&SPANS).iter().filter(|s| *s == "quic_connection").count() >= 2);
}
