//! Version downgrade prevention with the version_information transport
//! parameter (RFC 9368 §3, §4; draft-ietf-quic-version-negotiation).
//!
//! This stack performs no compatible version negotiation and a client gives
//! up on a Version Negotiation packet (RFC 9000 §6.2) instead of reacting to
//! it, so the checks reduce to: the server's Chosen Version is the version in
//! use and one the client offered, and the client's Chosen Version is the
//! version of the packets that carried it.

use super::Connection;
use crate::error::{TransportError, TransportErrorCode};
use crate::transport_params::{TransportParameters, VersionInformation};
use crate::version::Version;

/// The Version Information this endpoint sends on a connection of `version`:
/// it offers, and would accept, only that version.
pub(super) fn local(version: Version) -> VersionInformation {
    VersionInformation { chosen: version, available: vec![version] }
}

fn version_negotiation_error(reason: &'static str) -> TransportError {
    // RFC 9368 §4: QUIC version 1 signals version negotiation errors with
    // VERSION_NEGOTIATION_ERROR; RFC 9369 keeps the code for version 2.
    TransportError::new(TransportErrorCode::VERSION_NEGOTIATION_ERROR, reason)
}

impl Connection {
    /// Checks the peer's version_information, if it sent one.
    pub(super) fn check_version_information(
        &self,
        params: &TransportParameters,
    ) -> Result<(), TransportError> {
        //= https://www.rfc-editor.org/rfc/rfc9368#section-4
        //# Servers MAY complete the handshake even if the Version Information is missing.
        //# Clients MUST NOT complete the handshake if they are reacting to a Version
        //# Negotiation packet and the Version Information is missing, but MAY do so
        //# otherwise.
        //
        // A client here never reacts to a Version Negotiation packet.
        let Some(info) = params.version_information.as_ref() else { return Ok(()) };
        if self.side.is_server() {
            //= https://www.rfc-editor.org/rfc/rfc9368#section-4
            //# When the server then processes the client's Version
            //# Information, the server MUST validate that the client's Chosen Version
            //# matches the version in use for the connection. If the two differ, the
            //# server MUST close the connection with a version negotiation error.
            if info.chosen != self.version {
                return Err(version_negotiation_error(
                    "client's Chosen Version differs from the version in use",
                ));
            }
            return Ok(());
        }
        //= https://www.rfc-editor.org/rfc/rfc9368#section-4
        //# If a client receives Version Information where the server's Chosen Version was
        //# not sent by the client as part of its Available Versions, the client MUST close
        //# the connection with a version negotiation error.
        if !local(self.version).available.contains(&info.chosen) {
            return Err(version_negotiation_error(
                "server chose a version this client did not offer",
            ));
        }
        //= https://www.rfc-editor.org/rfc/rfc9368#section-4
        //# In particular, since
        //# the client can be made aware of the Negotiated Version by the QUIC long
        //# header version during compatible version negotiation (see {{compat-vn}}),
        //# clients MUST validate that the server's
        //# Chosen Version is equal to the Negotiated Version; if they do not match, the
        //# client MUST close the connection with a version negotiation error.
        if info.chosen != self.version {
            return Err(version_negotiation_error(
                "server's Chosen Version differs from the negotiated version",
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::connection::{ClientConfig, TransportConfig};
    use crate::random::SeededRandom;
    use crate::testing::{TestPki, client_config};
    use crate::time::Instant;

    fn client(version: Version) -> Connection {
        let pki = TestPki::new(1);
        let config = ClientConfig {
            tls: Arc::new(client_config(&pki, &[b"test"], 1)),
            transport: Arc::new(TransportConfig::default()),
            version,
        };
        let remote = "192.0.2.1:443".parse().unwrap();
        let rng = Box::new(SeededRandom::from_u64(2));
        Connection::connect(Instant::from_millis(1), &config, "localhost", remote, rng).unwrap()
    }

    //= https://www.rfc-editor.org/rfc/rfc9368#section-4
    //= type=test
    //# If a client receives Version Information where the server's Chosen Version was
    //# not sent by the client as part of its Available Versions, the client MUST close
    //# the connection with a version negotiation error.
    #[test]
    fn client_checks_the_servers_chosen_version() {
        let c = client(Version::V1);
        assert_eq!(c.local_params.version_information, Some(local(Version::V1)));
        let mut params = TransportParameters::default();
        assert!(c.check_version_information(&params).is_ok(), "absent is fine");
        params.version_information = Some(VersionInformation {
            chosen: Version::V1,
            available: vec![Version::V1, Version::V2],
        });
        assert!(c.check_version_information(&params).is_ok());
        params.version_information =
            Some(VersionInformation { chosen: Version::V2, available: vec![Version::V2] });
        let e = c.check_version_information(&params).unwrap_err();
        assert_eq!(e.code, TransportErrorCode::VERSION_NEGOTIATION_ERROR);
    }
}
