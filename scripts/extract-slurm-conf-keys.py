#!/usr/bin/env python3
"""List the configuration keys that Slurm's own man pages define.

Reads slurm.conf(5) and cgroup.conf(5) as shipped by Debian's slurm-client package
(/usr/share/man/man5/*.5.gz) and prints the parameter names of each section:

  show SLURM_CONF_5 CGROUP_CONF_5
      print the groups as text (or JSON with --json), for checking by eye
  yaml --comment TEXT VERSION SLURM_CONF_5 CGROUP_CONF_5 [VERSION SLURM_CONF_5 CGROUP_CONF_5 ...]
      print roles/slurm/vars/slurm_conf_keys.yml

A parameter is a ".TP" entry whose heading names it in bold ("\\fBName\\fR" or
"\\fBName\\fR=<value>") and that is not nested in an ".RS"/".RE" block; nested entries
are the values of the parameter above them (DebugFlags=Backfill, CR_Core_Memory, ...).
Names keep Slurm's spelling; Slurm itself matches keys case-insensitively.

slurm-client ships both pages. To fetch it for another release without touching the
host's apt configuration, point apt at a temporary tree:
  apt-get -o Dir::Etc::sourcelist=$TMP/sources.list -o Dir::Etc::sourceparts=- \\
          -o Dir::State::Lists=$TMP/lists -o Dir::Cache::archives=$TMP/archives update
  apt-get <same options> download slurm-client && dpkg-deb -x slurm-client_*.deb $TMP/root
"""

import argparse
import gzip
import json
import re
import sys

# slurm.conf(5) section title -> group name; other sections (PROLOG AND EPILOG SCRIPTS,
# FILE AND DIRECTORY PERMISSIONS, ...) repeat names for other purposes and are skipped.
SLURM_CONF_SECTIONS = {
    "PARAMETERS": "global",
    "NODE CONFIGURATION": "node",
    "PARTITION CONFIGURATION": "partition",
    "DOWN NODE CONFIGURATION": "downnodes",
    "NODESET CONFIGURATION": "nodeset",
    "FRONTEND NODE CONFIGURATION": "frontend",
}
# cgroup.conf(5) spreads its parameters over several sections (DESCRIPTION,
# TASK/CGROUP PLUGIN, PROCTRACK/CGROUP PLUGIN); these ones hold no parameters.
CGROUP_CONF_SKIPPED_SECTIONS = {"NAME", "EXAMPLE", "COPYING", "SEE ALSO", "DISTRIBUTION-SPECIFIC NOTES"}

YAML_GROUPS = ("global", "node", "partition", "cgroup")

BOLD_HEADING = re.compile(r"\\fB(?P<text>.+?)\\f[RP]")
PARAMETER_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*")


def read_man_page(path):
    with open(path, "rb") as handle:
        data = handle.read()
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    return data.decode("utf-8", errors="replace").splitlines()


def unescape_roff(text):
    return text.replace("\\-", "-").replace("\\&", "").replace('"', "").strip()


def top_level_entries(lines):
    """Yield (section title, parameter name) for every top-level .TP entry."""
    section = ""
    depth = 0
    awaiting_heading = False
    for line in lines:
        if line.startswith(".SH"):
            section = unescape_roff(line[3:])
            depth = 0
            awaiting_heading = False
        elif line.startswith(".RS"):
            depth += 1
        elif line.startswith(".RE"):
            # The pages contain a few stray .RE; never let them hide real nesting.
            depth = max(depth - 1, 0)
        elif line.startswith(".TP"):
            awaiting_heading = depth == 0
        elif awaiting_heading and line.strip() and not line.startswith('.\\"'):
            awaiting_heading = False
            match = BOLD_HEADING.match(line)
            if not match:
                continue
            name = unescape_roff(match.group("text")).split("=", 1)[0]
            if PARAMETER_NAME.fullmatch(name):
                yield section, name


def sorted_unique(names):
    return sorted(set(names), key=lambda name: (name.casefold(), name))


def slurm_conf_keys(path):
    groups = {group: [] for group in SLURM_CONF_SECTIONS.values()}
    for section, name in top_level_entries(read_man_page(path)):
        if section in SLURM_CONF_SECTIONS:
            groups[SLURM_CONF_SECTIONS[section]].append(name)
    empty = [group for group in ("global", "node", "partition") if not groups[group]]
    if empty:
        raise SystemExit(f"{path}: no {', '.join(empty)} parameters found; not a slurm.conf(5)?")
    return {group: sorted_unique(names) for group, names in groups.items()}


def cgroup_conf_keys(path):
    names = [
        name for section, name in top_level_entries(read_man_page(path)) if section not in CGROUP_CONF_SKIPPED_SECTIONS
    ]
    if "CgroupPlugin" not in names:
        raise SystemExit(f"{path}: CgroupPlugin not found; not a cgroup.conf(5)?")
    return sorted_unique(names)


def all_keys(slurm_conf_path, cgroup_conf_path):
    keys = slurm_conf_keys(slurm_conf_path)
    keys["cgroup"] = cgroup_conf_keys(cgroup_conf_path)
    return keys


def render_yaml(comment, releases):
    out = ["---", f"# {comment}", "slurm_conf_known_keys:"]
    for version, keys in releases:
        out.append(f'  "{version}":')
        for group in YAML_GROUPS:
            out.append(f"    {group}:")
            out.extend(f"      - {name}" for name in keys[group])
    return "\n".join(out) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    commands = parser.add_subparsers(dest="command", required=True)
    show = commands.add_parser("show", help="print the keys of one pair of man pages")
    show.add_argument("slurm_conf_5")
    show.add_argument("cgroup_conf_5")
    show.add_argument("--json", action="store_true", help="print JSON instead of text")
    yaml = commands.add_parser("yaml", help="print the slurm_conf_known_keys vars file")
    yaml.add_argument("--comment", required=True, help="one-line comment for the top of the file")
    yaml.add_argument("release", nargs="+", metavar="VERSION SLURM_CONF_5 CGROUP_CONF_5")
    args = parser.parse_args(argv)

    if args.command == "show":
        keys = all_keys(args.slurm_conf_5, args.cgroup_conf_5)
        if args.json:
            json.dump(keys, sys.stdout, indent=2)
            print()
        else:
            for group, names in keys.items():
                print(f"[{group}] ({len(names)})")
                print("\n".join(f"  {name}" for name in names))
        return 0

    if len(args.release) % 3:
        parser.error("yaml expects VERSION SLURM_CONF_5 CGROUP_CONF_5 triples")
    triples = [args.release[i : i + 3] for i in range(0, len(args.release), 3)]
    releases = [(version, all_keys(slurm_conf, cgroup_conf)) for version, slurm_conf, cgroup_conf in triples]
    sys.stdout.write(render_yaml(args.comment, releases))
    return 0


if __name__ == "__main__":
    sys.exit(main())
