#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: contributors to the hpc.slurm collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

DOCUMENTATION = r"""
module: munge_key
short_description: Put a munge key in place, private from its first byte
version_added: 0.3.0
description:
  - Writes O(content_base64) to O(path) when the file's bytes differ, and gives an existing key
    with the same bytes its owner, group and mode 0400.
  - M(ansible.builtin.copy) writes a key first as root with the default mode and then changes
    them; this module creates the temporary file next to O(path) with mode 0400 and its final
    owner before the first byte is written, syncs it, renames it over O(path) and syncs the
    directory. A failure removes the temporary file.
  - Neither the key, nor any hash or part of it, is ever in the result; V(key) says only whether
    the key on the host matched.
author:
  - hpc.slurm maintainers (!UNKNOWN)
extends_documentation_fragment: [ansible.builtin.action_common_attributes]
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
  platform:
    platforms: debian
options:
  path:
    description: Where the key goes.
    type: path
    default: /etc/munge/munge.key
  content_base64:
    description: The key, base64-encoded (a key may be binary).
    type: str
    required: true
    no_log: true
  owner:
    description: Owner of the key.
    type: str
    default: munge
  group:
    description: Group of the key.
    type: str
    default: munge
"""

EXAMPLES = r"""
- name: Give this host the cluster key
  hpc.slurm.munge_key:
    content_base64: "{{ munge_key | b64encode }}"
  notify: Restart munged
"""

RETURN = r"""
key:
  description: V(matches) when the host already had these bytes, V(differs) when it had others or none.
  returned: always
  type: str
"""

import base64
import binascii
import grp
import hmac
import os
import pwd
import stat

from ansible.module_utils.basic import AnsibleModule

MODE = 0o400


def read_key(path):
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except FileNotFoundError:
        return None


def write_key(path, content, uid, gid):
    """Create a 0400 file owned by uid:gid next to path, write, sync, rename over path, sync the directory."""
    directory = os.path.dirname(path) or "."
    temporary = os.path.join(directory, f".{os.path.basename(path)}.hpc-slurm-{os.getpid()}")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, MODE)
    try:
        os.fchown(fd, uid, gid)
        os.fchmod(fd, MODE)
        view = memoryview(content)
        while view:
            view = view[os.write(fd, view):]
        os.fsync(fd)
        os.close(fd)
        fd = None
        os.rename(temporary, path)
    except BaseException:
        if fd is not None:
            os.close(fd)
        os.unlink(temporary)
        raise
    directory_fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(directory_fd)
    finally:
        os.close(directory_fd)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            path=dict(type="path", default="/etc/munge/munge.key"),
            content_base64=dict(type="str", required=True, no_log=True),
            owner=dict(type="str", default="munge"),
            group=dict(type="str", default="munge"),
        ),
        supports_check_mode=True,
    )
    path = module.params["path"]
    try:
        content = base64.b64decode(module.params["content_base64"], validate=True)
    except (binascii.Error, ValueError):
        module.fail_json(msg="content_base64 is not valid base64")
    if not content:
        module.fail_json(msg="content_base64 holds an empty key")
    try:
        uid = pwd.getpwnam(module.params["owner"]).pw_uid
        gid = grp.getgrnam(module.params["group"]).gr_gid
    except KeyError as error:
        module.fail_json(msg=f"no such user or group on this host: {error}")

    present = read_key(path)
    matches = present is not None and hmac.compare_digest(present, content)
    changed = not matches
    if matches:
        found = os.lstat(path)
        changed = (found.st_uid, found.st_gid, stat.S_IMODE(found.st_mode)) != (uid, gid, MODE)
        if changed and not module.check_mode:
            os.chown(path, uid, gid, follow_symlinks=False)
            os.chmod(path, MODE)
    elif not module.check_mode:
        write_key(path, content, uid, gid)
    module.exit_json(changed=changed, key="matches" if matches else "differs")


if __name__ == "__main__":
    main()
