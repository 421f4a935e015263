//! What a connection tells its driver and application: transmits, events
//! and errors (the vocabulary of the driving contract, docs/architecture.md).

use core::fmt;
use std::net::{IpAddr, SocketAddr};

use bytes::Bytes;

use crate::error::{TransportError, TransportErrorCode};
use crate::frame::FrameType;
use crate::stream_id::{Dir, StreamId};
use crate::varint::VarInt;

pub use crate::recovery::EcnCodepoint;

/// What the driver knows about a received datagram besides its bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DatagramMeta {
    /// The address it came from.
    pub remote: SocketAddr,
    /// The local address it was sent to, where the socket can tell
    /// (IP_PKTINFO); lets a wildcard-bound server answer from the right address.
    pub local_ip: Option<IpAddr>,
    /// Its ECN marking, where the socket can tell.
    pub ecn: Option<EcnCodepoint>,
}

/// A datagram (or a GSO batch of equal-sized datagrams) for the driver to
/// send: the bytes are in the buffer passed to `poll_transmit`.
#[must_use = "a transmit that is not sent is lost"]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Transmit {
    /// Where to send it.
    pub destination: SocketAddr,
    /// ECN marking to set on the IP header.
    pub ecn: Option<EcnCodepoint>,
    /// Bytes written to the buffer.
    pub size: usize,
    /// With more than one datagram in the buffer: the size of each but the
    /// last (UDP GSO segment size). `None`: one datagram.
    pub segment_size: Option<usize>,
    /// The local address to send from, if it matters (multi-homed servers).
    pub src_ip: Option<IpAddr>,
}

/// Something the application may want to act on. Drained with `poll_event`.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// The TLS handshake completed (RFC 9001 §4.1.1): 1-RTT keys are in use.
    HandshakeCompleted,
    /// The handshake is confirmed (RFC 9001 §4.1.2).
    HandshakeConfirmed,
    /// A stream changed state.
    Stream(StreamEvent),
    /// DATAGRAM frames arrived: read them with `read_datagram` until it
    /// returns `None`. One event stands for any number of datagrams; the
    /// next comes after this one is polled.
    DatagramReceived,
    /// Client: the server sent an address validation token (NEW_TOKEN).
    /// Keep it for this server name and pass it to the next connection
    /// (`connect_with_token`) to skip address validation there.
    NewToken(Bytes),
    /// The connection ended; no more events follow but `Drained`.
    ConnectionLost(ConnectionError),
    /// All connection state can be dropped: the draining or closing period
    /// is over (RFC 9000 §10.2).
    Drained,
}

/// A change in one stream, or in the ability to open streams. An event
/// is queued at most once until polled: `Readable` means "read until
/// blocked", `Opened` "accept until none is left".
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum StreamEvent {
    /// The peer opened streams of this direction; accept them.
    Opened(Dir),
    /// Data (or the end of the stream, or a reset) can be read.
    Readable(StreamId),
    /// A stream whose last write returned `WriteError::Blocked` or took
    /// less than offered can take more data: acknowledgements freed space
    /// in its send buffer. Once per blocking; streams that were not
    /// blocked get none.
    Writable(StreamId),
    /// Every byte written, and the FIN, were acknowledged by the peer.
    Finished(StreamId),
    /// The peer sent STOP_SENDING with this application error code.
    Stopped(StreamId, VarInt),
    /// The peer raised its stream limit: more streams of this direction can be opened.
    Available(Dir),
}

/// Why a connection ended.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConnectionError {
    /// The peer violated the protocol; this endpoint closed with this error.
    TransportError(TransportError),
    /// The peer closed the connection with a transport error code.
    ConnectionClosed {
        /// The code the peer sent.
        code: TransportErrorCode,
        /// The frame type the peer blamed, if any.
        frame_type: Option<FrameType>,
        /// The reason phrase the peer sent.
        reason: Bytes,
    },
    /// The peer's application closed the connection.
    ApplicationClosed {
        /// The application's error code.
        code: VarInt,
        /// The reason phrase the peer sent.
        reason: Bytes,
    },
    /// This endpoint's application closed the connection.
    LocallyClosed,
    /// The peer sent a stateless reset (RFC 9000 §10.3).
    Reset,
    /// No packet arrived within the idle timeout (RFC 9000 §10.1).
    TimedOut,
    /// No QUIC version both endpoints support (RFC 9000 §6).
    VersionMismatch,
}

impl fmt::Display for ConnectionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TransportError(e) => write!(f, "closed by this endpoint: {e}"),
            Self::ConnectionClosed { code, frame_type, reason } => {
                write!(f, "closed by the peer: {code}")?;
                if let Some(t) = frame_type {
                    write!(f, " in {t}")?;
                }
                if !reason.is_empty() {
                    write!(f, ": {}", String::from_utf8_lossy(reason))?;
                }
                Ok(())
            }
            Self::ApplicationClosed { code, reason } => {
                write!(f, "closed by the peer's application: code {code}")?;
                if !reason.is_empty() {
                    write!(f, ": {}", String::from_utf8_lossy(reason))?;
                }
                Ok(())
            }
            Self::LocallyClosed => f.write_str("closed by this endpoint's application"),
            Self::Reset => f.write_str("reset by the peer (stateless reset)"),
            Self::TimedOut => f.write_str("timed out: no packets within the idle timeout"),
            Self::VersionMismatch => f.write_str("no QUIC version in common with the peer"),
        }
    }
}

impl std::error::Error for ConnectionError {}

/// Why a stream write failed.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum WriteError {
    /// The stream's send buffer is full (flow control limits sending, not
    /// writing); one `Writable` event follows once acknowledgements free
    /// space.
    Blocked,
    /// The peer sent STOP_SENDING with this error code.
    Stopped(VarInt),
    /// The stream is finished, reset, or was never open for sending here.
    ClosedStream,
    /// The connection is gone.
    ConnectionLost(ConnectionError),
}

/// Why a stream read failed.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ReadError {
    /// No data is available yet; a `Readable` event follows.
    Blocked,
    /// The peer reset the stream with this error code.
    Reset(VarInt),
    /// The stream was never open for receiving here, or was already read to the end.
    ClosedStream,
    /// The connection is gone.
    ConnectionLost(ConnectionError),
}

impl fmt::Display for WriteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Blocked => f.write_str("stream blocked: flow control or send buffer full"),
            Self::Stopped(code) => write!(f, "the peer stopped the stream with code {code}"),
            Self::ClosedStream => f.write_str("stream closed for sending"),
            Self::ConnectionLost(e) => write!(f, "connection lost: {e}"),
        }
    }
}

impl std::error::Error for WriteError {}

impl fmt::Display for ReadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Blocked => f.write_str("no data available yet"),
            Self::Reset(code) => write!(f, "the peer reset the stream with code {code}"),
            Self::ClosedStream => f.write_str("stream closed for receiving"),
            Self::ConnectionLost(e) => write!(f, "connection lost: {e}"),
        }
    }
}

impl std::error::Error for ReadError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_read_well() {
        let e = ConnectionError::ConnectionClosed {
            code: TransportErrorCode::crypto(120),
            frame_type: None,
            reason: Bytes::from_static(b"no application protocol"),
        };
        assert_eq!(
            e.to_string(),
            "closed by the peer: CRYPTO_ERROR(alert 120): no application protocol"
        );
        assert_eq!(
            WriteError::Stopped(VarInt::from_u32(7)).to_string(),
            "the peer stopped the stream with code 7"
        );
    }
}
