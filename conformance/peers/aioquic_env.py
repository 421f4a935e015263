"""Shared start-up of our aioquic peers (hq_client.py, hq_server.py).

Standard library only: it runs before aioquic is known to be importable.
"""

import os
import sys

PEERS_HOME_DEFAULT = os.path.join(os.path.expanduser("~"), ".cache", "quic-proto-peers")


def require_aioquic(prog, script):
    """Returns if aioquic imports; otherwise reruns `script` once under the
    virtual environment install.sh made, or exits naming the fix."""
    try:
        import aioquic  # noqa: F401
        return
    except ImportError:
        pass
    py = os.environ.get("QUIC_TEST_PEERS_PYTHON") or os.path.join(
        os.environ.get("QUIC_TEST_PEERS_HOME") or PEERS_HOME_DEFAULT, "venv", "bin", "python"
    )
    if not os.environ.get("HQ_PEER_REEXEC") and os.access(py, os.X_OK):
        os.environ["HQ_PEER_REEXEC"] = "1"
        os.execv(py, [py, os.path.abspath(script), *sys.argv[1:]])
    sys.exit(
        f"{prog}: error: aioquic is not importable by {sys.executable}; "
        f"run conformance/peers/install.sh (it installs aioquic into {os.path.dirname(os.path.dirname(py))})"
    )
