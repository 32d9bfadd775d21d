"""`hotline run` with a disk that can fill up, for scripts/chaos (issue 17 §7, the disk-full scenario).

While the file named by HOTLINE_CHAOS_DISK_FULL exists, every CDR database write fails as SQLite
fails on a full disk ("database or disk is full") and every spool append fails with ENOSPC, which
is what tests/test_cdr_storage_faults.py's FullDisk does inside a test. Reads still work, as on a
real full disk. Without root there is no small filesystem to fill, so the failure is injected at
the two places the engine writes a CDR; everything else is the real `hotline run`.
"""
import errno
import os
import sys

from gevent import monkey

monkey.patch_all()      # as engine.cli does, before anything imports socket or threading

import peewee  # noqa: E402

from engine.cdr import store as store_mod  # noqa: E402
from engine.cdr.store import CdrStore  # noqa: E402

FLAG = os.environ.get("HOTLINE_CHAOS_DISK_FULL", "")


def disk_full():
    return bool(FLAG) and os.path.exists(FLAG)


def install():
    real_upsert, real_append = CdrStore._upsert, store_mod._append_durably

    def upsert(store, row, replay):
        if disk_full():
            raise peewee.OperationalError("database or disk is full")
        return real_upsert(store, row, replay)

    def append(path, lines, lock):
        if disk_full():
            raise OSError(errno.ENOSPC, "No space left on device", path)
        return real_append(path, lines, lock)

    CdrStore._upsert = upsert
    store_mod._append_durably = append


if __name__ == "__main__":
    install()
    from engine.cli import main
    sys.argv[0] = "hotline"
    raise SystemExit(main())
