"""Canada's 13 provinces and territories: two-letter codes and the names people type."""

from __future__ import annotations

from flows.words import fold_name

#: code -> names in English, French, Spanish, Tagalog (and common short forms).
PROVINCES: dict[str, tuple[str, ...]] = {
    "AB": ("Alberta",),
    "BC": ("British Columbia", "Colombie-Britannique", "Columbia Británica",
           "Colombia Británica", "B.C."),
    "MB": ("Manitoba",),
    "NB": ("New Brunswick", "Nouveau-Brunswick", "Nuevo Brunswick"),
    "NL": ("Newfoundland and Labrador", "Newfoundland", "Labrador", "Terre-Neuve-et-Labrador",
           "Terre-Neuve", "Terranova y Labrador", "Terranova"),
    "NS": ("Nova Scotia", "Nouvelle-Écosse", "Nueva Escocia"),
    "ON": ("Ontario", "Ontário"),
    "PE": ("Prince Edward Island", "PEI", "P.E.I.", "Île-du-Prince-Édouard", "IPE",
           "Isla del Príncipe Eduardo", "Isla Principe Eduardo"),
    "QC": ("Quebec", "Québec", "PQ", "Quebék"),
    "SK": ("Saskatchewan",),
    "NT": ("Northwest Territories", "Territoires du Nord-Ouest", "Territorios del Noroeste",
           "NWT", "TNO"),
    "NU": ("Nunavut",),
    "YT": ("Yukon", "Yukón", "YK"),
}

_INDEX: dict[str, str] = {
    **{fold_name(name): code for code, names in PROVINCES.items() for name in names},
    **{code.lower(): code for code in PROVINCES},
}


def parse_region(text: str) -> str | None:
    """`on`, `Ontario`, `Ontário`, `Île-du-Prince-Édouard` -> the two-letter code, else None."""
    return _INDEX.get(fold_name(text))
