"""A small client of the control API for the CLI (urllib: one request at a time is all it needs),
and where the CLI finds the API and its token.

A supervisor's CLI needs only two things: the API's URL and the supervisor's own token. They come
from, first found wins:
  URL:   --api URL | $HOTLINE_API_URL | `api:` in the client file | the server settings file
  token: --token T | $HOTLINE_TOKEN   | `token_env:` (or `token:`) in the client file
The client file is $HOTLINE_CLIENT_CONFIG, else ~/.config/hotline/client.yaml:

    api: http://hotline-a.example:8090
    token_env: MY_HOTLINE_TOKEN        # or token: ... in a file only its owner can read

The server settings file (--config, $HOTLINE_CONFIG, else etc/hotline.yaml when it exists: run on
the engine's machine) gives only the address of `control.listen_host:listen_port`; nothing else in
it is read or checked, so the CLI never needs the engine's other secrets.
"""
import json
import os
import stat
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

CLIENT_KEYS = ("api", "token", "token_env")
DEFAULT_SERVER_CONFIG = "etc/hotline.yaml"


class ApiError(Exception):
    def __init__(self, status, message):
        super().__init__(message)
        self.status = status


class ClientConfigError(ApiError):
    """No usable URL or token, or a broken client file: the message says where to put them."""

    def __init__(self, message):
        super().__init__(0, message)


class Client:
    def __init__(self, base_url, token=None, timeout=10.0):
        self.base_url = check_url(base_url)
        self.token = token if token is not None else os.environ.get("HOTLINE_TOKEN", "")
        self.timeout = timeout

    def get(self, path):
        return self._request("GET", path)

    def post(self, path, body=None):
        return self._request("POST", path, body or {})

    def _request(self, method, path, body=None):
        data = None if body is None else json.dumps(body).encode("utf-8")
        url = self.base_url + urllib.parse.quote(path, safe="/:")
        request = urllib.request.Request(url, data=data, method=method)
        request.add_header("Accept", "application/json")
        if data is not None:
            request.add_header("Content-Type", "application/json")
        if self.token:
            request.add_header("Authorization", f"Bearer {self.token}")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                return json.loads(response.read().decode("utf-8"))
        except urllib.error.HTTPError as exc:
            try:
                message = json.loads(exc.read().decode("utf-8")).get("error") or exc.reason
            except (ValueError, AttributeError):
                message = exc.reason
            raise ApiError(exc.code, message) from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise ApiError(0, f"cannot reach the engine's control API at {self.base_url}: {reason}") from None
        except ValueError as exc:         # a reply that is not JSON: not our engine there
            raise ApiError(0, f"{self.base_url} did not answer as the control API does ({exc})") from None


def check_url(url):
    """`http(s)://host[:port][/prefix]`, no trailing slash; ClientConfigError says what is wrong."""
    parts = urllib.parse.urlsplit(str(url).strip())
    try:
        parts.port
    except ValueError:
        raise ClientConfigError(f"API URL {url!r}: bad port") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ClientConfigError(f"API URL {url!r}: expected http://HOST:PORT (e.g. http://127.0.0.1:8090)")
    return f"{parts.scheme}://{parts.netloc}{parts.path.rstrip('/')}"


def client_file(env=os.environ):
    explicit = env.get("HOTLINE_CLIENT_CONFIG")
    if explicit:
        return Path(explicit)
    base = env.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return Path(base) / "hotline" / "client.yaml"


def _read_client_file(path):
    from engine.settings import load_yaml
    data, marks = load_yaml(path, ClientConfigError)
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ClientConfigError(f"{path}: expected a mapping with {', '.join(CLIENT_KEYS)}")
    for key, value in data.items():
        line, col = marks.get(str(key), (1, 1))
        if key not in CLIENT_KEYS:
            raise ClientConfigError(f"{path}:{line}:{col}: unknown key {key!r}; known: {', '.join(CLIENT_KEYS)}")
        if not isinstance(value, str) or not value:
            raise ClientConfigError(f"{path}:{line}:{col}: {key}: expected text")
    if "token" in data and os.stat(path).st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ClientConfigError(f"{path}: holds a token but others may read it: chmod 600 {path}, "
                                "or name a variable with token_env")
    return data


def _server_address(path):
    """control.listen_host:listen_port of the engine's settings file, nothing else read."""
    from engine.settings import SettingsError, load_yaml
    data, marks = load_yaml(Path(path), SettingsError)
    control = (data or {}).get("control") if isinstance(data, dict) else None
    control = control if isinstance(control, dict) else {}
    host = control.get("listen_host") or "127.0.0.1"
    port = control.get("listen_port", 8090)
    if not isinstance(port, int) or isinstance(port, bool) or not 1 <= port <= 65535 or not isinstance(host, str):
        line, col = marks.get("control.listen_port", (1, 1))
        raise ClientConfigError(f"{path}:{line}:{col}: control.listen_port: expected a port number")
    host = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def resolve(api=None, token=None, config=None, env=os.environ):
    """(url, token) for the CLI, from the first place that has each (see the module's doc)."""
    path = client_file(env)
    own = _read_client_file(path) if path.is_file() else {}
    url = api or env.get("HOTLINE_API_URL") or own.get("api")
    if not url:
        server = config or env.get("HOTLINE_CONFIG")
        if server or os.path.isfile(DEFAULT_SERVER_CONFIG):
            url = _server_address(server or DEFAULT_SERVER_CONFIG)
    if not url:
        raise ClientConfigError(
            "where is the engine's control API? give --api URL, set HOTLINE_API_URL, or write "
            f"'api: http://HOST:8090' in {path} (on the engine's machine: --config its settings file)")
    if token is None:
        token = env.get("HOTLINE_TOKEN")
    if token is None and own.get("token_env"):
        token = env.get(own["token_env"])
        if not token:
            raise ClientConfigError(f"{path}: token_env: variable {own['token_env']} is not set")
    if token is None:
        token = own.get("token")
    if not token:
        raise ClientConfigError(f"no control-API token: give --token, set HOTLINE_TOKEN, or name the "
                                f"variable holding it as 'token_env: NAME' in {path}")
    return check_url(url), token
