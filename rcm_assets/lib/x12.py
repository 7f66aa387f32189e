"""Reading X12 837P/837I claims and 835 remittances into registry frames (no Dagster here).

API (the landing sensor, bronze and the synthetic generator code against these names):

- `is_x12(head)`: the first non-whitespace bytes are a well-formed ISA header (fixed-width fields, the
  element separator at byte 4, the component separator in ISA16, the segment terminator right after it).
- `read_x12(path_or_bytes, facility_tz="UTC", expect=None) -> X12Batch`: the claims (one row per CLM) and
  remittances (one row per CLP) of the file as registry source frames (`cast_to_registry`, the landing
  reader's conventions), the transaction sets that were refused (`rejected`), and counts.
- `X12Problem(envelope, segment_position, segment, problem)`: where (control numbers, the 1-based segment
  number in the file, the segment id) and what, in plain words.
- `X12Error(ValueError)`: a file that cannot be accepted at all; its `.problem` is an X12Problem.

What is accepted (the same table is in docs/X12_MAPPING.md, from `x12_mapping.ACCEPTANCE_RULES`):

- Interchange-level damage refuses the file: empty, not X12, ISA truncated or malformed, IEA missing,
  a transaction set other than 837/835, data after the last IEA, or (with `expect`) a set of the other kind.
- Envelope bookkeeping that is wrong while the sets inside are whole (IEA02 != ISA13, IEA01 not counting
  the groups, GE02 != GS06, GE01 not counting the sets) is a warning (`X12Batch.warnings`, naming the
  envelope and the trailer segment), not a refusal: translators and de-identification tools rewrite control
  numbers and counts, and each set proves its own integrity by its SE trailer. Under such a trailer a set
  whose SE01 also miscounts is refused (two kinds of damage together are no longer bookkeeping).
- A damaged functional group (GE missing, GS06 repeated: a duplicate of an earlier group) rejects that
  group's transaction sets, one `rejected` entry each.
- A damaged transaction set (SE02 != ST02, SE missing, ST02 repeated, a malformed segment, an 835 without
  BPR) rejects that set. An SE01 that miscounts a set whose SE is there (in an intact envelope) is logged,
  and HL numbering is not checked (loops are read in order by HL03): public senders get both wrong.
- Empty segments (two terminators in a row) are skipped with a warning; an IEA that ends the file without
  its segment terminator is read.
- Every other transaction set of the file is kept, and every claim of it: a field a claim lacks lands null,
  a value present but invalid (a bad NPI, an unknown plan code) as sent; silver flags or rejects that row
  naming the column. Only a claim whose units cannot be held (null in an int64 column) is skipped
  (`X12Batch.skipped`).

Parsing is pyx12's (`pyx12.x12file.X12Reader`: separators from the ISA, segments and composites, the
SE/GE/IEA counts and control numbers, HL hierarchy checks); docs/X12_PARSER.md has the measurements behind
that choice. This module adds what pyx12's reader does not do: one reader per interchange (each ISA may
declare its own separators), the nesting of ISA/GS/ST (a trailer missing), and the mapping from segments to
our columns, which follows `x12_mapping` (loops are told apart by the HL level code and the entity
qualifiers, the way the implementation guides define them).

PHI: names, birth dates, addresses and member ids go only into the registry's PHI columns. Problems, errors
and log records carry control numbers, positions, segment ids, qualifiers and counts, never a value from a
claim; pyx12's own messages (which quote segments) are never passed on.
"""

from __future__ import annotations

import logging
import math
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyx12.errors
import pyx12.x12file

from rcm_assets.lib import settings
from rcm_assets.lib import x12_mapping as spec
from rcm_assets.lib.columns import source_column_names, source_columns
from rcm_assets.lib.remittance_status import classify_remittance
from rcm_assets.lib.source import SourceSchemaError, cast_to_registry

__all__ = ["ClaimVersions", "X12Batch", "X12Error", "X12Problem", "is_x12", "read_x12"]

log = logging.getLogger("rcm.x12")

ISA_LENGTH = 106
# Widths of ISA01..ISA16: the ISA is fixed-length, which is how its separators are found.
_ISA_WIDTHS = (2, 10, 2, 10, 2, 15, 2, 15, 6, 4, 1, 5, 9, 1, 1, 1)
_WHITESPACE = " \t\r\n\f\v"
_BOM = "\ufeff"
_CONTROL = re.compile(r"[0-9]{1,15}")  # control numbers are numeric in practice; anything else is not shown
_GUIDE = re.compile(r"0[0-9]{5}X[0-9]{3}(?:A[0-9])?")
_SEGMENT_ID = re.compile(r"[A-Z][A-Z0-9]{1,2}")
_TRANSACTION_SETS = ("837", "835")
_EXPECT = {"claims": "837", "remittances": "835"}
_PYX12_VERSIONS = ("00401", "00501")
_KIND_NAME = {"837": "claims (837)", "835": "remittances (835)"}
_CLAIM_COLUMNS = tuple(source_column_names("claims"))
_REMITTANCE_COLUMNS = tuple(source_column_names("remittances"))
_ELIGIBILITY = _CLAIM_COLUMNS.index("eligibility_verified")
_Trouble = tuple[int, str, str]  # (segment position, segment id, plain words)
# Registry numbers that cannot hold a null (numpy int64): a claim lacking one cannot land a row.
_NON_NULLABLE_NUMBERS = tuple(c.name for c in source_columns("claims") if c.dtype == "int64" and not c.nullable)


# --------------------------------------------------------------------------------------------------
# Public types
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class X12Problem:
    """Where and what, never a value from a claim (control numbers are not claim data)."""

    envelope: str  # e.g. "ISA 000000123 / GS 45 / ST 0001", "file" before any ISA
    segment_position: int  # 1-based segment number in the file (0: the file as a whole)
    segment: str  # segment id, e.g. "SE"
    problem: str  # plain words

    def __str__(self) -> str:
        return f"{self.envelope}, segment {self.segment_position} ({self.segment}): {self.problem}"


class X12Error(ValueError):
    """A file that cannot be accepted at all; `problem` says where and why."""

    def __init__(self, problem: X12Problem) -> None:
        super().__init__(str(problem))
        self.problem = problem


class ClaimVersions:
    """Claim versions by arrival order: an original (CLM05-3 1, or any code but 7 and 8) is version 1; a
    replacement (7) is one more than the latest version of its claim seen so far. REF*D9 is the
    clearinghouse's trace number, never a version. A replacement whose CLM01 is not known but whose REF*F8
    (the payer's claim control number of the claim it replaces, CLP07 of the 835) is, belongs to the claim
    that number names. Pass one instance to `read_x12` for files read in arrival order (seeded with the
    versions and payer numbers already stored) so versions count across files."""

    MAX_VERSION = 99  # the registry's bound on claim_version

    def __init__(self, latest: dict[str, int] | None = None, payer_claims: dict[str, str] | None = None) -> None:
        self.latest: dict[str, int] = dict(latest or {})  # claim_id -> highest version seen
        self.payer_claims: dict[str, str] = dict(payer_claims or {})  # CLP07 -> claim_id
        self.submissions: dict[tuple[str, Any], int] = {}  # (claim_id, submitted_at UTC) -> its version

    def remember(self, claims: pd.DataFrame) -> None:
        """Learn the versions already stored (claim_id, claim_version, submitted_at naive UTC), e.g. silver's."""
        for claim_id, version, submitted in zip(claims["claim_id"], claims["claim_version"],
                                                claims["submitted_at"], strict=True):
            self.latest[claim_id] = max(int(version), self.latest.get(claim_id, 0))
            if pd.notna(submitted) and int(version) > 1:
                self.submissions[(claim_id, pd.Timestamp(submitted))] = int(version)

    def assign(self, claim_id: str | None, frequency: str, payer_claim: str | None,
               submitted: Any = None) -> tuple[str | None, int]:
        """(claim id, version) of a claim arriving now. The same submission (claim id and BHT creation time)
        sent again is the same version: an update of a claim already submitted, not a new replacement."""
        if frequency == spec.FREQUENCY_REPLACEMENT and claim_id not in self.latest and payer_claim:
            claim_id = self.payer_claims.get(payer_claim, claim_id)
        if claim_id is None:
            return None, 1
        if frequency != spec.FREQUENCY_REPLACEMENT:
            version = 1
        elif submitted is not None and (claim_id, submitted) in self.submissions:
            version = self.submissions[(claim_id, submitted)]
        else:
            version = min(self.MAX_VERSION, self.latest.get(claim_id, 1) + 1)
        if submitted is not None and version > 1:  # an original is 1 whenever it is sent
            self.submissions[(claim_id, submitted)] = version
        self.latest[claim_id] = max(version, self.latest.get(claim_id, 0))
        return claim_id, version


