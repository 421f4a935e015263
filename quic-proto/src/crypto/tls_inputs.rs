//! The TLS inputs a trace records so a handshake replays byte for byte
//! (RFC 8446 §4.4.3 CertificateVerify; RFC 9001 §4): signatures made by our
//! key and reads of the TLS clock.
//!
//! With [`super::seeded::endpoint_provider`] every random draw rustls makes
//! comes from the endpoint's seed. Two inputs remain: signatures (ECDSA and
//! RSA-PSS draw their own nonces inside aws-lc-rs, out of the provider's
//! reach) and the clock rustls reads for certificate validity and session
//! tickets. A recording endpoint wraps its key in [`RecordingSigningKey`]
//! (through [`recording_server_resolver`]) and its clock in
//! [`RecordingTime`], both pushing into one [`TlsInputLog`] that the trace
//! writer drains. A replaying endpoint answers from the trace instead:
//! [`ReplaySigningKey`] (through [`replay_server_resolver`]) and
//! [`ReplayTime`].

use core::fmt;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use aws_lc_rs::digest;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, SubjectPublicKeyInfoDer, UnixTime};
use rustls::server::ResolvesServerCert;
use rustls::sign::{CertifiedKey, Signer, SigningKey, SingleCertAndKey};
use rustls::time_provider::TimeProvider;
use rustls::{SignatureAlgorithm, SignatureScheme};

/// One TLS input a trace records.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TlsInput {
    /// A signature made by our key (CertificateVerify, RFC 8446 §4.4.3).
    Signature {
        /// The TLS signature scheme, as its wire value
        /// (`u16::from(rustls::SignatureScheme)`).
        scheme: u16,
        /// The SHA-256 of the message signed: a replay checks it before it
        /// hands the signature back.
        message_sha256: [u8; 32],
        /// The signature, as it goes on the wire.
        signature: Vec<u8>,
    },
    /// A read of the TLS clock (rustls' `TimeProvider::current_time`).
    Time {
        /// Seconds since the Unix epoch.
        unix_secs: u64,
    },
}

/// The most inputs a [`TlsInputLog`] holds before they are taken: a
/// handshake makes a handful, so only a writer that stopped draining gets
/// near it, and the log must not grow without bound while it does.
pub const MAX_PENDING_INPUTS: usize = 4096;

/// The most signature bytes a [`TlsInputLog`] holds before they are taken
/// (1 MiB, some hundreds of RSA-4096 signatures).
pub const MAX_PENDING_SIGNATURE_BYTES: usize = 1 << 20;

/// A shared, bounded log of TLS inputs, in the order they happened.
///
/// Clones share one log: hand one to [`RecordingSigningKey`] and
/// [`RecordingTime`], keep one for the trace writer, which calls
/// [`TlsInputLog::take`] after each step of the endpoint.
#[derive(Clone, Default)]
pub struct TlsInputLog {
    inner: Arc<Mutex<LogState>>,
}

#[derive(Default)]
struct LogState {
    pending: VecDeque<TlsInput>,
    signature_bytes: usize,
    overflowed: bool,
}

impl TlsInputLog {
    /// An empty log.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends `input`, unless [`MAX_PENDING_INPUTS`] inputs or
    /// [`MAX_PENDING_SIGNATURE_BYTES`] signature bytes are already pending:
    /// then the input is dropped and [`TlsInputLog::overflowed`] turns true.
    pub fn push(&self, input: TlsInput) {
        let mut state = self.lock();
        let bytes = match &input {
            TlsInput::Signature { signature, .. } => signature.len(),
            TlsInput::Time { .. } => 0,
        };
        if state.pending.len() >= MAX_PENDING_INPUTS
            || bytes > MAX_PENDING_SIGNATURE_BYTES - state.signature_bytes
        {
            state.overflowed = true;
            return;
        }
        state.signature_bytes += bytes;
        state.pending.push_back(input);
    }

