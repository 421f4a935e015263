//! The stream state machines of RFC 9000 §3.1 (sending part) and §3.2
//! (receiving part), the frames each state permits (§3.3, §3.5), and the
//! rules on which stream frames may arrive for which stream (§19.4, §19.5,
//! §19.8, §19.10, §19.13).
//!
//! Transitions driven by the local endpoint return whether they happened:
//! one that the current state does not allow is a local bookkeeping
//! mistake, never the peer's doing, and leaves the state unchanged.
//! Frames from the peer may arrive in any state because of reordering
//! (RFC 9000 §3.3), so the state machines never turn them into errors; the
//! peer's errors are a frame for the wrong direction or for a stream not
//! yet opened ([`check_frame_direction`], [`check_local_stream_opened`]) and
//! final-size contradictions (caught by the receive buffer).

use crate::error::TransportError;
use crate::frame::FrameType;
use crate::stream_id::{Dir, Side, StreamId};

/// The sending part of a stream (RFC 9000 §3.1, Figure 2).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum SendState {
    /// Created; data may be buffered but nothing was sent.
    #[default]
    Ready,
    /// STREAM or STREAM_DATA_BLOCKED sent; data flows.
    Send,
    /// A STREAM frame with the FIN bit was sent; only retransmissions follow.
    DataSent,
    /// All data and the FIN were acknowledged (terminal).
    DataRecvd,
    /// RESET_STREAM sent.
    ResetSent,
    /// RESET_STREAM acknowledged (terminal).
    ResetRecvd,
}

impl SendState {
    /// Whether this is "Data Recvd" or "Reset Recvd".
    pub fn is_terminal(self) -> bool {
        matches!(self, Self::DataRecvd | Self::ResetRecvd)
    }

    /// Whether STREAM and STREAM_DATA_BLOCKED frames may be sent.
    pub fn may_send_stream(self) -> bool {
        //= https://www.rfc-editor.org/rfc/rfc9000#section-3.3
        //# A sender MUST NOT send any of these frames from a terminal state ("Data Recvd"
        //# or "Reset Recvd").  A sender MUST NOT send a STREAM or STREAM_DATA_BLOCKED frame
        //# for a stream in the "Reset Sent" state or any terminal state -- that is, after
        //# sending a RESET_STREAM frame.
        matches!(self, Self::Ready | Self::Send | Self::DataSent)
    }

    /// Whether a RESET_STREAM may be sent (or sent again after a loss):
    /// from "Ready", "Send" or "Data Sent" to abandon the stream, or in
    /// "Reset Sent" to repeat a lost one.
    pub fn may_send_reset(self) -> bool {
        !self.is_terminal()
    }

    /// A STREAM frame was sent, with the FIN bit if `fin`: "Ready" moves to
    /// "Send", and a FIN moves on to "Data Sent" (one event can pass
    /// through both, RFC 9000 §3). Retransmissions in "Send" or "Data Sent"
    /// change nothing. False if the state forbids sending STREAM frames.
    pub fn on_stream_sent(&mut self, fin: bool) -> bool {
        match *self {
            Self::Ready | Self::Send if fin => *self = Self::DataSent,
            Self::Ready => *self = Self::Send,
            Self::Send | Self::DataSent => {}
            Self::DataRecvd | Self::ResetSent | Self::ResetRecvd => return false,
        }
        true
    }

    /// A STREAM_DATA_BLOCKED frame was sent: "Ready" moves to "Send".
    /// False if the state forbids sending it.
    pub fn on_stream_data_blocked_sent(&mut self) -> bool {
        match *self {
            Self::Ready => *self = Self::Send,
            Self::Send | Self::DataSent => {}
            Self::DataRecvd | Self::ResetSent | Self::ResetRecvd => return false,
        }
        true
    }

    /// A RESET_STREAM frame was sent: "Ready", "Send" or "Data Sent" moves
    /// to "Reset Sent"; a repeat in "Reset Sent" changes nothing. False from
    /// a terminal state.
    pub fn on_reset_sent(&mut self) -> bool {
        match *self {
            Self::Ready | Self::Send | Self::DataSent => *self = Self::ResetSent,
            Self::ResetSent => {}
            Self::DataRecvd | Self::ResetRecvd => return false,
        }
        true
    }

    /// Every byte and the FIN were acknowledged: "Data Sent" moves to
    /// "Data Recvd". False (no change) in any other state, for instance
    /// after a reset.
    pub fn on_all_data_acked(&mut self) -> bool {
        if *self == Self::DataSent {
            *self = Self::DataRecvd;
            true
        } else {
            false
        }
    }

    /// The packet carrying RESET_STREAM was acknowledged: "Reset Sent"
    /// moves to "Reset Recvd". False (no change) in any other state.
    pub fn on_reset_acked(&mut self) -> bool {
        if *self == Self::ResetSent {
            *self = Self::ResetRecvd;
            true
        } else {
            false
        }
    }