@dataclass
class X12Batch:
    """What one X12 file holds, as registry frames."""

    kind: str  # "837" | "835" | "mixed" (by the transaction sets present, accepted or not)
    claims: pd.DataFrame  # registry source columns of "claims" (cast_to_registry)
    remittances: pd.DataFrame  # registry source columns of "remittances"
    rejected: list[X12Problem] = field(default_factory=list)  # one per refused transaction set
    voids: int = 0  # claims with frequency 8 (no row)
    eligibility_unknown: int = 0  # claim rows without the K3 eligibility convention (read as False)
    transactions: int = 0  # transaction sets in the file, accepted and rejected
    interchanges: int = 0
    # Parsed from the 835 with no registry column yet (row i belongs to remittances row i):
    remittance_details: pd.DataFrame = field(default_factory=pd.DataFrame)
    adjustments: pd.DataFrame = field(default_factory=pd.DataFrame)  # every CAS reason/amount pair
    skipped: list[X12Problem] = field(default_factory=list)  # claims of accepted sets that could land no row
    # Envelope findings that refused nothing (a control number or count in GE/IEA, empty segments skipped):
    warnings: list[X12Problem] = field(default_factory=list)


# --------------------------------------------------------------------------------------------------
# Recognising X12
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Separators:
    element: str
    component: str
    segment: str
    repetition: str | None
    version: str  # ISA12
    control: str  # ISA13


def _isa_separators(isa: str) -> _Separators | None:
    """The separators an ISA declares, or None when it is not a well-formed ISA (fixed widths)."""
    if len(isa) < ISA_LENGTH or not isa.startswith("ISA"):
        return None
    element, component, terminator = isa[3], isa[104], isa[105]
    fields = isa[:105].split(element)
    if len(fields) != 17 or any(len(f) != w for f, w in zip(fields[1:], _ISA_WIDTHS, strict=True)):
        return None
    separators = {element, component, terminator}
    if len(separators) != 3 or any(s.isalnum() or s == " " for s in separators):
        return None
    version, control = fields[12], fields[13]
    if not version.isdigit() or not control.isdigit():
        return None
    repetition = isa[82] if version >= "00402" else None
    if repetition is not None and (repetition.isalnum() or repetition in separators):
        repetition = None  # ISA11 is then a code ('U'), not a separator
    return _Separators(element, component, terminator, repetition, version, control)


def _first_content(text: str, start: int = 0) -> int:
    """Index of the first character that is neither whitespace nor a byte-order mark."""
    pos = start
    while pos < len(text) and (text[pos] in _WHITESPACE or text[pos] == _BOM):
        pos += 1
    return pos


def is_x12(head: bytes) -> bool:
    """True when the first non-whitespace bytes of `head` are a well-formed ISA (needs 106 bytes of it)."""
    data = bytes(head)
    data = data[3:] if data.startswith(b"\xef\xbb\xbf") else data  # a UTF-8 byte-order mark
    text = data.lstrip(_WHITESPACE.encode()).decode("latin-1")
    return _isa_separators(text[:ISA_LENGTH]) is not None


# --------------------------------------------------------------------------------------------------
# Reading
# --------------------------------------------------------------------------------------------------


class _TextSource:
    """A read-only file object over a slice of the text (pyx12 reads from a file object)."""

    def __init__(self, text: str, start: int, end: int) -> None:
        self._text, self._pos, self._end = text, start, end
        self.closed = False

    def read(self, size: int = -1) -> str:
        stop = self._end if size is None or size < 0 else min(self._end, self._pos + size)
        chunk = self._text[self._pos:stop]
        self._pos = stop
        return chunk


def _control(value: str) -> str:
    """A control number fit for a message (never anything else a sender put there)."""
    value = value.strip()
    return value if _CONTROL.fullmatch(value) else "?"


def _shown_code(value: str, pattern: re.Pattern[str]) -> str:
    """A code fit for a message: shown when it has the expected shape, '?' otherwise."""
    return value if pattern.fullmatch(value) else "?"


def _load(path_or_bytes: str | os.PathLike[str] | bytes | bytearray | memoryview) -> tuple[bytes, str]:
    if isinstance(path_or_bytes, (bytes, bytearray, memoryview)):
        return bytes(path_or_bytes), "<bytes>"
    path = Path(path_or_bytes)
    return path.read_bytes(), path.name


def _decode(data: bytes) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("latin-1")  # every byte maps; the structure checks catch real garbage


def read_x12(
    path_or_bytes: str | os.PathLike[str] | bytes | bytearray | memoryview,
    facility_tz: str = "UTC",
    expect: str | None = None,
    versions: ClaimVersions | None = None,
) -> X12Batch:
    """The claims and remittances of an X12 file (837P, 837I, 835; 5010 or 4010).

    `facility_tz` (IANA name) is the zone of the sender's local dates and times. `expect` ("claims" or
    "remittances") refuses a file holding a transaction set of the other kind. Raises X12Error when the
    file cannot be accepted at all; refused transaction sets are listed in `rejected`.
    """
    settings.check_time_zone(facility_tz, setting="facility_tz")
    if expect is not None and expect not in _EXPECT:
        raise ValueError(f"expect must be one of {sorted(_EXPECT)} or None, not {expect!r}")
    data, label = _load(path_or_bytes)
    empty = not data.strip()
    text = "" if empty else _decode(data)
    del data  # the text is all we read from; a large file is not held twice
    batch = _FileReader(label, facility_tz, _EXPECT.get(expect or ""), versions).read(text)
    log.info(
        "x12 %s: %d interchange(s), %d transaction set(s) (%d rejected), %d claim row(s), %d remittance "
        "row(s), %d void(s), %d without eligibility", label, batch.interchanges, batch.transactions,
        len(batch.rejected), len(batch.claims), len(batch.remittances), batch.voids, batch.eligibility_unknown,
    )
    for problem in batch.rejected:
        log.warning("x12 %s: transaction set rejected: %s", label, problem)
    for problem in batch.skipped:
        log.warning("x12 %s: claim skipped: %s", label, problem)
    for problem in batch.warnings:
        log.warning("x12 %s: envelope warning, nothing refused for it: %s", label, problem)
    return batch


def _fail(envelope: str, position: int, segment: str, problem: str) -> X12Error:
    return X12Error(X12Problem(envelope, position, segment, problem))


