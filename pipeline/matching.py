"""Match a file's headers to template fields, the way users of hosted importers expect.

`propose` ranks what it is sure of first (a mapping the user confirmed for the same
headers before, then a field's name or title, then the template's synonyms), then
fuzzy likenesses with a confidence the user sees. Each column and each field is used
at most once; the best candidates win across the whole table, not field by field.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from difflib import SequenceMatcher
from functools import lru_cache

from pipeline.protocol import MatchSource, ValueSource
from pipeline.schema import Field, Template

FUZZY_THRESHOLD = 0.6  # below this a likeness is a guess the user would have to undo
FUZZY_CEILING = 0.99  # a fuzzy match never shows as certain
PRESELECT_CONFIDENCE = 0.8  # below this a match is proposed to the user, not pre-selected
TOKEN_LIKENESS = 0.8  # words this alike count as the same word ("adress", "address")

_NON_ALNUM = re.compile(r"[\W_]+")  # letters and digits of any script are kept
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
# Words are split at spaces, underscores and punctuation, but not inside "e-mail" or "o'clock".
_WORD_BREAK = re.compile(r"[^\w'’-]+|_+")


@dataclass(frozen=True)
class Match:
    field: str
    column: int
    confidence: float  # 0..1, shown to the user; 1.0 for remembered, exact and synonym
    source: MatchSource

    @property
    def proposed(self) -> bool:
        """Too unsure to pre-select: the page offers it and the user takes it or not."""
        return self.confidence < PRESELECT_CONFIDENCE

    def to_dict(self) -> dict[str, object]:
        return {
            "field": self.field,
            "column": self.column,
            "confidence": self.confidence,
            "source": self.source.value,
            "proposed": self.proposed,
        }


def normalise(label: str) -> str:
    """'E-mail Address ' -> 'emailaddress': case, accents, spacing and punctuation dropped."""
    decomposed = unicodedata.normalize("NFKD", label)
    ascii_only = "".join(c for c in decomposed if not unicodedata.combining(c))
    return _NON_ALNUM.sub("", ascii_only.lower())


def header_signature(headers: Sequence[str]) -> str:
    """sha256 hex of the normalised headers in order: "E-mail " and "email" sign alike."""
    joined = "\x1f".join(normalise(h) for h in headers)
    return hashlib.sha256(joined.encode("utf-8")).hexdigest()


def propose(
    headers: Sequence[str], template: Template, remembered: Mapping[str, str] | None = None
) -> list[Match]:
    """The proposed mapping, in column order.

    `remembered` is {header label: field name} as the user confirmed it before (labels
    compare normalised; fields the template no longer has are ignored).
    """
    keys = [normalise(h) for h in headers]
    chosen = _assign(_certain(headers, keys, template, remembered or {}))
    taken_fields = {m.field for m in chosen}
    taken_columns = {m.column for m in chosen}
    chosen += _assign(
        _fuzzy(
            [(i, h) for i, h in enumerate(headers) if i not in taken_columns and keys[i]],
            [(fi, f) for fi, f in enumerate(template.fields) if f.name not in taken_fields],
        )
    )
    return sorted(chosen, key=lambda m: m.column)


# A rank (lowest first) and a match: greedily, a match is taken when its field and column
# are both still free.
_Candidate = tuple[tuple[float, ...], Match]


def _assign(candidates: list[_Candidate]) -> list[Match]:
    fields: set[str] = set()
    columns: set[int] = set()
    chosen: list[Match] = []
    for _, match in sorted(candidates, key=lambda candidate: candidate[0]):
        if match.field not in fields and match.column not in columns:
            fields.add(match.field)
            columns.add(match.column)
            chosen.append(match)
    return chosen


def _certain(
    headers: Sequence[str], keys: list[str], template: Template, remembered: Mapping[str, str]
) -> list[_Candidate]:
    """Remembered, then name, title and synonyms; ties go to the leftmost column."""
    order = {f.name: fi for fi, f in enumerate(template.fields)}
    by_key = {normalise(label): name for label, name in remembered.items() if normalise(label)}
    candidates: list[_Candidate] = []
    for column, (header, key) in enumerate(zip(headers, keys, strict=True)):
        verbatim = remembered.get(header)
        name = verbatim or by_key.get(key)
        if name in order:
            rank = (0.0, 0.0 if verbatim else 1.0, column, order[name])
            candidates.append((rank, Match(name, column, 1.0, MatchSource.REMEMBERED)))
    columns_by_key: dict[str, list[int]] = {}
    for column, key in enumerate(keys):
        if key:  # a header of punctuation only matches nothing
            columns_by_key.setdefault(key, []).append(column)
    for fi, field in enumerate(template.fields):
        labels = [(field.name, MatchSource.EXACT), (field.title, MatchSource.EXACT)]
        labels += [(s, MatchSource.SYNONYM) for s in field.synonyms]
        for li, (label, source) in enumerate(labels):
            tier = 1.0 if source == MatchSource.EXACT else 2.0
            for column in columns_by_key.get(normalise(label), []):
                candidates.append(((tier, li, column, fi), Match(field.name, column, 1.0, source)))
    return candidates


def _fuzzy(columns: list[tuple[int, str]], fields: list[tuple[int, Field]]) -> list[_Candidate]:
    candidates: list[_Candidate] = []
    labels = [
        (fi, field, [_Label(x) for x in (field.name, field.title, *field.synonyms) if normalise(x)])
        for fi, field in fields
    ]
    for column, header in columns:
        seen = _Label(header)
        for fi, field, known in labels:
            score = max((seen.likeness(label) for label in known), default=0.0)
            if score >= FUZZY_THRESHOLD:
                confidence = min(round(score, 2), FUZZY_CEILING)
                candidates.append(
                    ((-score, column, fi), Match(field.name, column, confidence, MatchSource.FUZZY))
                )
    return candidates


class _Label:
    """A label's normalised form and its words, computed once."""

    __slots__ = ("key", "words")

    def __init__(self, label: str) -> None:
        self.key = normalise(label)
        parts = _WORD_BREAK.split(_CAMEL.sub(" ", label))
        self.words = [w for w in (normalise(p) for p in parts) if w]

    def likeness(self, other: _Label) -> float:
        """0.4 x character likeness of the whole + 0.6 x share of words alike; 0.0 when
        that cannot reach FUZZY_THRESHOLD.

        Whole-string likeness alone pairs "Last name" with "first_name" (0.71); words
        alone miss typos in one-word labels. Weighted, the first stays under the
        threshold while "Emial" (0.8) and "Phone number" (0.65) pass.
        """
        words = 0.6 * _word_overlap(self.words, other.words)
        if words + 0.4 < FUZZY_THRESHOLD:  # skip the costlier whole-string comparison
            return 0.0
        return words + 0.4 * _ratio(self.key, other.key)