    /// A STOP_SENDING frame arrived: returns whether to answer with a
    /// RESET_STREAM (then call [`on_reset_sent`](Self::on_reset_sent) when
    /// it goes out).
    ///
    /// In "Data Sent" the RFC allows deferring until outstanding data is
    /// acknowledged or lost; this answers at once instead, which is simpler
    /// and also honours the SHOULD about not retransmitting lost data.
    pub fn on_stop_sending(self) -> bool {
        //= https://www.rfc-editor.org/rfc/rfc9000#section-3.5
        //# An endpoint that receives a STOP_SENDING frame MUST send a RESET_STREAM
        //# frame if the stream is in the "Ready" or "Send" state.
        matches!(self, Self::Ready | Self::Send | Self::DataSent)
    }
}

/// The receiving part of a stream (RFC 9000 §3.2, Figure 3).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum RecvState {
    /// Receiving data; the final size is unknown.
    #[default]
    Recv,
    /// A FIN arrived: the final size is known, data may still be missing.
    SizeKnown,
    /// Every byte up to the final size arrived.
    DataRecvd,
    /// The application read every byte (terminal).
    DataRead,
    /// A RESET_STREAM arrived.
    ResetRecvd,
    /// The application saw the reset (terminal).
    ResetRead,
}

impl RecvState {
    /// Whether this is "Data Read" or "Reset Read".
    pub fn is_terminal(self) -> bool {
        matches!(self, Self::DataRead | Self::ResetRead)
    }

    /// Whether MAX_STREAM_DATA frames are worth sending: only in "Recv";
    /// once the final size is known the peer needs no more credit.
    pub fn may_send_max_stream_data(self) -> bool {
        self == Self::Recv
    }

    /// Whether a STOP_SENDING frame may be sent: in any state where no
    /// RESET_STREAM arrived (RFC 9000 §3.3).
    pub fn may_send_stop_sending(self) -> bool {
        !matches!(self, Self::ResetRecvd | Self::ResetRead)
    }

    /// Whether an application that aborts reading should have STOP_SENDING
    /// sent: in "Recv" or "Size Known". In other states all data or a reset
    /// already arrived and the frame is unnecessary.
    pub fn should_send_stop_sending(self) -> bool {
        //= https://www.rfc-editor.org/rfc/rfc9000#section-3.5
        //# If the stream is in the "Recv" or "Size Known" state, the transport SHOULD
        //# signal this by sending a STOP_SENDING frame to prompt closure of the stream in
        //# the opposite direction.
        matches!(self, Self::Recv | Self::SizeKnown)
    }

    /// A STREAM frame with the FIN bit arrived: "Recv" moves to "Size
    /// Known". Returns whether the state changed.
    pub fn on_size_known(&mut self) -> bool {
        if *self == Self::Recv {
            *self = Self::SizeKnown;
            true
        } else {
            false
        }
    }

    /// Every byte up to the final size arrived: "Recv" or "Size Known"
    /// moves to "Data Recvd" (possibly on the same frame that made the size
    /// known). Returns whether the state changed.
    pub fn on_all_data_received(&mut self) -> bool {
        if matches!(self, Self::Recv | Self::SizeKnown) {
            *self = Self::DataRecvd;
            true
        } else {
            false
        }
    }

    /// The application read every byte: "Data Recvd" moves to "Data
    /// Read". Returns whether the state changed.
    pub fn on_all_data_read(&mut self) -> bool {
        if *self == Self::DataRecvd {
            *self = Self::DataRead;
            true
        } else {
            false
        }
    }

    /// A RESET_STREAM arrived: "Recv", "Size Known" or "Data Recvd" moves
    /// to "Reset Recvd". Returns whether the state changed; if so, discard
    /// buffered data and signal the reset to the application.
    ///
    /// From "Data Recvd" the RFC leaves the choice open; this takes the
    /// reset, so that an application always learns the peer abandoned the
    /// stream, and the receive buffer discards unread data consistently.
    /// (The reverse optional arrow, "Reset Recvd" to "Data Recvd" when the
    /// rest of the data arrives, is likewise not taken.)
    pub fn on_reset_received(&mut self) -> bool {
        if matches!(self, Self::Recv | Self::SizeKnown | Self::DataRecvd) {
            *self = Self::ResetRecvd;
            true
        } else {
            false
        }
    }

    /// The application was told of the reset: "Reset Recvd" moves to
    /// "Reset Read". Returns whether the state changed.
    pub fn on_reset_read(&mut self) -> bool {
        if *self == Self::ResetRecvd {
            *self = Self::ResetRead;
            true
        } else {
            false
        }
    }
}

/// Whether `local` sends on stream `id`: bidirectional streams, and the
/// unidirectional streams it opened.
pub fn has_send_part(id: StreamId, local: Side) -> bool {
    id.dir() == Dir::Bi || id.initiator() == local
}

/// Whether `local` receives on stream `id`: bidirectional streams, and the
/// unidirectional streams the peer opened.
pub fn has_recv_part(id: StreamId, local: Side) -> bool {
    id.dir() == Dir::Bi || id.initiator() != local
}

