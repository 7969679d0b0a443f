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


def slurm_node_lines(nodes, memory_reserve_mb=0):
    """Build slurm.conf NodeName lines from [{name, hardware, address?, params?}, ...].

    `hardware` is a dict from slurm_parse_node_config; RealMemory is lowered by
    memory_reserve_mb and must stay >= 1. Nodes with equal settings and no address share one
    line with a compressed hostlist; a node with an address gets its own line with NodeAddr.
    `params` (e.g. Features, Weight) are appended sorted by key, then State=UNKNOWN unless
    params set State. A hardware key in `params` (e.g. RealMemory, to declare less memory)
    replaces the detected value; slurm_node_mismatches then checks it against slurmd -C. Only the six hardware keys above are taken from `hardware` (a detected
    Gres needs gres.conf, so it is not written implicitly). Lines are sorted by hostlist.
    """
    reserve = _to_int(memory_reserve_mb, "memory_reserve_mb", "slurm_node_lines")
    if not _is_list(nodes):
        _fail("slurm_node_lines", f"expected a list of node dicts, got {nodes!r}")
    generated_keys = {"nodename", "nodeaddr"}
    hardware_keys = {key.lower(): key for key in HARDWARE_KEYS}
    groups, seen = {}, set()
    for node in nodes:
        if not (isinstance(node, Mapping) and isinstance(node.get("name"), str)
                and isinstance(node.get("hardware"), Mapping)):
            _fail("slurm_node_lines", f"each node needs a name and a hardware dict, got {node!r}")
        name, hardware, params = node["name"], node["hardware"], node.get("params") or {}
        if name in seen:
            _fail("slurm_node_lines", f"node {name} is listed twice")
        seen.add(name)
        settings = {key: _to_int(hardware.get(key), f"node {name}: hardware {key}", "slurm_node_lines")
                    for key in HARDWARE_KEYS}
        settings["RealMemory"] -= reserve
        if settings["RealMemory"] < 1:
            _fail("slurm_node_lines", f"node {name} has RealMemory={hardware['RealMemory']} MB, "
                  f"which memory_reserve_mb={reserve} would leave below 1 MB; lower the reserve")
        if not isinstance(params, Mapping):
            _fail("slurm_node_lines", f"node {name}: params must be a dict, got {params!r}")
        clashes = sorted(str(key) for key in params if str(key).lower() in generated_keys)
        if clashes:
            _fail("slurm_node_lines", f"node {name}: params may not set {', '.join(clashes)}; "
                  "they come from the node's name and address")
        for key, value in sorted(params.items(), key=lambda item: str(item[0])):
            settings[hardware_keys.get(str(key).lower(), key)] = value
        if "state" not in {str(key).lower() for key in params}:
            settings["State"] = "UNKNOWN"
        address = node.get("address")
        # Each address belongs to one host, so an addressed node never shares its line.
        group = (slurm_conf_line(settings), address, name if address else None)
        groups.setdefault(group, []).append(name)
    lines = [f"{slurm_conf_line({'NodeName': slurm_hostlist(names), 'NodeAddr': address})} {text}"
             for (text, address, _name), names in groups.items()]
    return sorted(lines, key=lambda line: line.split(" ", 1)[0])


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


def _conf_statements(conf_text):
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


def slurm_node_definition(conf_text, node_name):
    """Return the slurm.conf parameters (strings, keys as written, NodeName left out) of one node.

    Follows NodeName=DEFAULT lines (they apply to the NodeName lines after them and accumulate),
    expands hostlists, strips '#' comments and joins lines continued with a trailing backslash.
    Keys are matched case-insensitively, as Slurm does.
    """
    if not isinstance(conf_text, str) or not isinstance(node_name, str):
        _fail("slurm_node_definition", "expected slurm.conf text and a node name")
    defaults, found = {}, None
    for statement in _conf_statements(conf_text):
        if not re.match(r"\s*NodeName=", statement, re.IGNORECASE):
            continue
        pairs = CONF_PAIR_RE.findall(statement)
        settings = dict(defaults)
        settings.update((key.lower(), (key, value.strip('"'))) for key, value in pairs[1:])
        if pairs[0][1].upper() == "DEFAULT":
            defaults = settings
        elif node_name in slurm_hostlist_expand(pairs[0][1]):
            if found is not None:
                _fail("slurm_node_definition", f"node {node_name} is defined on more than one NodeName line")
            found = settings
    if found is None:
        _fail("slurm_node_definition", f"no NodeName line in slurm.conf defines node {node_name}")
    return dict(found.values())


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
            slurm_hostlist, slurm_hostlist_expand, slurm_parse_node_config, slurm_node_lines,
            slurm_conf_line, slurm_conf_render, slurm_node_definition, slurm_node_mismatches,
            slurm_unknown_keys, slurm_canonical_keys)}