    /// Removes and returns the pending inputs, oldest first.
    pub fn take(&self) -> Vec<TlsInput> {
        let mut state = self.lock();
        state.signature_bytes = 0;
        state.pending.drain(..).collect()
    }

    /// Whether an input was ever dropped for want of room. It stays true
    /// once set: a trace missing an input cannot replay past that point.
    pub fn overflowed(&self) -> bool {
        self.lock().overflowed
    }

    /// The state, even if a thread panicked holding the lock: every update
    /// above completes before anything that could panic, so it is whole.
    fn lock(&self) -> MutexGuard<'_, LogState> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl fmt::Debug for TlsInputLog {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.lock();
        f.debug_struct("TlsInputLog")
            .field("pending", &state.pending.len())
            .field("signature_bytes", &state.signature_bytes)
            .field("overflowed", &state.overflowed)
            .finish()
    }
}

/// Loads a DER private key with `provider`'s key provider, for
/// [`recording_server_resolver`].
pub fn signing_key(
    provider: &CryptoProvider,
    key: PrivateKeyDer<'static>,
) -> Result<Arc<dyn SigningKey>, rustls::Error> {
    provider.key_provider.load_private_key(key)
}

/// A signing key that records every signature it makes into a
/// [`TlsInputLog`] as [`TlsInput::Signature`].
#[derive(Debug)]
pub struct RecordingSigningKey {
    inner: Arc<dyn SigningKey>,
    log: TlsInputLog,
}

impl RecordingSigningKey {
    /// Wraps `inner`; its signatures go to `log`.
    pub fn new(inner: Arc<dyn SigningKey>, log: TlsInputLog) -> Self {
        Self { inner, log }
    }
}

impl SigningKey for RecordingSigningKey {
    fn choose_scheme(&self, offered: &[SignatureScheme]) -> Option<Box<dyn Signer>> {
        let inner = self.inner.choose_scheme(offered)?;
        Some(Box::new(RecordingSigner { inner, log: self.log.clone() }))
    }

    fn public_key(&self) -> Option<SubjectPublicKeyInfoDer<'_>> {
        self.inner.public_key()
    }

    fn algorithm(&self) -> SignatureAlgorithm {
        self.inner.algorithm()
    }
}

#[derive(Debug)]
struct RecordingSigner {
    inner: Box<dyn Signer>,
    log: TlsInputLog,
}

impl Signer for RecordingSigner {
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, rustls::Error> {
        let signature = self.inner.sign(message)?;
        self.log.push(TlsInput::Signature {
            scheme: u16::from(self.inner.scheme()),
            message_sha256: sha256(message),
            signature: signature.clone(),
        });
        Ok(signature)
    }

    fn scheme(&self) -> SignatureScheme {
        self.inner.scheme()
    }
}

/// A server certificate resolver that always presents `chain` (end entity
/// first) and signs with `key`, recording each signature into `log`.
///
/// Install it on a built configuration: `server_config.cert_resolver =
/// recording_server_resolver(chain, key, log)`. `key` comes from
/// [`signing_key`].
pub fn recording_server_resolver(
    chain: Vec<CertificateDer<'static>>,
    key: Arc<dyn SigningKey>,
    log: TlsInputLog,
) -> Arc<dyn ResolvesServerCert> {
    let key: Arc<dyn SigningKey> = Arc::new(RecordingSigningKey::new(key, log));
    Arc::new(SingleCertAndKey::from(CertifiedKey::new(chain, key)))
}

/// One recorded signature: the scheme's wire value, the SHA-256 of the
/// message signed, the signature.
type RecordedSignature = (u16, [u8; 32], Vec<u8>);

/// A signing key that hands back recorded signatures, in order, instead of
/// signing: the replay side of [`RecordingSigningKey`].
///
/// It holds no private key. Each signature is given out only for the
/// message it was made over; any other message, or a signature asked for
/// after the recorded ones are used up, fails the handshake with
/// `rustls::Error::General` naming the divergence.
#[derive(Debug)]
pub struct ReplaySigningKey {
    queue: Arc<Mutex<VecDeque<RecordedSignature>>>,
    /// The algorithm of the first recorded signature, reported once the
    /// queue is empty.
    first_algorithm: SignatureAlgorithm,
}

