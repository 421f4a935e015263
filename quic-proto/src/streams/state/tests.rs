use super::*;
use crate::error::TransportErrorCode;
use crate::varint::VarInt;

fn id(initiator: Side, dir: Dir, index: u64) -> StreamId {
    StreamId::new(initiator, dir, index).unwrap()
}

#[test]
fn send_state_walks_the_data_path() {
    let mut s = SendState::default();
    assert_eq!(s, SendState::Ready);
    assert!(s.may_send_stream() && s.may_send_reset());
    assert!(s.on_stream_sent(false));
    assert_eq!(s, SendState::Send);
    assert!(s.on_stream_data_blocked_sent());
    assert!(!s.on_all_data_acked());
    assert!(s.on_stream_sent(true));
    assert_eq!(s, SendState::DataSent);
    // Retransmissions, with or without the FIN, change nothing.
    assert!(s.on_stream_sent(false) && s.on_stream_sent(true));
    assert_eq!(s, SendState::DataSent);
    assert!(s.on_all_data_acked());
    assert_eq!(s, SendState::DataRecvd);
    assert!(s.is_terminal());
    assert!(!s.on_reset_sent() && !s.on_stream_sent(false) && !s.on_stream_data_blocked_sent());
    assert!(!s.may_send_reset() && !s.on_stop_sending());
    assert_eq!(s, SendState::DataRecvd);
}

#[test]
fn one_stream_frame_with_fin_passes_through_send() {
    let mut s = SendState::Ready;
    assert!(s.on_stream_sent(true));
    assert_eq!(s, SendState::DataSent);
    let mut s = SendState::Ready;
    assert!(s.on_stream_data_blocked_sent());
    assert_eq!(s, SendState::Send);
}

//= https://www.rfc-editor.org/rfc/rfc9000#section-3.3
//= type=test
//# A sender MUST NOT send any of these frames from a terminal state ("Data Recvd"
//# or "Reset Recvd").  A sender MUST NOT send a STREAM or STREAM_DATA_BLOCKED frame
//# for a stream in the "Reset Sent" state or any terminal state -- that is, after
//# sending a RESET_STREAM frame.
#[test]
fn send_state_walks_the_reset_path() {
    for start in [SendState::Ready, SendState::Send, SendState::DataSent] {
        let mut s = start;
        assert!(s.on_reset_sent());
        assert_eq!(s, SendState::ResetSent);
        assert!(!s.may_send_stream() && s.may_send_reset());
        assert!(!s.on_stream_sent(false) && !s.on_stream_data_blocked_sent());
        assert!(s.on_reset_sent(), "a lost RESET_STREAM is sent again");
        assert!(!s.on_all_data_acked());
        assert!(s.on_reset_acked());
        assert_eq!(s, SendState::ResetRecvd);
        assert!(s.is_terminal() && !s.may_send_stream() && !s.may_send_reset());
        assert!(!s.on_reset_sent() && !s.on_reset_acked());
    }
    assert!(!SendState::Send.clone().on_reset_acked());
}

//= https://www.rfc-editor.org/rfc/rfc9000#section-3.5
//= type=test
//# An endpoint that receives a STOP_SENDING frame MUST send a RESET_STREAM
//# frame if the stream is in the "Ready" or "Send" state.
#[test]
fn stop_sending_calls_for_a_reset_until_one_is_sent() {
    assert!(SendState::Ready.on_stop_sending());
    assert!(SendState::Send.on_stop_sending());
    assert!(SendState::DataSent.on_stop_sending());
    for s in [SendState::ResetSent, SendState::ResetRecvd, SendState::DataRecvd] {
        assert!(!s.on_stop_sending());
    }
}

