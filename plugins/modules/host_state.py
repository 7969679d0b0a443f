#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: contributors to the hpc.slurm collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

DOCUMENTATION = r"""
module: host_state
short_description: Report a host's packages, files, daemons and hardware in one module run
version_added: 0.2.0
description:
  - Reads, in one module run, everything the hpc.slurm roles must know before they change a host
    (which packages are installed; the owner, mode and checksum of files and directories; whether
    daemons run and start at boot; the hardware as C(slurmd -C) reports it) so that a rerun on a
    converged host needs no further module run.
  - Changes nothing.
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
  packages:
    description: Debian packages to look for.
    type: list
    elements: str
    default: []
  paths:
    description: Files and directories to describe (symbolic links are followed).
    type: list
    elements: path
    default: []
  contents:
    description: Small text files to return whole.
    type: list
    elements: path
    default: []
  services:
    description:
      - Daemons to describe. Only systemd can say whether a daemon runs and starts at boot; on a
        host booted without systemd both are reported as null.
    type: list
    elements: str
    default: []
  hardware:
    description:
      - Also report the memory, the cgroup file system, the effective capabilities of a root
        process, and C(slurmd -C) when slurmd is installed.
    type: bool
    default: false
  facts:
    description:
      - Also gather Ansible's facts of these subsets, as M(ansible.builtin.setup) with this
        C(gather_subset) would, and return them as facts (the same facts for one module run
        fewer per host). Empty gathers none.
    type: list
    elements: str
    default: []
"""

EXAMPLES = r"""
- name: Look at the host before changing it
  hpc.slurm.host_state:
    packages: [slurmd, munge]
    paths: [/etc/slurm/slurm.conf, /var/log/slurm]
    contents: [/etc/hosts]
    services: [slurmd]
    hardware: true
    facts: [min, network]
  register: state
"""

RETURN = r"""
packages:
  description: The packages of O(packages) that are installed (dpkg status C(ii)).
  returned: always
  type: list
  elements: str
paths:
  description:
    - One entry per path of O(paths). V(exists) false means the path is absent; otherwise
      V(type) (V(file), V(directory) or V(other)), V(owner), V(group), V(mode) (such as V(0644)),
      and for files V(sha256).
  returned: always
  type: dict
  sample: {"/etc/slurm/slurm.conf": {"exists": true, "type": "file", "owner": "root", "group": "root",
           "mode": "0644", "sha256": "9f86d0..."}}
contents:
  description: The text of each file of O(contents), or null when it is absent.
  returned: always
  type: dict
services:
  description: For each daemon of O(services), V(active) (running) and V(enabled) (started at boot), each true, false, or null without systemd.
  returned: always
  type: dict
  sample: {"slurmd": {"active": true, "enabled": true}}
hardware:
  description:
    - With O(hardware), V(mem_total_mb), V(cgroup_fs) (V(cgroup2fs) for cgroup v2), V(cap_eff)
      (the effective capability mask of a root process, as an integer) and V(slurmd_node_line)
      (the C(NodeName=) line of C(slurmd -C), null when slurmd is not installed).
  returned: when O(hardware) is true
  type: dict
ansible_facts:
  description: With O(facts), the facts M(ansible.builtin.setup) gathers for those subsets.
  returned: when O(facts) is not empty
  type: dict
"""

import grp
import hashlib
import os
import pwd
import stat

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.facts import ansible_collector, default_collectors
from ansible.module_utils.facts.namespace import PrefixFactNamespace

# States for which `systemctl is-enabled` succeeds, which is what the service module goes by.
ENABLED_STATES = {"enabled", "enabled-runtime", "alias", "static", "indirect", "generated", "transient"}
# What ansible.builtin.setup always gathers unless told '!min'.
SETUP_MINIMAL_SUBSET = frozenset(["apparmor", "caps", "cmdline", "date_time", "distribution", "dns", "env", "fips",
                                  "local", "lsb", "pkg_mgr", "platform", "python", "selinux", "service_mgr",
                                  "ssh_pub_keys", "user"])


def installed_packages(dpkg_output):
    """Names whose status is `ii` in `dpkg-query --showformat='${Package} ${db:Status-Abbrev}\\n'` output."""
    names = []
    for line in dpkg_output.splitlines():
        fields = line.split()
        if len(fields) >= 2 and fields[1] == "ii":
            names.append(fields[0])
    return names


