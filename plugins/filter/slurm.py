"""Filters that turn inventory facts into slurm.conf text and check slurm.conf against hardware.

Called from the roles as hpc.slurm.<filter name>. Bad input raises AnsibleFilterError with a
message that names the filter and the offending key or node.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Mapping, Sequence

from ansible.errors import AnsibleFilterError

HARDWARE_KEYS = ("CPUs", "Boards", "SocketsPerBoard", "CoresPerSocket", "ThreadsPerCore", "RealMemory")
KEY_RE = re.compile(r"[A-Za-z][A-Za-z0-9_]*")
TRAILING_NUMBER_RE = re.compile(r"(.*?)(\d+)")
RANGE_RE = re.compile(r"(\d+)(?:-(\d+))?")
CONF_PAIR_RE = re.compile(r'([A-Za-z][A-Za-z0-9_]*)=("[^"]*"|\S*)')
# A typo such as node[1-1000000000] must fail instead of hanging the play.
MAX_RANGE_SIZE = 65536


def _fail(filter_name, message):
    raise AnsibleFilterError(f"{filter_name}: {message}")


def _to_int(value, what, filter_name):
    if isinstance(value, bool) or not re.fullmatch(r"\d+", str(value).strip()):
        _fail(filter_name, f"{what} must be a non-negative integer, got {value!r}")
    return int(value)


def _is_list(value):
    return isinstance(value, Sequence) and not isinstance(value, str)


def _split_host_name(name):
    if not isinstance(name, str) or not name or re.search(r"[\s\[\],]", name):
        _fail("slurm_hostlist", f"invalid host name {name!r}")
    match = TRAILING_NUMBER_RE.fullmatch(name)
    return (match.group(1), match.group(2)) if match else (name, None)


def _number_ranges(digit_strings):
    runs = []
    for digits in sorted(digit_strings, key=int):
        if runs and int(digits) == int(runs[-1][1]) + 1:
            runs[-1][1] = digits
        else:
            runs.append([digits, digits])
    return ",".join(low if low == high else f"{low}-{high}" for low, high in runs)


def slurm_hostlist(names):
    """Compress host names into a Slurm hostlist: ['node01', 'node02', 'login'] -> 'login,node[01-02]'.

    Only the trailing number of a name is ranged. Zero-padded numbers keep their width, and
    names whose padding differs (node1, node02) stay in separate groups. Duplicates are removed;
    the result is sorted by prefix, then number.
    """
    if not _is_list(names):
        _fail("slurm_hostlist", f"expected a list of host names, got {names!r}")
    split_names = [_split_host_name(name) for name in set(names)]
    padded = {(prefix, len(digits)) for prefix, digits in split_names
              if digits and len(digits) > 1 and digits.startswith("0")}
    groups = {}
    for prefix, digits in split_names:
        # An unpadded number joins a padded group of its own width (node10 with node01..node09);
        # the others form a group of width 0, where Slurm pads nothing. Width -1: no number.
        width = -1 if digits is None else len(digits) if (prefix, len(digits)) in padded else 0
        groups.setdefault((prefix, width), []).extend([digits] if digits else [])

    def prefix_then_number(group):
        (prefix, width), digit_strings = group
        return prefix, min(map(int, digit_strings), default=-1), width

    return ",".join(f"{prefix}[{_number_ranges(digits)}]" if len(digits) > 1 else prefix + "".join(digits)
                    for (prefix, _width), digits in sorted(groups.items(), key=prefix_then_number))


def _split_top_level_commas(expr):
    items, current, depth = [], "", 0
    for char in expr:
        depth += {"[": 1, "]": -1}.get(char, 0)
        if depth not in (0, 1):
            _fail("slurm_hostlist_expand", f"unbalanced or nested brackets in {expr!r}")
        if char == "," and depth == 0:
            items.append(current)
            current = ""
        else:
            current += char
    if depth:
        _fail("slurm_hostlist_expand", f"unclosed '[' in {expr!r}")
    return items + [current]


def _expand_bracket(body, expr):
    numbers = []
    for part in body.split(","):
        match = RANGE_RE.fullmatch(part)
        if not match:
            _fail("slurm_hostlist_expand", f"bad range {part!r} in {expr!r}: expected N or N-M with N, M digits")
        low, high = match.group(1), match.group(2) or match.group(1)
        if int(high) < int(low):
            _fail("slurm_hostlist_expand", f"range {part!r} in {expr!r} ends before it starts")
        if int(high) - int(low) >= MAX_RANGE_SIZE:
            _fail("slurm_hostlist_expand", f"range {part!r} in {expr!r} has more than {MAX_RANGE_SIZE} hosts")
        numbers.extend(str(number).zfill(len(low)) for number in range(int(low), int(high) + 1))
    return numbers


def slurm_hostlist_expand(expr):
    """Expand a Slurm hostlist into host names, in written order: 'a[1-3],b' -> ['a1', 'a2', 'a3', 'b'].

    Several bracket groups in one name expand to every combination (rack[1-2]-n[1-2]).
    A range keeps the zero padding of its first number (n[08-10] -> n08, n09, n10).
    """
    if not isinstance(expr, str):
        _fail("slurm_hostlist_expand", f"expected a hostlist string, got {expr!r}")
    if not expr.strip():
        return []
    hosts = []
    for item in _split_top_level_commas(expr.strip()):
        if not item or re.search(r"\s", item):
            _fail("slurm_hostlist_expand", f"empty name or whitespace inside a name in {expr!r}")
        pieces = re.split(r"(\[[^\]]*\])", item)
        choices = [_expand_bracket(piece[1:-1], expr) if piece.startswith("[") else [piece] for piece in pieces]
        hosts.extend("".join(combination) for combination in itertools.product(*choices))
    return hosts


def slurm_parse_node_config(text):
    """Parse `slurmd -C` output into a dict: NodeName (str), CPUs, Boards, SocketsPerBoard,
    CoresPerSocket, ThreadsPerCore and RealMemory (int), other keys such as Gres as strings.

    UpTime is dropped; lines that do not start with Key=Value (slurmd log messages) are skipped.
    """
    if not isinstance(text, str):
        _fail("slurm_parse_node_config", f"expected the text printed by slurmd -C, got {text!r}")
    config = {}
    for line in text.splitlines():
        tokens = line.split()
        if not tokens or not CONF_PAIR_RE.match(tokens[0]):
            continue
        for token in tokens:
            key, separator, value = token.partition("=")
            if not separator:
                _fail("slurm_parse_node_config", f"token {token!r} is not Key=Value in line {line!r}")
            if key != "UpTime":
                config[key] = value
    missing = [key for key in ("NodeName",) + HARDWARE_KEYS if key not in config]
    if missing:
        _fail("slurm_parse_node_config", f"{', '.join(missing)} missing from slurmd -C output {text!r}")
    for key in HARDWARE_KEYS:
        config[key] = _to_int(config[key], key, "slurm_parse_node_config")
    return config


def slurm_node_config(node, memory_reserve_mb=0):
    """One compute node's slurm.conf settings as data, from {name, hardware, params?}.

    `hardware` is a dict from slurm_parse_node_config; only its six hardware keys are taken (a
    detected Gres needs gres.conf, so it is not written implicitly). RealMemory is lowered by
    memory_reserve_mb and must stay >= 1. `params` (Features, Weight, ...) follow, sorted by key;
    a hardware key there (RealMemory, to offer less memory) replaces the detected value, which
    slurm_node_mismatches then checks against slurmd -C. State=UNKNOWN unless params set State.
    NodeName and NodeAddr are not part of it: they come from the host.
    """
    filter_name = "slurm_node_config"
    reserve = _to_int(memory_reserve_mb, "memory_reserve_mb", filter_name)
    if not (isinstance(node, Mapping) and isinstance(node.get("name"), str)
            and isinstance(node.get("hardware"), Mapping)):
        _fail(filter_name, f"each node needs a name and a hardware dict, got {node!r}")
    name, hardware, params = node["name"], node["hardware"], node.get("params") or {}
    settings = {key: _to_int(hardware.get(key), f"node {name}: hardware {key}", filter_name)
                for key in HARDWARE_KEYS}
    settings["RealMemory"] -= reserve
    if settings["RealMemory"] < 1:
        _fail(filter_name, f"node {name} has RealMemory={hardware['RealMemory']} MB, "
              f"which memory_reserve_mb={reserve} would leave below 1 MB; lower the reserve")
    if not isinstance(params, Mapping):
        _fail(filter_name, f"node {name}: params must be a dict, got {params!r}")
    clashes = sorted(str(key) for key in params if str(key).lower() in {"nodename", "nodeaddr", "nodehostname"})
    if clashes:
        _fail(filter_name, f"node {name}: slurm_node_settings may not set {', '.join(clashes)}; "
              "they come from the node's host name and slurm_node_address")
    hardware_keys = {key.lower(): key for key in HARDWARE_KEYS}
    for key, value in sorted(params.items(), key=lambda item: str(item[0])):
        settings[hardware_keys.get(str(key).lower(), key)] = value
    if "state" not in {str(key).lower() for key in params}:
        settings["State"] = "UNKNOWN"
    return settings


def slurm_mem_per_cpu(settings):
    """MiB per CPU a node offers (RealMemory // CPUs of slurm_node_config's settings)."""
    return _to_int(settings.get("RealMemory"), "RealMemory", "slurm_mem_per_cpu") // max(
        1, _to_int(settings.get("CPUs"), "CPUs", "slurm_mem_per_cpu"))


