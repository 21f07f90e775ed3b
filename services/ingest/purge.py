"""Retention: dossiers whose `visible_until` has passed are deleted, and audit events older
than the audit retention (DOSIS_AUDIT_RETENTION_DAYS).

Reads hide such a dossier from that moment on; the purge removes it from the store. The
ingest service purges every `purge_interval` seconds (DOSIS_PURGE_INTERVAL) in a task of its
own; `dosis purge` runs one by hand. Both go through run_purge, the one place a purge is
done, and each purge is one audit event (rpc "purge") with the number of dossiers removed.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
from datetime import datetime, timezone

from services.settings import DEFAULT_AUDIT_RETENTION_DAYS
from services.store.audit import AuditEntry, AuditStore
from services.store.dossiers import DossierStore

log = logging.getLogger(__name__)
PURGE = "purge"  # the rpc of a purge's audit event (it is no RPC of the API)


async def run_purge(
    store: DossierStore,
    audit: AuditStore | None = None,
    retention_days: int = DEFAULT_AUDIT_RETENTION_DAYS,
    service: str = "dosis-ingest",
    now: datetime | None = None,
) -> int:
    """Delete the dossiers whose visible_until is at or before `now` (default: now), and the
    audit events past their retention; record the purge; how many dossiers went.

    The single call site of every purge (the periodic task and `dosis purge`).
    """
    count = await store.purge_expired(now or datetime.now(timezone.utc))
    if audit is not None:
        pruned = await asyncio.to_thread(audit.prune, retention_days)
        if pruned:
            log.info("removed %d audit events past their retention", pruned)
        await audit.record(AuditEntry(
            service=service, rpc=PURGE, subject="retention", supplier_id="", enterprise_number="",
            outcome="OK", result_count=count, trace_id="",
        ))
    return count


class PeriodicPurge:
    """A purge every `interval` seconds (the first one interval after start); 0 or less:
    none. A failed purge (the database away, …) is logged and tried again at the next
    interval: it never stops the service."""

    def __init__(self, interval: float, retention_days: int = DEFAULT_AUDIT_RETENTION_DAYS):
        self._interval = interval
        self._retention_days = retention_days
        self._task: asyncio.Task | None = None

    def start(self, store: DossierStore, audit: AuditStore | None = None) -> None:
        """Start purging (from within the service's event loop)."""
        if self._interval > 0 and self._task is None:
            # A clean context: the task must not inherit the starting code's trace.
            self._task = asyncio.get_running_loop().create_task(
                self._run(store, audit), context=contextvars.Context()
            )

    async def stop(self) -> None:
        """Cancel the task; a purge under way stops after its current transaction."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _run(self, store: DossierStore, audit: AuditStore | None) -> None:
        while True:
            await asyncio.sleep(self._interval)
            try:
                count = await run_purge(store, audit, self._retention_days)
            except Exception as exc:  # noqa: BLE001 - log and try again next time
                # The exception's type only: database errors may quote rows.
                log.warning("purge of expired dossiers failed (%s); next try in %g s", type(exc).__name__,
                            self._interval)
            else:
                log.info("purged %d expired dossiers", count)
