"""Bytes to text: which encoding a record file is in, and where a byte cannot be decoded.

Files are read as bytes and decoded with a strict decoder whose error handler
(`ESCAPE`) does not give up on the whole file: each byte it cannot decode becomes a
lone surrogate, U+DC00 + the byte, which no correct decoding ever produces. A reader
finds them in the line or record they are in (`undecoded`) and makes that record a
RecordError naming the byte; every other record is read as usual.

The encoding is a byte order mark's (UTF-8, UTF-16, UTF-32), the one the user gave, or
else UTF-8 unless the beginning of the file shows it is not: then charset-normalizer,
when installed (the `encodings` extra), detects it, and without it the file is read as
UTF-8 (each undecodable record an error) with one warning saying what to do.
"""
from __future__ import annotations

import codecs
import importlib
import io
import re
from typing import IO, Any, Iterator, List, Optional, Tuple

ESCAPE = "profit-undecodable"
_UNDECODED = re.compile("[\udc00-\udcff]+")
_DECODED_NON_ASCII = re.compile("[^\x00-\x7f\udc00-\udcff]")
HEAD = 1 << 16  # how much of a file is looked at to tell its encoding and format
INSTALL_ENCODINGS = "install profit-engine[encodings] to detect it"


def _escape(error: UnicodeError) -> Tuple[str, int]:
    if not isinstance(error, UnicodeDecodeError):
        raise error
    bad = error.object[error.start:error.end]
    return "".join(chr(0xDC00 + byte) for byte in bad), error.end


codecs.register_error(ESCAPE, _escape)


def undecoded(text: str, start: int = 0, end: Optional[int] = None) -> Optional[str]:
    """The first undecodable bytes in text[start:end] with a little context, as
    "0xE9 in 'M\\xe9ller'", or None when everything decoded."""
    match = _UNDECODED.search(text, start, len(text) if end is None else end)
    if match is None:
        return None
    raw = bytes(ord(char) - 0xDC00 for char in match.group())
    before = text[max(start, match.start() - 12):match.start()].rsplit("\n", 1)[-1]
    after = text[match.end():match.end() + 12].split("\n", 1)[0].rstrip("\r")
    context = _visible(before + match.group() + after)
    return f"{' '.join(f'0x{byte:02X}' for byte in raw[:4])} in '{context}'"


def _visible(text: str) -> str:
    return _UNDECODED.sub(lambda m: "".join(f"\\x{ord(c) - 0xDC00:02x}" for c in m.group()), text)


def has_undecoded(text: str, start: int = 0, end: Optional[int] = None) -> bool:
    """Whether text[start:end] holds an undecodable byte (the hot path: once a line or record)."""
    if start or end is not None:
        text = text[start:end]
    if text.isascii():
        return False
    try:
        text.encode("utf-8")  # only a lone surrogate cannot be encoded
    except UnicodeEncodeError:
        return _UNDECODED.search(text) is not None
    return False


def display_encoding(codec: Optional[str]) -> str:
    if codec is None:
        return "text"
    name = codecs.lookup(codec).name
    return {"utf-8": "UTF-8", "utf-8-sig": "UTF-8", "utf-16": "UTF-16", "utf-16-le": "UTF-16",
            "utf-16-be": "UTF-16", "utf-32": "UTF-32"}.get(name, codec)


def check_encoding(name: str) -> str:
    """The codec for a user's encoding name; ValueError for one Python does not know."""
    try:
        info = codecs.lookup(name)
    except LookupError:
        raise ValueError(f"unknown encoding '{name}' (use a name such as utf-8, cp1252, latin-1 or utf-16)") from None
    if info.name == "utf-8":
        return "utf-8-sig"  # a byte order mark is not part of the first column's name
    return name