def slurm_node_lines(nodes):
    """slurm.conf NodeName lines from [{name, settings, address?}, ...] (settings from
    slurm_node_config). Nodes with equal settings and no address share one line with a
    compressed hostlist; a node with an address gets its own line with NodeAddr. Lines are
    sorted by hostlist."""
    if not _is_list(nodes):
        _fail("slurm_node_lines", f"expected a list of node dicts, got {nodes!r}")
    groups, seen = {}, set()
    for node in nodes:
        if not (isinstance(node, Mapping) and isinstance(node.get("name"), str)
                and isinstance(node.get("settings"), Mapping)):
            _fail("slurm_node_lines", f"each node needs a name and its settings, got {node!r}")
        name, address = node["name"], node.get("address")
        if name in seen:
            _fail("slurm_node_lines", f"node {name} is listed twice")
        seen.add(name)
        # Each address belongs to one host, so an addressed node never shares its line.
        group = (slurm_conf_line(node["settings"]), address, name if address else None)
        groups.setdefault(group, []).append(name)
    lines = [f"{slurm_conf_line({'NodeName': slurm_hostlist(names), 'NodeAddr': address})} {text}"
             for (text, address, _name), names in groups.items()]
    return sorted(lines, key=lambda line: line.split(" ", 1)[0])


