"""Durable storage of webhook deliveries in one SQLite file, shared by processes.

A delivery is committed with ``synchronous=FULL`` before the receiver answers 202, so
an accepted body survives a crash or a power cut. Handing deliveries on is claimed
with one atomic UPDATE, so two receivers (or a receiver and ``deliveries replay``)
over the same folder never hand one delivery on twice, and a claim older than the
lease is taken over: the work of a dispatcher that died is not stuck. A replay
claims the same way, and is refused while someone else holds a live claim.

    pending --claim--> dispatching --done--> done
       ^                    |
       +-- attempt failed --+ (with backoff; failed after the last attempt)
    rejected: authenticated but unusable, kept so it can be inspected and replayed
    any status but a live dispatching --replay claim--> dispatching

A claim is named by the delivery's ``(replays, attempts)`` at claim time: finishing
a claim that was taken over or replayed meanwhile changes nothing.
"""

from __future__ import annotations

import json
import sqlite3
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from s1_autotask.receiver.delivery import (
    STATUSES,
    Delivery,
    DeliveryStatus,
    DeliverySummary,
    RetryPolicy,
    one_line,
)
from s1_autotask.receiver.errors import DeliveryNotFoundError, ReplayError, StoreError
from s1_autotask.sentinelone.intake import RequestKind

# The records are re-exported: callers think of them as what the store holds.
__all__ = [
    "CLAIM_LEASE_SECONDS",
    "DATABASE_NAME",
    "STATUSES",
    "Delivery",
    "DeliveryStatus",
    "DeliveryStore",
    "DeliverySummary",
    "RetryPolicy",
]

