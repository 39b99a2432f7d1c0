"""Crash safety, short: SIGKILL a real `serve` at random moments during SMS conversations."""

from __future__ import annotations

from pathlib import Path

from bench.chaos import run


def test_kills_lose_nothing_and_double_nothing(tmp_path: Path) -> None:
    report = run(tmp_path, contacts=12, kills=6, seed=7)
    assert report.kills == 6
    assert report.duplicates == 0
    assert report.unfinished == 0, "every signature a person was thanked for is there"
    assert report.wrong_state == 0, "every conversation resumed at its step"
    assert report.mismatched_retries == 0, "a retried MessageSid got a different answer"
    assert report.signatures == 12