def slurm_partition_settings(partitions, node_names):
    """Partitions as slurm.conf settings, one dict per partition in the user's order.

    `partitions` is slurm_partitions ({name, nodes?, default?, default_time?, max_time?,
    state?, settings?}); `node_names` maps every inventory name and Slurm node name of a
    compute host to its Slurm node name. Refuses what Slurm would misread or the roles could
    not write: a missing, reserved or repeated name, a non-boolean default, more than one
    default, settings that repeat the partition's own fields, unknown or no nodes.
    """
    filter_name = "slurm_partition_settings"
    if not _is_list(partitions) or not isinstance(node_names, Mapping):
        _fail(filter_name, "expected slurm_partitions (a list) and a mapping of node names")
    fields = {"name", "nodes", "default", "default_time", "max_time", "state", "settings"}
    owned = {"partitionname", "nodes", "default", "defaulttime", "maxtime", "state"}
    result, names = [], set()
    for partition in partitions:
        if not isinstance(partition, Mapping):
            _fail(filter_name, f"each partition is a dict with a name, got {partition!r}")
        name = partition.get("name")
        if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", name):
            _fail(filter_name, f"Partition {name if name is not None else '(no name)'}: give it a 'name' made "
                  "of letters, digits, '_', '.' and '-', starting with a letter or digit")
        if name.upper() == "DEFAULT":
            _fail(filter_name, f"Partition {name}: DEFAULT is Slurm's name for the defaults of every "
                  "partition; choose another name")
        if name in names:
            _fail(filter_name, f"Partition {name} is declared twice in slurm_partitions")
        names.add(name)
        unknown_fields = sorted(str(key) for key in partition if key not in fields)
        if unknown_fields:
            _fail(filter_name, f"Partition {name}: unknown field(s) {', '.join(unknown_fields)}; "
                  f"use {', '.join(sorted(fields))} (other parameters go in 'settings')")
        default = partition.get("default", False)
        if not isinstance(default, bool):
            _fail(filter_name, f"Partition {name}: default must be true or false, got {default!r}")
        settings = partition.get("settings") or {}
        if not isinstance(settings, Mapping):
            _fail(filter_name, f"Partition {name}: settings must be a dict, got {settings!r}")
        clashes = sorted(str(key) for key in settings if str(key).lower() in owned)
        if clashes:
            _fail(filter_name, f"Partition {name}: settings may not set {', '.join(clashes)}; use the "
                  "partition's name, nodes, default, default_time, max_time and state fields")
        wanted = partition.get("nodes", list(dict.fromkeys(node_names.values())))
        if not _is_list(wanted) or not wanted:
            _fail(filter_name, f"Partition {name} has no nodes: list compute hosts in 'nodes', or leave "
                  "'nodes' out for every compute node")
        unknown = [str(node) for node in wanted if node not in node_names]
        if unknown:
            _fail(filter_name, f"Partition {name} names nodes that are not compute hosts of this inventory: "
                  f"{', '.join(unknown)}. Known compute nodes: {', '.join(sorted(set(node_names)))}.")
        line = {"PartitionName": name, "Nodes": slurm_hostlist([node_names[node] for node in wanted]),
                "Default": "YES" if default else "NO", "DefaultTime": partition.get("default_time"),
                "MaxTime": partition.get("max_time"), "State": partition.get("state", "UP")}
        line.update(settings)
        slurm_conf_line(line)  # refuses values slurm.conf cannot hold, naming the key
        result.append({key: value for key, value in line.items() if value is not None})
    defaults = [line["PartitionName"] for line in result if line["Default"] == "YES"]
    if len(defaults) > 1:
        _fail(filter_name, f"Partitions {', '.join(defaults)} all have default: true; Slurm takes one default partition")
    return result


