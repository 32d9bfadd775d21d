"""Which database and disk errors pass (storage trouble) and which mean "this row is refused".

A full disk, an I/O error, a read-only file system, a locked or unreachable database say nothing
about the row being written: it must wait and be written later, never be set aside as bad.
"""
import errno

import peewee

from engine.infra.database import is_busy

# Storage that cannot take a write now but may later: never a reason to call a row bad.
STORAGE_ERRNOS = {errno.ENOSPC, errno.EIO, errno.EROFS, errno.EDQUOT, errno.ENOMEM, errno.EAGAIN}
# sqlite3 error texts (sqlite3.c sqlite3ErrStr): SQLITE_FULL, SQLITE_IOERR, SQLITE_READONLY,
# SQLITE_CANTOPEN, SQLITE_BUSY/LOCKED; and what PostgreSQL says of a full or failing disk.
STORAGE_TEXTS = ("database or disk is full", "disk i/o error", "readonly database", "read-only",
                 "unable to open database file", "no space left", "could not extend file",
                 "could not write", "input/output error", "disk quota")
# PostgreSQL SQLSTATE: 53xxx insufficient resources (53100 disk_full), 58xxx system errors
# (58030 io_error), 25006 read_only_sql_transaction, 57P03 cannot_connect_now, 08xxx connection.
STORAGE_SQLSTATE_PREFIXES = ("53", "58", "08", "57P")
STORAGE_SQLSTATES = ("25006",)


def is_transient(exc):
    """Is this error the storage's trouble (locked, full, failing, read-only, unreachable), which
    passes, rather than the database refusing this particular row?"""
    if exc is None:
        return False
    if is_busy(exc):
        return True
    # peewee wraps the driver's exception: the original is its `orig` (and its context)
    for e in (exc, getattr(exc, "orig", None), getattr(exc, "__cause__", None),
              getattr(exc, "__context__", None)):
        if isinstance(e, OSError) and e.errno in STORAGE_ERRNOS:
            return True
        code = getattr(e, "pgcode", None) or getattr(e, "sqlstate", None)
        if isinstance(code, str) and (code in STORAGE_SQLSTATES or code.startswith(STORAGE_SQLSTATE_PREFIXES)):
            return True
    if isinstance(exc, (peewee.OperationalError, peewee.InterfaceError)) and not isinstance(exc, peewee.DataError):
        text = str(exc).lower()
        if any(t in text for t in STORAGE_TEXTS):
            return True
    return isinstance(exc, OSError) and exc.errno in STORAGE_ERRNOS
