"""Short legacy files read right, and every encoding the page offers is one the engine reads."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from pipeline.encodings import detect_encoding

MAPPING_JS = Path(__file__).resolve().parents[2] / "browser" / "src" / "ui" / "mapping.js"


def _offered() -> list[str]:
    block = MAPPING_JS.read_text("utf-8").split("export const ENCODINGS = [", 1)[1].split("];")[0]
    return re.findall(r'"([^"]+)"', block)


@pytest.mark.parametrize(
    ("text", "codec"),
    [
        ("Name\nRené\n", "latin-1"),
        ("Nom,Ville\nJosé,Zürich\nFrançois,Besançon\n", "latin-1"),
        ("Nombre,Ciudad\nNúñez,Logroño\n", "latin-1"),
        ("Straße,Größe\nÄrger,Öl\n", "cp1252"),
        ("Name,Preis\nCafé,3 €\n", "cp1252"),
        ("Imię,Miasto\nŁukasz,Łódź\nZofia,Gdańsk\n", "cp1250"),
        ("Όνομα,Πόλη\nΓιώργος,Αθήνα\nΜαρία,Θεσσαλονίκη\n", "iso8859_7"),
        ("Имя,Город\nИван,Москва\nОльга,Казань\n", "cp1251"),
        ("名前,都市\n山田太郎,東京\n鈴木花子,大阪\n", "cp932"),
    ],
)
def test_short_legacy_files_decode_to_their_text(text: str, codec: str) -> None:
    data = text.encode(codec)
    found = detect_encoding(data, "short.csv", None)
    assert data.decode(found.codec) == text, found.codec


def test_the_page_offers_the_whatwg_encodings_and_the_engine_reads_each() -> None:
    offered = _offered()
    assert len(offered) == 39 and offered[0] == "UTF-8"
    for name in offered:
        chosen = detect_encoding(b"a,b\n1,2\n", "f.csv", name.lower())
        assert "a,b\n".encode(chosen.codec).decode(chosen.codec) == "a,b\n", name
