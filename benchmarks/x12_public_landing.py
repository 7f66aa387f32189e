"""How many X12 files land every claim: run over a folder of public 835/837 samples (kept outside the repo).

    python benchmarks/x12_public_landing.py /work/wt/_x12_public/files

A file "lands every claim" when `read_x12` accepts it, rejects no transaction set, and returns one claim row
per CLM (voids, frequency 8, excepted) and one remittance row per CLP. The CLM/CLP counts come from a plain
split of the text on the ISA's separators, independent of the reader. Works with any version of the reader
that has `read_x12` (run it with main's interpreter for the "before" figure).

Files are named `<owner>+<repo>__<path with / as __>` (how `x12_public_collect.py` copies them).
Files their own repository's tests call invalid are counted apart as "broken by design" (BROKEN_BY_DESIGN
cites the test); a file with envelope warnings (X12Batch.warnings, newer readers) that lands every claim
counts as landed and is marked "warn".
"""

from __future__ import annotations

import sys
from pathlib import Path

from rcm_assets.lib import x12

_IMSWEB_TEST = "imsweb/x12-parser src/test/java/com/imsweb/x12/reader/X12ReaderTest.java"
# File name ending -> where its repository says it is a deliberately invalid test case.
BROKEN_BY_DESIGN = {
    "imsweb+x12-parser__src__test__resources__837_5010__x12_bad_first_line.txt":
        f"{_IMSWEB_TEST} testBadFirstLine: a fatal 'Error getting separators' (the ISA is malformed)",
    "imsweb+x12-parser__src__test__resources__837_5010__x12_bad_segment_identifier.txt":
        f"{_IMSWEB_TEST} testBadSegementIdentifier: 6 errors, segments matching no format, required loops absent",
    "imsweb+x12-parser__src__test__resources__837_5010__x12_missing_required_loops_mult_repeats.txt":
        f"{_IMSWEB_TEST} testMissingRequiredLoopInMultipleRepeats: '2400 is required but not found' (claims 2, 5)",
}


def expected_rows(data: bytes) -> tuple[int, int]:
    """(CLM rows without voids, CLP rows) counted by splitting on the separators the ISA declares."""
    text = data.decode("latin-1").lstrip("\ufeff\xef\xbb\xbf \r\n\t")
    element, terminator = text[3], text[105]
    claims = remits = 0
    for raw in text.split(terminator):
        fields = raw.strip().split(element)
        if fields[0] == "CLM":
            frequency = fields[5].split(text[104])[2:3] if len(fields) > 5 else []
            claims += frequency != ["8"]
        elif fields[0] == "CLP":
            remits += 1
    return claims, remits


def main(folder: str) -> int:
    files = sorted(p for p in Path(folder).iterdir() if p.is_file())
    landed = warned = 0
    broken: list[str] = []
    for path in files:
        data = path.read_bytes()
        want_claims, want_remits = expected_rows(data)
        warnings = 0
        try:
            batch = x12.read_x12(data)
            got = (len(batch.claims), len(batch.remittances))
            warnings = len(getattr(batch, "warnings", []))
            ok = not batch.rejected and got == (want_claims, want_remits)
            why = "" if ok else (str(batch.rejected[0])[:150] if batch.rejected else f"rows {got}")
        except Exception as exc:  # noqa: BLE001 - a measurement: every failure is a data point
            ok, got, why = False, (0, 0), f"{type(exc).__name__}: {str(exc)[:150]}"
        landed += ok
        warned += ok and warnings > 0
        design = BROKEN_BY_DESIGN.get(path.name)
        if design and not ok:
            broken.append(f"{path.name}: {design}")
        mark = "OK " if ok else ("BAD" if design else "NO ")
        print(f"{mark} {'warn' if warnings else '    '} {path.name[-88:]:88s} want {want_claims:3d}/{want_remits:3d} "  # noqa: T201
              f"got {got[0]:3d}/{got[1]:3d} {why}")
    others = len(files) - landed - len(broken)
    print(f"\n{landed} of {len(files)} files land every claim ({warned} of them with envelope warnings); "  # noqa: T201
          f"{len(broken)} broken by design, {others} other(s) not landing every claim")
    for line in broken:
        print(f"  broken by design: {line}")  # noqa: T201 - a benchmark reports on stdout
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