/// Checks that a frame of type `frame_type` received for stream `id` fits
/// the stream's direction as seen by `local`: frames from a sender (STREAM,
/// RESET_STREAM, STREAM_DATA_BLOCKED) need a receiving part here, and
/// frames from a receiver (STOP_SENDING, MAX_STREAM_DATA) a sending part.
/// Other frame types pass.
///
/// # Errors
/// STREAM_STATE_ERROR attributed to `frame_type`; the connection closes.
pub fn check_frame_direction(
    id: StreamId,
    local: Side,
    frame_type: FrameType,
) -> Result<(), TransportError> {
    let send_only = !has_recv_part(id, local);
    let recv_only = !has_send_part(id, local);
    if frame_type.is_stream() && send_only {
        //= https://www.rfc-editor.org/rfc/rfc9000#section-19.8
        //# An endpoint MUST terminate the connection with error STREAM_STATE_ERROR if it
        //# receives a STREAM frame for a locally initiated stream that has not yet been
        //# created, or for a send-only stream.
        return Err(error(frame_type, "STREAM for a send-only stream"));
    }
    match frame_type {
        //= https://www.rfc-editor.org/rfc/rfc9000#section-19.4
        //# An endpoint that receives a RESET_STREAM frame for a send-only stream MUST
        //# terminate the connection with error STREAM_STATE_ERROR.
        FrameType::RESET_STREAM if send_only => {
            Err(error(frame_type, "RESET_STREAM for a send-only stream"))
        }
        //= https://www.rfc-editor.org/rfc/rfc9000#section-19.13
        //# An endpoint that receives a STREAM_DATA_BLOCKED frame for a send-only stream
        //# MUST terminate the connection with error STREAM_STATE_ERROR.
        FrameType::STREAM_DATA_BLOCKED if send_only => {
            Err(error(frame_type, "STREAM_DATA_BLOCKED for a send-only stream"))
        }
        //= https://www.rfc-editor.org/rfc/rfc9000#section-19.5
        //# An endpoint that receives a
        //# STOP_SENDING frame for a receive-only stream MUST terminate the connection with
        //# error STREAM_STATE_ERROR.
        FrameType::STOP_SENDING if recv_only => {
            Err(error(frame_type, "STOP_SENDING for a receive-only stream"))
        }
        //= https://www.rfc-editor.org/rfc/rfc9000#section-19.10
        //# An endpoint that receives a
        //# MAX_STREAM_DATA frame for a receive-only stream MUST terminate the connection
        //# with error STREAM_STATE_ERROR.
        FrameType::MAX_STREAM_DATA if recv_only => {
            Err(error(frame_type, "MAX_STREAM_DATA for a receive-only stream"))
        }
        _ => Ok(()),
    }
}

/// Checks that a stream frame received for a stream `local` initiated
/// names one it has opened: `local_opened` is how many streams of
/// `id.dir()` `local` has opened. Peer-initiated streams, and frame types
/// that name no stream, pass.
///
/// The RFC states the rule for STREAM, STOP_SENDING and MAX_STREAM_DATA;
/// it is applied to RESET_STREAM and STREAM_DATA_BLOCKED too, which a peer
/// equally cannot send for a stream it has not heard of, and which fit the
/// definition of STREAM_STATE_ERROR ("a frame for a stream that was not in
/// a state that permitted that frame", RFC 9000 §20.1).
///
/// # Errors
/// STREAM_STATE_ERROR attributed to `frame_type`; the connection closes.
pub fn check_local_stream_opened(
    id: StreamId,
    local: Side,
    frame_type: FrameType,
    local_opened: u64,
) -> Result<(), TransportError> {
    let names_stream = frame_type.is_stream()
        || matches!(
            frame_type,
            FrameType::RESET_STREAM
                | FrameType::STOP_SENDING
                | FrameType::MAX_STREAM_DATA
                | FrameType::STREAM_DATA_BLOCKED
        );
    if names_stream && id.initiator() == local && id.index() >= local_opened {
        //= https://www.rfc-editor.org/rfc/rfc9000#section-19.8
        //# An endpoint MUST terminate the connection with error STREAM_STATE_ERROR if it
        //# receives a STREAM frame for a locally initiated stream that has not yet been
        //# created, or for a send-only stream.
        //
        //= https://www.rfc-editor.org/rfc/rfc9000#section-19.5
        //# Receiving a STOP_SENDING frame for a
        //# locally initiated stream that has not yet been created MUST be treated as a
        //# connection error of type STREAM_STATE_ERROR.
        //
        //= https://www.rfc-editor.org/rfc/rfc9000#section-19.10
        //# Receiving a MAX_STREAM_DATA frame for a
        //# locally initiated stream that has not yet been created MUST be treated as a
        //# connection error of type STREAM_STATE_ERROR.
        return Err(error(frame_type, "frame for a local stream not yet opened"));
    }
    Ok(())
}

fn error(frame_type: FrameType, reason: &'static str) -> TransportError {
    TransportError::stream_state_error(reason).with_frame(frame_type)
}

#[cfg(test)]
mod tests;
