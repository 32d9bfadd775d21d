"""`<var_dir>/hotline.pid`: which process is the engine, proven by a lock the engine holds.

After a kill -9 the file stays and names a dead pid, which the system later gives to some other
process: signalling it (`hotline ivr reload`) would hit a stranger. So the engine holds an
exclusive flock on the file for its whole life (the kernel drops it when the process dies, however
it dies), and `running_engine` believes the pid only while that lock is held and /proc says the
process runs `engine run` / `hotline run`. The lock also refuses a second engine on one var_dir.
"""
import fcntl
import os


class NoEngine(Exception):
    """No engine of ours is running for this pid file (the message says why)."""


def claim(path):
    """Lock `path` and write our pid in it; returns the open descriptor (keep it until exit).
    Raises RuntimeError when another live engine holds it."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        other = os.read(fd, 32).decode("ascii", "replace").strip()
        os.close(fd)
        raise RuntimeError(f"another engine (pid {other or '?'}) runs with {path}; one engine per var_dir")
    os.ftruncate(fd, 0)
    os.write(fd, f"{os.getpid()}\n".encode())
    return fd


def release(fd, path):
    try:
        os.unlink(path)
    except OSError:
        pass
    os.close(fd)


def running_engine(path):
    """The pid of the engine that holds `path`; raises NoEngine (with the reason) otherwise."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError as exc:
        raise NoEngine(f"no running engine ({path}: {exc.strerror})") from None
    try:
        text = os.read(fd, 32).decode("ascii", "replace").strip()
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except OSError:
            pass                        # held: an engine is alive
        else:
            raise NoEngine(f"no running engine: {path} names pid {text or '?'} but no engine holds it "
                           "(left by a crash); nothing was signalled")
    finally:
        os.close(fd)
    if not text.isdigit():
        raise NoEngine(f"{path} does not hold a pid: {text[:20]!r}")
    pid = int(text)
    if not is_engine(pid):
        raise NoEngine(f"pid {pid} in {path} is not a hotline engine; nothing was signalled")
    return pid


def is_engine(pid):
    """Does /proc say `pid` runs `python -m engine run` or `hotline run`?"""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            args = f.read().decode("utf-8", "replace").split("\0")
    except OSError:
        return False
    if "run" not in args:
        return False
    before = args[:args.index("run")]
    return "engine" in before or any(os.path.basename(a) == "hotline" for a in before)
