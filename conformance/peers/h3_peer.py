"""Shared by h3_server.py and h3_client.py: an aioquic H3Connection whose
QPACK dynamic table is sized on the command line and whose QPACK use is
counted, and the names of the error codes a CONNECTION_CLOSE can carry.

Import it only after aioquic_env.require_aioquic().

How the dynamic-table use is seen: pylsqpack's Encoder and Decoder expose
no table state, so QpackH3Connection reads the first byte of every field
section it encodes or decodes.  That byte starts the section's Encoded
Required Insert Count (RFC 9204 §4.5.1.1), an integer with an 8-bit
prefix, which is 0 exactly when the section references no dynamic table
entry.  Together with the bytes sent and received on the encoder stream
(inserts, RFC 9204 §4.3) and the decoder stream (acknowledgements, §4.4)
this shows whether each side really used the table.  The byte counters are
aioquic's own (_encoder_bytes_sent and the like, private; checked on
aioquic 1.7.2) and are reported as -1 if they disappear.
"""

import pylsqpack
from aioquic.h3.connection import H3Connection, Setting

DEFAULT_TABLE_CAPACITY = 4096
DEFAULT_BLOCKED_STREAMS = 16

TRANSPORT_ERRORS = {
    0x0: "NO_ERROR", 0x1: "INTERNAL_ERROR", 0x2: "CONNECTION_REFUSED", 0x3: "FLOW_CONTROL_ERROR",
    0x4: "STREAM_LIMIT_ERROR", 0x5: "STREAM_STATE_ERROR", 0x6: "FINAL_SIZE_ERROR",
    0x7: "FRAME_ENCODING_ERROR", 0x8: "TRANSPORT_PARAMETER_ERROR", 0x9: "CONNECTION_ID_LIMIT_ERROR",
    0xA: "PROTOCOL_VIOLATION", 0xB: "INVALID_TOKEN", 0xC: "APPLICATION_ERROR",
    0xD: "CRYPTO_BUFFER_EXCEEDED", 0xE: "KEY_UPDATE_ERROR", 0xF: "AEAD_LIMIT_REACHED",
    0x10: "NO_VIABLE_PATH", 0x11: "VERSION_NEGOTIATION_ERROR",
}
APPLICATION_ERRORS = {  # RFC 9114 §8.1 and RFC 9204 §6
    0x100: "H3_NO_ERROR", 0x101: "H3_GENERAL_PROTOCOL_ERROR", 0x102: "H3_INTERNAL_ERROR",
    0x103: "H3_STREAM_CREATION_ERROR", 0x104: "H3_CLOSED_CRITICAL_STREAM", 0x105: "H3_FRAME_UNEXPECTED",
    0x106: "H3_FRAME_ERROR", 0x107: "H3_EXCESSIVE_LOAD", 0x108: "H3_ID_ERROR", 0x109: "H3_SETTINGS_ERROR",
    0x10A: "H3_MISSING_SETTINGS", 0x10B: "H3_REQUEST_REJECTED", 0x10C: "H3_REQUEST_CANCELLED",
    0x10D: "H3_REQUEST_INCOMPLETE", 0x10E: "H3_MESSAGE_ERROR", 0x10F: "H3_CONNECT_ERROR",
    0x110: "H3_VERSION_FALLBACK", 0x200: "QPACK_DECOMPRESSION_FAILED",
    0x201: "QPACK_ENCODER_STREAM_ERROR", 0x202: "QPACK_DECODER_STREAM_ERROR",
}
TLS_ALERTS = {
    10: "unexpected_message", 20: "bad_record_mac", 40: "handshake_failure", 42: "bad_certificate",
    43: "unsupported_certificate", 44: "certificate_revoked", 45: "certificate_expired",
    46: "certificate_unknown", 47: "illegal_parameter", 48: "unknown_ca", 50: "decode_error",
    51: "decrypt_error", 70: "protocol_version", 71: "insufficient_security", 80: "internal_error",
    109: "missing_extension", 110: "unsupported_extension", 112: "unrecognized_name",
    116: "certificate_required", 120: "no_application_protocol",
}
SETTING_NAMES = {
    0x1: "QPACK_MAX_TABLE_CAPACITY", 0x6: "MAX_FIELD_SECTION_SIZE", 0x7: "QPACK_BLOCKED_STREAMS",
    0x8: "ENABLE_CONNECT_PROTOCOL", 0x33: "H3_DATAGRAM",
}


