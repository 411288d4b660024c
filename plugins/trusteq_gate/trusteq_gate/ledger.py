"""Single-use, monotonic tag-write credentials: the gate's memory, kept in the registry's database.

Each ``X-TrustEq-Tag-Auth`` credential carries a nonce and a time (ms).  The gate records the
nonce, in the same SQL database as the registry (two small tables of its own, created on first
use), inside one transaction with a check of the latest credential time seen for that model
version:

* a nonce seen before is refused (a captured credential cannot be replayed, not even within its
  5-minute window, not even on another worker or after a restart);
* a credential older than the latest one that already wrote a ``trusteq.*`` tag of the version
  is refused (an older verdict never overwrites a newer one).

Because the state lives in the database, it holds across gunicorn workers and server restarts.
A store without a SQL database cannot keep it: the gate then refuses ``trusteq.*`` writes
(fail closed).
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

__all__ = ["WriteLedger", "ledger_for"]

_logger = logging.getLogger("trusteq_gate")

_KEEP_S = 3600  # nonces older than this are expired credentials anyway (TAG_AUTH_MAX_SKEW_S is 300 s)


class WriteLedger:
    """Nonces used and the latest credential time per model version, in ``engine``'s database."""

    def __init__(self, engine: Any) -> None:
        import sqlalchemy as sa

        self.engine = engine
        meta = sa.MetaData()
        self.nonces = sa.Table("trusteq_gate_nonces", meta,
                               sa.Column("nonce", sa.String(64), primary_key=True),
                               sa.Column("ts_ms", sa.BigInteger, nullable=False))
        self.latest = sa.Table("trusteq_gate_latest_write", meta,
                               sa.Column("name", sa.String(256), primary_key=True),
                               sa.Column("version", sa.String(32), primary_key=True),
                               sa.Column("ts_ms", sa.BigInteger, nullable=False))
        try:
            meta.create_all(engine, checkfirst=True)
        except sa.exc.SQLAlchemyError:  # another worker created them a moment ago
            meta.create_all(engine, checkfirst=True)

    def consume(self, *, nonce: str, ts_ms: int, name: str, version: str) -> str | None:
        """Record one credential use; None when accepted, else why it is refused (nothing recorded)."""
        import sqlalchemy as sa

        now_ms = int(time.time() * 1000)
        try:
            with self.engine.begin() as conn:
                conn.execute(self.nonces.insert().values(nonce=nonce, ts_ms=int(ts_ms)))
                key = (self.latest.c.name == name) & (self.latest.c.version == str(version))
                last = conn.execute(sa.select(self.latest.c.ts_ms).where(key)).scalar()
                if last is not None and int(ts_ms) < int(last):
                    raise _Refused(f"the credential (issued at {ts_ms} ms) is older than the latest one that already "
                                   f"wrote a trusteq tag of this version ({last} ms): an older verdict never "
                                   "overwrites a newer one")
                if last is None:
                    conn.execute(self.latest.insert().values(name=name, version=str(version), ts_ms=int(ts_ms)))
                else:
                    conn.execute(self.latest.update().where(key).values(ts_ms=int(ts_ms)))
                conn.execute(self.nonces.delete().where(self.nonces.c.ts_ms < now_ms - _KEEP_S * 1000))
        except _Refused as e:
            return str(e)
        except sa.exc.IntegrityError:
            return "the credential was already used (each X-TrustEq-Tag-Auth header is good for one write)"
        return None


class _Refused(Exception):
    pass


_LEDGERS: dict[int, WriteLedger] = {}
_LOCK = threading.Lock()


def ledger_for(store: Any) -> WriteLedger:
    """The ledger in the database of a SQL registry store (one per engine and process).

    Raises
    ------
    RuntimeError
        When the store has no SQL database (the gate then refuses ``trusteq.*`` writes).
    """
    engine = getattr(store, "engine", None)
    if engine is None:
        raise RuntimeError(f"the registry store {type(store).__name__} has no SQL database, where the gate keeps "
                           "its record of used credentials; run the server with a SQL --backend-store-uri")
    with _LOCK:
        led = _LEDGERS.get(id(engine))
        if led is None:
            led = _LEDGERS[id(engine)] = WriteLedger(engine)
        return led
