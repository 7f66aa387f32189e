"""Copy the 835/837P/837I samples of local git snapshots of open-source EDI projects into one folder.

    python benchmarks/x12_public_collect.py /work/wt/_x12_public/files <git-dir> [<git-dir> ...]

A git dir is a bare snapshot named `.../<owner>+<repo>/repo` (or any git dir: its parent's name is used).
Every file of HEAD whose content starts with an ISA header (after a byte-order mark or whitespace) and holds
an 837 or 835 transaction set is copied as `<owner>+<repo>__<path with / as __>`, whatever its extension;
dental 837s (guides X097/X224) are left out. The folder is what `x12_public_landing.py` measures; it stays
outside the repository (the samples are other projects' files).
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

_SET = re.compile(rb"ST.83[57]")
_DENTAL = re.compile(rb"X097|X224")
_MAX_BYTES = 5_000_000


def _git(git_dir: str, *args: str) -> bytes:
    return subprocess.run(["git", f"--git-dir={git_dir}", *args], capture_output=True, check=True).stdout


def collect(out: Path, git_dir: str) -> int:
    """Copy one snapshot's samples into `out`; returns how many were copied."""
    repo = Path(git_dir).resolve().parent.name
    copied = 0
    for line in _git(git_dir, "ls-tree", "-r", "-l", "-z", "HEAD").split(b"\0"):
        if not line:
            continue
        meta, _, raw_path = line.partition(b"\t")
        kind, size = meta.split()[1], meta.split()[3]
        if kind != b"blob" or not size.isdigit() or int(size) > _MAX_BYTES:
            continue
        path = raw_path.decode("utf-8", "replace")
        data = _git(git_dir, "show", f"HEAD:{path}")
        head = data.lstrip(b"\xef\xbb\xbf \r\n\t")
        if not head.startswith(b"ISA") or not _SET.search(data[:3000]) or _DENTAL.search(data[:3000]):
            continue
        (out / f"{repo}__{path.replace('/', '__')}").write_bytes(data)
        copied += 1
    return copied


def main(folder: str, git_dirs: list[str]) -> int:
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    for git_dir in git_dirs:
        print(f"{Path(git_dir).resolve().parent.name}: {collect(out, git_dir)} file(s)")  # noqa: T201
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2:]))
