//! 1-RTT packet keys across key updates (RFC 9001 §6).
//!
//! Holds the current send and receive keys, the precomputed next set (so
//! that trying them leaks no timing signal, §6.3), and the previous receive
//! key for packets reordered across an update (§6.5), discarded about three
//! PTOs after the update.

use crate::crypto::{DirectionalKeys, HeaderKey, Keys, PacketKey, PacketKeySet, Secrets};
use crate::error::TransportError;
use crate::time::Instant;

/// Which receive key opened a packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum KeyChoice {
    Previous,
    Current,
    /// The next phase's key: if the packet authenticates, the peer updated.
    Next,
}

pub(crate) struct OneRttKeys {
    secrets: Secrets,
    pub(crate) local_hp: HeaderKey,
    pub(crate) remote_hp: HeaderKey,
    /// The Key Phase bit of the current keys.
    phase: bool,
    local: PacketKey,
    remote: PacketKey,
    next: PacketKeySet,
    prev_remote: Option<PacketKey>,
    /// When to drop `prev_remote`.
    prev_discard_at: Option<Instant>,
    /// Lowest packet number sent with the current keys.
    first_sent_in_phase: Option<u64>,
    /// Lowest packet number received with the current keys.
    first_received_in_phase: Option<u64>,
    /// Packets sealed with the current send key (confidentiality limit).
    sealed_in_phase: u64,
    /// Packets that failed authentication, across all 1-RTT keys.
    pub(crate) failed_openings: u64,
    /// The peer updated and we have not yet sent an ACK under the new keys.
    awaiting_ack_of_peer_update: bool,
}

impl OneRttKeys {
    /// From the keys and secrets rustls returns with `KeyChange::OneRtt`.
    pub(crate) fn new(keys: Keys, mut next: Secrets) -> Self {
        let next_keys = next.next_packet_keys();
        let Keys { local: DirectionalKeys { header: local_hp, packet: local }, remote } = keys;
        Self {
            secrets: next,
            local_hp,
            remote_hp: remote.header,
            phase: false,
            local,
            remote: remote.packet,
            next: next_keys,
            prev_remote: None,
            prev_discard_at: None,
            first_sent_in_phase: None,
            first_received_in_phase: None,
            sealed_in_phase: 0,
            failed_openings: 0,
            awaiting_ack_of_peer_update: false,
        }
    }

    /// The Key Phase bit to put on packets sent now.
    pub(crate) fn phase(&self) -> bool {
        self.phase
    }

    /// The key to seal the next packet with; records that `pn` uses it.
    pub(crate) fn seal_key(&mut self, pn: u64) -> &PacketKey {
        self.first_sent_in_phase.get_or_insert(pn);
        self.sealed_in_phase += 1;
        &self.local
    }

    /// The current send key, without recording a use (for a packet whose
    /// number `seal_key` already recorded, or for CONNECTION_CLOSE).
    pub(crate) fn seal_key_ref(&self) -> &PacketKey {
        &self.local
    }

    /// Whether sealing has reached `interval` packets or the AEAD
    /// confidentiality limit with some margin, so that a key update is due.
    pub(crate) fn update_due(&self, interval: u64) -> bool {
        let limit = self.local.confidentiality_limit();
        self.sealed_in_phase >= interval.min(limit - limit / 8)
    }

    //= https://www.rfc-editor.org/rfc/rfc9001#section-6.1
    //# An endpoint MUST NOT initiate a key update prior to having confirmed the
    //# handshake ({{handshake-confirmed}}).  An endpoint MUST NOT initiate a subsequent
    //# key update unless it has received an acknowledgment for a packet that was sent
    //# protected with keys from the current key phase.
    /// Whether this endpoint may initiate a key update now, given whether the
    /// handshake is confirmed and the largest 1-RTT packet number the peer
    /// has acknowledged.
    pub(crate) fn can_initiate(&self, confirmed: bool, largest_acked: Option<u64>) -> bool {
        confirmed
            && !self.awaiting_ack_of_peer_update
            && match (self.first_sent_in_phase, largest_acked) {
                (Some(first), Some(acked)) => acked >= first,
                _ => false,
            }
    }

    /// Moves to the next key phase: sending and receiving both switch, the
    /// current receive key becomes the previous one until `discard_prev_at`.
    pub(crate) fn update(&mut self, discard_prev_at: Instant) {
        let next = std::mem::replace(&mut self.next, self.secrets.next_packet_keys());
        self.prev_remote = Some(std::mem::replace(&mut self.remote, next.remote));
        self.local = next.local;
        self.prev_discard_at = Some(discard_prev_at);
        self.phase = !self.phase;
        self.first_sent_in_phase = None;
        self.first_received_in_phase = None;
        self.sealed_in_phase = 0;
    }

    /// Drops the previous receive key once its time has come.
    pub(crate) fn on_timeout(&mut self, now: Instant) {
        if self.prev_discard_at.is_some_and(|at| now >= at) {
            self.prev_remote = None;
            self.prev_discard_at = None;
        }
    }