# pyx12 error codes (kind, code) -> our words; messages quoting values are never used.
_PYX12_SET_ERRORS = {
    ("st", "3"): "SE02 does not match the transaction set control number ST02",
    ("st", "23"): "ST02 repeats the control number of an earlier transaction set of this group",
    ("seg", "HL1"): "HL01 does not number the hierarchical levels in order",
    ("seg", "HL2"): "HL02 names a parent level that does not exist",
    ("seg", "8"): "the segment is empty",
}
_PYX12_GROUP_ERRORS = {
    ("gs", "6"): "GS06 repeats the control number of an earlier group of this interchange",
}
# A trailer's control number or count wrong while each set inside is whole: a warning, the sets are kept.
_PYX12_GROUP_WARNINGS = {
    ("gs", "4"): "GE02 does not match the group control number GS06",
    ("gs", "5"): "GE01 does not count the group's transaction sets",
}
_PYX12_INTERCHANGE_WARNINGS = {
    ("isa", "001"): "IEA02 does not match the interchange control number ISA13",
    ("isa", "021"): "IEA01 does not count the interchange's functional groups",
}
_PYX12_FILE_ERRORS = {
    ("isa", "023"): "the interchange trailer IEA is missing",
}
_KEPT = "; its intact transaction sets are kept"
# Cosmetic for our purpose, or reported through our own nesting checks ('gs 3', 'isa 024', 'st 2').
_PYX12_IGNORED = {("seg", "SEG1"), ("seg", "LX"), ("gs", "3"), ("isa", "024"), ("st", "2"), ("isa", "025"),
                  ("seg", "HL1"), ("seg", "HL2"),  # HL numbering: the mapping reads loops in order by HL03
                  ("st", "4")}  # SE01 miscounted: SE present and matching ST02, every segment is there


@dataclass
class _Group:
    control: str
    date: str
    time: str
    guide: str  # GS08
    sets: list[_SetResult] = field(default_factory=list)
    problem: X12Problem | None = None
    warning: X12Problem | None = None  # GE02/GE01 wrong: the group's intact sets are kept


@dataclass
class _SetResult:
    envelope: str
    code: str  # ST01
    rows: list[tuple[Any, ...]]
    details: list[dict[str, Any]]
    adjustments: list[dict[str, Any]]
    voids: int
    problem: X12Problem | None
    skipped: list[X12Problem] = field(default_factory=list)
    miscounted: bool = False  # SE01 does not count the set's segments (read only inside an intact envelope)


class _FileReader:
    """One pass over a file: interchanges, envelopes, transaction sets, rows."""

    def __init__(self, label: str, facility_tz: str, expect: str | None,
                 versions: ClaimVersions | None = None) -> None:
        self.label, self.tz, self.expect = label, facility_tz, expect
        self.versions = versions if versions is not None else ClaimVersions()
        self.position = 0  # segments read so far in the file
        self.interchanges = 0
        self.codes: set[str] = set()
        self.accepted: list[_SetResult] = []
        self.rejected: list[X12Problem] = []
        self.warnings: list[X12Problem] = []

    # ---- the file

    def read(self, text: str) -> X12Batch:
        start = _first_content(text)
        if start >= len(text):
            raise _fail("file", 0, "ISA", "the file is empty")
        if _isa_separators(text[start:start + ISA_LENGTH]) is None:
            what = ("the ISA interchange header is truncated or malformed" if text.startswith("ISA", start)
                    else "not an X12 file: it does not begin with an ISA interchange header")
            raise _fail("file", 1 if text.startswith("ISA", start) else 0, "ISA", what)
        while start < len(text):
            start = self._interchange(text, start)
        if not self.codes:
            raise _fail("file", self.position, "ISA", "the file holds no transaction set")
        return self._batch()

    def _interchange(self, text: str, start: int) -> int:
        """Read the interchange at `start`; return where the next one begins (len(text) at the end)."""
        isa_position = self.position + 1
        seps = _isa_separators(text[start:start + ISA_LENGTH])
        if seps is None:
            raise _fail("file", isa_position, "ISA", "an ISA interchange header is truncated or malformed")
        envelope = f"ISA {_control(seps.control)}"
        trailer = re.compile(re.escape(seps.segment) + r"[ \t\r\n]*IEA" + re.escape(seps.element))
        found = trailer.search(text, start + ISA_LENGTH - 1)
        end = len(text)
        unterminated = False
        if found is not None:
            stop = text.find(seps.segment, found.end())
            end = len(text) if stop == -1 else stop + 1
            unterminated = stop == -1  # the IEA ends the file without its terminator (editors strip it)
        self.interchanges += 1
        if seps.version not in _PYX12_VERSIONS:  # de-identified samples write 99999: read by the GS08 guide
            gs = text.find("GS" + seps.element, start + ISA_LENGTH)
            guide_version = "00501" if gs != -1 and "005010X" in text[gs:gs + 200] else "00401"
            text = text[:start + 84] + guide_version + text[start + 89:]
        try:
            body = text[start:end]
            if seps.segment not in _WHITESPACE:  # indentation and line breaks between segments (tabs too)
                body = re.sub(re.escape(seps.segment) + r"[ \t\r\n\f\v]+", seps.segment, body)
            if unterminated:
                body = body.rstrip(_WHITESPACE) + seps.segment
            body = self._skip_empty_segments(body, seps, envelope)
            reader = pyx12.x12file.X12Reader(_TextSource(body, 0, len(body)))  # type: ignore[arg-type]
        except pyx12.errors.X12Error:
            raise _fail(envelope, isa_position, "ISA",
                        "the ISA names an interchange version pyx12 cannot read (ISA12 must be 00401 or "
                        "00501)") from None
        _Interchange(self, reader, envelope).run(found is not None)
        following = _first_content(text, end)
        if following < len(text) and not text.startswith("ISA", following):
            raise _fail(envelope, self.position, "IEA", "data follows the interchange trailer IEA that is "
                        "not another interchange")
        return following

    def _skip_empty_segments(self, body: str, seps: _Separators, envelope: str) -> str:
        """The body without empty segments (terminators in a row, where pyx12 would stop reading), each run
        recorded as a warning naming the segment it follows."""
        doubled = re.compile(f"(?:{re.escape(seps.segment)}){{2,}}")
        for match in doubled.finditer(body):
            before = body.count(seps.segment, 0, match.start())  # segments ending before this one ends
            seg_id = body[:match.start()].rsplit(seps.segment, 1)[-1].strip(_WHITESPACE).split(seps.element)[0]
            self.warnings.append(X12Problem(
                envelope, self.position + before + 1, _shown_code(seg_id, _SEGMENT_ID),
                f"{len(match.group()) - 1} empty segment(s) after this one skipped (segment terminators in a row)"))
        return doubled.sub(lambda _: seps.segment, body)

    # ---- results

    def _batch(self) -> X12Batch:
        kind = "mixed" if len(self.codes) > 1 else next(iter(self.codes))
        claim_rows = [r for s in self.accepted if s.code == "837" for r in s.rows]
        remit_sets = [s for s in self.accepted if s.code == "835"]
        remit_rows = [r for s in remit_sets for r in s.rows]
        claims = _claims_frame(claim_rows, self.tz, self.label)
        remittances, details, adjustments = _remittance_frames(
            remit_rows, [d for s in remit_sets for d in s.details],
            [a for s in remit_sets for a in s.adjustments], self.tz, self.label)
        return X12Batch(
            kind=kind, claims=claims, remittances=remittances, rejected=list(self.rejected),
            voids=sum(s.voids for s in self.accepted),
            eligibility_unknown=sum(1 for r in claim_rows if r[_ELIGIBILITY] is None),
            transactions=len(self.accepted) + len(self.rejected), interchanges=self.interchanges,
            remittance_details=details, adjustments=adjustments,
            skipped=[p for s in self.accepted for p in s.skipped], warnings=list(self.warnings),
        )


