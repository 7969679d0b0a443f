#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: contributors to the hpc.slurm collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

DOCUMENTATION = r"""
module: files
short_description: Put several files and directories in place in one module run, with a backup of each file it replaces
version_added: 0.2.0
description:
  - Makes each directory of O(files) that is missing, and writes each file whose text differs,
    atomically (a temporary file in the same directory, then a rename), after copying the file
    it replaces to a backup named as M(ansible.builtin.copy) names its backups. Then sets the
    owner, group and mode of each one that has others.
  - One module run for all of them, where M(ansible.builtin.file) takes a module run per path
    and M(ansible.builtin.copy) takes, per file, a C(stat) run, a transfer and a module run. The
    text travels in the module's arguments, so it suits configuration files and keys, not large
    files.
author:
  - hpc.slurm maintainers (!UNKNOWN)
extends_documentation_fragment: [ansible.builtin.action_common_attributes]
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
    details: No diff for a file given as O(files[].content_base64).
  platform:
    platforms: debian
options:
  files:
    description: The files and directories, put in place in this order.
    type: list
    elements: dict
    required: true
    suboptions:
      dest:
        description: Path of the file or directory.
        type: path
        required: true
      state:
        description: V(directory) makes the directory (and its missing parents) if it is missing.
        type: str
        choices: [file, directory]
        default: file
      content:
        description:
          - The whole text of the file.
          - Without it or O(files[].content_base64), the file must exist; only its owner, group and mode are set.
        type: str
      content_base64:
        description: The whole content of the file, base64-encoded (for binary content, such as a key). Not logged.
        type: str
      backup:
        description: Keep the file a new content replaces, as M(ansible.builtin.copy) keeps it.
        type: bool
        default: true
      owner:
        description: Owner.
        type: str
        default: root
      group:
        description: Group.
        type: str
        default: root
      mode:
        description: Mode in octal, such as V(0644); V(0644) for a file and V(0755) for a directory when not given.
        type: str
"""

EXAMPLES = r"""
- name: Write slurm.conf and cgroup.conf, and make the log directory
  hpc.slurm.files:
    files:
      - dest: /var/log/slurm
        state: directory
        owner: slurm
        group: slurm
        mode: "0750"
      - dest: /etc/slurm/slurm.conf
        content: "{{ slurm_conf_text }}"
      - dest: /etc/slurm/cgroup.conf
        content: "{{ slurm_cgroup_conf_text }}"
  register: written
"""

RETURN = r"""
files:
  description:
    - One entry per path of O(files), in their order, with V(dest), V(changed) (anything changed),
      V(written) (a file's content was written, or would be in check mode), and V(backup_file)
      when a previous file with other content was kept.
  returned: always
  type: list
  elements: dict
  sample: [{"dest": "/etc/slurm/slurm.conf", "changed": true, "written": true,
            "backup_file": "/etc/slurm/slurm.conf.1234.2026-11-26@02:40:00~"}]
"""

import base64
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
    mode = spec["mode"] or ("0755" if spec["state"] == "directory" else "0644")
    return {"path": spec["dest"], "owner": spec["owner"], "group": spec["group"], "mode": mode,
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


def wanted_content(spec):
    if spec["content_base64"] is not None:
        return base64.b64decode(spec["content_base64"])
    if spec["content"] is not None:
        return spec["content"].encode()
    return None


def put_directory(module, spec, entry):
    dest = spec["dest"]
    if os.path.lexists(dest) and not os.path.isdir(dest):
        module.fail_json(msg=f"{dest} is not a directory; move it away, then run again")
    if not os.path.isdir(dest):
        entry["changed"] = True
        if module.check_mode:
            return
        os.makedirs(dest)
    entry["changed"] = module.set_fs_attributes_if_different(file_args(spec), entry["changed"])


def put_file(module, spec, entry, diffs):
    dest, content = spec["dest"], wanted_content(spec)
    if os.path.isdir(dest):
        module.fail_json(msg=f"{dest} is a directory, not a file; move it away, then run again")
    before = read_bytes(dest)
    if content is None and before is None:
        module.fail_json(msg=f"{dest} does not exist and no content was given for it")
    if content is not None and before != content:
        entry["changed"] = entry["written"] = True
        if module._diff and spec["content"] is not None:
            diffs.append({"before_header": dest, "after_header": dest,
                          "before": (before or b"").decode(errors="replace"), "after": spec["content"]})
        if not module.check_mode:
            if before is not None and spec["backup"]:
                entry["backup_file"] = module.backup_local(dest)
            write_file(module, spec, content)
    else:
        # Owner, group and mode only; check mode reports without changing them.
        entry["changed"] = module.set_fs_attributes_if_different(file_args(spec), False)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            files=dict(type="list", elements="dict", required=True, options=dict(
                dest=dict(type="path", required=True),
                state=dict(type="str", choices=["file", "directory"], default="file"),
                content=dict(type="str", no_log=False),
                content_base64=dict(type="str", no_log=True),
                backup=dict(type="bool", default=True),
                owner=dict(type="str", default="root"),
                group=dict(type="str", default="root"),
                mode=dict(type="str"),
            ), mutually_exclusive=[["content", "content_base64"]]),
        ),
        supports_check_mode=True,
    )
    results, diffs = [], []
    for spec in module.params["files"]:
        entry = {"dest": spec["dest"], "changed": False, "written": False}
        if spec["state"] == "directory":
            if spec["content"] is not None or spec["content_base64"] is not None:
                module.fail_json(msg=f"{spec['dest']}: a directory takes no content")
            put_directory(module, spec, entry)
        else:
            put_file(module, spec, entry, diffs)
        results.append(entry)
    module.exit_json(changed=any(entry["changed"] for entry in results), files=results, diff=diffs)


if __name__ == "__main__":
    main()
