//! Endpoint configuration: connection IDs, keys for stateless replies,
//! versions, address validation, and the bounds on what unknown peers can
//! make an endpoint hold or send.

use core::time::Duration;

use crate::cid::{ConnectionIdGenerator, RandomCidGenerator};
use crate::token::{ResetKey, TokenKey};
use crate::version::Version;

/// Settings shared by every connection of an [`Endpoint`](super::Endpoint).
/// Private fields, `&mut self` setters that return `&mut Self`, documented
/// defaults.
#[derive(Debug)]
pub struct EndpointConfig {
    pub(super) cid_generator: Box<dyn ConnectionIdGenerator>,
    pub(super) reset_key: Option<ResetKey>,
    pub(super) token_key: Option<TokenKey>,
    pub(super) supported_versions: Vec<Version>,
    pub(super) retry_token_lifetime: Duration,
    pub(super) new_token_lifetime: Duration,
    pub(super) send_new_tokens: bool,
    pub(super) require_retry: bool,
    pub(super) max_incoming: usize,
    pub(super) max_connections: usize,
    pub(super) retry_under_load: Option<usize>,
    pub(super) token_replay_capacity: usize,
    pub(super) incoming_lifetime: Duration,
    pub(super) max_stateless_resets: u32,
    pub(super) stateless_reset_period: Duration,
    pub(super) grease_version_negotiation: bool,
    pub(super) qlog: Option<QlogFactory>,
    pub(super) qlog_format: crate::qlog::QlogFormat,
}

/// The qlog sink factory of an endpoint (a newtype so the configuration
/// stays `Debug`).
#[derive(Clone)]
pub(super) struct QlogFactory(pub(super) crate::qlog::SinkFactory);

impl core::fmt::Debug for QlogFactory {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("QlogFactory")
    }
}

impl Default for EndpointConfig {
    fn default() -> Self {
        Self {
            cid_generator: Box::new(RandomCidGenerator::default()),
            reset_key: None,
            token_key: None,
            supported_versions: Version::SUPPORTED.to_vec(),
            retry_token_lifetime: Duration::from_secs(15),
            new_token_lifetime: Duration::from_secs(24 * 60 * 60),
            send_new_tokens: true,
            require_retry: false,
            max_incoming: 256,
            max_connections: 16_384,
            retry_under_load: Some(64),
            token_replay_capacity: 65_536,
            incoming_lifetime: Duration::from_secs(10),
            max_stateless_resets: 1000,
            stateless_reset_period: Duration::from_secs(1),
            grease_version_negotiation: true,
            qlog: None,
            qlog_format: crate::qlog::QlogFormat::Draft,
        }
    }
}

impl EndpointConfig {
    /// How connection IDs are chosen. All IDs have the generator's one
    /// length, which is how short headers are parsed. Default: random 8-byte IDs.
    pub fn cid_generator(&mut self, generator: Box<dyn ConnectionIdGenerator>) -> &mut Self {
        self.cid_generator = generator;
        self
    }

    /// Logs every new connection as qlog: `factory` gets the connection's
    /// original destination connection ID and side and returns its sink
    /// (or `None` to skip it); see [`crate::qlog`]. Default: no qlog.
    pub fn qlog(&mut self, factory: crate::qlog::SinkFactory) -> &mut Self {
        self.qlog = Some(QlogFactory(factory));
        self
    }

    /// How the qlog files name their events: the current drafts, or the
    /// names qvis draws diagrams from ([`crate::qlog::QlogFormat`]).
    /// Default: [`crate::qlog::QlogFormat::Draft`].
    pub fn qlog_format(&mut self, format: crate::qlog::QlogFormat) -> &mut Self {
        self.qlog_format = format;
        self
    }

    /// The key stateless reset tokens are derived from (RFC 9000 §10.3.2).
    /// Keep it across restarts, and share it between endpoints that share
    /// connection IDs, so that a peer of a lost connection can be reset.
    /// Default: a fresh key from the endpoint's random source.
    pub fn reset_key(&mut self, key: ResetKey) -> &mut Self {
        self.reset_key = Some(key);
        self
    }

    /// The key Retry and NEW_TOKEN tokens are sealed with (RFC 9000 §8.1).
    /// Default: a fresh key from the endpoint's random source.
    pub fn token_key(&mut self, key: TokenKey) -> &mut Self {
        self.token_key = Some(key);
        self
    }

