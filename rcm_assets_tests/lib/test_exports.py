"""Exported files (the billers' worklist, the evaluation tables) hold claim numbers, PHI: they get the
configured mode and group, default 0640 and the process's group, never access for others (issue 26.5).
Before, the worklist was created 0600 by mkstemp and the billers' group could not open it."""

from __future__ import annotations

import grp
import os
import re
import stat

import pandas as pd
import pytest

from rcm_assets.lib import exports, settings
from rcm_assets.lib import worklist as worklist_lib


def export_frame() -> pd.DataFrame:
    row = {c: 1 for c in worklist_lib.EXPORT_COLUMNS} | {"claim_id": "C0001", "payer_id": "AETNA"}
    return pd.DataFrame([row])[list(worklist_lib.EXPORT_COLUMNS)]


def another_group() -> int:
    """A group this process may give a file: any other group as root, else one of its own groups."""
    mine = [g for g in os.getgroups() if g != os.getegid()]
    if os.geteuid() == 0:
        mine = [g.gr_gid for g in grp.getgrall() if g.gr_gid != os.getegid()] or mine
    return mine[0] if mine else os.getegid()


def test_the_worklist_export_is_0640_in_the_process_group_by_default(tmp_path):
    for path in worklist_lib.write_export(export_frame(), tmp_path, "2025-03-03"):
        info = path.stat()
        assert stat.S_IMODE(info.st_mode) == 0o640, path
        assert info.st_gid == os.getegid()
    assert not list(tmp_path.glob(".*.tmp"))  # no temporary file left behind


def test_the_configured_mode_and_group_reach_every_export(tmp_path, monkeypatch):
    gid = another_group()
    monkeypatch.setenv("RCM_EXPORT_MODE", "0660")
    monkeypatch.setenv("RCM_EXPORT_GROUP", grp.getgrgid(gid).gr_name)
    permissions = settings.export_permissions()
    assert permissions == exports.ExportPermissions(0o660, gid)
    for path in worklist_lib.write_export(export_frame(), tmp_path, "2025-03-03", permissions):
        assert stat.S_IMODE(path.stat().st_mode) == 0o660 and path.stat().st_gid == gid
    monkeypatch.setenv("RCM_EXPORT_GROUP", str(gid))  # a numeric gid works too
    assert settings.export_permissions().gid == gid


@pytest.mark.parametrize("name,value,message", [
    ("RCM_EXPORT_MODE", "0644", "gives every user of the machine the exported claim numbers (PHI)"),
    ("RCM_EXPORT_MODE", "rw-r-----", "is not an octal file mode"),
    ("RCM_EXPORT_MODE", "01777", "is not an octal file mode"),
    ("RCM_EXPORT_GROUP", "no-such-group-rcm", "is not a group of this machine"),
])
def test_a_bad_export_setting_is_refused_naming_it(monkeypatch, name, value, message):
    monkeypatch.setenv(name, value)
    with pytest.raises(settings.SettingError, match=re.escape(message)) as error:
        settings.export_permissions()
    assert str(error.value).startswith(f"{name}={value!r}")
