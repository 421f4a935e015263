//! Idle timeout and keep-alives (RFC 9000 §10.1).

use core::time::Duration;

use crate::connection::{ConnectionError, Event, TransportConfig};
use crate::testing::pair::Pair;

fn idle_config(idle: Duration, keep_alive: Option<Duration>) -> TransportConfig {
    let mut c = TransportConfig::default();
    c.max_idle_timeout(Some(idle)).keep_alive_interval(keep_alive);
    c
}

//= https://www.rfc-editor.org/rfc/rfc9000#section-10.1.1
//= type=test
//# An endpoint can send a PING or another ack-eliciting frame to test the
//# connection for liveness if the peer could time out soon, such as within a PTO;
#[test]
fn keep_alives_hold_an_idle_connection_open() {
    let idle = Duration::from_secs(5);
    let mut pair = Pair::builder(801)
        .client_transport(idle_config(idle, Some(Duration::from_secs(2))))
        .server_transport(idle_config(idle, None))
        .build();
    pair.handshake();
    pair.drive_for(Duration::from_secs(60));
    assert!(!pair.client().is_closed() && !pair.server().is_closed());
    let lost = |events: &[Event]| events.iter().any(|e| matches!(e, Event::ConnectionLost(_)));
    assert!(!lost(pair.client_events()) && !lost(pair.server_events()));

    // The same pair without keep-alives times out.
    let mut quiet = Pair::builder(801)
        .client_transport(idle_config(idle, None))
        .server_transport(idle_config(idle, None))
        .build();
    quiet.handshake();
    quiet.drive_for(Duration::from_secs(60));
    assert_eq!(quiet.client().error(), Some(&ConnectionError::TimedOut));
    assert_eq!(quiet.server().error(), Some(&ConnectionError::TimedOut));
}

//= https://www.rfc-editor.org/rfc/rfc9000#section-10.1
//= type=test
//# To avoid excessively small idle timeout periods, endpoints MUST increase the
//# idle timeout period to be at least three times the current Probe Timeout (PTO).
///
/// Regression: the floor used the Initial space's PTO, which leaves out
/// max_ack_delay, so after the handshake the connection could time out
/// before three application data PTOs had passed.
#[test]
fn a_tiny_idle_timeout_is_raised_to_three_ptos() {
    let mut pair =
        Pair::builder(802).client_transport(idle_config(Duration::from_millis(1), None)).build();
    pair.handshake();
    let pto = pair.client().pto_period();
    let start = pair.now();
    pair.drive_until(Duration::from_secs(30), |p| p.client().is_drained());
    let idle = pair.now() - start;
    assert!(idle >= 3 * pto, "idle {idle:?}, PTO {pto:?}");
    assert_eq!(pair.client().error(), Some(&ConnectionError::TimedOut));
}
