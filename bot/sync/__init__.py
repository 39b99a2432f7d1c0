"""Syncing signatures to the central store: SQLite, PostgreSQL or an OSDI petition endpoint.

    base.py     what a backend speaks: jobs in, one result per job out (or a bulk of plain
                upserts in columns); the failure kinds
    outbox.py   due jobs (coalesced per signature), settling them, backoff, the lease
    sql.py      the SQLite and PostgreSQL stores (COPY straight in, or a staging table and
                one upsert, per batch)
    osdi.py     an Action Network style petition over HTTP (token bucket, kept identifiers)
    worker.py   a pass, the loop inside `serve`, the `sync [--once]` command

`serve` starts `run_worker`; `python run_bot.py sync` calls `run_command`.
"""

from __future__ import annotations

from bot.sync.worker import Syncer, open_backend, run_command, run_worker

__all__ = ["Syncer", "open_backend", "run_command", "run_worker"]
