//! Settings of a [`Pair`]: transport, TLS and endpoint settings of both
//! sides, the incoming policy, and the links.

use core::fmt;
use std::rc::Rc;
use std::sync::Arc;

use super::link::LinkState;
use super::{DEFAULT_ALPN, Direction, EndpointSetup, IncomingPolicy, Link, Pair, mix};
use crate::connection::{ClientConfig, ServerConfig, TransportConfig};
use crate::endpoint::EndpointConfig;
use crate::random::SeededRandom;
use crate::testing::{
    DEFAULT_SEEDED_GROUPS, SeededGroup, TestPki, client_config_with, provider_with_random,
    server_config_with,
};
use crate::time::Instant;
use crate::version::Version;

/// Sets up a [`Pair`]: seed, transport and TLS settings of both sides, and
/// the links. Start with [`Pair::builder`].
pub struct PairBuilder {
    pub(super) seed: u64,
    client_transport: TransportConfig,
    server_transport: TransportConfig,
    client_alpn: Vec<Vec<u8>>,
    server_alpn: Vec<Vec<u8>>,
    client_groups: Vec<SeededGroup>,
    server_groups: Vec<SeededGroup>,
    client_cert: bool,
    require_client_cert: bool,
    client_tls: Option<Arc<rustls::ClientConfig>>,
    server_tls: Option<Arc<rustls::ServerConfig>>,
    version: Version,
    links: [Link; 2],
    pub(super) start: Instant,
    pub(super) record_trace: bool,
    client_endpoint: Option<EndpointSetup>,
    server_endpoint: Option<EndpointSetup>,
    incoming_policy: IncomingPolicy,
}

impl fmt::Debug for PairBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PairBuilder").field("seed", &self.seed).finish_non_exhaustive()
    }
}

impl PairBuilder {
    pub(super) fn new(seed: u64) -> Self {
        Self {
            seed,
            client_transport: TransportConfig::default(),
            server_transport: TransportConfig::default(),
            client_alpn: vec![DEFAULT_ALPN.to_vec()],
            server_alpn: vec![DEFAULT_ALPN.to_vec()],
            client_groups: DEFAULT_SEEDED_GROUPS.to_vec(),
            server_groups: DEFAULT_SEEDED_GROUPS.to_vec(),
            client_cert: false,
            require_client_cert: false,
            client_tls: None,
            server_tls: None,
            version: Version::V1,
            links: [Link::default(), Link::default()],
            start: Instant::from_millis(1_000),
            record_trace: true,
            client_endpoint: None,
            server_endpoint: None,
            incoming_policy: IncomingPolicy::Accept,
        }
    }

    /// Transport settings of the client. Default [`TransportConfig::default`].
    pub fn client_transport(&mut self, config: TransportConfig) -> &mut Self {
        self.client_transport = config;
        self
    }

    /// Transport settings of the server. Default [`TransportConfig::default`].
    pub fn server_transport(&mut self, config: TransportConfig) -> &mut Self {
        self.server_transport = config;
        self
    }

    /// Protocols the client offers. Default [`DEFAULT_ALPN`].
    pub fn client_alpn(&mut self, alpn: &[&[u8]]) -> &mut Self {
        self.client_alpn = alpn.iter().map(|p| p.to_vec()).collect();
        self
    }

    /// Protocols the server accepts. Default [`DEFAULT_ALPN`].
    pub fn server_alpn(&mut self, alpn: &[&[u8]]) -> &mut Self {
        self.server_alpn = alpn.iter().map(|p| p.to_vec()).collect();
        self
    }

    /// Key-exchange groups of the client, most preferred first; it sends a
    /// key share for the first only. Default [`DEFAULT_SEEDED_GROUPS`].
    pub fn client_groups(&mut self, groups: &[SeededGroup]) -> &mut Self {
        self.client_groups = groups.to_vec();
        self
    }

    /// Key-exchange groups of the server. A client whose first group is
    /// missing here draws a HelloRetryRequest.
    /// Default [`DEFAULT_SEEDED_GROUPS`].
    pub fn server_groups(&mut self, groups: &[SeededGroup]) -> &mut Self {
        self.server_groups = groups.to_vec();
        self
    }

    /// Whether the client presents the test PKI's client certificate when
    /// asked. Default no.
    pub fn client_cert(&mut self, present: bool) -> &mut Self {
        self.client_cert = present;
        self
    }

    /// Whether the server demands a client certificate. Default no.
    pub fn require_client_cert(&mut self, require: bool) -> &mut Self {
        self.require_client_cert = require;
        self
    }