def _ratio(a: str, b: str) -> float:
    return SequenceMatcher(None, a, b, autojunk=False).ratio()


@lru_cache(maxsize=65536)  # wide files repeat the same words ("Column 1 value", "Column 2 ...")
def _word_likeness(a: str, b: str) -> float:
    if a == b:
        return 1.0
    if 2 * min(len(a), len(b)) < TOKEN_LIKENESS * (len(a) + len(b)):  # lengths alone rule it out
        return 0.0
    likeness = _ratio(a, b)
    return likeness if likeness >= TOKEN_LIKENESS else 0.0


def _word_overlap(a: list[str], b: list[str]) -> float:
    """Dice coefficient over words, a word counting as shared when nearly the same."""
    if not a or not b:
        return 0.0
    shared = sum(max(_word_likeness(w, o) for o in b) for w in a)
    shared += sum(max(_word_likeness(w, o) for o in a) for w in b)
    return shared / (len(a) + len(b))


VALUE_THRESHOLD = 0.6  # a fuzzy value suggestion below this is not worth showing


@dataclass(frozen=True)
class ValueSuggestion:
    """An allowed value proposed for a value outside a list field's list, and why."""

    value: str
    confidence: float  # 0..1, shown to the user; 1.0 for case and synonym
    source: ValueSource

    def to_dict(self) -> dict[str, object]:
        return {"value": self.value, "confidence": self.confidence, "source": self.source.value}


def suggest_value(
    value: str, allowed: Sequence[str], synonyms: Sequence[tuple[str, Sequence[str]]] = ()
) -> ValueSuggestion | None:
    """The allowed value `value` most likely means: the same but for case, accents and
    spacing ("germany " for "Germany"); one of the template's other spellings of it
    ("Deutschland" for "DE"); else the likeliest by spelling, if alike enough ("Germny")."""
    key = normalise(value)
    if not key:
        return None
    for candidate in allowed:
        if normalise(candidate) == key:
            return ValueSuggestion(candidate, 1.0, ValueSource.CASE)
    for candidate, names in synonyms:
        if any(normalise(n) == key for n in names):
            return ValueSuggestion(candidate, 1.0, ValueSource.SYNONYM)
    best: tuple[float, str] | None = None
    spellings = [(a, a) for a in allowed] + [(a, n) for a, names in synonyms for n in names]
    for candidate, spelling in spellings:
        other = normalise(spelling)
        if other:
            score = _ratio(key, other)
            if best is None or score > best[0]:
                best = (score, candidate)
    if best is None or best[0] < VALUE_THRESHOLD:
        return None
    return ValueSuggestion(best[1], min(round(best[0], 2), FUZZY_CEILING), ValueSource.FUZZY)
