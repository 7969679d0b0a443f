"""Filter over what hpc.slurm.host_state reports: which entries of an hpc.slurm.files list it
found otherwise, so that a role runs that module only where something is to change.

    files_wanted | hpc.slurm.files_out_of_place(host_look.paths)
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Mapping

from ansible.errors import AnsibleFilterError
from ansible_collections.hpc.slurm.plugins.test.host_state import in_state

DEFAULT_MODES = {"file": "0644", "directory": "0755"}


def wanted_state(entry):
    """The host_state description of a path as hpc.slurm.files leaves it."""
    kind = entry.get("state", "file")
    wanted = {"type": kind, "owner": entry.get("owner", "root"), "group": entry.get("group", "root"),
              "mode": entry.get("mode") or DEFAULT_MODES[kind]}
    if entry.get("content") is not None:
        wanted["sha256"] = hashlib.sha256(str(entry["content"]).encode()).hexdigest()
    elif entry.get("content_base64") is not None:
        wanted["sha256"] = hashlib.sha256(base64.b64decode(entry["content_base64"])).hexdigest()
    return wanted


def files_out_of_place(files, found_paths):
    """The entries of `files` whose path the look found otherwise (or did not look at)."""
    if not isinstance(found_paths, Mapping):
        raise AnsibleFilterError(f"files_out_of_place: expected host_state's paths (a mapping), got {type(found_paths).__name__}")
    return [entry for entry in files
            if not isinstance(found_paths.get(entry["dest"]), Mapping) or not in_state(found_paths[entry["dest"]], wanted_state(entry))]


class FilterModule:
    def filters(self):
        return {"files_out_of_place": files_out_of_place}
