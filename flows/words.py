"""Folding typed text for matching: case, accents, surrounding punctuation and spaces."""

from __future__ import annotations

import re
import unicodedata

_SPACES = re.compile(r"\s+")


def _is_edge_noise(ch: str) -> bool:
    # Punctuation, symbols (emoji), separators and control characters around a word.
    return unicodedata.category(ch)[0] in "PSZC"


def fold(text: str) -> str:
    """`  Arrêt. ` -> `arret`: casefolded, accents dropped, edges trimmed, inner spaces single."""
    decomposed = unicodedata.normalize("NFKD", text)
    bare = "".join(ch for ch in decomposed if not unicodedata.combining(ch)).casefold()
    start, end = 0, len(bare)
    while start < end and _is_edge_noise(bare[start]):
        start += 1
    while end > start and _is_edge_noise(bare[end - 1]):
        end -= 1
    return _SPACES.sub(" ", bare[start:end])


def fold_name(text: str) -> str:
    """Like fold, inner punctuation (hyphens, dots) made spaces: `Île-du-Prince-Édouard`."""
    folded = fold(text)
    spaced = "".join(" " if unicodedata.category(ch)[0] in "PS" else ch for ch in folded)
    return _SPACES.sub(" ", spaced).strip()


def clean_free_text(text: str, limit: int) -> str:
    """A name as typed: control characters out, spaces collapsed, at most `limit` characters."""
    kept = "".join(ch for ch in text if unicodedata.category(ch) not in ("Cc", "Cf", "Cs", "Co"))
    return _SPACES.sub(" ", kept).strip()[:limit].strip()
