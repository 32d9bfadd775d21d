"""Blocking work (file I/O, parsing) in gevent's thread pool, so the hub that carries every call
never stalls on it.

A once-a-minute import of the switch's XML CDR files, run on the hub, stalled it for seconds: wrap-up
timers fired late and the watchdog "repaired" agents whose calls had ended normally. `run(fn, ...)`
runs `fn` in a worker thread and waits cooperatively. What the worker must do on the hub (the CDR
store's locks are gevent locks, one hub's) goes through `OnHub(obj)`: each method call is handed to
the hub and the worker waits for its result on a native lock.
"""
import gevent
from gevent import monkey


def run(fn, *args, **kw):
    """fn(*args, **kw) in a worker thread; this greenlet waits, the hub runs on."""
    return gevent.get_hub().threadpool.apply(fn, args, kw)


class OnHub:
    """`obj`'s methods, callable from a worker thread: each call runs in a greenlet on the hub."""

    def __init__(self, obj, hub=None):
        self._obj = obj
        self._hub = hub or gevent.get_hub()

    def __getattr__(self, name):
        method = getattr(self._obj, name)

        def on_hub(*args, **kw):
            done = monkey.get_original("_thread", "allocate_lock")()
            done.acquire()
            box = {}

            def task():
                try:
                    box["value"] = method(*args, **kw)
                except BaseException as exc:        # handed to the worker, raised there
                    box["error"] = exc
                finally:
                    done.release()
            self._hub.loop.run_callback_threadsafe(lambda: gevent.spawn(task))
            done.acquire()
            if "error" in box:
                raise box["error"]
            return box["value"]
        return on_hub
