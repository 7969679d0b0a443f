#!/usr/bin/env python3
"""List the configuration keys that Slurm's own man pages define.

Reads slurm.conf(5) and cgroup.conf(5) as shipped by Debian's slurm-client package
(/usr/share/man/man5/*.5.gz) and prints the parameter names of each section:

  show SLURM_CONF_5 CGROUP_CONF_5
      print the groups as text (or JSON with --json), for checking by eye
  restarts SLURM_CONF_5
      print which slurm.conf changes need a daemon restart, with the man page's sentence
  yaml --comment TEXT VERSION SLURM_CONF_5 CGROUP_CONF_5 [VERSION SLURM_CONF_5 CGROUP_CONF_5 ...]
      print roles/slurm/vars/main/slurm_conf_keys.yml

A parameter is a ".TP" entry whose heading names it in bold ("\\fBName\\fR" or
"\\fBName\\fR=<value>") and that is not nested in an ".RS"/".RE" block; nested entries
are the values of the parameter above them (DebugFlags=Backfill, CR_Core_Memory, ...).
Names keep Slurm's spelling; Slurm itself matches keys case-insensitively.

slurm.conf(5) says that changes take effect on "scontrol reconfigure" "unless otherwise
noted". The notes are read from the description of each top-level PARAMETERS entry (its
text up to the next top-level parameter, nested values included):
  "A restart of slurmctld is required ..."                      -> slurmctld
  "A restart of slurmctld and the slurmd daemons is required"   -> slurmctld, slurmd
  "A restart of the slurmd daemons is required ..."             -> slurmd
  "The slurmctld daemon must be restarted ..."                  -> slurmctld
  "All Slurm daemons, commands and running jobs must be restarted" -> slurmctld, slurmd
  "All Slurm daemons and commands must be terminated prior to changing the value of
   AuthType and later restarted"                               -> slurmctld, slurmd
"... must be restarted or reconfigured" (24.11) means scontrol reconfigure is enough.
24.11 dropped the per-parameter notes and says once, in DESCRIPTION, "Changes to TCP
listening settings will require a daemon restart."; with that sentence present, a parameter
described as the port that a daemon "listens" to needs a restart of that daemon. The
NODE CONFIGURATION introduction gives the rule for NodeName lines ("Changes in node
configuration (...) require restarting ..."); "restarting or reconfiguring" means none.
A clause that mentions a restart as a requirement but matches none of these stops the
yaml command, so a new wording gets read by a person instead of being dropped.

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
DAEMONS = ("slurmctld", "slurmd")

# Restart notes, matched on a description turned into one line of plain text. A clause is
# text without a period; "who" names the daemons.
RESTART_RULES = (
    re.compile(r"\bA restart of (?P<who>[^.]*?) (?:is|are) required\b", re.IGNORECASE),
    re.compile(r"(?P<who>[^.]*?)\b(?:must|need to) be restarted\b(?! or reconfigured)", re.IGNORECASE),
    re.compile(r"(?P<who>[^.]*?) must be terminated prior to changing [^.]* and later restarted\b", re.IGNORECASE),
)
# Notes that say scontrol reconfigure is enough after all.
RECONFIGURE_RULES = (
    re.compile(r"[^.]*\bmust be restarted or reconfigured\b", re.IGNORECASE),
)
# Clauses that look like a restart requirement; each must be explained by a rule above.
RESTART_CLAUSE = re.compile(r"[^.]*\brestart(?:ed|ing)?\b[^.]*\b(?:requir\w*|must|need\w*)\b[^.]*"
                            r"|[^.]*\b(?:requir\w*|must|need\w*)\b[^.]*\brestart\w*[^.]*", re.IGNORECASE)
LISTENING_NOTE = re.compile(r"Changes to TCP listening settings will require a daemon restart", re.IGNORECASE)
LISTENING_PORT = re.compile(r"^The port number that the Slurm [^.]*?\b(?P<daemon>slurmctld|slurmd), listens\b")
NODE_RULE = re.compile(r"Changes in node configuration \([^)]*\) require (?P<what>[^.]*)\.", re.IGNORECASE)

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


def plain_text(line):
    """One roff text line as plain text: fonts and escapes removed."""
    text = re.sub(r"\\f(?:\(..|\[[^]]*\]|.)", "", line)
    return text.replace("\\-", "-").replace("\\&", "").replace("\\e", "\\").replace("\\ ", " ")


def top_level_entries_with_text(lines):
    """Yield (section title, parameter name or None, plain description text) for every
    top-level .TP entry, heading left out; name None is the text of a section before its
    first parameter."""
    section, name, text = "", None, []
    depth = 0
    awaiting_heading = False
    for line in lines:
        if line.startswith(".SH"):
            yield section, name, " ".join(" ".join(text).split())
            section, name, text = unescape_roff(line[3:]), None, []
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
            heading = match and unescape_roff(match.group("text")).split("=", 1)[0]
            if heading and PARAMETER_NAME.fullmatch(heading):
                yield section, name, " ".join(" ".join(text).split())
                name, text = heading, []
            else:
                text.append(plain_text(line))
        elif not line.startswith((".", "'")):
            text.append(plain_text(line))
    yield section, name, " ".join(" ".join(text).split())


def top_level_entries(lines):
    """Yield (section title, parameter name) for every top-level .TP entry."""
    for section, name, _text in top_level_entries_with_text(lines):
        if name is not None:
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


def named_daemons(who):
    """The daemons a restart note names: 'slurmctld and the slurmd daemons' -> both."""
    if re.search(r"\ball Slurm daemons\b", who, re.IGNORECASE):
        return set(DAEMONS)
    return {daemon for daemon in DAEMONS if re.search(rf"\b{daemon}\b", who)}


def restart_notes(name, text):
    """Return ({daemon: [sentence, ...]}, [unexplained clauses]) for one description."""
    notes, explained = {}, []
    for rule in RESTART_RULES:
        for match in rule.finditer(text):
            daemons = named_daemons(match.group("who"))
            if daemons:
                explained.append(match.span())
                for daemon in daemons:
                    notes.setdefault(daemon, []).append(match.group(0).strip())
    for rule in RECONFIGURE_RULES:
        explained.extend(match.span() for match in rule.finditer(text))
    unexplained = [
        f"{name}: {match.group(0).strip()}" for match in RESTART_CLAUSE.finditer(text)
        if not any(start < match.end() and match.start() < end for start, end in explained)
    ]
    return notes, unexplained


def slurm_conf_restarts(path):
    """Read which slurm.conf changes need a restart instead of scontrol reconfigure.

    Returns {"slurmctld": [keys], "slurmd": [keys], "nodes": [daemons],
    "evidence": {key or "NodeName": [sentences]}, "unexplained": [clauses]}."""
    entries = list(top_level_entries_with_text(read_man_page(path)))
    description = " ".join(text for section, name, text in entries if section == "DESCRIPTION")
    listening_note = LISTENING_NOTE.search(description)
    keys = {daemon: [] for daemon in DAEMONS}
    evidence, unexplained = {}, []
    for section, name, text in entries:
        if section != "PARAMETERS" or name is None:
            continue
        notes, clauses = restart_notes(name, text)
        unexplained.extend(clauses)
        port = LISTENING_PORT.search(text)
        if listening_note and port:
            notes.setdefault(port.group("daemon"), []).append(
                f"{listening_note.group(0)} ({name}: {port.group(0)})")
        for daemon, sentences in notes.items():
            keys[daemon].append(name)
            evidence.setdefault(name, []).extend(s for s in sentences if s not in evidence.get(name, []))
    intro = " ".join(text for section, name, text in entries if section == "NODE CONFIGURATION" and name is None)
    rule = NODE_RULE.search(intro)
    if not rule:
        raise SystemExit(f'{path}: no "Changes in node configuration (...) require ..." sentence in NODE CONFIGURATION')
    what = rule.group("what")
    nodes = [] if re.search(r"\bor reconfiguring\b", what) else sorted(named_daemons(what))
    if not nodes and not re.search(r"\bor reconfiguring\b", what):
        raise SystemExit(f"{path}: cannot tell which daemons this names: {rule.group(0)}")
    evidence["NodeName"] = [rule.group(0)]
    return {**{daemon: sorted_unique(names) for daemon, names in keys.items()}, "nodes": nodes,
            "evidence": evidence, "unexplained": unexplained}


def yaml_list(names):
    return "[" + ", ".join(names) + "]"


def render_yaml(comment, releases):
    out = ["---", f"# {comment}", "__slurm_conf_known_keys:"]
    for version, keys, _restarts in releases:
        out.append(f'  "{version}":')
        for group in YAML_GROUPS:
            out.append(f"    {group}:")
            out.extend(f"      - {name}" for name in keys[group])
    out += [
        "# slurm.conf keys whose change needs a restart of slurmctld and/or slurmd, as slurm.conf(5)",
        "# notes for each parameter; any other change takes effect on scontrol reconfigure.",
        "# nodes: the daemons to restart when a NodeName line is added, removed or changed.",
        "__slurm_conf_restart_keys:",
    ]
    for version, _keys, restarts in releases:
        out.append(f'  "{version}":')
        for daemon in DAEMONS:
            out.append(f"    {daemon}:" + ("" if restarts[daemon] else " []"))
            out.extend(f"      - {name}" for name in restarts[daemon])
        out.append(f"    nodes: {yaml_list(restarts['nodes'])}")
    return "\n".join(out) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    commands = parser.add_subparsers(dest="command", required=True)
    show = commands.add_parser("show", help="print the keys of one pair of man pages")
    show.add_argument("slurm_conf_5")
    show.add_argument("cgroup_conf_5")
    show.add_argument("--json", action="store_true", help="print JSON instead of text")
    restarts = commands.add_parser("restarts", help="print the keys whose change needs a restart, with evidence")
    restarts.add_argument("slurm_conf_5")
    restarts.add_argument("--json", action="store_true", help="print JSON instead of text")
    yaml = commands.add_parser("yaml", help="print the __slurm_conf_known_keys and __slurm_conf_restart_keys vars file")
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

    if args.command == "restarts":
        found = slurm_conf_restarts(args.slurm_conf_5)
        if args.json:
            json.dump(found, sys.stdout, indent=2)
            print()
            return 0
        for daemon in DAEMONS:
            print(f"[{daemon}] ({len(found[daemon])})")
            for name in found[daemon]:
                print(f"  {name}: {' | '.join(found['evidence'][name])}")
        print(f"[nodes] {', '.join(found['nodes']) or '(scontrol reconfigure)'}: {found['evidence']['NodeName'][0]}")
        if found["unexplained"]:
            print("[unexplained restart clauses]")
            print("\n".join(f"  {clause}" for clause in found["unexplained"]))
        return 0

    if len(args.release) % 3:
        parser.error("yaml expects VERSION SLURM_CONF_5 CGROUP_CONF_5 triples")
    triples = [args.release[i : i + 3] for i in range(0, len(args.release), 3)]
    releases = [(version, all_keys(slurm_conf, cgroup_conf), slurm_conf_restarts(slurm_conf))
                for version, slurm_conf, cgroup_conf in triples]
    unexplained = [f"{version}: {clause}" for version, _keys, found in releases for clause in found["unexplained"]]
    if unexplained:
        raise SystemExit("restart notes that no rule explains; extend RESTART_RULES or RECONFIGURE_RULES:\n  "
                         + "\n  ".join(unexplained))
    sys.stdout.write(render_yaml(args.comment, releases))
    return 0


if __name__ == "__main__":
    sys.exit(main())
