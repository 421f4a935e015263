//! Test-only views of an [`Endpoint`] for the `Pair` harness
//! (`crate::testing::pair`): reading a connection without marking it for
//! polling, and keeping a drained connection for inspection after the
//! endpoint is done with it.

#![cfg(any(test, feature = "testing"))]

use super::{ConnectionHandle, Endpoint};
use crate::connection::Connection;

impl Endpoint {
    /// The connection behind `handle`, read-only: unlike
    /// [`connection`](Self::connection) it does not mark the connection for
    /// polling, so an observer that looks changes nothing.
    pub(crate) fn connection_ref(&self, handle: ConnectionHandle) -> Option<&Connection> {
        self.slot_of(handle).map(|h| &self.connections[h].conn)
    }

    /// Takes a drained connection out of the table, forgetting its routes
    /// and reset token as the endpoint does when it removes one itself, and
    /// hands it over so that a test can still read its final state. Its
    /// last events (`Drained` among them) stay queued for
    /// [`poll_event`](Self::poll_event) under `handle`. `None` if the
    /// connection is gone or not drained.
    ///
    /// Call it before `poll_transmit`, which would drop the connection.
    pub(crate) fn detach_drained(&mut self, handle: ConnectionHandle) -> Option<Connection> {
        let h = self.slot_of(handle)?;
        if !self.connections[h].conn.is_drained() {
            return None;
        }
        let mut entry = self.connections.remove(h);
        if entry.initial_route.is_some() {
            self.handshaking -= 1;
        }
        while let Some(event) = entry.conn.poll_event() {
            self.events.push_back((handle, event));
        }
        // Scans rather than the entry's own lists: whatever the entry
        // records, nothing routes to the slot afterwards.
        self.by_cid.retain(|_, c| *c != h);
        self.by_initial.retain(|_, c| *c != h);
        self.reset_tokens.retain(|_, list| {
            list.retain(|(_, c)| *c != h);
            !list.is_empty()
        });
        self.dirty.retain(|d| *d != h);
        Some(entry.conn)
    }
}