    /// When the previous receive key is due to be dropped.
    pub(crate) fn timer(&self) -> Option<Instant> {
        self.prev_discard_at
    }

    //= https://www.rfc-editor.org/rfc/rfc9001#section-6.5
    //# A recovered packet number
    //# that is lower than any packet number from the current key phase uses the
    //# previous packet protection keys; a recovered packet number that is higher than
    //# any packet number from the current key phase requires the use of the next packet
    //# protection keys.
    /// Chooses the receive key for a packet with Key Phase bit `bit` and
    /// packet number `pn`.
    pub(crate) fn choose(&self, bit: bool, pn: u64) -> (KeyChoice, &PacketKey) {
        if bit == self.phase {
            return (KeyChoice::Current, &self.remote);
        }
        match (&self.prev_remote, self.first_received_in_phase) {
            // Lower than every packet of the current phase: sent before the update.
            (Some(prev), Some(first)) if pn < first => (KeyChoice::Previous, prev),
            // This endpoint updated and has heard nothing under the new keys
            // yet: the peer is still on the previous phase.
            (Some(prev), None) => (KeyChoice::Previous, prev),
            _ => (KeyChoice::Next, &self.next.remote),
        }
    }

    /// Records that a packet opened with `choice`; on `Next` the peer has
    /// initiated an update and this endpoint follows it.
    pub(crate) fn on_opened(
        &mut self,
        choice: KeyChoice,
        pn: u64,
        discard_prev_at: Instant,
    ) -> Result<(), TransportError> {
        match choice {
            KeyChoice::Current => {
                let first = self.first_received_in_phase.get_or_insert(pn);
                *first = (*first).min(pn);
            }
            KeyChoice::Previous => {
                //= https://www.rfc-editor.org/rfc/rfc9001#section-6.4
                //# An endpoint that successfully removes protection with old keys when newer keys were
                //# used for packets with lower packet numbers MUST treat this as a connection error
                //# of type KEY_UPDATE_ERROR.
                if self.first_received_in_phase.is_some_and(|first| pn > first) {
                    return Err(TransportError::key_update_error(
                        "packet with old keys after a lower-numbered packet with new keys",
                    ));
                }
            }
            KeyChoice::Next => {
                //= https://www.rfc-editor.org/rfc/rfc9001#section-6.2
                //# If an endpoint detects a second update
                //# before it has sent any packets with updated keys containing an
                //# acknowledgment for the packet that initiated the key update, it indicates that
                //# its peer has updated keys twice without awaiting confirmation.  An endpoint MAY
                //# treat such consecutive key updates as a connection error of type
                //# KEY_UPDATE_ERROR.
                if self.awaiting_ack_of_peer_update {
                    return Err(TransportError::key_update_error("consecutive key updates"));
                }
                //= https://www.rfc-editor.org/rfc/rfc9001#section-6.2
                //# The endpoint MUST update its send keys to the
                //# corresponding key phase in response, as described in {{key-update-initiate}}.
                self.update(discard_prev_at);
                self.first_received_in_phase = Some(pn);
                self.awaiting_ack_of_peer_update = true;
            }
        }
        Ok(())
    }