class _Interchange:
    """The segments of one interchange: envelope bookkeeping, and each transaction set to its mapper."""

    def __init__(self, file: _FileReader, reader: pyx12.x12file.X12Reader, envelope: str) -> None:
        self.file, self.reader, self.envelope = file, reader, envelope
        self.isa_position = file.position + 1
        self.group: _Group | None = None
        self.set_envelope = ""
        self.set_code = ""
        self.mapper: _ClaimMapper | _RemittanceMapper | None = None
        self.set_problem: X12Problem | None = None
        self.last_id = ""
        self.first_accepted = len(file.accepted)  # this interchange's sets are file.accepted[first_accepted:]

    def run(self, has_trailer: bool) -> None:
        for segment in self.reader:
            self.file.position += 1
            seg_id = segment.seg_id or ""
            if not _SEGMENT_ID.fullmatch(seg_id):
                seg_id = "?"  # not a segment id: whatever it is, it is not repeated in a problem
            self.last_id = seg_id
            errors = self.reader.pop_errors()
            self._segment(segment, seg_id)
            self._pyx12_errors(errors, seg_id)
        if self.last_id != "IEA" and has_trailer:  # pyx12 stops silently at a segment it cannot split
            raise _fail(self.envelope, self.file.position + 1, "?", "a segment that cannot be read (no "
                        "segment identifier): the rest of the interchange cannot be read")
        self.reader.cleanup()
        self._pyx12_errors(self.reader.pop_errors(), self.last_id)
        if self.last_id != "IEA":
            raise _fail(self.envelope, self.file.position, self.last_id or "ISA",
                        "the interchange trailer IEA is missing (the file is truncated)")

    # ---- envelope

    def _segment(self, segment: Any, seg_id: str) -> None:
        pos = self.file.position
        if seg_id == "ISA":
            if pos != self.isa_position:
                raise _fail(self.envelope, pos, "ISA", "an ISA begins before the interchange trailer IEA of the "
                            "previous interchange")
            return
        if seg_id == "GS":
            if self.group is not None:
                self._close_group(pos, "GS", "the group has no trailer GE before the next GS")
            self.group = _Group(_control(_el(segment, 6)), _el(segment, 4), _el(segment, 5), _el(segment, 8))
        elif seg_id == "ST":
            self._open_set(segment, pos)
        elif seg_id == "SE":
            if self.mapper is None and not self.set_envelope:
                self._group_problem(pos, "SE", "an SE trailer without a transaction set")
            else:
                self._close_set(pos)
        elif seg_id == "GE":
            if self.set_envelope:
                self._set_problem(pos, "GE", "the transaction set has no trailer SE")
                self._close_set(pos)
            if self.group is None:
                raise _fail(self.envelope, pos, "GE", "a GE trailer without a functional group")
        elif seg_id == "IEA":
            if self.set_envelope:
                self._set_problem(pos, "IEA", "the transaction set has no trailer SE")
                self._close_set(pos)
            if self.group is not None:
                self._close_group(pos, "IEA", "the group has no trailer GE")
        elif self.set_envelope:
            if self.mapper is not None and self.set_problem is None:
                problem = self.mapper.segment(segment, seg_id, pos)
                if problem:
                    self._set_problem(*problem)
        elif self.group is not None:
            self._group_problem(pos, seg_id, "a segment outside any transaction set")
        elif seg_id != "TA1":
            raise _fail(self.envelope, pos, seg_id, "a segment outside any functional group")

    def _open_set(self, segment: Any, pos: int) -> None:
        if self.set_envelope:
            self._set_problem(pos, "ST", "the transaction set has no trailer SE before the next ST")
            self._close_set(pos)
        if self.group is None:
            raise _fail(self.envelope, pos, "ST", "a transaction set outside any functional group")
        code = _el(segment, 1)
        self.set_envelope = f"{self.envelope} / GS {self.group.control} / ST {_control(_el(segment, 2))}"
        if code not in _TRANSACTION_SETS:
            raise _fail(self.set_envelope, pos, "ST", f"transaction set {_shown_code(code, _CONTROL)} is not "
                        "read here (only 837 claims and 835 remittances)")
        if self.file.expect is not None and code != self.file.expect:
            wanted = next(k for k, v in _EXPECT.items() if v == self.file.expect)
            raise _fail(self.set_envelope, pos, "ST",
                        f"the file holds {_KIND_NAME[code]} where {wanted} are expected")
        self.file.codes.add(code)
        self.set_code = code
        self.set_problem = None
        guide = _el(segment, 3) or self.group.guide
        if code == "835":
            self.mapper = _RemittanceMapper(self.group)
        elif guide.startswith(spec.PROFESSIONAL_GUIDES) or guide.startswith(spec.INSTITUTIONAL_GUIDES):
            self.mapper = _ClaimMapper(self.group, institutional=guide.startswith(spec.INSTITUTIONAL_GUIDES),
                                       versions=self.file.versions, tz=self.file.tz)
        elif not _GUIDE.fullmatch(guide):  # de-identified (999999X999X9) or absent: no guide is named
            self.mapper = _ClaimMapper(self.group, institutional=None, versions=self.file.versions, tz=self.file.tz)
            self.file.warnings.append(X12Problem(
                self.set_envelope, pos, "ST", "ST03/GS08 names no implementation guide: each claim is read as "
                "institutional when CLM05-2 is A (bill type), else as professional"))
        else:
            self.mapper = None
            self._set_problem(pos, "ST", f"837 implementation {_shown_code(guide, _GUIDE)} is not read "
                              "(only professional X222/X098 and institutional X223/X096)")

    def _set_problem(self, pos: int, seg_id: str, problem: str) -> None:
        if self.set_problem is None:
            self.set_problem = X12Problem(self.set_envelope, pos, seg_id, problem)

    def _close_set(self, pos: int) -> None:
        mapper, problem = self.mapper, self.set_problem
        if mapper is not None and problem is None:
            trouble = mapper.finish(pos)
            if trouble:
                problem = X12Problem(self.set_envelope, *trouble)
        result = _SetResult(
            self.set_envelope, self.set_code,
            mapper.rows if mapper is not None and problem is None else [],
            getattr(mapper, "details", []) if problem is None else [],
            getattr(mapper, "adjustments", []) if problem is None else [],
            getattr(mapper, "voids", 0) if problem is None else 0, problem,
            [X12Problem(self.set_envelope, *t) for t in getattr(mapper, "skipped", [])] if problem is None else [],
        )
        if self.group is not None:
            self.group.sets.append(result)
        self.set_envelope, self.mapper, self.set_problem = "", None, None

    def _group_problem(self, pos: int, seg_id: str, problem: str) -> None:
        if self.group is not None and self.group.problem is None:
            self.group.problem = X12Problem(f"{self.envelope} / GS {self.group.control}", pos, seg_id, problem)

    def _close_group(self, pos: int, seg_id: str, problem: str | None = None) -> None:
        group = self.group
        if group is None:
            return
        if problem:
            self._group_problem(pos, seg_id, problem)
        for result in group.sets:
            if group.problem is not None and result.problem is None:
                result.problem = X12Problem(result.envelope, group.problem.segment_position,
                                            group.problem.segment,
                                            f"its functional group is rejected: {group.problem.problem}")
            elif group.warning is not None and result.problem is None and result.miscounted:
                result.problem = _miscounted_under(result, group.warning)
            if result.problem is None:
                self.file.accepted.append(result)
            else:
                self.file.rejected.append(result.problem)
        if group.warning is not None and group.problem is None:
            self.file.warnings.append(group.warning)
        self.group = None

    def _interchange_warning(self, pos: int, seg_id: str, words: str) -> None:
        """IEA02/IEA01 wrong: the interchange's intact sets are kept, one whose SE01 miscounts is refused."""
        warning = X12Problem(self.envelope, pos, seg_id, words + _KEPT)
        mine = self.file.accepted[self.first_accepted:]
        for result in [r for r in mine if r.miscounted]:
            self.file.accepted.remove(result)
            self.file.rejected.append(_miscounted_under(result, warning))
        self.file.warnings.append(warning)

    # ---- pyx12's findings

    def _pyx12_errors(self, errors: list[tuple[Any, ...]], seg_id: str) -> None:
        pos = self.file.position
        for kind, code, *_ in errors:
            key = (str(kind), str(code))
            if key in _PYX12_IGNORED:
                if key == ("st", "4"):
                    if self.group is not None and self.group.sets:
                        self.group.sets[-1].miscounted = True
                    log.warning("x12 %s: %s, segment %d (SE): SE01 does not count the transaction set's segments; "
                                "the set is read (its trailer is there)", self.file.label, self.envelope, pos)
                continue
            if key == ("seg", "1") and seg_id != "?":
                continue  # a leading space before a valid segment id: pyx12 strips it
            if key in _PYX12_FILE_ERRORS:
                raise _fail(self.envelope, pos, seg_id, _PYX12_FILE_ERRORS[key])
            if key in _PYX12_INTERCHANGE_WARNINGS:
                self._interchange_warning(pos, seg_id, _PYX12_INTERCHANGE_WARNINGS[key])
                continue
            if key in _PYX12_GROUP_WARNINGS:
                group = self.group
                if seg_id == "GE" and group is not None and group.warning is None:
                    group.warning = X12Problem(f"{self.envelope} / GS {group.control}", pos, seg_id,
                                               _PYX12_GROUP_WARNINGS[key] + _KEPT)
                continue
            if key in _PYX12_GROUP_ERRORS:
                group = self.group
                if seg_id == "GE" and group is not None:
                    self._group_problem(pos, seg_id, _PYX12_GROUP_ERRORS[key])
                elif seg_id == "GS" and group is not None:
                    self._group_problem(pos, seg_id, _PYX12_GROUP_ERRORS[key])
                continue
            words = ("the segment does not begin with a valid segment identifier" if seg_id == "?"
                     else _PYX12_SET_ERRORS.get(key, "the segment is malformed"))
            if seg_id == "SE":
                self._reject_last_set(pos, seg_id, words)
            elif self.set_envelope:
                self._set_problem(pos, seg_id, words)
            elif self.group is not None:
                self._group_problem(pos, seg_id, words)
            else:
                raise _fail(self.envelope, pos, seg_id, words)
        if seg_id == "GE" and self.group is not None:
            self._close_group(pos, "GE")

    def _reject_last_set(self, pos: int, seg_id: str, words: str) -> None:
        """An SE finding arrives after the set was closed: reject the set just closed."""
        if self.group is None or not self.group.sets:
            return
        last = self.group.sets[-1]
        if last.problem is None:
            last.problem = X12Problem(last.envelope, pos, seg_id, words)


