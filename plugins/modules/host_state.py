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
      - Also return the facts the hpc.slurm roles read, with the names and values
        M(ansible.builtin.setup) gives them, so that no host needs a module run for its facts. They
        are V(distribution), V(distribution_version), V(distribution_major_version),
        V(distribution_release), V(architecture), V(nodename), V(hostname), V(service_mgr), and
        V(default_ipv4) with its V(address), V(interface) and V(gateway).
      - Only these, computed here rather than by Ansible's fact collectors, whose code is half of
        what every look would otherwise carry to the host. A play that needs other facts gathers
        them with M(ansible.builtin.setup).
    type: bool
    default: false
"""

EXAMPLES = r"""
- name: Look at the host before changing it
  hpc.slurm.host_state:
    packages: [slurmd, munge]
    paths: [/etc/slurm/slurm.conf, /var/log/slurm]
    contents: [/etc/hosts]
    services: [slurmd]
    hardware: true
    facts: true
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
  description: With O(facts), the facts named there, as M(ansible.builtin.setup) gathers them.
  returned: when O(facts) is true
  type: dict
"""

import grp
import hashlib
import os
import platform
import pwd
import stat

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.common.sys_info import (get_distribution, get_distribution_codename,
                                                  get_distribution_version)

# States for which `systemctl is-enabled` succeeds, which is what the service module goes by.
ENABLED_STATES = {"enabled", "enabled-runtime", "alias", "static", "indirect", "generated", "transient"}
# How ansible.builtin.setup names some init systems by the name of process 1.
INIT_NAMES = {"procd": "openwrt_init", "runit-init": "runit", "svscan": "svc", "openrc-init": "openrc"}


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


def service_mgr(module):
    """ansible.builtin.setup's service_mgr on Linux: process 1 by name, unless it is a shell or 'init'.

    setup's fallbacks for a host without /proc/1/comm (ps, the /sbin/init link) are left out.
    """
    comm = read_text("/proc/1/comm")
    name = os.path.basename(comm).strip() if comm is not None else None
    if name and name != "init" and not name.endswith("sh"):
        return INIT_NAMES.get(name, name)
    systemctl = module.get_bin_path("systemctl")
    if systemctl and any(os.path.exists(canary) for canary in ("/run/systemd/system/", "/dev/.run/systemd/",
                                                               "/dev/.systemd/")):
        return "systemd"
    if module.get_bin_path("initctl") and os.path.exists("/etc/init/"):
        return "upstart"
    if os.path.exists("/sbin/openrc"):
        return "openrc"
    if systemctl and os.path.islink("/sbin/init") and os.path.basename(os.readlink("/sbin/init")) == "systemd":
        return "systemd"
    if os.path.exists("/etc/init.d/"):
        return "sysvinit"
    if os.path.exists("/etc/dinit.d/"):
        return "dinit"
    return "service"


def default_route(route_output):
    """ansible.builtin.setup's default_ipv4 (address, interface, gateway) from `ip -4 route get 8.8.8.8`."""
    words = route_output.splitlines()[0].split() if route_output else []
    if not words or words[0] != "8.8.8.8":
        return {}
    keys = {"dev": "interface", "src": "address", "via": "gateway"}
    return {keys[word]: value for word, value in zip(words, words[1:]) if word in keys and value != "8.8.8.8"}


def gather_facts(module):
    """The facts the roles read, named and computed as ansible.builtin.setup does on Debian."""
    version = get_distribution_version() or "NA"
    node = platform.node()
    facts = {"distribution": get_distribution(), "distribution_version": version,
             "distribution_major_version": version.split(".")[0],
             "distribution_release": get_distribution_codename() or "NA",
             "architecture": platform.machine(), "nodename": node, "hostname": node.split(".")[0],
             "service_mgr": service_mgr(module)}
    ip = module.get_bin_path("ip")
    if ip:
        _, out, _ = module.run_command([ip, "-4", "route", "get", "8.8.8.8"], errors="surrogate_then_replace")
        facts["default_ipv4"] = default_route(out)
    return {f"ansible_{name}": value for name, value in facts.items()}


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
            facts=dict(type="bool", default=False),
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
        result["ansible_facts"] = gather_facts(module)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
