//! The server side of a [`Pair`]: how its endpoint decides connection
//! attempts (RFC 9000 §5.2.2, §8.1.2), restarts that lose all state
//! (§10.3), and the seeded randomness and keys of both endpoints.

use super::{EndpointSetup, Node, Pair, Slot, mix};
use crate::cid::ConnectionId;
use crate::connection::ServerConfig;
use crate::endpoint::{Endpoint, EndpointConfig, Incoming};
use crate::random::{RandomSource, SeededRandom};
use crate::stream_id::Side;
use crate::time::Instant;
use crate::token::{ResetKey, TokenKey};

/// What the server endpoint does with a client's connection attempt
/// ([`DatagramEvent::Incoming`](crate::endpoint::DatagramEvent::Incoming)).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IncomingPolicy {
    /// [`Endpoint::accept`] it. The default.
    Accept,
    /// [`Endpoint::retry`] it: the client proves its address with a Retry
    /// token. An attempt that already answered a Retry is accepted, since
    /// a client takes only one Retry (RFC 9000 §17.2.5.2).
    Retry,
    /// [`Endpoint::refuse`] it: the client gets CONNECTION_REFUSED.
    Refuse,
    /// [`Endpoint::ignore`] it: the client hears nothing.
    Ignore,
}

/// Decides each connection attempt; see [`Pair::set_incoming_handler`].
pub type IncomingHandler = Box<dyn FnMut(&Incoming) -> IncomingPolicy>;

/// A connection attempt the server endpoint saw, and what became of it.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct IncomingRecord {
    /// When it arrived.
    pub at: Instant,
    /// The Destination Connection ID of the client's Initial.
    pub client_dcid: ConnectionId,
    /// Whether a token validated the client's address.
    pub address_validated: bool,
    /// Whether it answered a Retry.
    pub retried: bool,
    /// After a Retry, the DCID of the client's first Initial.
    pub original_dcid: Option<ConnectionId>,
    /// What was done with it ([`IncomingPolicy::Retry`] of a retried attempt
    /// is recorded as the [`IncomingPolicy::Accept`] it became).
    pub decision: IncomingPolicy,
}

/// Salts of the seeds derived for each endpoint's randomness and keys.
const CLIENT_ENDPOINT_SALT: u64 = 0xc1_e0;
const SERVER_ENDPOINT_SALT: u64 = 0x5e_e0;
const RESET_KEY_SALT: u64 = 0x5e_7e;
const TOKEN_KEY_SALT: u64 = 0x5e_70;

/// The endpoint of one side, with its randomness and keys derived from
/// `seed` (a server's reset and token keys depend on the seed alone, so
/// that a restarted server endpoint has the same ones).
pub(super) fn new_endpoint(
    seed: u64,
    side: Side,
    restart: u64,
    setup: Option<&EndpointSetup>,
    server_config: Option<ServerConfig>,
) -> Endpoint {
    let mut config = EndpointConfig::default();
    let salt = match side {
        Side::Client => CLIENT_ENDPOINT_SALT,
        Side::Server => {
            let secret = |salt| {
                let mut secret = [0u8; 32];
                SeededRandom::from_u64(mix(seed, salt)).fill(&mut secret);
                secret
            };
            config.reset_key(ResetKey::from_secret(&secret(RESET_KEY_SALT)));
            config.token_key(TokenKey::from_secret(&secret(TOKEN_KEY_SALT)));
            SERVER_ENDPOINT_SALT
        }
    };
    if let Some(setup) = setup {
        setup(&mut config);
    }
    let rng = SeededRandom::from_u64(mix(mix(seed, salt), restart));
    Endpoint::new(config, server_config, Box::new(rng))
}

impl Pair {
    /// Every connection attempt the server endpoint saw, oldest first.
    pub fn incoming(&self) -> &[IncomingRecord] {
        &self.incoming
    }

    /// Decides connection attempts from now on by `policy`.
    pub fn set_incoming_policy(&mut self, policy: IncomingPolicy) {
        self.policy = Box::new(move |_| policy);
    }

    /// Decides each connection attempt from now on by calling `handler`.
    pub fn set_incoming_handler(
        &mut self,
        handler: impl FnMut(&Incoming) -> IncomingPolicy + 'static,
    ) {
        self.policy = Box::new(handler);
    }

    /// Replaces the server endpoint with a fresh one that lost all state
    /// (the server's connection with it), as a server process restarting
    /// at the same address does. It has the same settings and the same
    /// reset and token keys, so it can reset the client's connection with
    /// a Stateless Reset (RFC 9000 §10.3); new attempts go through the
    /// incoming policy again.
    pub fn restart_server(&mut self) {
        self.server_restarts += 1;
        let endpoint = new_endpoint(
            self.seed,
            Side::Server,
            self.server_restarts,
            self.server_setup.as_ref(),
            Some(self.server_config.clone()),
        );
        self.nodes[1] = Node { endpoint, conn: None, deadline: None };
    }

    /// Applies the incoming policy to a connection attempt.
    pub(super) fn decide(&mut self, incoming: Incoming) {
        let now = self.now;
        let seed = self.seed;
        let mut decision = (self.policy)(&incoming);
        if decision == IncomingPolicy::Retry && incoming.is_retried() {
            decision = IncomingPolicy::Accept;
        }
        self.incoming.push(IncomingRecord {
            at: now,
            client_dcid: incoming.client_dcid(),
            address_validated: incoming.is_address_validated(),
            retried: incoming.is_retried(),
            original_dcid: incoming.original_dcid(),
            decision,
        });
        let node = &mut self.nodes[1];
        let endpoint = &mut node.endpoint;
        match decision {
            IncomingPolicy::Accept => {
                let h = endpoint
                    .accept(now, incoming)
                    .unwrap_or_else(|e| panic!("seed {seed}: the server cannot accept: {e}"));
                // The pair follows the first connection; later ones (none
                // arise with one client) are left to the endpoint.
                if node.conn.is_none() {
                    node.conn = Some(Slot::Live(h));
                }
            }
            IncomingPolicy::Retry => endpoint
                .retry(now, incoming)
                .unwrap_or_else(|_| unreachable!("a retried attempt is accepted instead")),
            IncomingPolicy::Refuse => endpoint.refuse(incoming),
            IncomingPolicy::Ignore => endpoint.ignore(incoming),
        }
    }
}