    /// The versions a server accepts, in the order listed in Version
    /// Negotiation packets; versions this crate does not implement are
    /// ignored. Default: [`Version::SUPPORTED`].
    pub fn supported_versions(&mut self, versions: Vec<Version>) -> &mut Self {
        self.supported_versions = versions;
        self
    }

    /// How long a Retry token is accepted: a client returns it within one
    /// round trip (RFC 9000 §8.1.4). Default 15 s.
    pub fn retry_token_lifetime(&mut self, lifetime: Duration) -> &mut Self {
        self.retry_token_lifetime = lifetime;
        self
    }

    /// How long a NEW_TOKEN token is accepted. Default 24 h.
    pub fn new_token_lifetime(&mut self, lifetime: Duration) -> &mut Self {
        self.new_token_lifetime = lifetime;
        self
    }

    /// Whether accepted connections get a NEW_TOKEN frame, with which the
    /// client can skip address validation on its next connection (RFC 9000
    /// §8.1.3). Default true.
    pub fn send_new_tokens(&mut self, send: bool) -> &mut Self {
        self.send_new_tokens = send;
        self
    }

    /// Answer every new connection whose address no token validates with a
    /// Retry, before the application sees it. Default false: the
    /// application decides per [`Incoming`](super::Incoming).
    pub fn require_retry(&mut self, require: bool) -> &mut Self {
        self.require_retry = require;
        self
    }

    /// Tokens the replay filter remembers per token lifetime, for each
    /// kind (Retry, NEW_TOKEN): each token is accepted once (RFC 9000
    /// §8.1.4). The filter takes 29 bits per token for each of two
    /// generations per kind (about 0.9 MiB at the default, allocated when
    /// first used) and mistakes a fresh token for a spent one with
    /// probability under 2 x 10^-6. Past this many tokens in a lifetime it
    /// forgets early, and then refuses tokens issued before what it
    /// remembers. Default 65,536.
    pub fn token_replay_capacity(&mut self, capacity: usize) -> &mut Self {
        self.token_replay_capacity = capacity.max(1);
        self
    }

    /// Connection attempts awaiting the application's decision at once.
    /// Beyond this, a client whose address no token validates gets a
    /// Retry (which costs no state) and one whose address is validated is
    /// dropped until a place frees up. Default 256.
    pub fn max_incoming(&mut self, max: usize) -> &mut Self {
        self.max_incoming = max;
        self
    }

    /// Connections held at once (in any state until drained); a client
    /// beyond this is refused with CONNECTION_REFUSED (RFC 9000 §5.2.2).
    /// Each connection holds its buffers and TLS state, so this is the
    /// bound on a server's memory. Default 16,384.
    pub fn max_connections(&mut self, max: usize) -> &mut Self {
        self.max_connections = max;
        self
    }

    /// Retry under load: once `threshold` handshakes are in progress
    /// (undecided attempts plus accepted connections whose handshake has
    /// not completed), every new client whose address no token validates
    /// gets a Retry before any state is kept for it (RFC 9000 §8.1.2), so
    /// a flood of Initials from spoofed addresses costs a stateless reply
    /// each and genuine clients still get in, one round trip later.
    /// `None` turns it off. Default `Some(64)`.
    pub fn retry_under_load(&mut self, threshold: Option<usize>) -> &mut Self {
        self.retry_under_load = threshold;
        self
    }

    /// How long a connection attempt waits for the application's decision
    /// before it is ignored. Default 10 s.
    pub fn incoming_lifetime(&mut self, lifetime: Duration) -> &mut Self {
        self.incoming_lifetime = lifetime;
        self
    }

    /// Stateless resets sent at most `count` per `period`, whatever their
    /// destination. Default 1000 per second.
    pub fn max_stateless_resets(&mut self, count: u32, period: Duration) -> &mut Self {
        self.max_stateless_resets = count;
        self.stateless_reset_period = period;
        self
    }

    /// List a reserved version (RFC 9000 §15) in Version Negotiation packets
    /// so that clients keep ignoring unknown versions. Default true.
    pub fn grease_version_negotiation(&mut self, grease: bool) -> &mut Self {
        self.grease_version_negotiation = grease;
        self
    }
}