def describe_close(event) -> str:
    """A ConnectionTerminated event in words.  aioquic gives frame_type None
    for an application close (CONNECTION_CLOSE 0x1d), whose codes are
    HTTP/3's; a transport close (0x1c) carries QUIC's codes."""
    code = event.error_code
    if event.frame_type is None:
        text = f"application error 0x{code:x} ({APPLICATION_ERRORS.get(code, 'unknown code')})"
    else:
        if 0x100 <= code <= 0x1FF:
            name = f"CRYPTO_ERROR, TLS alert {code - 0x100} {TLS_ALERTS.get(code - 0x100, '')}".rstrip()
        else:
            name = TRANSPORT_ERRORS.get(code, "unknown code")
        text = f"error 0x{code:x} ({name}), frame type 0x{event.frame_type:x}"
    if event.reason_phrase:
        text += f", reason {event.reason_phrase!r}"
    return text


def describe_settings(settings) -> str:
    """`QPACK_MAX_TABLE_CAPACITY=4096 QPACK_BLOCKED_STREAMS=100 0x21=1` (wire order)."""
    if settings is None:
        return "(none received)"
    return " ".join(f"{SETTING_NAMES.get(k, f'0x{k:x}')}={v}" for k, v in settings.items())


class QpackH3Connection(H3Connection):
    """aioquic's H3Connection with a chosen QPACK decoder table capacity and
    blocked-streams limit (advertised in our SETTINGS; aioquic's own
    defaults are 4096 and 16) and counters of QPACK use."""

    def __init__(self, quic, table_capacity=DEFAULT_TABLE_CAPACITY, blocked_streams=DEFAULT_BLOCKED_STREAMS):
        self._wanted = (table_capacity, blocked_streams)
        self.sections_sent = 0
        self.sections_sent_dynamic = 0
        self.sections_received = 0
        self.sections_received_dynamic = 0
        self.sections_blocked = 0
        super().__init__(quic)

    def _init_connection(self) -> None:
        # H3Connection.__init__ has made a decoder with its defaults; replace
        # it before the SETTINGS frame that announces the limits is sent.
        self._max_table_capacity, self._blocked_streams = self._wanted
        self._decoder = pylsqpack.Decoder(self._max_table_capacity, self._blocked_streams)
        super()._init_connection()

    def _encode_headers(self, stream_id, headers):
        frame_data = super()._encode_headers(stream_id, headers)
        self.sections_sent += 1
        if frame_data[:1] != b"\x00":
            self.sections_sent_dynamic += 1
        return frame_data

    def _decode_headers(self, stream_id, frame_data):
        if frame_data is not None:  # None: a blocked section resumed, counted already
            self.sections_received += 1
            if frame_data[:1] != b"\x00":
                self.sections_received_dynamic += 1
        try:
            return super()._decode_headers(stream_id, frame_data)
        except pylsqpack.StreamBlocked:
            self.sections_blocked += 1
            raise

    def qpack_report(self) -> str:
        """One line of `key=value` words, read by conformance::peers::QpackStats."""
        peer = self.received_settings
        if peer is None:
            peer_cap = peer_blocked = "none"
        else:
            peer_cap = peer.get(Setting.QPACK_MAX_TABLE_CAPACITY, 0)
            peer_blocked = peer.get(Setting.QPACK_BLOCKED_STREAMS, 0)
        counter = lambda name: getattr(self, name, -1)  # noqa: E731
        words = [
            f"local_capacity={self._max_table_capacity}",
            f"local_blocked={self._blocked_streams}",
            f"peer_capacity={peer_cap}",
            f"peer_blocked={peer_blocked}",
            f"sent_sections={self.sections_sent}",
            f"sent_dynamic={self.sections_sent_dynamic}",
            f"encoder_bytes_sent={counter('_encoder_bytes_sent')}",
            f"received_sections={self.sections_received}",
            f"received_dynamic={self.sections_received_dynamic}",
            f"received_blocked={self.sections_blocked}",
            f"encoder_bytes_received={counter('_encoder_bytes_received')}",
            f"decoder_bytes_sent={counter('_decoder_bytes_sent')}",
            f"decoder_bytes_received={counter('_decoder_bytes_received')}",
        ]
        return "qpack: " + " ".join(words)

    def qpack_verdict(self) -> str:
        """Whether the dynamic table was used, in words."""
        sent = "yes" if self.sections_sent_dynamic else "no"
        received = "yes" if self.sections_received_dynamic else "no"
        return (
            f"dynamic table used by our encoder: {sent} ({self.sections_sent_dynamic}/{self.sections_sent} sections), "
            f"by the peer's encoder: {received} ({self.sections_received_dynamic}/{self.sections_received} sections, "
            f"{self.sections_blocked} blocked at first)"
        )