impl ReplaySigningKey {
    /// A key that replays `signatures` (scheme, message SHA-256, signature)
    /// in order.
    pub fn new(signatures: Vec<(u16, [u8; 32], Vec<u8>)>) -> Self {
        let first_algorithm =
            signatures.first().map_or(SignatureAlgorithm::ECDSA, |s| scheme_algorithm(s.0));
        Self { queue: Arc::new(Mutex::new(signatures.into())), first_algorithm }
    }

    /// A key that replays the [`TlsInput::Signature`]s among `inputs`, in
    /// order, skipping the other inputs.
    pub fn from_inputs(inputs: &[TlsInput]) -> Self {
        Self::new(
            inputs
                .iter()
                .filter_map(|input| match input {
                    TlsInput::Signature { scheme, message_sha256, signature } => {
                        Some((*scheme, *message_sha256, signature.clone()))
                    }
                    TlsInput::Time { .. } => None,
                })
                .collect(),
        )
    }

    /// How many recorded signatures are still to be handed out: zero at
    /// the end of a replay that went as recorded.
    pub fn remaining(&self) -> usize {
        lock_queue(&self.queue).len()
    }

    fn next_scheme(&self) -> Option<u16> {
        lock_queue(&self.queue).front().map(|s| s.0)
    }
}

impl SigningKey for ReplaySigningKey {
    /// The scheme of the next recorded signature if the peer offered it;
    /// `None` otherwise (or when none is left), which rustls turns into a
    /// failed handshake.
    fn choose_scheme(&self, offered: &[SignatureScheme]) -> Option<Box<dyn Signer>> {
        let scheme = SignatureScheme::from(self.next_scheme()?);
        offered.contains(&scheme).then(|| {
            Box::new(ReplaySigner { queue: self.queue.clone(), scheme }) as Box<dyn Signer>
        })
    }

    fn algorithm(&self) -> SignatureAlgorithm {
        self.next_scheme().map_or(self.first_algorithm, scheme_algorithm)
    }
}

#[derive(Debug)]
struct ReplaySigner {
    queue: Arc<Mutex<VecDeque<RecordedSignature>>>,
    scheme: SignatureScheme,
}

impl Signer for ReplaySigner {
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, rustls::Error> {
        let Some((scheme, digest, signature)) = lock_queue(&self.queue).pop_front() else {
            return Err(rustls::Error::General(
                "replay: a signature was asked for after the recorded ones ran out; \
                 the handshake has diverged from the trace"
                    .into(),
            ));
        };
        if scheme != u16::from(self.scheme) {
            return Err(rustls::Error::General(format!(
                "replay: the recorded signature is for scheme {:#06x}, not {:?}; \
                 the handshake has diverged from the trace",
                scheme, self.scheme
            )));
        }
        if sha256(message) != digest {
            return Err(rustls::Error::General(
                "replay: the message to sign differs from the recorded one; \
                 the handshake has diverged from the trace"
                    .into(),
            ));
        }
        Ok(signature)
    }

    fn scheme(&self) -> SignatureScheme {
        self.scheme
    }
}

/// A server certificate resolver that always presents `chain` (end entity
/// first) with the replaying `key`; the replay side of
/// [`recording_server_resolver`]. Keep a clone of `key` to check
/// [`ReplaySigningKey::remaining`] afterwards.
pub fn replay_server_resolver(
    chain: Vec<CertificateDer<'static>>,
    key: Arc<ReplaySigningKey>,
) -> Arc<dyn ResolvesServerCert> {
    let key: Arc<dyn SigningKey> = key;
    Arc::new(SingleCertAndKey::from(CertifiedKey::new(chain, key)))
}