def _format_value(key, value, filter_name):
    text_parts = []
    for item in value if _is_list(value) else [value]:
        if isinstance(item, bool):
            text_parts.append("YES" if item else "NO")
        elif isinstance(item, (str, int, float)):
            text_parts.append(str(item))
        else:
            _fail(filter_name, f"key {key}: unsupported value {item!r} (use a string, number, boolean or list of them)")
    text = ",".join(text_parts)
    problem = ("is empty; set it to null to leave the key out" if not text
               else "contains a line break" if "\n" in text or "\r" in text
               else "contains '#', which starts a comment in slurm.conf" if "#" in text
               else "ends in '\\', which continues the line in slurm.conf" if text.endswith("\\")
               else "contains a double quote, which slurm.conf cannot escape" if '"' in text
               else None)
    if problem:
        _fail(filter_name, f"key {key}: value {text!r} {problem}")
    return f'"{text}"' if re.search(r"\s", text) else text


def _conf_pairs(params, filter_name):
    if not isinstance(params, Mapping):
        _fail(filter_name, f"expected a dict of slurm.conf keys, got {params!r}")
    pairs = []
    for key, value in params.items():
        if not isinstance(key, str) or not KEY_RE.fullmatch(key):
            _fail(filter_name, f"invalid key {key!r}: a key is letters, digits and '_', starting with a letter")
        if value is not None:
            pairs.append(f"{key}={_format_value(key, value, filter_name)}")
    return pairs


def slurm_conf_line(params):
    """Format a dict as one slurm.conf line 'Key=Value Key2=Value2', keeping dict order.

    Booleans become YES/NO (strings pass unchanged), lists are comma-joined, values with
    whitespace are double-quoted, None values are left out. Values with a line break, '#' or
    a double quote, empty values and keys that are not [A-Za-z][A-Za-z0-9_]* are rejected.
    """
    return " ".join(_conf_pairs(params, "slurm_conf_line"))


