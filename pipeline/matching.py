"""Match a file's headers to template fields."""

from __future__ import annotations

import re
import unicodedata

from pipeline.template import Template

_NON_ALNUM = re.compile(r"[\W_]+")  # letters and digits of any script are kept


def normalise(label: str) -> str:
    """'E-mail Address ' -> 'emailaddress': case, accents, spacing and punctuation dropped."""
    decomposed = unicodedata.normalize("NFKD", label)
    ascii_only = "".join(c for c in decomposed if not unicodedata.combining(c))
    return _NON_ALNUM.sub("", ascii_only.lower())


def match_columns(headers: tuple[str, ...] | list[str], template: Template) -> dict[str, int]:
    """Propose field name -> column index, by normalised name, title or synonym.

    Each column is used at most once; the first column that matches a field wins.
    """
    by_key: dict[str, int] = {}
    for index, header in enumerate(headers):
        key = normalise(header)
        if key:  # a header of punctuation only matches nothing
            by_key.setdefault(key, index)
    mapping: dict[str, int] = {}
    used: set[int] = set()
    for field in template.fields:
        for label in (field.name, field.title, *field.synonyms):
            found = by_key.get(normalise(label))
            if found is not None and found not in used:
                index = found
                mapping[field.name] = index
                used.add(index)
                break
    return mapping
