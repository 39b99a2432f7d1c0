"""What organizers read: the signature export and the stats."""

from __future__ import annotations

import csv
import json
from collections.abc import AsyncIterator
from typing import IO, Any

from bot.store import Store

EXPORT_COLUMNS = (
    "signature_id", "campaign", "full_name", "region", "channel", "language",
    "opted_in_updates", "signed_at", "contact",
)
#: The console simulator's sandbox contacts (`sandbox:…`) are never counted or exported.
REAL_SIGNATURES = "contact NOT LIKE 'sandbox:%'"
REAL_CONTACTS = "address NOT LIKE 'sandbox:%'"


async def signature_rows(store: Store, campaign: str) -> AsyncIterator[dict[str, Any]]:
    rows = await store.fetchall(
        f"SELECT {', '.join(EXPORT_COLUMNS)} FROM signatures WHERE campaign = ? "
        f"AND {REAL_SIGNATURES} ORDER BY signed_at, signature_id",
        (campaign,),
    )
    for row in rows:
        item = {column: row[column] for column in EXPORT_COLUMNS}
        item["opted_in_updates"] = bool(item["opted_in_updates"])
        yield item


async def export_signatures(store: Store, campaign: str, out: IO[str], fmt: str) -> int:
    """Write the campaign's signatures to `out` as CSV (header = the central-store columns)."""
    count = 0
    if fmt == "csv":
        writer = csv.DictWriter(out, fieldnames=EXPORT_COLUMNS, lineterminator="\n")
        writer.writeheader()
    async for item in signature_rows(store, campaign):
        count += 1
        if fmt == "csv":
            item["opted_in_updates"] = "true" if item["opted_in_updates"] else "false"
            item["region"] = item["region"] or ""
            writer.writerow(item)
        else:
            out.write(json.dumps(item, ensure_ascii=False) + "\n")
    return count


async def stats(store: Store, campaign: str, goal: int) -> dict[str, Any]:
    async def grouped(sql: str, params: tuple[Any, ...] = (campaign,)) -> dict[str, int]:
        return {str(r[0] if r[0] is not None else "-"): int(r[1])
                for r in await store.fetchall(sql, params)}

    total = await store.signature_count(campaign)
    contacts = await store.fetchone(
        "SELECT count(*) AS n, coalesce(sum(stopped), 0) AS stopped FROM contacts "
        f"WHERE {REAL_CONTACTS}"
    )
    opted = await store.fetchone(
        "SELECT coalesce(sum(opted_in_updates), 0) AS n FROM signatures WHERE campaign = ? "
        f"AND {REAL_SIGNATURES}",
        (campaign,),
    )
    base = f"FROM signatures WHERE campaign = ? AND {REAL_SIGNATURES} GROUP BY 1 ORDER BY 1"
    return {
        "campaign": campaign,
        "signatures": total,
        "goal": goal,
        "opted_in_updates": int(opted["n"]) if opted else 0,
        "contacts": int(contacts["n"]) if contacts else 0,
        "stopped": int(contacts["stopped"]) if contacts else 0,
        "signatures_by_day": await grouped(f"SELECT substr(signed_at, 1, 10), count(*) {base}"),
        "signatures_by_language": await grouped(f"SELECT language, count(*) {base}"),
        "signatures_by_channel": await grouped(f"SELECT channel, count(*) {base}"),
        "signatures_by_region": await grouped(f"SELECT region, count(*) {base}"),
        "contacts_by_day": await grouped(
            f"SELECT substr(created_at, 1, 10), count(*) FROM contacts WHERE {REAL_CONTACTS} "
            "GROUP BY 1 ORDER BY 1", ()
        ),
        "contacts_by_channel": await grouped(
            f"SELECT channel, count(*) FROM contacts WHERE {REAL_CONTACTS} GROUP BY 1 ORDER BY 1",
            ()
        ),
        "contacts_by_language": await grouped(
            f"SELECT language, count(*) FROM contacts WHERE {REAL_CONTACTS} GROUP BY 1 ORDER BY 1",
            ()
        ),
        "outbox": await store.outbox_counts(),
        "broadcasts": await broadcast_history(store),
    }


async def broadcast_history(store: Store, limit: int = 10) -> list[dict[str, Any]]:
    """The latest broadcasts with their recipients per delivery state."""
    rows = await store.fetchall(
        "SELECT id, segment, status, total, created_at, finished_at FROM broadcasts "
        "ORDER BY id DESC LIMIT ?", (limit,))
    history = []
    for row in rows:
        states = await store.fetchall(
            "SELECT state, count(*) AS n FROM broadcast_recipients WHERE broadcast_id = ? "
            "GROUP BY state ORDER BY state", (row["id"],))
        history.append({**dict(row), "states": {s["state"]: int(s["n"]) for s in states}})
    return history


def format_stats(data: dict[str, Any]) -> str:
    lines = [
        f"Campaign {data['campaign']}: {data['signatures']} of {data['goal']} signatures "
        f"({data['opted_in_updates']} want updates)",
        f"Contacts: {data['contacts']} ({data['stopped']} stopped)",
        f"Outbox: {data['outbox']['pending']} pending, {data['outbox']['parked']} parked",
    ]
    for key, title in (
        ("signatures_by_day", "Signatures per day"),
        ("signatures_by_language", "Signatures per language"),
        ("signatures_by_channel", "Signatures per channel"),
        ("signatures_by_region", "Signatures per province"),
        ("contacts_by_day", "New contacts per day"),
        ("contacts_by_language", "Contacts per language"),
        ("contacts_by_channel", "Contacts per channel"),
    ):
        lines.append("")
        lines.append(title)
        if not data[key]:
            lines.append("  (none)")
        width = max((len(k) for k in data[key]), default=0)
        lines.extend(f"  {k.ljust(width)}  {v:>7}" for k, v in data[key].items())
    lines += ["", "Broadcasts"]
    if not data["broadcasts"]:
        lines.append("  (none)")
    for b in data["broadcasts"]:
        states = ", ".join(f"{n} {state}" for state, n in b["states"].items())
        lines.append(f"  #{b['id']} {b['created_at']} {b['status']:<8} to {b['total']}: {states}"
                     f"  [{b['segment'] or 'everyone opted in'}]")
    return "\n".join(lines)