def slurm_conf_render(settings):
    """Format a dict as slurm.conf lines 'Key=Value', one per key in dict order, joined by
    newlines. Values follow slurm_conf_line's rules; a None value removes the key, so users
    can delete a default by setting it to null."""
    return "\n".join(_conf_pairs(settings, "slurm_conf_render"))


def slurm_node_mismatches(definition, detected, memory_reserve_mb=0):
    """Compare a node's slurm.conf definition (from slurm_node_definition) with the hardware
    slurmd -C detected (from slurm_parse_node_config); return readable messages, [] if they agree.

    CPUs, Boards, Sockets, SocketsPerBoard, CoresPerSocket and ThreadsPerCore must be equal
    where slurm.conf sets them. RealMemory must not exceed the detected memory (Slurm would
    drain the node), nor eat into memory_reserve_mb.
    """
    filter_name = "slurm_node_mismatches"
    if not isinstance(definition, Mapping) or not isinstance(detected, Mapping):
        _fail(filter_name, "expected a node definition dict and a detected hardware dict")
    reserve = _to_int(memory_reserve_mb, "memory_reserve_mb", filter_name)
    configured = {str(key).lower(): (key, value) for key, value in definition.items()}
    found = {key.lower(): _to_int(detected.get(key), f"detected {key}", filter_name) for key in HARDWARE_KEYS}
    found["sockets"] = found["boards"] * found["socketsperboard"]
    messages = []
    for lower_key in ("cpus", "boards", "sockets", "socketsperboard", "corespersocket", "threadspercore"):
        if lower_key in configured:
            key, value = configured[lower_key]
            if _to_int(value, f"slurm.conf {key}", filter_name) != found[lower_key]:
                messages.append(f"{key}={value} in slurm.conf but slurmd -C reports {found[lower_key]}")
    if "realmemory" in configured:
        key, value = configured["realmemory"]
        memory, available = _to_int(value, f"slurm.conf {key}", filter_name), found["realmemory"]
        if memory > available:
            messages.append(f'{key}={memory} in slurm.conf but slurmd -C reports {available} MB: '
                            f'the node would be drained for "Low RealMemory"')
        elif memory > available - reserve:
            messages.append(f"{key}={memory} in slurm.conf leaves less than memory_reserve_mb={reserve} MB "
                            f"of the {available} MB that slurmd -C reports to the operating system")
    return messages


def slurm_unknown_keys(settings, known_keys):
    """Return the sorted keys of `settings` that are not in `known_keys`, compared
    case-insensitively because Slurm parses its keys that way."""
    if not isinstance(settings, Mapping) or not _is_list(known_keys):
        _fail("slurm_unknown_keys", "expected a settings dict and a list of known key names")
    known = {str(key).lower() for key in known_keys}
    return sorted(key for key in settings if str(key).lower() not in known)


def slurm_canonical_keys(settings, known_keys):
    """Respell the keys of `settings` as `known_keys` spells them (Slurm ignores case), so a
    user's 'selecttype' overrides the roles' 'SelectType' instead of adding a second line.
    Keys not in `known_keys` are kept as they are."""
    if not isinstance(settings, Mapping) or not _is_list(known_keys):
        _fail("slurm_canonical_keys", "expected a settings dict and a list of known key names")
    spelling = {str(key).lower(): key for key in known_keys}
    return {spelling.get(str(key).lower(), key): value for key, value in settings.items()}


class FilterModule:
    """Slurm hostlist and slurm.conf filters."""

    def filters(self):
        return {function.__name__: function for function in (
            slurm_hostlist, slurm_hostlist_expand, slurm_parse_node_config, slurm_node_config,
            slurm_mem_per_cpu, slurm_node_lines, slurm_partition_settings, slurm_conf_line,
            slurm_conf_render, slurm_node_mismatches, slurm_unknown_keys, slurm_canonical_keys)}