#[test]
fn recv_state_walks_the_data_path() {
    let mut s = RecvState::default();
    assert_eq!(s, RecvState::Recv);
    assert!(s.may_send_max_stream_data() && s.should_send_stop_sending());
    assert!(!s.on_all_data_read());
    assert!(s.on_size_known());
    assert_eq!(s, RecvState::SizeKnown);
    assert!(!s.on_size_known() && !s.may_send_max_stream_data());
    assert!(s.should_send_stop_sending());
    assert!(s.on_all_data_received());
    assert_eq!(s, RecvState::DataRecvd);
    assert!(!s.should_send_stop_sending() && s.may_send_stop_sending());
    assert!(s.on_all_data_read());
    assert_eq!(s, RecvState::DataRead);
    assert!(s.is_terminal());
    assert!(!s.on_reset_received() && !s.on_size_known() && !s.on_all_data_received());
    // The FIN frame that makes the size known can complete the data too.
    let mut s = RecvState::Recv;
    assert!(s.on_all_data_received());
    assert_eq!(s, RecvState::DataRecvd);
}

#[test]
fn recv_state_walks_the_reset_path() {
    for start in [RecvState::Recv, RecvState::SizeKnown, RecvState::DataRecvd] {
        let mut s = start;
        assert!(s.on_reset_received());
        assert_eq!(s, RecvState::ResetRecvd);
        assert!(!s.may_send_stop_sending() && !s.should_send_stop_sending());
        assert!(!s.on_reset_received() && !s.on_all_data_received() && !s.on_all_data_read());
        assert!(s.on_reset_read());
        assert_eq!(s, RecvState::ResetRead);
        assert!(s.is_terminal() && !s.may_send_stop_sending());
        assert!(!s.on_reset_read() && !s.on_reset_received());
    }
}

#[test]
fn stream_parts_follow_direction_and_initiator() {
    let local = Side::Client;
    assert!(has_send_part(id(Side::Client, Dir::Uni, 0), local));
    assert!(!has_recv_part(id(Side::Client, Dir::Uni, 0), local));
    assert!(!has_send_part(id(Side::Server, Dir::Uni, 0), local));
    assert!(has_recv_part(id(Side::Server, Dir::Uni, 0), local));
    for initiator in [Side::Client, Side::Server] {
        assert!(has_send_part(id(initiator, Dir::Bi, 3), local));
        assert!(has_recv_part(id(initiator, Dir::Bi, 3), local));
    }
}

fn direction_error(stream: StreamId, local: Side, ty: FrameType) -> Option<TransportError> {
    check_frame_direction(stream, local, ty).err()
}

//= https://www.rfc-editor.org/rfc/rfc9000#section-19.8
//= type=test
//# An endpoint MUST terminate the connection with error STREAM_STATE_ERROR if it
//# receives a STREAM frame for a locally initiated stream that has not yet been
//# created, or for a send-only stream.
//
//= https://www.rfc-editor.org/rfc/rfc9000#section-19.4
//= type=test
//# An endpoint that receives a RESET_STREAM frame for a send-only stream MUST
//# terminate the connection with error STREAM_STATE_ERROR.
//
//= https://www.rfc-editor.org/rfc/rfc9000#section-19.13
//= type=test
//# An endpoint that receives a STREAM_DATA_BLOCKED frame for a send-only stream
//# MUST terminate the connection with error STREAM_STATE_ERROR.
#[test]
fn sender_frames_for_a_send_only_stream_are_stream_state_errors() {
    for local in [Side::Client, Side::Server] {
        let send_only = id(local, Dir::Uni, 2);
        let recv_only = id(!local, Dir::Uni, 2);
        for bits in 0x08..=0x0f {
            let ty = FrameType(VarInt::from_u32(bits));
            let e = direction_error(send_only, local, ty).unwrap();
            assert_eq!((e.code, e.frame_type), (TransportErrorCode::STREAM_STATE_ERROR, Some(ty)));
            assert!(direction_error(recv_only, local, ty).is_none());
        }
        for ty in [FrameType::RESET_STREAM, FrameType::STREAM_DATA_BLOCKED] {
            let e = direction_error(send_only, local, ty).unwrap();
            assert_eq!((e.code, e.frame_type), (TransportErrorCode::STREAM_STATE_ERROR, Some(ty)));
            assert!(direction_error(recv_only, local, ty).is_none());
        }
    }
}