    /// A packet carrying an ACK frame was sealed with the current keys: a
    /// peer-initiated update is now complete (RFC 9001 §6.2).
    pub(crate) fn on_ack_sent(&mut self) {
        self.awaiting_ack_of_peer_update = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::{CipherSuite, open_payload, remove_header_protection, seal_packet};
    use crate::stream_id::Side;
    use crate::version::Version;

    const SUITE: CipherSuite = CipherSuite::Aes128GcmSha256;

    /// Client and server 1-RTT keys as rustls would hand them over.
    fn pair() -> (OneRttKeys, OneRttKeys) {
        let (c, s) = ([0x11u8; 32], [0x22u8; 32]);
        let make = |side: Side| {
            let (local, remote) = if side == Side::Client { (&c, &s) } else { (&s, &c) };
            let keys = Keys {
                local: DirectionalKeys::from_secret(SUITE, Version::V1, local).unwrap(),
                remote: DirectionalKeys::from_secret(SUITE, Version::V1, remote).unwrap(),
            };
            // rustls' `next` secrets are already one phase on.
            let mut next = Secrets::from_raw(SUITE, Version::V1, side, &c, &s).unwrap();
            next.next_packet_keys();
            OneRttKeys::new(keys, next)
        };
        (make(Side::Client), make(Side::Server))
    }

    /// A sealed short-header packet (empty DCID) carrying `pn`.
    fn send(keys: &mut OneRttKeys, pn: u64) -> Vec<u8> {
        let first = 0x40 | if keys.phase() { 0x04 } else { 0 } | 0x03;
        let mut p = vec![first];
        p.extend_from_slice(&(pn as u32).to_be_bytes());
        p.extend_from_slice(&[1; 20]);
        p.extend_from_slice(&[0; 16]);
        let hp = std::mem::replace(&mut keys.local_hp, dummy_hp());
        let key = keys.seal_key(pn);
        seal_packet(&hp, key, pn, &mut p, 1).unwrap();
        keys.local_hp = hp;
        p
    }

    fn dummy_hp() -> HeaderKey {
        DirectionalKeys::from_secret(SUITE, Version::V1, &[0; 32]).unwrap().header
    }

    /// Unprotects and opens; returns the key used, or `None` if it failed.
    fn receive(
        keys: &mut OneRttKeys,
        mut p: Vec<u8>,
        now: Instant,
    ) -> Result<Option<KeyChoice>, TransportError> {
        let (pn_len, truncated) = remove_header_protection(&keys.remote_hp, &mut p, 1).unwrap();
        let bit = p[0] & 0x04 != 0;
        let pn = u64::from(truncated);
        let (choice, key) = keys.choose(bit, pn);
        if open_payload(key, pn, &mut p, 1 + pn_len).is_err() {
            keys.failed_openings += 1;
            return Ok(None);
        }
        keys.on_opened(choice, pn, now + core::time::Duration::from_secs(1))?;
        Ok(Some(choice))
    }

    //= https://www.rfc-editor.org/rfc/rfc9001#section-6.1
    //= type=test
    //# An endpoint MUST NOT initiate a key update prior to having confirmed the
    //# handshake ({{handshake-confirmed}}).
    #[test]
    fn update_is_gated_then_followed_by_the_peer() {
        let (mut client, mut server) = pair();
        let now = Instant::ZERO;
        assert_eq!(receive(&mut server, send(&mut client, 0), now), Ok(Some(KeyChoice::Current)));
        assert!(!client.can_initiate(false, Some(0)), "not before confirmation");
        assert!(!client.can_initiate(true, None), "not before an ACK in this phase");
        assert!(client.can_initiate(true, Some(0)));

        client.update(now);
        assert!(client.phase());
        assert!(!client.can_initiate(true, Some(0)), "nothing acknowledged in the new phase yet");
        assert_eq!(receive(&mut server, send(&mut client, 1), now), Ok(Some(KeyChoice::Next)));
        assert!(server.phase(), "the server followed");
        // A packet from before the update, reordered, opens with the previous key.
        let (mut old_client, _) = pair();
        let stale = send(&mut old_client, 0);
        // (pn 0 < first pn of the new phase, 1)
        assert_eq!(receive(&mut server, stale, now), Ok(Some(KeyChoice::Previous)));
        server.on_ack_sent();
        assert_eq!(receive(&mut client, send(&mut server, 0), now), Ok(Some(KeyChoice::Current)));
    }

    //= https://www.rfc-editor.org/rfc/rfc9001#section-6.4
    //= type=test
    //# An endpoint that successfully removes protection with old keys when newer keys were
    //# used for packets with lower packet numbers MUST treat this as a connection error
    //# of type KEY_UPDATE_ERROR.
    #[test]
    fn old_keys_for_a_higher_packet_number_is_key_update_error() {
        let (mut client, mut server) = pair();
        let now = Instant::ZERO;
        let (mut stale_client, _) = pair();
        let late = send(&mut stale_client, 9);
        client.update(now);
        assert_eq!(receive(&mut server, send(&mut client, 5), now), Ok(Some(KeyChoice::Next)));
        // pn 9 with the old phase bit is above the new phase's first packet:
        // the next keys are tried, and fail.
        assert_eq!(receive(&mut server, late.clone(), now), Ok(None));
        // Forcing the previous key for it, as a buggy peer would make us do,
        // must be refused.
        assert!(server.on_opened(KeyChoice::Previous, 9, now).is_err());
    }

    #[test]
    fn consecutive_peer_updates_are_key_update_error() {
        let (mut client, mut server) = pair();
        let now = Instant::ZERO;
        client.update(now);
        assert_eq!(receive(&mut server, send(&mut client, 0), now), Ok(Some(KeyChoice::Next)));
        client.update(now);
        let err = receive(&mut server, send(&mut client, 1), now).unwrap_err();
        assert_eq!(err.code, crate::TransportErrorCode::KEY_UPDATE_ERROR);
    }

    #[test]
    fn previous_key_is_discarded_on_time() {
        let (mut client, mut server) = pair();
        let (mut stale_client, _) = pair();
        let stale = send(&mut stale_client, 0);
        client.update(Instant::ZERO);
        let t = Instant::from_millis(10);
        assert_eq!(receive(&mut server, send(&mut client, 3), t), Ok(Some(KeyChoice::Next)));
        assert_eq!(server.timer(), Some(t + core::time::Duration::from_secs(1)));
        server.on_timeout(Instant::from_millis(2_000));
        assert_eq!(server.timer(), None);
        // Without the previous key, the stale packet is tried with the next key and dropped.
        assert_eq!(receive(&mut server, stale, t), Ok(None));
        assert_eq!(server.failed_openings, 1);
    }

    #[test]
    fn update_due_respects_interval_and_confidentiality_limit() {
        let (mut client, _) = pair();
        for pn in 0..10 {
            client.seal_key(pn);
        }
        assert!(client.update_due(10));
        assert!(!client.update_due(11));
        // AES-GCM: 2^23 packets, minus an eighth of margin.
        assert!(!client.update_due(u64::MAX));
    }
}
