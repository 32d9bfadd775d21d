"""Settings of the web console (section `web:` of the settings file)."""
from dataclasses import dataclass
from typing import Optional

from engine.settings import setting


@dataclass(frozen=True)
class WebSettings:
    secure_cookies: bool = setting(False, doc="mark the session cookie Secure: set it when browsers reach "
                                   "the console through TLS (a reverse proxy)")
    trusted_proxies: int = setting(0, min=0, max=5, doc="reverse proxies in front of the console (TLS "
                                   "termination): their X-Forwarded-For/-Proto are believed, so login limits "
                                   "count the browser's address; 0 = browsers connect directly")
    session_idle_minutes: float = setting(60.0, min=1, max=1440, doc="a session unused this long ends")
    session_max_hours: float = setting(12.0, min=0.1, max=168, doc="a session ends this long after its "
                                       "login, used or not")
    login_attempts: int = setting(10, min=1, max=1000, doc="failed logins allowed per account within "
                                  "login_window_seconds (Redis counts them: every engine); then 429")
    login_attempts_per_address: int = setting(100, min=1, max=100000, doc="failed logins allowed from one "
                                              "address within login_window_seconds (a whole floor may share one)")
    login_window_seconds: int = setting(300, min=1, max=86400)
    secret_key_env: Optional[str] = setting(None, doc="environment variable holding the key that signs "
                                            "session cookies; unset = one random key kept in Redis and "
                                            "shared by every engine")
    stream_queue: int = setting(500, min=10, max=100000, doc="events buffered for one live-update "
                                "client; a client that falls this far behind is dropped (it reconnects "
                                "and gets the current state)")
    max_streams: int = setting(1000, min=1, max=20000, doc="live-update connections held at once")
