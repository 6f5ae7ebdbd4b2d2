"""Which encoding a text file is in, and reading it as UTF-8 whatever it is.

A BOM decides first (UTF-8, UTF-16 LE/BE, UTF-32); then UTF-16 without a BOM by its NUL
pattern; then strict UTF-8; otherwise charset-normalizer on the sample (ties between
Western code pages go to Windows-1252, a superset of ISO-8859-1's printable characters).
The user's choice overrides all of it. Anything but UTF-8 is transcoded 1 MiB at a time.
"""

from __future__ import annotations

import codecs
import io
import shutil
from typing import IO

from pipeline.errors import ReadError
from pipeline.sheet import BOMS, MIB

TRANSCODE_CHUNK = 1 * MIB
SCAN_CHUNK = 4 * MIB
_DISPLAY = {
    "utf_8": "utf-8",
    "cp1252": "windows-1252",
    "latin_1": "iso-8859-1",
    "iso8859_1": "iso-8859-1",
    "cp932": "shift_jis",
    "shift_jis": "shift_jis",
    "utf_16_le": "utf-16-le",
    "utf_16_be": "utf-16-be",
    "utf_32_le": "utf-32-le",
    "utf_32_be": "utf-32-be",
}
_SHIFT_JIS_CODEC = "cp932"
# WHATWG Encoding Standard names (what the page offers) Python's codecs do not know.
_WHATWG = {"iso-8859-8-i": "iso8859_8", "windows-874": "cp874", "x-mac-cyrillic": "mac_cyrillic"}
# Latin-script code pages a short sample may be in, most common first: a tie keeps the first.
_LATIN_CANDIDATES = ("cp1252", "cp1250", "cp1257", "cp1254")
_NON_LATIN = frozenset(
    codecs.lookup(c).name
    for c in (
        "cp1251",
        "koi8_r",
        "koi8_u",
        "cp866",
        "mac_cyrillic",
        "iso8859_5",
        "cp855",
        "cp1253",
        "iso8859_7",
        "mac_greek",
        "cp737",
        "cp869",
        "cp1255",
        "iso8859_8",
        "cp862",
        "cp1256",
        "iso8859_6",
        "cp864",
        "cp874",
        "tis_620",
        "cp1258",
        "cp1254",
        "iso8859_9",
        "cp857",
    )
)  # Microsoft's Shift-JIS, what Excel writes


class Encoding:
    """The codec a file is decoded with, and the BOM bytes in front of its text."""

    def __init__(self, codec: str, bom: int = 0, ascii_sample: bool = False) -> None:
        self.codec = codecs.lookup(_WHATWG.get(codec.lower(), codec)).name
        self.bom = bom
        self.ascii_sample = ascii_sample

    @property
    def is_utf8(self) -> bool:
        return self.codec == "utf-8"

    @property
    def display(self) -> str:
        return _DISPLAY.get(self.codec.replace("-", "_"), self.codec)


def detect_encoding(sample: bytes, name: str, override: str | None) -> Encoding:
    bom = next(((len(b), codec) for b, codec in BOMS if sample.startswith(b)), None)
    if override:
        try:
            chosen = Encoding(override)
        except LookupError as exc:
            raise ReadError(
                f"“{override}” is not an encoding loadbay knows. "
                "Pick one such as utf-8, windows-1252, iso-8859-1, shift_jis or utf-16."
            ) from exc
        if bom and Encoding(bom[1]).codec == chosen.codec:
            chosen.bom = bom[0]
        elif chosen.codec in ("utf-16", "utf-32") and bom:
            return Encoding(bom[1], bom[0])
        return chosen
    if bom:
        return Encoding(bom[1], bom[0])
    if not sample.strip():
        raise ReadError(
            f"{name} is empty. Pick a file with a header row and at least one row of data."
        )
    utf16 = _utf16_without_bom(sample)
    if utf16:
        return Encoding(utf16)
    if b"\x00" in sample:
        raise ReadError(
            f"{name} does not look like a text (CSV) file: it contains binary data. "
            "Export the data as CSV and try again."
        )
    try:
        codecs.getincrementaldecoder("utf-8")().decode(sample, final=False)
    except UnicodeDecodeError:
        pass
    else:
        return Encoding("utf-8", ascii_sample=sample.isascii())
    return Encoding(_guess_legacy(sample, name))


def _utf16_without_bom(sample: bytes) -> str | None:
    head = sample[:4096]
    half = len(head) // 2
    if half < 2:
        return None
    even = head[0::2].count(0)
    odd = head[1::2].count(0)
    if odd > 0.4 * half and even < 0.05 * half:
        return "utf-16-le"
    if even > 0.4 * half and odd < 0.05 * half:
        return "utf-16-be"
    return None