_BOMS = ((codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32"), (codecs.BOM_UTF8, "utf-8-sig"),
         (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"))


def detect_encoding(head: bytes, complete: bool, name: str) -> Tuple[str, List[str]]:
    """The codec to read a file with, from its first bytes (the whole file if `complete`),
    and the warnings to give about the choice."""
    for bom, codec in _BOMS:
        if head.startswith(bom):
            return codec, []
    wide = _utf16_without_bom(head)
    if wide:
        return wide, []
    text = codecs.getincrementaldecoder("utf-8")(errors=ESCAPE).decode(head, final=complete)
    bad = undecoded(text)
    if bad is None or _DECODED_NON_ASCII.search(text):
        # UTF-8 (or plain ASCII); characters that do decode as UTF-8 beside bytes that do not
        # mean a UTF-8 file with a few damaged records, each of which is that record's error
        return "utf-8-sig", []
    line = text.count("\n", 0, _UNDECODED.search(text).start()) + 1  # type: ignore[union-attr]
    try:
        detector: Any = importlib.import_module("charset_normalizer")
    except ImportError:
        return "utf-8-sig", [f"{name} is not UTF-8 (line {line} has the byte {bad}); pass --encoding NAME "
                             f"(such as --encoding cp1252), or {INSTALL_ENCODINGS}; until then each line "
                             f"that is not UTF-8 is a record error"]
    guess = _best_guess(detector.from_bytes(head))
    if guess is None:
        return "utf-8-sig", [f"{name} is not UTF-8 (line {line} has the byte {bad}) and its encoding could not "
                             f"be detected; pass --encoding NAME (such as --encoding cp1252)"]
    return guess, [f"{name} is not UTF-8: reading it as {guess}, as detected by charset-normalizer "
                   f"(pass --encoding NAME to choose)"]


def _best_guess(matches: Any) -> Optional[str]:
    """charset-normalizer's best match; of the equally good ones, Windows-1252 (the usual
    Western export) if it is one of them, since their text is then the same."""
    candidates = list(matches)
    if not candidates:
        return None
    least = min(match.chaos for match in candidates)
    best = [match for match in candidates if match.chaos == least]
    for match in best:
        if "cp1252" in match.could_be_from_charset:
            return "cp1252"
    return str(best[0].encoding)


def _utf16_without_bom(head: bytes) -> Optional[str]:
    sample = head[:4096]
    if len(sample) < 8:
        return None
    even, odd = sample[0::2], sample[1::2]
    if odd.count(0) > 0.4 * len(odd) and even.count(0) < 0.05 * len(even):
        return "utf-16-le"
    if even.count(0) > 0.4 * len(even) and odd.count(0) < 0.05 * len(odd):
        return "utf-16-be"
    return None


def decode_head(head: bytes, codec: str, complete: bool) -> str:
    return codecs.getincrementaldecoder(codec)(errors=ESCAPE).decode(head, final=complete)


# ---- what a file looks like ---------------------------------------------------------------

_MAGIC = ((b"PK\x03\x04", "xlsx"), (b"PAR1", "parquet"), (b"\xd0\xcf\x11\xe0", "xls"), (b"\x1f\x8b", "gzip"),
          (b"%PDF", "pdf"), (b"BZh", "bzip2"), (b"\xfd7zXZ", "xz"), (b"PK\x05\x06", "xlsx"))
KIND_NAMES = {"xlsx": "an Excel workbook or another ZIP archive", "parquet": "a Parquet file",
              "xls": "an old Excel .xls workbook (save it as .xlsx or CSV)",
              "gzip": "a gzip-compressed file (decompress it first)", "pdf": "a PDF document",
              "bzip2": "a bzip2-compressed file (decompress it first)", "xz": "an xz-compressed file (decompress it first)",
              "binary": "a binary file, not text"}


def binary_kind(head: bytes) -> Optional[str]:
    """What a file that is not text is, from its first bytes; None for text."""
    for magic, kind in _MAGIC:
        if head.startswith(magic):
            return kind
    sample = head[:4096]
    if sample.count(0) > len(sample) // 20 and not any(head.startswith(bom) for bom, _ in _BOMS) \
            and _utf16_without_bom(head) is None:
        return "binary"  # text may hold a stray NUL (that cell's error); a binary file holds many
    return None


def text_kind(text: str) -> Tuple[str, str]:
    """('json' | 'jsonl' | 'text' | 'empty', a short quote of the beginning) for decoded text."""
    stripped = text.lstrip("\ufeff \t\r\n")
    if not stripped:
        return "empty", ""
    first_line = stripped.split("\n", 1)[0].rstrip("\r")
    quote = first_line if len(first_line) <= 40 else first_line[:37] + "..."
    if stripped[0] == "[":
        return "json", quote
    if stripped[0] == "{":
        return "jsonl", quote
    return "text", quote


# ---- a window on a stream --------------------------------------------------------------------


class Window(io.RawIOBase):
    """The bytes of `stream` from where it is (after `prefix`, bytes already read from it), for
    a TextIOWrapper or a library to read; closing the window leaves the stream open."""

    def __init__(self, stream: IO[bytes], prefix: bytes = b"") -> None:
        super().__init__()
        self._stream = stream
        self._prefix = memoryview(prefix)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if self._prefix:
            count = min(len(buffer), len(self._prefix))
            buffer[:count] = self._prefix[:count]
            self._prefix = self._prefix[count:]
            return count
        reader = getattr(self._stream, "readinto", None)
        if reader is not None:
            return int(reader(buffer) or 0)
        data = self._stream.read(len(buffer))
        buffer[:len(data)] = data
        return len(data)


def line_end(text: str) -> str:
    """How the lines of a text end: "\n" (LF or CRLF; a lone CR is then a character of its line)
    or, in a file with no LF at all, "\r" (classic Mac OS)."""
    return "\r" if "\r" in text and "\n" not in text else "\n"


def text_stream(stream: IO[bytes], codec: str, prefix: bytes = b"", newline: str = "\n") -> IO[str]:
    """`stream` decoded with `codec`, each undecodable byte escaped (see the module's text), its
    lines ending at `newline` (kept as they are: CRLF stays CRLF)."""
    wrapper = io.TextIOWrapper(io.BufferedReader(Window(stream, prefix), 1 << 16), encoding=codec,
                               errors=ESCAPE, newline=newline)
    return wrapper


def split_lines(read: Any, newline: str = "\n") -> Iterator[str]:
    """The lines of a text stream's `read(size)`, each ending at `newline` (kept)."""
    rest = ""
    while True:
        chunk = read(1 << 16)
        if not chunk:
            if rest:
                yield rest
            return
        parts = (rest + chunk).split(newline)
        rest = parts.pop()
        for part in parts:
            yield part + newline
