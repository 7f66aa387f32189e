"""Files people open outside the lake (the billers' worklist, the evaluation tables and plots).

They hold claim numbers, patient account numbers under HIPAA (PHI), so who may open them is configured, not
left to chance: a temporary file is created 0600 (the billers' group could not open the worklist) and a
plain write takes the process's umask. Each file is written whole or not at all, then given the configured
mode (RCM_EXPORT_MODE, default 0640) and group (RCM_EXPORT_GROUP, unset = the process's group) before it
appears under its name. Others never get access: a mode with any bit for others is refused.
"""

from __future__ import annotations

import grp
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

DEFAULT_MODE = 0o640
MODE_ENV, GROUP_ENV = "RCM_EXPORT_MODE", "RCM_EXPORT_GROUP"


@dataclass(frozen=True)
class ExportPermissions:
    mode: int = DEFAULT_MODE
    gid: int | None = None  # None: the process's group (the file keeps what creating it gave)


def parse_mode(raw: str, setting: str = MODE_ENV) -> int:
    """An octal file mode such as '0640' or '640'; ValueError naming `setting` when it is not one, or when
    it grants others anything (exports are PHI)."""
    text = raw.strip()
    try:
        mode = int(text[2:] if text.lower().startswith("0o") else text, 8)
    except ValueError:
        raise ValueError(f"{setting}={raw!r} is not an octal file mode (e.g. '0640')") from None
    if not 0 <= mode <= 0o777:
        raise ValueError(f"{setting}={raw!r} is not an octal file mode (e.g. '0640')")
    if mode & 0o007:
        raise ValueError(f"{setting}={raw!r} gives every user of the machine the exported claim numbers (PHI): "
                         "the bits for others must be 0 (e.g. '0640')")
    return mode


def parse_group(raw: str, setting: str = GROUP_ENV) -> int:
    """A group name or numeric gid known to this machine; ValueError naming `setting` otherwise."""
    text = raw.strip()
    try:
        return grp.getgrgid(int(text)).gr_gid if text.isdigit() else grp.getgrnam(text).gr_gid
    except (KeyError, OverflowError):
        raise ValueError(f"{setting}={raw!r} is not a group of this machine") from None


def write_atomic(path: Path, write: Callable[[str], object], permissions: ExportPermissions) -> Path:
    """Call `write(tmp)` on a temporary file beside `path`, give it the mode and group, then rename it onto
    `path`: readers see the old file or the whole new one, always with the configured access."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        if permissions.gid is not None:
            os.chown(tmp, -1, permissions.gid)
        os.chmod(tmp, permissions.mode)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return path