def _guess_legacy(sample: bytes, name: str) -> str:
    import charset_normalizer

    results = charset_normalizer.from_bytes(sample)
    best = results.best()
    if best is None:
        raise ReadError(
            f"{name}: the text encoding cannot be recognised (it may not be a text file). "
            "Pick the file's encoding, or save it as 'CSV UTF-8' and pick it again."
        )
    codec = codecs.lookup(best.encoding).name
    if codec in ("shift_jis", "cp932", "shift_jis_2004", "shift_jisx0213"):
        return _SHIFT_JIS_CODEC
    if codec.startswith("utf"):
        return codec
    if _single_byte(codec) and codec not in _NON_LATIN and _decodes(sample, "cp1252"):
        # Latin-script code pages are hard to tell apart on a sample; charset-normalizer
        # often says cp1250 or cp775 for French or Spanish text. Western European text in
        # Windows-1252 (a superset of ISO-8859-1's printable characters) is by far the
        # most common case; another Latin code page wins only when its letters say so.
        return _most_letters(sample)
    return codec


def _most_letters(sample: bytes) -> str:
    """The Latin code page under which the sample's non-ASCII bytes read as the most
    letters: Polish "Łódź" in Windows-1250 reads "£ódŸ" as Windows-1252 (two symbols)."""

    def letters(codec: str) -> int:
        try:
            text = sample.decode(codec)
        except UnicodeDecodeError:
            return -len(sample)
        return sum(1 if c.isalpha() else -1 for c in text if not c.isascii())

    return max(_LATIN_CANDIDATES, key=letters)  # max keeps the first of equals


def _single_byte(codec: str) -> bool:
    try:
        return len("é".encode(codec)) == 1
    except UnicodeEncodeError:
        return len("a".encode(codec)) == 1 and codec.startswith(("cp", "iso", "mac", "latin"))


def _decodes(data: bytes, codec: str) -> bool:
    try:
        data.decode(codec)
    except UnicodeDecodeError:
        return False
    return True


def decode_sample(sample: bytes, name: str, encoding: Encoding, whole: bool) -> str:
    decoder = codecs.getincrementaldecoder(encoding.codec)()
    try:
        return str(decoder.decode(sample, final=whole))
    except UnicodeDecodeError as exc:
        raise ReadError(_bad_bytes(name, encoding, exc.start + encoding.bom)) from exc


def _bad_bytes(name: str, encoding: Encoding, position: int) -> str:
    if encoding.is_utf8:
        return (
            f"{name} is not UTF-8 encoded (byte {position + 1} is not valid UTF-8). "
            "Pick the file's encoding, or save it as 'CSV UTF-8' and pick it again."
        )
    return (
        f"{name} is not valid {encoding.display} (byte {position + 1} cannot be decoded). "
        "Pick the file's encoding, or save it as 'CSV UTF-8' and pick it again."
    )


class Utf8Stream(io.RawIOBase):
    """A file in any encoding, read as UTF-8 bytes, decoded 1 MiB at a time."""

    def __init__(self, raw: IO[bytes], name: str, encoding: Encoding) -> None:
        super().__init__()
        self._raw = raw
        self._name = name
        self._encoding = encoding
        self._decoder = codecs.getincrementaldecoder(encoding.codec)()
        self._pending = b""
        self._offset = raw.tell()
        self._eof = False

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        while not self._pending and not self._eof:
            chunk = self._raw.read(TRANSCODE_CHUNK)
            self._eof = not chunk
            try:
                text = self._decoder.decode(chunk, final=self._eof)
            except UnicodeDecodeError as exc:
                position = self._offset - len(self._decoder.getstate()[0]) + exc.start
                raise ReadError(_bad_bytes(self._name, self._encoding, position)) from exc
            self._offset += len(chunk)
            self._pending = text.encode("utf-8")
        n = min(len(buffer), len(self._pending))
        buffer[:n] = self._pending[:n]
        self._pending = self._pending[n:]
        return n

    def skip(self, count: int) -> None:
        while count > 0:
            got = self.read(min(count, TRANSCODE_CHUNK))
            if not got:
                return
            count -= len(got)


def utf8_throughout(path: str) -> bool:
    """Whether every byte of the file is UTF-8: read 4 MiB at a time, an ASCII stretch
    checked in C without being decoded."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    with open(path, "rb") as fh:
        try:
            while chunk := fh.read(SCAN_CHUNK):
                if not chunk.isascii() or decoder.getstate()[0]:
                    decoder.decode(chunk)
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            return False
    return True


def transcode(path: str, name: str, encoding: Encoding, out_path: str) -> None:
    """The file's text (after its BOM) written to `out_path` as UTF-8, 1 MiB at a time; a
    byte that cannot be decoded is a ReadError naming it."""
    with open(path, "rb") as raw, open(out_path, "wb") as out:
        raw.seek(encoding.bom)
        shutil.copyfileobj(Utf8Stream(raw, name, encoding), out, TRANSCODE_CHUNK)