def service_states(names, systemctl_output):
    """Per unit, from `systemctl show --property=Id,ActiveState,UnitFileState UNIT...` (blocks in argument order)."""
    blocks = [dict(line.split("=", 1) for line in block.splitlines() if "=" in line)
              for block in systemctl_output.strip().split("\n\n")]
    if len(blocks) != len(names):
        raise ValueError(f"systemctl show described {len(blocks)} units for {len(names)} names")
    return {name: {"active": block.get("ActiveState") == "active",
                   "enabled": block.get("UnitFileState") in ENABLED_STATES}
            for name, block in zip(names, blocks)}


def mem_total_mb(meminfo):
    for line in meminfo.splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) // 1024
    raise ValueError("no MemTotal line in /proc/meminfo")


def cap_eff(status):
    for line in status.splitlines():
        if line.startswith("CapEff:"):
            return int(line.split()[1], 16)
    raise ValueError("no CapEff line in /proc/self/status")


def node_line(slurmd_c_output):
    return next((line for line in slurmd_c_output.splitlines() if line.startswith("NodeName=")), None)


def describe(path):
    try:
        info = os.stat(path)
    except FileNotFoundError:
        return {"exists": False}
    kind = "file" if stat.S_ISREG(info.st_mode) else "directory" if stat.S_ISDIR(info.st_mode) else "other"
    try:
        owner = pwd.getpwuid(info.st_uid).pw_name
    except KeyError:
        owner = str(info.st_uid)
    try:
        group = grp.getgrgid(info.st_gid).gr_name
    except KeyError:
        group = str(info.st_gid)
    found = {"exists": True, "type": kind, "owner": owner, "group": group, "mode": "%04o" % stat.S_IMODE(info.st_mode)}
    if kind == "file":
        digest = hashlib.sha256()
        with open(path, "rb") as stream:
            for chunk in iter(lambda: stream.read(1 << 16), b""):
                digest.update(chunk)
        found["sha256"] = digest.hexdigest()
    return found


def read_text(path):
    try:
        with open(path, encoding="utf-8", errors="surrogateescape") as stream:
            return stream.read()
    except FileNotFoundError:
        return None


def gather_facts(module, subsets):
    """What ansible.builtin.setup returns for gather_subset=subsets, from its own collectors."""
    collector = ansible_collector.get_ansible_collector(
        all_collector_classes=default_collectors.collectors,
        namespace=PrefixFactNamespace(namespace_name="ansible", prefix="ansible_"),
        filter_spec=[], gather_subset=subsets, gather_timeout=10, minimal_gather_subset=SETUP_MINIMAL_SUBSET)
    return collector.collect(module=module)


def run(module, argv):
    rc, out, err = module.run_command(argv)
    if rc != 0:
        module.fail_json(msg=f"{' '.join(argv)} failed (exit {rc}): {err.strip() or out.strip()}")
    return out


def main():
    module = AnsibleModule(
        argument_spec=dict(
            packages=dict(type="list", elements="str", default=[]),
            paths=dict(type="list", elements="path", default=[]),
            contents=dict(type="list", elements="path", default=[]),
            services=dict(type="list", elements="str", default=[]),
            hardware=dict(type="bool", default=False),
            facts=dict(type="list", elements="str", default=[]),
        ),
        supports_check_mode=True,
    )
    params = module.params
    result = {"changed": False, "packages": [], "services": {},
              "paths": {path: describe(path) for path in params["paths"]},
              "contents": {path: read_text(path) for path in params["contents"]}}

    if params["packages"]:
        # Exit 1 only says that some package is unknown to dpkg: those simply are not installed.
        _, out, _ = module.run_command(["dpkg-query", "--show", "--showformat=${Package} ${db:Status-Abbrev}\n",
                                        *params["packages"]])
        result["packages"] = installed_packages(out)

    if params["services"]:
        if os.path.isdir("/run/systemd/system"):
            out = run(module, ["systemctl", "show", "--property=Id,ActiveState,UnitFileState",
                               *[f"{name}.service" for name in params["services"]]])
            result["services"] = service_states(params["services"], out)
        else:
            result["services"] = {name: {"active": None, "enabled": None} for name in params["services"]}

    if params["hardware"]:
        slurmd = module.get_bin_path("slurmd", opt_dirs=["/usr/sbin"])
        result["hardware"] = {
            "mem_total_mb": mem_total_mb(read_text("/proc/meminfo")),
            "cap_eff": cap_eff(read_text("/proc/self/status")),
            "cgroup_fs": run(module, ["stat", "--file-system", "--format=%T", "/sys/fs/cgroup"]).strip(),
            "slurmd_node_line": node_line(run(module, [slurmd, "-C"])) if slurmd else None,
        }
    if params["facts"]:
        result["ansible_facts"] = gather_facts(module, params["facts"])
    module.exit_json(**result)


if __name__ == "__main__":
    main()
