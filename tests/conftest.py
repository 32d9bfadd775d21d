"""Tests run under gevent exactly as the daemon does: patch before anything imports socket."""
from gevent import monkey

monkey.patch_all()

import logging  # noqa: E402

logging.getLogger("hotline").setLevel(logging.DEBUG)
