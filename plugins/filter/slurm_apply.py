"""Filters that decide how a change to slurm.conf is applied: `scontrol reconfigure`, or a
restart of slurmctld and/or slurmd where slurm.conf(5) says that one is required.

    old_text | hpc.slurm.slurm_conf_restarts(new_text, slurm_conf_restart_keys[slurm_version_series])

The restart table (roles/slurm/vars/main/slurm_conf_keys.yml, slurm_conf_restart_keys) is
generated from Debian's slurm.conf(5) by scripts/extract-slurm-conf-keys.py.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

from ansible.errors import AnsibleFilterError
from ansible_collections.hpc.slurm.plugins.filter.slurm import slurm_hostlist_expand

DAEMONS = ("slurmctld", "slurmd")
# A statement's first key tells what it defines; all other statements hold global keys.
NODE_KEY = "nodename"
# Slurm documents no restart for these (PARTITION, NODESET, DOWN NODE and FRONTEND NODE
# CONFIGURATION): scontrol reconfigure applies them.
RECONFIGURE_KEYS = ("partitionname", "nodeset", "downnodes", "frontendname")
PAIR_RE = re.compile(r'\s*(?P<key>[A-Za-z][A-Za-z0-9_]*)=(?P<value>"[^"]*"|[^\s"]*)(?=\s|$)')
INCLUDE_RE = re.compile(r"\s*(?P<key>include)\s+(?P<value>.*\S)", re.IGNORECASE)
# Per-node lists in a NodeName line: NodeName=n[1-2] NodeAddr=10.0.0.[1-2] gives n1 10.0.0.1.
PER_NODE_KEYS = ("nodeaddr", "nodehostname")


def _fail(filter_name, message):
    raise AnsibleFilterError(f"{filter_name}: {message}")


def _conf_statements(conf_text):
    """The statements of slurm.conf text: '#' comments removed (not an escaped '\\#'), lines
    ending in a backslash joined with the next one."""
    pending = ""
    for raw_line in conf_text.splitlines():
        line = re.sub(r"(?<!\\)#.*", "", raw_line).rstrip()
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        yield pending + line
        pending = ""
    if pending:
        yield pending


def _pairs(statement, filter_name):
    """[(lower-case key, key as written, value without quotes), ...] of one statement."""
    include = INCLUDE_RE.fullmatch(statement)
    if include:
        return [("include", include.group("key"), include.group("value"))]
    pairs, position = [], 0
    while statement[position:].strip():
        match = PAIR_RE.match(statement, position)
        if not match:
            _fail(filter_name, f"cannot read {statement[position:].strip()!r} in slurm.conf line "
                  f"{statement.strip()!r}: expected Key=Value pairs or 'Include FILE'")
        key, value = match.group("key"), match.group("value")
        pairs.append((key.lower(), key, value[1:-1] if value.startswith('"') else value))
        position = match.end()
    return pairs


def _expand(expression):
    try:
        return slurm_hostlist_expand(expression)
    except AnsibleFilterError:
        return [expression]


def _node_settings(settings, names):
    """{node name: settings} for one NodeName line; per-node lists are split over the names."""
    per_node = {}
    for key in PER_NODE_KEYS:
        if key in settings:
            values = _expand(settings[key])
            if len(values) == len(names):
                per_node[key] = values
    return {name: {**settings, **{key: values[index] for key, values in per_node.items()}}
            for index, name in enumerate(names)}


def _parse(text, filter_name):
    """Read slurm.conf text as data: {"global": {key: (values, ...)}, "nodes": {name: {key: value}},
    "other": {(kind, name): {key: value}}}, keys lower-case (Slurm ignores their case).

    Comments, blank lines, continuation lines and the order of unrelated lines do not matter.
    A global key given more than once (SlurmctldHost, Include) keeps its values in written
    order. NodeName=DEFAULT lines apply to the NodeName lines after them, as in Slurm."""
    conf = {"global": {}, "nodes": {}, "other": {}}
    node_defaults = {}
    for statement in _conf_statements(text):
        pairs = _pairs(statement, filter_name)
        if not pairs:
            continue
        first_key, _written, first_value = pairs[0]
        settings = {key: value for key, _written, value in pairs[1:]}
        if first_key == NODE_KEY:
            if first_value.upper() == "DEFAULT":
                node_defaults = {**node_defaults, **settings}
                continue
            conf["nodes"].update(_node_settings({**node_defaults, **settings}, _expand(first_value)))
        elif first_key in RECONFIGURE_KEYS:
            entry = conf["other"].setdefault((first_key, first_value), {})
            entry.update(settings)
        else:
            for key, _written, value in pairs:
                conf["global"][key] = conf["global"].get(key, ()) + (value,)
    return conf


def _check_text(value, what, filter_name):
    if not isinstance(value, str):
        _fail(filter_name, f"{what} must be the text of slurm.conf (a string), got {type(value).__name__} {value!r}")


def _changed(old, new):
    return sorted(key for key in set(old) | set(new) if old.get(key) != new.get(key))


def _changes(old_text, new_text, filter_name):
    _check_text(old_text, "old_text", filter_name)
    _check_text(new_text, "new_text", filter_name)
    old, new = _parse(old_text, filter_name), _parse(new_text, filter_name)
    return {
        "global": _changed(old["global"], new["global"]),
        "nodes": _changed(old["nodes"], new["nodes"]),
        "other": [f"{kind}={name}" for kind, name in _changed(old["other"], new["other"])],
    }


def _restart_table(restart_keys, filter_name):
    if not isinstance(restart_keys, Mapping):
        _fail(filter_name, "restart_keys must be a dict like slurm_conf_restart_keys['22.05'] "
              f"({{slurmctld: [keys], slurmd: [keys], nodes: [daemons]}}), got {restart_keys!r}")
    table = {}
    for entry in DAEMONS + ("nodes",):
        names = restart_keys.get(entry)
        if not isinstance(names, Sequence) or isinstance(names, str) or not all(isinstance(n, str) for n in names):
            _fail(filter_name, f"restart_keys.{entry} must be a list of strings, got {names!r}")
        table[entry] = {name.lower() for name in names}
    unknown = sorted(table["nodes"] - set(DAEMONS))
    if unknown:
        _fail(filter_name, f"restart_keys.nodes may name only {' and '.join(DAEMONS)}, got {', '.join(unknown)}")
    return table


def slurm_conf_changes(old_text, new_text):
    """What differs between two slurm.conf texts, read as data: {"global": [lower-case keys
    added, removed or changed], "nodes": [node names added, removed or redefined], "other":
    ["partitionname=NAME", ...] for changed PartitionName, NodeSet, DownNodes, FrontendName}.
    Meant for messages that say why a daemon is restarted."""
    if old_text is None:
        old_text = ""
    return _changes(old_text, new_text, "slurm_conf_changes")


def slurm_conf_restarts(old_text, new_text, restart_keys):
    """Return the sorted daemons ("slurmctld", "slurmd") to restart for the change from
    old_text to new_text; [] means `scontrol reconfigure` applies it.

    restart_keys is one release of slurm_conf_restart_keys: a changed global key restarts
    the daemons whose list names it (case-insensitively); an added, removed or redefined
    node restarts restart_keys.nodes; partition changes never need a restart. Keys are
    compared case-insensitively, values exactly (quotes removed). old_text None or blank is
    a first start: both daemons.
    """
    filter_name = "slurm_conf_restarts"
    table = _restart_table(restart_keys, filter_name)
    _check_text(new_text, "new_text", filter_name)
    if old_text is None or (isinstance(old_text, str) and not old_text.strip()):
        return list(DAEMONS)
    changes = _changes(old_text, new_text, filter_name)
    daemons = {daemon for daemon in DAEMONS if table[daemon] & set(changes["global"])}
    if changes["nodes"]:
        daemons |= table["nodes"]
    return sorted(daemons)


class FilterModule:
    """slurm.conf change filters."""

    def filters(self):
        return {function.__name__: function for function in (slurm_conf_restarts, slurm_conf_changes)}