/// A TLS clock that records every read into a [`TlsInputLog`] as
/// [`TlsInput::Time`].
///
/// A read the inner clock cannot answer (`None`) is not recorded.
#[derive(Debug)]
pub struct RecordingTime {
    inner: Arc<dyn TimeProvider>,
    log: TlsInputLog,
}

impl RecordingTime {
    /// Wraps `inner` (for a driver, rustls' `DefaultTimeProvider`); its
    /// reads go to `log`.
    pub fn new(inner: Arc<dyn TimeProvider>, log: TlsInputLog) -> Self {
        Self { inner, log }
    }
}

impl TimeProvider for RecordingTime {
    fn current_time(&self) -> Option<UnixTime> {
        let now = self.inner.current_time()?;
        // `UnixTime` holds whole seconds, so the record is exact.
        self.log.push(TlsInput::Time { unix_secs: now.as_secs() });
        Some(now)
    }
}

/// A TLS clock that returns recorded reads in order; the replay side of
/// [`RecordingTime`].
///
/// Once the recorded reads are used up it keeps returning the last one, so
/// a replay that reads the clock more often than the run did still sees
/// time standing still rather than failing; with nothing recorded it
/// returns `None` (rustls then fails what needed the time).
#[derive(Debug)]
pub struct ReplayTime {
    state: Mutex<ReplayTimeState>,
}

#[derive(Debug)]
struct ReplayTimeState {
    pending: VecDeque<u64>,
    last: Option<u64>,
}

impl ReplayTime {
    /// A clock that returns `unix_secs` in order, then the last of them.
    pub fn new(unix_secs: Vec<u64>) -> Self {
        Self { state: Mutex::new(ReplayTimeState { pending: unix_secs.into(), last: None }) }
    }

    /// A clock that replays the [`TlsInput::Time`]s among `inputs`, in
    /// order, skipping the other inputs.
    pub fn from_inputs(inputs: &[TlsInput]) -> Self {
        Self::new(
            inputs
                .iter()
                .filter_map(|input| match input {
                    TlsInput::Time { unix_secs } => Some(*unix_secs),
                    TlsInput::Signature { .. } => None,
                })
                .collect(),
        )
    }

    /// How many recorded reads have not been returned yet.
    pub fn remaining(&self) -> usize {
        self.state.lock().unwrap_or_else(PoisonError::into_inner).pending.len()
    }
}

impl TimeProvider for ReplayTime {
    fn current_time(&self) -> Option<UnixTime> {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(next) = state.pending.pop_front() {
            state.last = Some(next);
        }
        state.last.map(|secs| UnixTime::since_unix_epoch(Duration::from_secs(secs)))
    }
}

/// The queue, even if a thread panicked holding the lock: pops are whole.
fn lock_queue(
    queue: &Mutex<VecDeque<RecordedSignature>>,
) -> MutexGuard<'_, VecDeque<RecordedSignature>> {
    queue.lock().unwrap_or_else(PoisonError::into_inner)
}

fn sha256(message: &[u8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    out.copy_from_slice(digest::digest(&digest::SHA256, message).as_ref());
    out
}

/// The kind of key a signature scheme belongs to; ECDSA for schemes this
/// code does not know (rustls reads it only to match TLS 1.2 suites).
fn scheme_algorithm(scheme: u16) -> SignatureAlgorithm {
    match SignatureScheme::from(scheme) {
        SignatureScheme::RSA_PKCS1_SHA1
        | SignatureScheme::RSA_PKCS1_SHA256
        | SignatureScheme::RSA_PKCS1_SHA384
        | SignatureScheme::RSA_PKCS1_SHA512
        | SignatureScheme::RSA_PSS_SHA256
        | SignatureScheme::RSA_PSS_SHA384
        | SignatureScheme::RSA_PSS_SHA512 => SignatureAlgorithm::RSA,
        SignatureScheme::ED25519 => SignatureAlgorithm::ED25519,
        SignatureScheme::ED448 => SignatureAlgorithm::ED448,
        _ => SignatureAlgorithm::ECDSA,
    }
}

#[cfg(test)]
mod tests;