DATABASE_NAME = "deliveries.sqlite3"
# A claim older than this is taken over, its dispatcher presumed dead. The claim is
# renewed after every threat handed on, so the lease only has to outlast the start
# of one flow run, which the receiver caps at two minutes.
CLAIM_LEASE_SECONDS = 300.0
# How long a write waits for another process's lock before it gives up.
_BUSY_TIMEOUT_SECONDS = 10.0
_SCHEMA_VERSION = 1
_CONTENT_TYPE_LIMIT = 200
# Fixed width, so that text order is time order in SQL comparisons.
_TIME_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS deliveries (
    id TEXT PRIMARY KEY,
    received_at TEXT NOT NULL,
    body BLOB NOT NULL,
    content_type TEXT NOT NULL,
    kind TEXT,
    threat_ids TEXT NOT NULL DEFAULT '[]',
    status TEXT NOT NULL CHECK (
        status IN ('pending', 'dispatching', 'done', 'failed', 'rejected')
    ),
    attempts INTEGER NOT NULL DEFAULT 0,
    replays INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TEXT,
    claimed_at TEXT,
    last_error TEXT,
    flow_run_ids TEXT NOT NULL DEFAULT '[]'
);
CREATE INDEX IF NOT EXISTS deliveries_due ON deliveries (status, next_attempt_at);
CREATE INDEX IF NOT EXISTS deliveries_by_status ON deliveries (status, received_at);
CREATE INDEX IF NOT EXISTS deliveries_received ON deliveries (received_at);
"""


class DeliveryStore:
    """Deliveries kept in ``folder``/deliveries.sqlite3; the schema is made on open.

    Every operation opens its own connection, so one store may be used from several
    threads, and several processes may use the same folder.
    """

    def __init__(
        self, folder: Path, *, lease_seconds: float = CLAIM_LEASE_SECONDS
    ) -> None:
        self.path = folder / DATABASE_NAME
        self.lease_seconds = lease_seconds
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            msg = f"The delivery folder {folder} cannot be created: {exc.strerror}."
            raise StoreError(msg) from exc
        self._create_schema()

    def __repr__(self) -> str:
        return f"DeliveryStore({str(self.path)!r})"

    def add(
        self,
        body: bytes,
        *,
        content_type: str,
        kind: RequestKind,
        threat_ids: Sequence[str],
    ) -> Delivery:
        """Keep a usable body as pending, due to be handed on at once."""
        return self._insert(
            body,
            content_type=content_type,
            kind=kind,
            threat_ids=threat_ids,
            status="pending",
            reason=None,
        )

    def add_rejected(self, body: bytes, *, content_type: str, reason: str) -> Delivery:
        """Keep an authenticated but unusable body, with the reason it was refused."""
        return self._insert(
            body,
            content_type=content_type,
            kind=None,
            threat_ids=(),
            status="rejected",
            reason=reason,
        )

    def get(self, delivery_id: str) -> Delivery:
        """The delivery with this id, or `DeliveryNotFoundError`."""
        with self._connection() as conn:
            row = conn.execute(
                "SELECT * FROM deliveries WHERE id = ?", (delivery_id,)
            ).fetchone()
        if row is None:
            raise DeliveryNotFoundError(delivery_id)
        return _to_delivery(row)

    def recent(
        self, *, status: DeliveryStatus | None = None, limit: int = 50
    ) -> list[Delivery]:
        """Deliveries newest first, optionally only those in one status."""
        if status is not None and status not in STATUSES:
            msg = f"Unknown delivery status {status!r}; expected one of {STATUSES}."
            raise ValueError(msg)
        query = "SELECT * FROM deliveries"
        params: tuple[Any, ...] = ()
        if status is not None:
            query += " WHERE status = ?"
            params = (status,)
        query += " ORDER BY received_at DESC, rowid DESC LIMIT ?"

        with self._connection() as conn:
            rows = conn.execute(query, (*params, max(limit, 0))).fetchall()
        return [_to_delivery(row) for row in rows]

    def summary(self) -> DeliverySummary:
        """Counts per status and the receive time of the oldest waiting delivery."""
        with self._connection() as conn:
            rows = conn.execute(
                "SELECT status, COUNT(*) AS n, MIN(received_at) AS oldest "
                "FROM deliveries GROUP BY status"
            ).fetchall()

        counts: dict[DeliveryStatus, int] = dict.fromkeys(STATUSES, 0)
        oldest: list[datetime] = []
        for row in rows:
            counts[row["status"]] = row["n"]
            if row["status"] in ("pending", "dispatching"):
                oldest.append(_from_text(row["oldest"]))
        return DeliverySummary(
            counts=counts, oldest_waiting_at=min(oldest) if oldest else None
        )

    def claim_due(
        self, *, limit: int = 10, now: datetime | None = None
    ) -> list[Delivery]:
        """Claim pending deliveries that are due, and claims older than the lease.

        Each claim counts as an attempt. The claimed deliveries come back oldest
        first, in status ``dispatching``.
        """
        moment = now or _now()
        stale = moment - timedelta(seconds=self.lease_seconds)
        with self._connection() as conn:
            rows = conn.execute(
                """
                UPDATE deliveries
                SET status = 'dispatching', claimed_at = :now, attempts = attempts + 1
                WHERE id IN (
                    SELECT id FROM deliveries
                    WHERE (status = 'pending' AND next_attempt_at <= :now)
                       OR (status = 'dispatching' AND claimed_at <= :stale)
                    ORDER BY next_attempt_at
                    LIMIT :limit
                )
                RETURNING *
                """,
                {"now": _to_text(moment), "stale": _to_text(stale), "limit": limit},
            ).fetchall()
        claimed = [_to_delivery(row) for row in rows]
        return sorted(claimed, key=lambda d: d.received_at)

    def claim(self, delivery_id: str) -> Delivery | None:
        """Claim one pending delivery now, whatever its next attempt time.

        None when it is not pending: someone else claimed it, or it is finished.
        """
        with self._connection() as conn:
            row = conn.execute(
                "UPDATE deliveries SET status = 'dispatching', claimed_at = ?, "
                "attempts = attempts + 1 WHERE id = ? AND status = 'pending' "
                "RETURNING *",
                (_to_text(_now()), delivery_id),
            ).fetchone()
        return _to_delivery(row) if row is not None else None

    def extend_claim(self, claim: Delivery) -> bool:
        """Renew a claim's lease; False when the claim was lost meanwhile."""
        with self._connection() as conn:
            cursor = conn.execute(
                "UPDATE deliveries SET claimed_at = :now WHERE id = :id "
                "AND status = 'dispatching' AND attempts = :attempts "
                "AND replays = :replays",
                {"now": _to_text(_now()), **_claim_key(claim)},
            )
        return cursor.rowcount == 1

    def mark_done(
        self, claim: Delivery, flow_run_ids: Sequence[str]
    ) -> Delivery | None:
        """Record that every threat of a claimed delivery has its flow run.

        None when the claim was lost meanwhile (taken over or replayed).
        """
        with self._connection() as conn:
            row = conn.execute(
                "UPDATE deliveries SET status = 'done', flow_run_ids = :runs, "
                "claimed_at = NULL, next_attempt_at = NULL, last_error = NULL "
                "WHERE id = :id AND status = 'dispatching' AND attempts = :attempts "
                "AND replays = :replays RETURNING *",
                {"runs": json.dumps(list(flow_run_ids)), **_claim_key(claim)},
            ).fetchone()
        return _to_delivery(row) if row is not None else None

    def mark_attempt_failed(
        self,
        claim: Delivery,
        reason: str,
        *,
        retry: RetryPolicy,
        permanent: bool = False,
    ) -> Delivery | None:
        """Record a failed attempt: pending again after a backoff, or failed.

        A delivery is failed after the policy's last attempt, or at once when
        ``permanent`` (retrying cannot help). None when the claim was lost meanwhile.
        """
        give_up = permanent or claim.attempts >= retry.max_attempts
        status: DeliveryStatus = "failed" if give_up else "pending"
        due = None
        if not give_up:
            due = _to_text(_now() + timedelta(seconds=retry.delay(claim.attempts)))

        with self._connection() as conn:
            row = conn.execute(
                "UPDATE deliveries SET status = :status, next_attempt_at = :due, "
                "claimed_at = NULL, last_error = :reason WHERE id = :id "
                "AND status = 'dispatching' AND attempts = :attempts "
                "AND replays = :replays RETURNING *",
                {
                    "status": status,
                    "due": due,
                    "reason": one_line(reason),
                    **_claim_key(claim),
                },
            ).fetchone()
        return _to_delivery(row) if row is not None else None

    def claim_for_replay(
        self,
        delivery_id: str,
        *,
        kind: RequestKind | None = None,
        threat_ids: Sequence[str] | None = None,
        now: datetime | None = None,
    ) -> Delivery:
        """Claim a delivery to hand it on again, with its replay count raised.

        Any delivery may be replayed, a done one too, but not while it is being
        handed on (unless that claim is older than the lease): bumping the count
        and claiming is one UPDATE, so of two replays at once only one starts
        runs. A rejected delivery needs the ``kind`` and ``threat_ids`` its body
        is now read as. Raises `ReplayError` when it cannot be claimed.
        """
        moment = now or _now()
        stale = moment - timedelta(seconds=self.lease_seconds)
        ids = json.dumps(list(threat_ids)) if threat_ids is not None else None
        with self._connection() as conn:
            row = conn.execute(
                """
                UPDATE deliveries
                SET status = 'dispatching', replays = replays + 1, attempts = 1,
                    next_attempt_at = :now, claimed_at = :now, last_error = NULL,
                    kind = COALESCE(:kind, kind),
                    threat_ids = COALESCE(:ids, threat_ids)
                WHERE id = :id AND COALESCE(:kind, kind) IS NOT NULL
                  AND (status != 'dispatching' OR claimed_at <= :stale)
                RETURNING *
                """,
                {
                    "now": _to_text(moment),
                    "stale": _to_text(stale),
                    "kind": kind,
                    "ids": ids,
                    "id": delivery_id,
                },
            ).fetchone()
        if row is not None:
            return _to_delivery(row)

        held = self.get(delivery_id)
        if held.kind is None and kind is None:
            msg = (
                f"Delivery {delivery_id} was rejected and holds no threats to hand "
                f"on: {held.last_error or 'no reason was recorded'}"
            )
        else:
            msg = (
                f"Delivery {delivery_id} is being handed on right now; try again "
                "when it is done."
            )
        raise ReplayError(msg)

    def _insert(
        self,
        body: bytes,
        *,
        content_type: str,
        kind: RequestKind | None,
        threat_ids: Sequence[str],
        status: DeliveryStatus,
        reason: str | None,
    ) -> Delivery:
        received = _to_text(_now())
        row = {
            "id": uuid.uuid4().hex,
            "received_at": received,
            "body": body,
            "content_type": content_type[:_CONTENT_TYPE_LIMIT],
            "kind": kind,
            "threat_ids": json.dumps(list(threat_ids)),
            "status": status,
            "next_attempt_at": received if status == "pending" else None,
            "last_error": one_line(reason) if reason is not None else None,
        }
        with self._connection() as conn:
            stored = conn.execute(
                "INSERT INTO deliveries (id, received_at, body, content_type, kind, "
                "threat_ids, status, next_attempt_at, last_error) VALUES (:id, "
                ":received_at, :body, :content_type, :kind, :threat_ids, :status, "
                ":next_attempt_at, :last_error) RETURNING *",
                row,
            ).fetchone()
        return _to_delivery(stored)

    def _create_schema(self) -> None:
        with self._connection() as conn:
            # WAL lets readers (health checks, the CLI) run beside the writer; it is
            # a property of the file, so setting it once is enough.
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("BEGIN IMMEDIATE")
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if version > _SCHEMA_VERSION:
                conn.execute("ROLLBACK")
                msg = (
                    f"The delivery store {self.path} was written by a newer version "
                    f"(schema {version}); this one reads schema {_SCHEMA_VERSION}."
                )
                raise StoreError(msg)
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {_SCHEMA_VERSION}")
            conn.execute("COMMIT")

    @contextmanager
    def _connection(self) -> Iterator[sqlite3.Connection]:
        try:
            conn = sqlite3.connect(
                self.path, timeout=_BUSY_TIMEOUT_SECONDS, isolation_level=None
            )
        except sqlite3.Error as exc:
            msg = f"The delivery store {self.path} cannot be opened: {exc}."
            raise StoreError(msg) from exc
        try:
            conn.row_factory = sqlite3.Row
            # FULL syncs the log on every commit: a 202 means the body is on disk.
            conn.execute("PRAGMA synchronous = FULL")
            yield conn
        except sqlite3.Error as exc:
            msg = f"The delivery store {self.path} cannot be used: {exc}."
            raise StoreError(msg) from exc
        finally:
            conn.close()


def _claim_key(claim: Delivery) -> dict[str, str | int]:
    """What names a claim: a takeover raises attempts, a replay raises replays."""
    return {"id": claim.id, "attempts": claim.attempts, "replays": claim.replays}


def _to_delivery(row: sqlite3.Row) -> Delivery:
    return Delivery(
        id=row["id"],
        received_at=_from_text(row["received_at"]),
        body=row["body"],
        content_type=row["content_type"],
        kind=row["kind"],
        threat_ids=json.loads(row["threat_ids"]),
        status=row["status"],
        attempts=row["attempts"],
        replays=row["replays"],
        next_attempt_at=_from_optional_text(row["next_attempt_at"]),
        claimed_at=_from_optional_text(row["claimed_at"]),
        last_error=row["last_error"],
        flow_run_ids=json.loads(row["flow_run_ids"]),
    )


def _now() -> datetime:
    return datetime.now(UTC)


def _to_text(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime(_TIME_FORMAT)


def _from_text(text: str) -> datetime:
    return datetime.strptime(text, _TIME_FORMAT).replace(tzinfo=UTC)


def _from_optional_text(text: str | None) -> datetime | None:
    return _from_text(text) if text is not None else None