def _miscounted_under(result: _SetResult, warning: X12Problem) -> X12Problem:
    """A set whose SE01 miscounts, inside an envelope whose trailer is wrong too: refused."""
    words = warning.problem.removesuffix(_KEPT)
    return X12Problem(result.envelope, warning.segment_position, warning.segment,
                      f"SE01 does not count the transaction set's segments and its envelope trailer is wrong "
                      f"too ({words}): the set may be incomplete")


# --------------------------------------------------------------------------------------------------
# Segment access (pyx12 Segment: .elements of Composite, each .elements of Element with .value)
# --------------------------------------------------------------------------------------------------


def _el(segment: Any, index: int) -> str:
    """Element `index` (1-based) as sent: a split composite is joined back with the component separator."""
    elements = segment.elements
    if index > len(elements):
        return ""
    parts = elements[index - 1].elements
    if len(parts) == 1:
        return parts[0].value
    return segment.subele_term.join(p.value for p in parts)


def _components(segment: Any, index: int) -> list[str]:
    """The components of composite element `index` (1-based); [] when absent."""
    elements = segment.elements
    if index > len(elements):
        return []
    return [p.value for p in elements[index - 1].elements]


def _amount(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def _whole_units(text: str) -> int | None:
    value = _amount(text)
    if value is None or abs(value) >= 1e12:
        return None
    return int(math.ceil(value))


def _d8(qualifier: str, value: str) -> str | None:
    """The date of a DTP/DMG value: D8 CCYYMMDD, or the start of an RD8 range."""
    if qualifier == "RD8":
        value = value.split("-", 1)[0]
    elif qualifier not in ("D8", ""):
        return None
    return value if len(value) == 8 and value.isdigit() else None


# --------------------------------------------------------------------------------------------------
# 837: one row per CLM
# --------------------------------------------------------------------------------------------------


@dataclass
class _Party:
    """A subscriber or patient loop (2010BA / 2010CA): PHI, kept only for the PHI columns."""

    name: str | None = None
    member_id: str | None = None
    dob: str | None = None
    sex: str | None = None
    address: str | None = None
    zip: str | None = None
    has_dmg: bool = False
    has_n3: bool = False
    has_n4: bool = False


class _ClaimMapper:
    """Maps the segments of one 837 transaction set to claim rows (x12_mapping.MAPPING, table claims)."""

    def __init__(self, group: _Group, institutional: bool | None, versions: ClaimVersions,
                 tz: str = "UTC") -> None:
        self.group = group
        self.tz = tz
        self._bht_utc: tuple[Any] | None = None
        self.by_claim = institutional is None  # no guide named: CLM05-2 tells each claim's kind
        self.institutional = bool(institutional)
        self.versions = versions
        self.rendering_qualifier = "71" if institutional else "82"
        self.rows: list[tuple[Any, ...]] = []
        self.skipped: list[_Trouble] = []
        self.voids = 0
        self.bht: tuple[str, str] | None = None
        self.billing_npi: str | None = None
        self.subscriber: _Party | None = None
        self.patient: _Party | None = None  # the dependent of the current HL 23
        self.filing_code: str | None = None
        self.has_sbr = False
        self.payer_id: str | None = None
        self.level = ""  # HL03 of the current level
        self.entity: _Party | None = None  # where N3/N4/DMG go
        self.claim: dict[str, Any] | None = None
        self.claims_seen = 0
        self.handlers: dict[str, Callable[[Any, int], _Trouble | None]] = {
            "BHT": self._bht, "HL": self._hl, "SBR": self._sbr, "NM1": self._nm1, "N3": self._n3,
            "N4": self._n4, "DMG": self._dmg, "CLM": self._clm, "REF": self._ref, "K3": self._k3,
            "HI": self._hi, "DTP": self._dtp, "LX": self._lx, "SV1": self._sv, "SV2": self._sv,
        }

    def segment(self, segment: Any, seg_id: str, pos: int) -> _Trouble | None:
        handler = self.handlers.get(seg_id)
        return handler(segment, pos) if handler is not None else None

    # ---- hierarchy and parties

    def _bht(self, seg: Any, pos: int) -> None:
        self.bht = (_el(seg, 4), _el(seg, 5))
        self._bht_utc = None

    def _hl(self, seg: Any, pos: int) -> _Trouble | None:
        problem = self._end_claim()
        self.level = _el(seg, 3)
        self.entity = None
        if self.level == "20":
            self.billing_npi = None
            self.subscriber = self.patient = None
        elif self.level == "22":
            self.subscriber, self.patient = None, None
            self.filing_code, self.has_sbr, self.payer_id = None, False, None
        elif self.level == "23":
            self.patient = None
        return problem

    def _sbr(self, seg: Any, pos: int) -> None:
        if self.claim is not None:
            self.claim["cob"] = True  # 2320: other subscriber information, not ours
            self.entity = None
        elif self.level == "22":
            self.filing_code, self.has_sbr = _el(seg, 9), True

    def _nm1(self, seg: Any, pos: int) -> None:
        qualifier = _el(seg, 1)
        self.entity = None
        claim = self.claim
        if claim is not None:
            if (qualifier == self.rendering_qualifier and not claim["cob"] and claim["lines"] == 0
                    and claim["rendering_npi"] is None):
                claim["rendering_npi"] = _el(seg, 9) or None
            return
        if qualifier == "85":
            self.billing_npi = _el(seg, 9) or None
        elif qualifier == "PR" and self.level == "22":
            self.payer_id = _el(seg, 9) or None
        elif qualifier in ("IL", "QC"):
            party = _Party(name=" ".join(p for p in (_el(seg, 4), _el(seg, 3)) if p) or None,
                           member_id=_el(seg, 9) or None)
            if qualifier == "IL" and self.level == "22":
                self.subscriber = self.entity = party
            elif qualifier == "QC" and self.level == "23":
                self.patient = self.entity = party

    def _n3(self, seg: Any, pos: int) -> None:
        if self.entity is not None:
            lines = [p for p in (_el(seg, 1), _el(seg, 2)) if p]
            self.entity.address, self.entity.has_n3 = (" ".join(lines) or None), True

    def _n4(self, seg: Any, pos: int) -> None:
        if self.entity is not None:
            code = _el(seg, 3)
            self.entity.zip = f"{code[:5]}-{code[5:]}" if len(code) == 9 and code.isdigit() else (code or None)
            self.entity.has_n4 = True

    def _dmg(self, seg: Any, pos: int) -> None:
        if self.entity is not None:
            self.entity.dob = _d8(_el(seg, 1), _el(seg, 2))
            self.entity.sex = _el(seg, 3) or None
            self.entity.has_dmg = True

    # ---- the claim

    def _clm(self, seg: Any, pos: int) -> _Trouble | None:
        problem = self._end_claim()
        if problem:
            return problem
        self.claims_seen += 1
        clm05 = _components(seg, 5)
        if self.by_claim:  # CLM05-2: A = uniform bill type (institutional), B = place of service (professional)
            self.institutional = len(clm05) > 1 and clm05[1] == "A"
            self.rendering_qualifier = "71" if self.institutional else "82"
        self.entity = None
        self.claim = {
            "pos": pos, "ordinal": self.claims_seen, "claim_id": _el(seg, 1), "amount": _el(seg, 2),
            "facility": clm05[0] if clm05 else "", "frequency": clm05[2] if len(clm05) > 2 else "",
            "party": self.patient if self.level == "23" else self.subscriber,
            "subscriber": self.subscriber, "billing_npi": self.billing_npi, "payer_id": self.payer_id,
            "filing_code": self.filing_code, "has_sbr": self.has_sbr, "rendering_npi": None,
            "prior_auth": None, "payer_claim": None, "eligibility": None, "primary": None, "diagnoses": 0,
            "claim_date": None, "statement_date": None, "lines": 0, "line": None, "line_date": None,
            "cob": False,
        }
        return None

    def _in_claim_header(self) -> dict[str, Any] | None:
        claim = self.claim
        return claim if claim is not None and claim["lines"] == 0 and not claim["cob"] else None

    def _ref(self, seg: Any, pos: int) -> None:
        claim = self._in_claim_header()
        if claim is None:
            return
        qualifier = _el(seg, 1)
        if qualifier == "G1" and claim["prior_auth"] is None:
            claim["prior_auth"] = _el(seg, 2) or None
        elif qualifier == "F8" and claim["payer_claim"] is None:  # the payer's number of the claim replaced
            claim["payer_claim"] = _el(seg, 2) or None

    def _k3(self, seg: Any, pos: int) -> None:
        claim = self._in_claim_header()
        if claim is not None and claim["eligibility"] is None:
            claim["eligibility"] = spec.ELIGIBILITY_K3.get(":".join(_components(seg, 1)))

    def _hi(self, seg: Any, pos: int) -> None:
        claim = self._in_claim_header()
        if claim is None:
            return
        for element in seg.elements:
            parts = element.elements
            qualifier = parts[0].value
            if qualifier in spec.DIAGNOSIS_QUALIFIERS and len(parts) > 1 and parts[1].value:
                claim["diagnoses"] += 1
                if qualifier in spec.PRINCIPAL_DIAGNOSIS_QUALIFIERS and claim["primary"] is None:
                    claim["primary"] = parts[1].value

    def _dtp(self, seg: Any, pos: int) -> None:
        claim = self.claim
        if claim is None or claim["cob"]:
            return
        qualifier = _el(seg, 1)
        if claim["lines"] == 0:
            if qualifier == spec.SERVICE_DATE_QUALIFIER and claim["claim_date"] is None:
                claim["claim_date"] = _d8(_el(seg, 2), _el(seg, 3))
            elif qualifier == spec.STATEMENT_DATES_QUALIFIER and claim["statement_date"] is None:
                claim["statement_date"] = _d8(_el(seg, 2), _el(seg, 3))
        elif claim["lines"] == 1 and qualifier == spec.SERVICE_DATE_QUALIFIER and claim["line_date"] is None:
            claim["line_date"] = _d8(_el(seg, 2), _el(seg, 3))

    def _lx(self, seg: Any, pos: int) -> None:
        if self.claim is not None:
            self.claim["lines"] += 1
            self.entity = None

    def _sv(self, seg: Any, pos: int) -> _Trouble | None:
        claim = self.claim
        if claim is None or claim["lines"] != 1 or claim["line"] is not None:
            return None
        professional = seg.seg_id == "SV1"
        procedure = _components(seg, 1 if professional else 2)
        units_text = _el(seg, 4 if professional else 5)
        units = _whole_units(units_text)  # None when missing or not a number: the claim cannot land a row
        modifiers = [m for m in procedure[2:6] if m]
        claim["line"] = {
            "code": procedure[1] if len(procedure) > 1 and procedure[1] else None,
            "modifiers": ",".join(modifiers) or None, "units": units,
        }
        return None

    def _end_claim(self) -> _Trouble | None:
        """Turn the open claim into a row (or count its void); a problem when it lacks what we need."""
        claim, self.claim = self.claim, None
        if claim is None:
            return None
        pos, where = claim["pos"], f"the {_ordinal(claim['ordinal'])} claim of the set"
        if not claim["claim_id"]:
            return pos, "CLM", f"CLM01 (claim id) of {where} is empty"
        if claim["frequency"] == spec.FREQUENCY_VOID:
            self.voids += 1
            return None
        # A claim missing a field lands with it null (silver flags or rejects that one row, naming the
        # column); only a value the registry cannot hold at all (a non-nullable integer) skips the claim.
        row = self._row(claim, _amount(claim["amount"]))
        unholdable = [n for n in _NON_NULLABLE_NUMBERS if row[n] is None]
        if unholdable:
            self.skipped.append((pos, "CLM", f"{where} lands no row: it lacks {', '.join(unholdable)} "
                                 f"({self._missing(claim) or 'unreadable'})"))
            return None
        self.rows.append(tuple(row[name] for name in _CLAIM_COLUMNS))
        return None

    def _missing(self, claim: dict[str, Any]) -> str | None:
        party: _Party | None = claim["party"]
        checks = (
            (self.bht is not None, "the transaction set's BHT"),
            (claim["billing_npi"] is not None, "the billing provider NM1*85 (loop 2010AA)"),
            (claim["has_sbr"], "the subscriber's SBR (loop 2000B)"),
            (claim["subscriber"] is not None and claim["subscriber"].member_id is not None,
             "the subscriber NM1*IL with its id (loop 2010BA)"),
            (claim["payer_id"] is not None, "the payer NM1*PR with its id (loop 2010BB)"),
            (party is not None, "the patient NM1*QC (loop 2010CA)"),
            (party is not None and party.has_dmg, "the patient's DMG"),
            (party is not None and party.has_n3, "the patient's address N3"),
            (party is not None and party.has_n4, "the patient's N4"),
            (len(claim["frequency"]) > 0, "the claim frequency CLM05-3"),
            (claim["primary"] is not None, "a principal diagnosis (HI ABK or BK, loop 2300)"),
            (claim["line"] is not None, "a first service line (LX with SV1 or SV2, loop 2400)"),
            (claim["line"] is None or claim["line"]["code"] is not None or self.institutional,
             "the procedure code SV101-2 of its first service line"),
            (claim["line_date"] or claim["claim_date"] or claim["statement_date"],
             "a service date (DTP*472 of the first service line)"),
        )
        return next((what for ok, what in checks if not ok), None)

    def _row(self, claim: dict[str, Any], amount: float | None) -> dict[str, Any]:
        party: _Party = claim["party"] or _Party()
        subscriber: _Party = claim["subscriber"] or _Party()
        line = claim["line"] or {"code": None, "modifiers": None, "units": None}
        claim_id, version = self.versions.assign(claim["claim_id"], claim["frequency"], claim["payer_claim"],
                                                 submitted=self._submitted_utc())
        facility = claim["facility"]
        place = spec.POS_BY_FACILITY_TYPE.get(facility, facility) if self.institutional else facility
        primary: str | None = claim["primary"]
        bht = self.bht or ("", "")
        return {
            "claim_id": claim_id,
            "claim_version": version,
            "member_id": subscriber.member_id,
            "patient_name": party.name,
            "patient_dob": party.dob,
            "patient_address": party.address,
            "patient_zip": party.zip,
            "patient_sex": party.sex,
            "payer_id": claim["payer_id"],
            "plan_type": spec.PLAN_TYPE_BY_FILING_CODE.get(claim["filing_code"] or "", claim["filing_code"]),
            "billing_npi": claim["billing_npi"],
            "rendering_npi": claim["rendering_npi"] or claim["billing_npi"],
            "place_of_service": place or None,
            "cpt_code": line["code"],
            "modifiers": line["modifiers"],
            "icd10_primary": _icd10_with_dot(primary) if primary else None,
            "icd10_count": claim["diagnoses"],
            "units": line["units"],
            "billed_amount": amount,
            "service_date": claim["line_date"] or claim["claim_date"] or claim["statement_date"],
            "submitted_at": bht,
            "prior_auth_number": claim["prior_auth"],
            "eligibility_verified": claim["eligibility"],
            "updated_at": (self.group.date, self.group.time),
        }

    def _submitted_utc(self) -> Any:
        """The set's BHT creation time in naive UTC (None when unreadable), converted once per set."""
        if self._bht_utc is None:
            value = _local_timestamps([self.bht or ("", "")], self.tz)[0]
            self._bht_utc = (None if pd.isna(value) else pd.Timestamp(value),)
        return self._bht_utc[0]

    def finish(self, pos: int) -> _Trouble | None:
        return self._end_claim()


def _ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def _icd10_with_dot(code: str) -> str:
    return code if len(code) <= 3 or "." in code else f"{code[:3]}.{code[3:]}"


# --------------------------------------------------------------------------------------------------
# 835: one row per CLP
# --------------------------------------------------------------------------------------------------


class _RemittanceMapper:
    """Maps the segments of one 835 transaction set to remittance rows (table remittances)."""

    def __init__(self, group: _Group) -> None:
        self.group = group
        self.rows: list[tuple[Any, ...]] = []
        self.details: list[dict[str, Any]] = []
        self.adjustments: list[dict[str, Any]] = []
        self.voids = 0
        self.bpr_date: str | None = None
        self.has_bpr = False
        self.payer_name: str | None = None
        self.payer_id: str | None = None
        self.in_payer = False
        self.claim: dict[str, Any] | None = None
        self.claims_seen = 0
        self.handlers: dict[str, Callable[[Any, int], _Trouble | None]] = {
            "BPR": self._bpr, "N1": self._n1, "REF": self._ref, "LX": self._lx, "CLP": self._clp,
            "CAS": self._cas, "MOA": self._moa, "MIA": self._mia, "DTM": self._dtm, "AMT": self._amt,
            "SVC": self._svc, "LQ": self._lq, "PLB": self._plb,
        }

    def segment(self, segment: Any, seg_id: str, pos: int) -> _Trouble | None:
        handler = self.handlers.get(seg_id)
        return handler(segment, pos) if handler is not None else None

    def _bpr(self, seg: Any, pos: int) -> None:
        self.has_bpr = True
        self.bpr_date = _d8("D8", _el(seg, 16))

    def _n1(self, seg: Any, pos: int) -> None:
        self.in_payer = self.claim is None and _el(seg, 1) == "PR"
        if self.in_payer:
            self.payer_name = _el(seg, 2) or None
            self.payer_id = _el(seg, 4) or None

    def _ref(self, seg: Any, pos: int) -> None:
        if self.in_payer and self.payer_id is None and _el(seg, 1) == "2U":
            self.payer_id = _el(seg, 2) or None

    def _lx(self, seg: Any, pos: int) -> _Trouble | None:
        self.in_payer = False
        return self._end_claim()

    def _plb(self, seg: Any, pos: int) -> _Trouble | None:
        return self._end_claim()

    def _clp(self, seg: Any, pos: int) -> _Trouble | None:
        problem = self._end_claim()
        if problem:
            return problem
        self.in_payer = False
        self.claims_seen += 1
        self.claim = {
            "pos": pos, "ordinal": self.claims_seen, "claim_id": _el(seg, 1), "status": _el(seg, 2),
            "charge": _el(seg, 3), "paid": _el(seg, 4), "responsibility": _el(seg, 5),
            "payer_claim": _el(seg, 7), "allowed": None, "claim_cas": [], "line_cas": [], "remark": None,
            "line_remark": None, "process_date": None, "process_time": "", "lines": 0,
        }
        return None

    def _cas(self, seg: Any, pos: int) -> None:
        claim = self.claim
        if claim is None:
            return
        group = _el(seg, 1)
        for k in range(6):  # up to six reason/amount/quantity triples: CAS02-04, CAS05-07, ...
            reason = _el(seg, 2 + 3 * k)
            if reason:
                entry = (group, reason, _amount(_el(seg, 3 + 3 * k)), claim["lines"])
                (claim["line_cas"] if claim["lines"] else claim["claim_cas"]).append(entry)

    def _moa(self, seg: Any, pos: int) -> None:
        if self.claim is not None and self.claim["lines"] == 0 and self.claim["remark"] is None:
            self.claim["remark"] = _el(seg, 3) or None

    def _mia(self, seg: Any, pos: int) -> None:
        if self.claim is not None and self.claim["lines"] == 0 and self.claim["remark"] is None:
            self.claim["remark"] = _el(seg, 5) or None

    def _dtm(self, seg: Any, pos: int) -> None:
        claim = self.claim
        if (claim is not None and claim["lines"] == 0 and claim["process_date"] is None
                and _el(seg, 1) == spec.PROCESS_DATE_QUALIFIER):
            claim["process_date"] = _d8("D8", _el(seg, 2))
            claim["process_time"] = _el(seg, 3)

    def _amt(self, seg: Any, pos: int) -> _Trouble | None:
        claim = self.claim
        if (claim is not None and claim["lines"] == 0 and claim["allowed"] is None
                and _el(seg, 1) == spec.ALLOWED_AMOUNT_QUALIFIER):
            claim["allowed"] = _amount(_el(seg, 2))
            if claim["allowed"] is None:
                return pos, "AMT", "AMT02 (allowed amount) of a claim payment is not a number"
        return None

    def _svc(self, seg: Any, pos: int) -> None:
        if self.claim is not None:
            self.claim["lines"] += 1

    def _lq(self, seg: Any, pos: int) -> None:
        claim = self.claim
        if (claim is not None and claim["lines"] > 0 and claim["line_remark"] is None
                and _el(seg, 1) == spec.REMARK_CODE_QUALIFIER):
            claim["line_remark"] = _el(seg, 2) or None

    def _end_claim(self) -> _Trouble | None:
        claim, self.claim = self.claim, None
        if claim is None:
            return None
        pos, where = claim["pos"], f"the {_ordinal(claim['ordinal'])} claim payment of the set"
        if not claim["claim_id"]:
            return pos, "CLP", f"CLP01 (claim id) of {where} is empty"
        # A missing or unreadable CLP02/CLP04/date lands as null: silver rejects that one row, naming the column
        paid = _amount(claim["paid"])
        charge = _amount(claim["charge"])
        outcome = classify_remittance(claim["status"], paid or 0.0, charge,
                                      [(g, r, a) for g, r, a, _ in claim["claim_cas"] + claim["line_cas"]],
                                      allowed=claim["allowed"])
        allowed = claim["allowed"]
        if outcome.claim_status == "reversed":  # a reversal's amounts are negative: stored as magnitudes
            paid = abs(paid) if paid is not None else None
            allowed = abs(allowed) if allowed is not None else paid
        if allowed is None:
            allowed = 0.0 if outcome.denied else paid
        status = outcome.claim_status if claim["status"] else None
        when = ((claim["process_date"], claim["process_time"]) if claim["process_date"]
                else (self.bpr_date, ""))
        if not claim["process_date"] and self.group.date and (self.bpr_date or "") > self.group.date:
            # BPR16 is when the money moves, often days after the ERA was produced: the claim was
            # adjudicated no later than its file left the payer (the functional group's date and time)
            when = (self.group.date, self.group.time)
        keys = {"claim_id": claim["claim_id"], "adjudicated_at": when,
                "updated_at": (self.group.date, self.group.time)}
        row = {
            **keys, "claim_status": status, "paid_amount": paid, "allowed_amount": allowed,
            "carc_code": outcome.carc_code, "rarc_code": claim["remark"] or claim["line_remark"],
            "payer_claim_control_number": claim["payer_claim"] or None, "cas_group": outcome.cas_group,
        }
        self.rows.append(tuple(row[name] for name in _REMITTANCE_COLUMNS))
        self.details.append({
            "payer_name": self.payer_name, "payer_id": self.payer_id, "claim_status_code": claim["status"],
            "charge_amount": _amount(claim["charge"]), "patient_responsibility": _amount(claim["responsibility"]),
            "payer_claim_control_number": claim["payer_claim"] or None,
        })
        for group, reason, amount, line in claim["claim_cas"] + claim["line_cas"]:
            self.adjustments.append({
                "row": len(self.rows) - 1, "level": "line" if line else "claim", "line_number": line,
                "group_code": group, "reason_code": reason, "amount": amount,
            })
        return None

    def finish(self, pos: int) -> _Trouble | None:
        if not self.has_bpr:
            return pos, "SE", "the transaction set lacks its BPR (financial information)"
        return self._end_claim()


# --------------------------------------------------------------------------------------------------
# Frames
# --------------------------------------------------------------------------------------------------


def _time6(text: str) -> str | None:
    """HHMM, HHMMSS or HHMMSSD(D) -> HHMMSS; '' -> 000000; anything else None."""
    if not text:
        return "000000"
    if not text.isdigit() or len(text) not in (4, 6, 7, 8):
        return None
    return (text + "00")[:6]


def _local_timestamps(pairs: list[tuple[str | None, str]], tz: str) -> np.ndarray:
    """(CCYYMMDD, time) pairs in the facility's local time -> naive UTC datetime64[ns] (NaT if unreadable)."""
    texts = []
    for day, time in pairs:
        clock = _time6(time or "")
        if day is not None and len(day) == 6 and day.isdigit():
            day = "20" + day  # a YYMMDD date (older GS04)
        texts.append(day + clock if day and clock and len(day) == 8 and day.isdigit() else None)
    local = pd.to_datetime(pd.Series(texts, dtype=object), format="%Y%m%d%H%M%S", errors="coerce")
    if tz != "UTC" and len(local):
        local = (local.dt.tz_localize(tz, ambiguous=np.ones(len(local), dtype=bool), nonexistent="shift_forward")
                 .dt.tz_convert("UTC").dt.tz_localize(None))
    return local.astype("datetime64[ns]").to_numpy()


def _dates(values: list[str | None]) -> np.ndarray:
    return pd.to_datetime(pd.Series(values, dtype=object), format="%Y%m%d", errors="coerce").astype(
        "datetime64[ns]").to_numpy()


def _cast(frame: pd.DataFrame, table: str, label: str) -> pd.DataFrame:
    try:
        return cast_to_registry(frame, table, source=label)
    except SourceSchemaError as exc:  # names column and count, never a value
        raise _fail("file", 0, "-", f"the mapped {table} do not fit the registry types: {exc}") from None


def _columns(rows: list[tuple[Any, ...]], names: tuple[str, ...]) -> dict[str, list[Any]]:
    values = list(zip(*rows, strict=True)) if rows else [() for _ in names]
    return {name: list(column) for name, column in zip(names, values, strict=True)}


def _claims_frame(rows: list[tuple[Any, ...]], tz: str, label: str) -> pd.DataFrame:
    columns = _columns(rows, _CLAIM_COLUMNS)
    columns["eligibility_verified"] = [bool(v) for v in columns["eligibility_verified"]]
    columns["patient_dob"] = _dates(columns["patient_dob"])
    columns["service_date"] = _dates(columns["service_date"])
    columns["submitted_at"] = _local_timestamps(columns["submitted_at"], tz)
    columns["updated_at"] = _local_timestamps(columns["updated_at"], tz)
    return _cast(pd.DataFrame(columns), "claims", label)


_DETAIL_COLUMNS = ("claim_id", "adjudicated_at", "updated_at", "payer_name", "payer_id", "claim_status_code",
                   "charge_amount", "patient_responsibility", "payer_claim_control_number")
_ADJUSTMENT_COLUMNS = ("claim_id", "adjudicated_at", "updated_at", "level", "line_number", "group_code",
                       "reason_code", "amount")


def _remittance_frames(rows: list[tuple[Any, ...]], details: list[dict[str, Any]],
                       adjustments: list[dict[str, Any]], tz: str,
                       label: str) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    columns = _columns(rows, _REMITTANCE_COLUMNS)
    columns["adjudicated_at"] = _local_timestamps(columns["adjudicated_at"], tz)
    columns["updated_at"] = _local_timestamps(columns["updated_at"], tz)
    remittances = _cast(pd.DataFrame(columns), "remittances", label)
    keys = remittances[["claim_id", "adjudicated_at", "updated_at"]]
    detail_frame = pd.concat([keys, pd.DataFrame(details, columns=list(_DETAIL_COLUMNS[3:]))], axis=1)
    for name in ("charge_amount", "patient_responsibility"):
        detail_frame[name] = detail_frame[name].astype("float64")
    rows_of = [a["row"] for a in adjustments]
    adjustment_frame = pd.concat(
        [keys.iloc[rows_of].reset_index(drop=True),
         pd.DataFrame(adjustments, columns=list(_ADJUSTMENT_COLUMNS[3:]))], axis=1)
    adjustment_frame = adjustment_frame.astype({"line_number": "int64", "amount": "float64"})
    return remittances, detail_frame[list(_DETAIL_COLUMNS)], adjustment_frame[list(_ADJUSTMENT_COLUMNS)]