//= https://www.rfc-editor.org/rfc/rfc9000#section-19.5
//= type=test
//# An endpoint that receives a
//# STOP_SENDING frame for a receive-only stream MUST terminate the connection with
//# error STREAM_STATE_ERROR.
//
//= https://www.rfc-editor.org/rfc/rfc9000#section-19.10
//= type=test
//# An endpoint that receives a
//# MAX_STREAM_DATA frame for a receive-only stream MUST terminate the connection
//# with error STREAM_STATE_ERROR.
#[test]
fn receiver_frames_for_a_receive_only_stream_are_stream_state_errors() {
    for local in [Side::Client, Side::Server] {
        let send_only = id(local, Dir::Uni, 0);
        let recv_only = id(!local, Dir::Uni, 0);
        for ty in [FrameType::STOP_SENDING, FrameType::MAX_STREAM_DATA] {
            let e = direction_error(recv_only, local, ty).unwrap();
            assert_eq!((e.code, e.frame_type), (TransportErrorCode::STREAM_STATE_ERROR, Some(ty)));
            assert!(direction_error(send_only, local, ty).is_none());
        }
    }
}

#[test]
fn every_frame_fits_a_bidirectional_stream() {
    let types = [
        FrameType::STREAM,
        FrameType(VarInt::from_u32(0x0f)),
        FrameType::RESET_STREAM,
        FrameType::STOP_SENDING,
        FrameType::MAX_STREAM_DATA,
        FrameType::STREAM_DATA_BLOCKED,
        FrameType::MAX_DATA,
    ];
    for local in [Side::Client, Side::Server] {
        for initiator in [Side::Client, Side::Server] {
            for ty in types {
                assert!(direction_error(id(initiator, Dir::Bi, 7), local, ty).is_none());
            }
        }
        // Frame types that name no stream are not judged by direction.
        assert!(direction_error(id(local, Dir::Uni, 0), local, FrameType::MAX_DATA).is_none());
    }
}

//= https://www.rfc-editor.org/rfc/rfc9000#section-19.5
//= type=test
//# Receiving a STOP_SENDING frame for a
//# locally initiated stream that has not yet been created MUST be treated as a
//# connection error of type STREAM_STATE_ERROR.
//
//= https://www.rfc-editor.org/rfc/rfc9000#section-19.10
//= type=test
//# Receiving a MAX_STREAM_DATA frame for a
//# locally initiated stream that has not yet been created MUST be treated as a
//# connection error of type STREAM_STATE_ERROR.
#[test]
fn frames_for_unopened_local_streams_are_stream_state_errors() {
    let local = Side::Server;
    let types = [
        FrameType::STREAM,
        FrameType(VarInt::from_u32(0x0b)),
        FrameType::RESET_STREAM,
        FrameType::STOP_SENDING,
        FrameType::MAX_STREAM_DATA,
        FrameType::STREAM_DATA_BLOCKED,
    ];
    for ty in types {
        // Two bidirectional streams opened: indexes 0 and 1 exist.
        assert!(check_local_stream_opened(id(local, Dir::Bi, 1), local, ty, 2).is_ok());
        let e = check_local_stream_opened(id(local, Dir::Bi, 2), local, ty, 2).unwrap_err();
        assert_eq!((e.code, e.frame_type), (TransportErrorCode::STREAM_STATE_ERROR, Some(ty)));
        // Peer-initiated streams are opened by the frame itself.
        assert!(check_local_stream_opened(id(!local, Dir::Bi, 50), local, ty, 0).is_ok());
    }
    assert!(
        check_local_stream_opened(id(local, Dir::Uni, 9), local, FrameType::MAX_DATA, 0).is_ok()
    );
}
