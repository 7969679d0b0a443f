#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: contributors to the hpc.slurm collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

DOCUMENTATION = r"""
module: config_files
short_description: Write several small text files in one module run, each with a backup of the one it replaces
version_added: 0.2.0
description:
  - Writes each file of O(files) whose text, owner, group or mode differ, atomically (a
    temporary file in the same directory, then a rename), after copying the file it replaces
    to a backup named as M(ansible.builtin.copy) names its backups.
  - One module run for all the files, where M(ansible.builtin.copy) takes, per file, a C(stat)
    run, a transfer and a module run. The text travels in the module's arguments, so it
    suits configuration files, not large ones.
author:
  - hpc.slurm maintainers (!UNKNOWN)
extends_documentation_fragment: [ansible.builtin.action_common_attributes]
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
  platform:
    platforms: debian
options:
  files:
    description: The files to write.
    type: list
    elements: dict
    required: true
    suboptions:
      dest:
        description: Path of the file.
        type: path
        required: true
      content:
        description: The whole text of the file.
        type: str
        required: true
      owner:
        description: Owner of the file.
        type: str
        default: root
      group:
        description: Group of the file.
        type: str
        default: root
      mode:
        description: Mode of the file, in octal, such as V(0644).
        type: str
        default: "0644"
"""

EXAMPLES = r"""
- name: Write slurm.conf and cgroup.conf
  hpc.slurm.config_files:
    files:
      - dest: /etc/slurm/slurm.conf
        content: "{{ slurm_conf_text }}"
      - dest: /etc/slurm/cgroup.conf
        content: "{{ slurm_cgroup_conf_text }}"
  register: written
"""

RETURN = r"""
files:
  description:
    - One entry per file of O(files), in their order, with V(dest), V(changed), and V(backup_file)
      when a previous file with other text was kept.
  returned: always
  type: list
  elements: dict
  sample: [{"dest": "/etc/slurm/slurm.conf", "changed": true, "backup_file": "/etc/slurm/slurm.conf.1234.2026-11-26@02:40:00~"}]
"""

import os
import tempfile

from ansible.module_utils.basic import AnsibleModule


def read_bytes(path):
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except FileNotFoundError:
        return None


def file_args(spec):
    return {"path": spec["dest"], "owner": spec["owner"], "group": spec["group"], "mode": spec["mode"],
            "secontext": [None, None, None], "attributes": None}


def write_file(module, spec, content):
    """Write content next to dest and rename it over dest (atomic_move keeps the old file's owner
    and mode, so they are set afterwards)."""
    handle, temporary = tempfile.mkstemp(prefix=".hpc-slurm-", dir=os.path.dirname(spec["dest"]))
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(content)
        module.atomic_move(temporary, spec["dest"])
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)
    module.set_fs_attributes_if_different(file_args(spec), True)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            files=dict(type="list", elements="dict", required=True, options=dict(
                dest=dict(type="path", required=True),
                content=dict(type="str", required=True, no_log=False),
                owner=dict(type="str", default="root"),
                group=dict(type="str", default="root"),
                mode=dict(type="str", default="0644"),
            )),
        ),
        supports_check_mode=True,
    )
    results, diffs = [], []
    for spec in module.params["files"]:
        content = spec["content"].encode()
        before = read_bytes(spec["dest"])
        entry = {"dest": spec["dest"], "changed": False}
        if before != content:
            entry["changed"] = True
            if module._diff:
                diffs.append({"before_header": spec["dest"], "after_header": spec["dest"],
                              "before": (before or b"").decode(errors="replace"), "after": spec["content"]})
            if not module.check_mode:
                if before is not None:
                    entry["backup_file"] = module.backup_local(spec["dest"])
                write_file(module, spec, content)
        else:
            # Owner, group and mode only; check mode reports without changing them.
            entry["changed"] = module.set_fs_attributes_if_different(file_args(spec), False)
        results.append(entry)
    module.exit_json(changed=any(entry["changed"] for entry in results), files=results, diff=diffs)


if __name__ == "__main__":
    main()