    /// Uses this client TLS configuration instead of one built from the
    /// settings above.
    pub fn client_tls(&mut self, tls: Arc<rustls::ClientConfig>) -> &mut Self {
        self.client_tls = Some(tls);
        self
    }

    /// Uses this server TLS configuration instead of one built from the
    /// settings above.
    pub fn server_tls(&mut self, tls: Arc<rustls::ServerConfig>) -> &mut Self {
        self.server_tls = Some(tls);
        self
    }

    /// The QUIC version the client offers. Default [`Version::V1`].
    pub fn version(&mut self, version: Version) -> &mut Self {
        self.version = version;
        self
    }

    /// The link model of one direction.
    pub fn link(&mut self, direction: Direction) -> &mut Link {
        &mut self.links[direction.index()]
    }

    /// Applies `f` to the links of both directions.
    pub fn links(&mut self, mut f: impl FnMut(&mut Link)) -> &mut Self {
        self.links.iter_mut().for_each(&mut f);
        self
    }

    /// Virtual time at the start. Default 1 s after the epoch.
    pub fn start(&mut self, start: Instant) -> &mut Self {
        self.start = start;
        self
    }

    /// Whether to keep a [`TraceRecord`](super::TraceRecord) of every datagram. Default yes.
    pub fn record_trace(&mut self, record: bool) -> &mut Self {
        self.record_trace = record;
        self
    }

    /// Adjusts the client endpoint's settings. The pair first gives it
    /// randomness derived from the seed. Default none.
    pub fn client_endpoint(&mut self, setup: impl Fn(&mut EndpointConfig) + 'static) -> &mut Self {
        self.client_endpoint = Some(Rc::new(setup));
        self
    }

    /// Adjusts the server endpoint's settings, after the pair set its reset
    /// and token keys from the seed; applied again by
    /// [`Pair::restart_server`]. Default none.
    pub fn server_endpoint(&mut self, setup: impl Fn(&mut EndpointConfig) + 'static) -> &mut Self {
        self.server_endpoint = Some(Rc::new(setup));
        self
    }

    /// What the server endpoint does with connection attempts; a test can
    /// change it later with [`Pair::set_incoming_policy`] or
    /// [`Pair::set_incoming_handler`]. Default [`IncomingPolicy::Accept`].
    pub fn incoming_policy(&mut self, policy: IncomingPolicy) -> &mut Self {
        self.incoming_policy = policy;
        self
    }

    /// Builds the pair: both endpoints and the client's connection exist;
    /// the server's connection is created when the server endpoint accepts
    /// the client's first Initial.
    ///
    /// Panics (printing the seed) if the client cannot start.
    pub fn build(&self) -> Pair {
        let seed = self.seed;
        let pki = TestPki::new(seed);
        let alpn = |list: &[Vec<u8>]| list.iter().map(|p| p.to_vec()).collect::<Vec<_>>();
        let client_alpn = alpn(&self.client_alpn);
        let server_alpn = alpn(&self.server_alpn);
        let client_alpn: Vec<&[u8]> = client_alpn.iter().map(Vec::as_slice).collect();
        let server_alpn: Vec<&[u8]> = server_alpn.iter().map(Vec::as_slice).collect();
        let client_tls = self.client_tls.clone().unwrap_or_else(|| {
            let provider =
                provider_with_random(Box::new(SeededRandom::from_u64(seed)), &self.client_groups);
            Arc::new(client_config_with(&pki, &client_alpn, provider, self.client_cert))
        });
        let server_tls = self.server_tls.clone().unwrap_or_else(|| {
            let provider = provider_with_random(
                Box::new(SeededRandom::from_u64(seed.wrapping_add(1))),
                &self.server_groups,
            );
            Arc::new(server_config_with(&pki, &server_alpn, provider, self.require_client_cert))
        });
        let client_config = ClientConfig {
            tls: client_tls,
            transport: Arc::new(self.client_transport.clone()),
            version: self.version,
        };
        let server_config =
            ServerConfig { tls: server_tls, transport: Arc::new(self.server_transport.clone()) };
        let links = [Direction::ClientToServer, Direction::ServerToClient].map(|d| {
            LinkState::new(
                self.links[d.index()].clone(),
                SeededRandom::from_u64(mix(seed, 0x11_4b + d.index() as u64)),
                self.start,
            )
        });
        Pair::assemble(
            self,
            pki,
            &client_config,
            server_config,
            links,
            self.client_endpoint.as_ref(),
            self.server_endpoint.clone(),
            self.incoming_policy,
        )
    }
}
