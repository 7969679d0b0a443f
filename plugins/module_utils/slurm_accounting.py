# -*- coding: utf-8 -*-
# Copyright: contributors to the hpc.slurm collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Slurm accounting as data: sacctmgr argument lists, output parsers, value normalisers, checks of
a declaration, and the planner that turns (declared, current) into sacctmgr commands.

Everything here is a pure function, so the module (hpc.slurm.slurm_accounting) and the filter of
the check play (hpc.slurm.slurm_accounting_problems) share one table of limit names and can be
tested on recorded real sacctmgr output. Arguments are always lists, never joined strings.

The tables follow sacctmgr(1) of Debian 12 (Slurm 22.05.8) and Debian 13 (Slurm 24.11.5):
"GENERAL SPECIFICATIONS FOR ASSOCIATION BASED ENTITIES" and "SPECIFICATIONS FOR QOS" for the
names, "LIST/SHOW ... FORMAT OPTIONS" for the columns that show them.
"""

import re
from collections.abc import Mapping

C_LOCALE = {"LANG": "C", "LC_ALL": "C", "LC_MESSAGES": "C"}
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
STATES = ("present", "absent")
# Never removed by exclusive=true: Slurm creates them and needs them.
PROTECTED_ACCOUNTS = frozenset(("root",))
PROTECTED_USERS = frozenset(("root",))
PROTECTED_QOS = frozenset(("normal",))

# Kinds of value; each has a normaliser (declared or shown text -> comparable value, None = unset)
# and a renderer (comparable value -> sacctmgr's text).
COUNT = "count"            # an integer; -1 clears
TIME = "time"              # Slurm time: minutes, [D-]HH:MM[:SS]; -1 clears
SECONDS = "seconds"        # a bare number is seconds (GraceTime); shown as HH:MM:SS
TRES = "tres"              # cpu=4,mem=2G,gres/gpu=1; per-TRES -1 clears
FLOAT = "float"
QOS_LIST = "qos_list"      # a set of QOS names
QOS_NAME = "qos_name"
QOS_FLAGS = "qos_flags"    # a set of flag names
PREEMPT_MODE = "preempt_mode"
FAIRSHARE = "fairshare"    # an integer or "parent"


def _limit(kind, column, *aliases):
    return {"kind": kind, "column": column, "aliases": aliases}


# Canonical name -> kind, the `format=` column that shows it, other names sacctmgr takes for it.
ASSOCIATION_LIMITS = {
    "DefaultQOS": _limit(QOS_NAME, "DefaultQOS"),
    "Fairshare": _limit(FAIRSHARE, "Fairshare", "Share"),
    "GrpJobs": _limit(COUNT, "GrpJobs"),
    "GrpJobsAccrue": _limit(COUNT, "GrpJobsAccrue"),
    "GrpSubmitJobs": _limit(COUNT, "GrpSubmitJobs", "GrpSubmit"),
    "GrpTRES": _limit(TRES, "GrpTRES"),
    "GrpTRESMins": _limit(TRES, "GrpTRESMins"),
    "GrpTRESRunMins": _limit(TRES, "GrpTRESRunMins"),
    "GrpWall": _limit(TIME, "GrpWall"),
    "MaxJobs": _limit(COUNT, "MaxJobs"),
    "MaxJobsAccrue": _limit(COUNT, "MaxJobsAccrue"),
    "MaxSubmitJobs": _limit(COUNT, "MaxSubmitJobs", "MaxSubmit"),
    "MaxTRES": _limit(TRES, "MaxTRES", "MaxTRESPerJob", "MaxTRESPJ"),
    "MaxTRESMins": _limit(TRES, "MaxTRESMins", "MaxTRESMinsPerJob", "MaxTRESMinsPJ"),
    "MaxTRESPerNode": _limit(TRES, "MaxTRESPerNode", "MaxTRESPN"),
    "MaxWall": _limit(TIME, "MaxWall", "MaxWallDurationPerJob"),
    "Priority": _limit(COUNT, "Priority"),
    "QOS": _limit(QOS_LIST, "QOS", "QosLevel"),
}
QOS_LIMITS = {
    "Flags": _limit(QOS_FLAGS, "Flags"),
    "GraceTime": _limit(SECONDS, "GraceTime"),
    "GrpJobs": _limit(COUNT, "GrpJobs"),
    "GrpJobsAccrue": _limit(COUNT, "GrpJobsAccrue"),
    "GrpSubmitJobs": _limit(COUNT, "GrpSubmitJobs", "GrpSubmit"),
    "GrpTRES": _limit(TRES, "GrpTRES"),
    "GrpTRESMins": _limit(TRES, "GrpTRESMins"),
    "GrpTRESRunMins": _limit(TRES, "GrpTRESRunMins"),
    "GrpWall": _limit(TIME, "GrpWall"),
    "LimitFactor": _limit(FLOAT, "LimitFactor"),
    "MaxJobsAccruePerAccount": _limit(COUNT, "MaxJobsAccruePA", "MaxJobsAccruePA"),
    "MaxJobsAccruePerUser": _limit(COUNT, "MaxJobsAccruePU", "MaxJobsAccruePU"),
    "MaxJobsPerAccount": _limit(COUNT, "MaxJobsPA", "MaxJobsPA"),
    "MaxJobsPerUser": _limit(COUNT, "MaxJobsPU", "MaxJobsPU"),
    "MaxSubmitJobsPerAccount": _limit(COUNT, "MaxSubmitJobsPA", "MaxSubmitJobsPA"),
    "MaxSubmitJobsPerUser": _limit(COUNT, "MaxSubmitJobsPU", "MaxSubmitJobsPU"),
    "MaxTRES": _limit(TRES, "MaxTRES", "MaxTRESPerJob", "MaxTRESPJ"),
    "MaxTRESMins": _limit(TRES, "MaxTRESMins", "MaxTRESMinsPerJob", "MaxTRESMinsPJ"),
    "MaxTRESPerAccount": _limit(TRES, "MaxTRESPA", "MaxTRESPA"),
    "MaxTRESPerNode": _limit(TRES, "MaxTRESPerNode", "MaxTRESPN"),
    "MaxTRESPerUser": _limit(TRES, "MaxTRESPU", "MaxTRESPU"),
    # Documented from 24.11 on; 22.05's sacctmgr refuses them and shows them as empty columns.
    "MaxTRESRunMinsPerAccount": _limit(TRES, "MaxTRESRunMinsPA", "MaxTRESRunMinsPA"),
    "MaxTRESRunMinsPerUser": _limit(TRES, "MaxTRESRunMinsPU", "MaxTRESRunMinsPU"),
    "MaxWall": _limit(TIME, "MaxWall", "MaxWallDurationPerJob"),
    "MinPrioThreshold": _limit(COUNT, "MinPrioThreshold"),
    "MinTRES": _limit(TRES, "MinTRES", "MinTRESPerJob"),
    "Preempt": _limit(QOS_LIST, "Preempt"),
    "PreemptExemptTime": _limit(TIME, "PreemptExemptTime"),
    "PreemptMode": _limit(PREEMPT_MODE, "PreemptMode"),
    "Priority": _limit(COUNT, "Priority"),
    "UsageFactor": _limit(FLOAT, "UsageFactor"),
    "UsageThreshold": _limit(FLOAT, "UsageThreshold"),
}
LIMITS = {"association": ASSOCIATION_LIMITS, "qos": QOS_LIMITS}
# QOS flags of sacctmgr(1); Relative is 24.11's.
QOS_FLAG_NAMES = ("DenyOnLimit", "EnforceUsageThreshold", "NoDecay", "NoReserve", "OverPartQOS",
                  "PartitionMaxNodes", "PartitionMinNodes", "PartitionTimeLimit", "Relative",
                  "RequiresReservation", "UsageFactorSafe")
PREEMPT_MODES = ("off", "cancel", "gang", "requeue", "suspend", "within", "cluster")
# TRES types Slurm knows without a name, and the ones that always take one (gres/gpu).
TRES_PLAIN = ("cpu", "mem", "node", "energy", "billing", "vmem", "pages")
TRES_NAMED = ("gres", "license", "bb", "fs", "ic")
# Memory TRES are counted in megabytes; sacctmgr shows them with the largest whole unit (2048 -> 2G).
MEMORY_TRES = ("mem", "vmem")
MEMORY_UNITS = {"K": 1.0 / 1024, "M": 1, "G": 1024, "T": 1024 ** 2, "P": 1024 ** 3}
UNSET_WORDS = ("", "-1", "unlimited", "infinite", "none")

_TIME_RE = re.compile(r"^(?:(\d+)-)?(\d+)(?::(\d+))?(?::(\d+))?$")
_TRES_VALUE_RE = re.compile(r"^(-1|\d+)([KMGTP]?)$", re.IGNORECASE)
_TRES_KEY_RE = re.compile(r"^[a-z]+(?:/[A-Za-z0-9_.:-]+)?$", re.IGNORECASE)


class AccountingError(ValueError):
    """A declared value that cannot be normalised; the message says which and why."""


def canonical_limit_name(kind, name):
    """sacctmgr accepts option names in any case; returns the table's spelling, or None."""
    wanted = str(name).lower()
    for canonical, spec in LIMITS[kind].items():
        if wanted == canonical.lower() or wanted in (alias.lower() for alias in spec["aliases"]):
            return canonical
    return None


# --------------------------------------------------------------------------- values

def parse_time(text, bare_unit=60):
    """Slurm time text -> seconds; None when unset. A bare number counts `bare_unit` seconds.

    Forms (sbatch(1) --time): M, M:S, H:M:S, D-H, D-H:M, D-H:M:S.
    """
    text = str(text).strip()
    if text.lower() in UNSET_WORDS:
        return None
    match = _TIME_RE.match(text)
    if not match:
        raise AccountingError("%r is not a Slurm time (minutes, HH:MM:SS or D-HH:MM:SS)" % text)
    days, first, second, third = match.groups()
    first, second, third = int(first), second and int(second), third and int(third)
    if days is not None:
        # D-H, D-H:M, D-H:M:S
        return int(days) * 86400 + first * 3600 + (second or 0) * 60 + (third or 0)
    if third is not None:
        return first * 3600 + second * 60 + third
    if second is not None:
        return first * 60 + second
    return first * bare_unit


def render_time(seconds):
    days, rest = divmod(seconds, 86400)
    text = "%02d:%02d:%02d" % (rest // 3600, rest % 3600 // 60, rest % 60)
    return "%d-%s" % (days, text) if days else text


def parse_tres(text):
    """'cpu=4,mem=2G,gres/gpu=1' -> {'cpu': 4, 'gres/gpu': 1, 'mem': 2048}; a key set to -1 is
    dropped (that clears it), so {} means no limit."""
    text = str(text).strip()
    if text.lower() in UNSET_WORDS:
        return {}
    tres = {}
    for item in text.split(","):
        key, equals, value = item.strip().partition("=")
        key = key.strip().lower()
        match = _TRES_VALUE_RE.match(value.strip())
        if not equals or not key or not match:
            raise AccountingError("%r is not TRES=count (in %r)" % (item.strip(), text))
        problem = tres_key_problem(key)
        if problem:
            raise AccountingError(problem)
        number, unit = match.group(1), match.group(2).upper()
        if number == "-1":
            tres.pop(key, None)
            continue
        if unit and key not in MEMORY_TRES:
            raise AccountingError("%r: only mem and vmem take a unit (K, M, G, T, P), %s does not" % (item, key))
        tres[key] = int(round(int(number) * MEMORY_UNITS[unit or "M"])) if key in MEMORY_TRES else int(number)
    return tres


def tres_key_problem(key):
    """Why a TRES name is wrong, or None."""
    base = key.split("/", 1)[0]
    if not _TRES_KEY_RE.match(key) or (base in TRES_PLAIN and "/" in key) or (base in TRES_NAMED and "/" not in key):
        return "%r is not a TRES name (cpu, mem, node, billing, energy, gres/NAME, license/NAME, ...)" % key
    if base not in TRES_PLAIN + TRES_NAMED:
        return ("%r is not a TRES name: generic resources are written gres/%s, licenses license/%s"
                % (key, key, key))
    return None


def render_tres(tres):
    return ",".join("%s=%s" % (key, "%dM" % value if key in MEMORY_TRES else value)
                    for key, value in sorted(tres.items()))


def _name_set(text):
    if isinstance(text, (list, tuple, set, frozenset)):
        items = text
    else:
        text = str(text).strip()
        items = [] if text.lower() in ("", "-1") else text.split(",")
    return frozenset(item.strip() for item in items if str(item).strip())


def normalise(kind, value):
    """A declared value or a shown column -> a value that compares equal when Slurm's meaning is
    equal; None when unset. Raises AccountingError for a value of the wrong shape."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise AccountingError("%r is a boolean, not a Slurm value" % value)
    text = str(value).strip()
    if kind == COUNT:
        if text.lower() in UNSET_WORDS:
            return None
        if not re.match(r"^\d+$", text):
            raise AccountingError("%r is not a whole number (or -1 to clear)" % text)
        return int(text)
    if kind == TIME:
        return parse_time(text)
    if kind == SECONDS:
        return parse_time(text, bare_unit=1)
    if kind == TRES:
        return parse_tres(text) or None
    if kind == FLOAT:
        if text.lower() in UNSET_WORDS:
            return None
        try:
            return float(text)
        except ValueError:
            raise AccountingError("%r is not a number" % text)
    if kind == QOS_LIST:
        return _name_set(value) or None
    if kind == QOS_NAME:
        return None if text.lower() in ("", "-1") else text
    if kind == QOS_FLAGS:
        flags = set()
        for flag in _name_set(value):
            known = [name for name in QOS_FLAG_NAMES if name.lower() == flag.lower()]
            if not known:
                raise AccountingError("%r is not a QOS flag (%s)" % (flag, ", ".join(QOS_FLAG_NAMES)))
            flags.add(known[0])
        return frozenset(flags) or None
    if kind == PREEMPT_MODE:
        modes = frozenset(mode.lower() for mode in _name_set(value))
        unknown = sorted(modes - set(PREEMPT_MODES))
        if unknown:
            raise AccountingError("%r is not a preempt mode (%s)" % (unknown[0], ", ".join(PREEMPT_MODES)))
        # Slurm shows an unset PreemptMode as "cluster" (the cluster's own mode).
        return None if modes in (frozenset(), frozenset(["cluster"])) else modes
    if kind == FAIRSHARE:
        if text.lower() == "parent":
            return "parent"
        if not re.match(r"^(-1|\d+)$", text):
            raise AccountingError("%r is not a whole number or parent" % text)
        # -1 resets the share to Slurm's default, which shows as 1.
        return 1 if text == "-1" else int(text)
    raise ValueError("unknown kind %r" % kind)


def render(kind, value):
    """A normalised value -> sacctmgr's text for `Name=text`."""
    if kind == TIME:
        return render_time(value)
    if kind == SECONDS:
        return str(value)
    if kind == TRES:
        return render_tres(value)
    if kind == FLOAT:
        return repr(value)
    if kind in (QOS_LIST, QOS_FLAGS, PREEMPT_MODE):
        return ",".join(sorted(value))
    return str(value)


def clear_text(kind, current):
    """sacctmgr's text that removes a limit which is set now (`current`, normalised)."""
    if kind == TRES:
        return ",".join("%s=-1" % key for key in sorted(current))
    if kind == QOS_LIST:
        return ""  # QOS=-1 is refused ("bad qos '1'"); an empty list inherits the parent's
    if kind == PREEMPT_MODE:
        return "cluster"
    return "-1"


def change_text(kind, current, wanted):
    """sacctmgr's text that turns `current` into `wanted` (both normalised, different)."""
    if wanted is None:
        return clear_text(kind, current)
    if kind == TRES and current:
        # Only the TRES named are changed; the ones no longer wanted must be cleared one by one.
        cleared = ["%s=-1" % key for key in current if key not in wanted]
        return ",".join(sorted(render_tres(wanted).split(",") + cleared))
    return render(kind, wanted)


def display(kind, value):
    """A normalised value for the diff: text as sacctmgr takes it."""
    return None if value is None else render(kind, value)


# --------------------------------------------------------------------------- arguments

def _qos_columns():
    return ["Name", "Description"] + [spec["column"] for spec in QOS_LIMITS.values()]


def _association_columns():
    return (["Account", "User", "Partition", "ParentName"]
            + [spec["column"] for spec in ASSOCIATION_LIMITS.values()])


def show_qos_args(sacctmgr):
    return [sacctmgr, "--parsable2", "--noheader", "show", "qos", "format=" + ",".join(_qos_columns())]


def show_accounts_args(sacctmgr):
    return [sacctmgr, "--parsable2", "--noheader", "show", "account", "format=Account,Description,Organization"]


def show_associations_args(sacctmgr, cluster):
    # WOPLimits: each association's own limits, not the ones it inherits from its parents.
    return [sacctmgr, "--parsable2", "--noheader", "show", "association", "where", "cluster=" + cluster,
            "format=" + ",".join(_association_columns()), "WOPLimits"]


def show_users_args(sacctmgr, cluster):
    return [sacctmgr, "--parsable2", "--noheader", "show", "user", "where", "cluster=" + cluster,
            "format=User,DefaultAccount"]


def show_config_args(scontrol):
    return [scontrol, "show", "config"]


def _settings(limits):
    return ["%s=%s" % (name, text) for name, text in limits]


def add_qos_args(sacctmgr, name, description, limits):
    args = [sacctmgr, "-i", "add", "qos", name]
    if description is not None:
        args.append("Description=" + description)
    return args + _settings(limits)


def modify_qos_args(sacctmgr, name, settings):
    return [sacctmgr, "-i", "modify", "qos", "where", "name=" + name, "set"] + _settings(settings)


def delete_qos_args(sacctmgr, name):
    return [sacctmgr, "-i", "delete", "qos", "where", "name=" + name]


def add_account_args(sacctmgr, cluster, name, description, organization, parent, limits):
    return [sacctmgr, "-i", "add", "account", name, "cluster=" + cluster, "Description=" + description,
            "Organization=" + organization, "Parent=" + parent] + _settings(limits)


def modify_account_args(sacctmgr, name, settings, cluster=None):
    """With a cluster: the account's association there (limits, parent); without: the account
    itself (description, organization), which all clusters share."""
    where = ["where", "name=" + name] + (["cluster=" + cluster] if cluster else [])
    return [sacctmgr, "-i", "modify", "account"] + where + ["set"] + _settings(settings)


def delete_account_args(sacctmgr, cluster, name):
    return [sacctmgr, "-i", "delete", "account", "where", "name=" + name, "cluster=" + cluster]


def add_user_args(sacctmgr, cluster, name, account, default_account, limits):
    args = [sacctmgr, "-i", "add", "user", name, "account=" + account, "cluster=" + cluster]
    if default_account:
        args.append("DefaultAccount=" + default_account)
    return args + _settings(limits)


def modify_user_args(sacctmgr, cluster, name, settings, account=None):
    """With an account: the user's association there (limits); without: the user on this
    cluster (DefaultAccount)."""
    where = ["where", "name=" + name] + (["account=" + account] if account else []) + ["cluster=" + cluster]
    return [sacctmgr, "-i", "modify", "user"] + where + ["set"] + _settings(settings)


def delete_user_args(sacctmgr, cluster, name, account):
    return [sacctmgr, "-i", "delete", "user", "where", "name=" + name, "account=" + account, "cluster=" + cluster]


# --------------------------------------------------------------------------- parsers

def _rows(stdout, width):
    """Lines of `--parsable2 --noheader` output with exactly `width` fields."""
    rows = []
    for line in stdout.splitlines():
        fields = line.split("|")
        if len(fields) == width:
            rows.append(fields)
    return rows


def _limits_from(kind, columns, fields):
    limits = {}
    for name, text in zip(columns, fields):
        try:
            limits[name] = normalise(LIMITS[kind][name]["kind"], text)
        except AccountingError:
            # A shape this module does not know (a newer Slurm's flag): compared as text.
            limits[name] = text
    return limits


def parse_qos(stdout):
    """`show qos format=<show_qos_args>` -> {name: {description, limits}} (limits normalised)."""
    names = list(QOS_LIMITS)
    found = {}
    for fields in _rows(stdout, 2 + len(names)):
        found[fields[0]] = {"description": fields[1], "limits": _limits_from("qos", names, fields[2:])}
    return found


def parse_accounts(stdout):
    """`show account format=Account,Description,Organization` -> {name: {description, organization}}."""
    return dict((fields[0], {"description": fields[1], "organization": fields[2]}) for fields in _rows(stdout, 3))


def parse_associations(stdout):
    """`show association ... WOPLimits` -> (accounts, users) of the cluster.

    accounts: {account: {parent, limits}}; users: {(user, account): {limits}}. Associations of one
    partition are not managed here and are skipped.
    """
    names = list(ASSOCIATION_LIMITS)
    accounts, users = {}, {}
    for fields in _rows(stdout, 4 + len(names)):
        account, user, partition, parent = fields[:4]
        if partition:
            continue
        limits = _limits_from("association", names, fields[4:])
        if user:
            users[(user, account)] = {"limits": limits}
        else:
            accounts[account] = {"parent": parent or None, "limits": limits}
    return accounts, users


def parse_users(stdout):
    """`show user where cluster=C format=User,DefaultAccount` -> {user: default account or None}."""
    return dict((fields[0], fields[1] or None) for fields in _rows(stdout, 2))


def parse_cluster_name(stdout):
    """ClusterName from `scontrol show config`, or None."""
    match = re.search(r"^ClusterName\s*=\s*(\S+)\s*$", stdout, re.MULTILINE)
    return match.group(1) if match else None


def sacctmgr_words(stdout, stderr):
    """What sacctmgr said, in one line: it writes most of its errors to stdout."""
    lines = [line.strip() for line in (stderr + "\n" + stdout).splitlines()]
    return "; ".join(line for line in lines if line) or None


def show_commands(sacctmgr, cluster):
    """The read-only commands that give the current state, as (what, argv), in the order they run."""
    return [("associations", show_associations_args(sacctmgr, cluster)), ("qos", show_qos_args(sacctmgr)),
            ("accounts", show_accounts_args(sacctmgr)), ("users", show_users_args(sacctmgr, cluster))]


def current_from(outputs):
    """{what: stdout} of show_commands() -> the current state that plan() takes."""
    accounts, user_associations = parse_associations(outputs["associations"])
    return {"qos": parse_qos(outputs["qos"]), "accounts": parse_accounts(outputs["accounts"]),
            "associations": accounts, "user_associations": user_associations,
            "defaults": parse_users(outputs["users"])}


# --------------------------------------------------------------------------- declarations

def _entries(value):
    return list(value or [])


def _limit_items(kind, limits):
    """Declared limits -> [(canonical name, normalised value)]; raises AccountingError."""
    items = []
    for name, value in (limits or {}).items():
        canonical = canonical_limit_name(kind, name)
        if canonical is None:
            raise AccountingError("unknown limit %s" % name)
        try:
            items.append((canonical, normalise(LIMITS[kind][canonical]["kind"], value)))
        except AccountingError as error:
            raise AccountingError("%s: %s" % (canonical, error))
    return items


def problems(accounts, qos, users=None):
    """Everything wrong with a declaration, as messages that name the entry and say what to fix.

    Shared by the filter of the check play and the module, which refuses to start on any.
    """
    found = []
    qos, accounts, users = _entries(qos), _entries(accounts), _entries(users)
    qos_present = set(["normal"])
    account_present = set(["root"])
    account_declared = set(entry.get("name") for entry in accounts if isinstance(entry, Mapping))
    for section, entries in (("qos", qos), ("accounts", accounts), ("users", users)):
        seen = set()
        for index, entry in enumerate(entries):
            where = "%s[%d]" % (section, index)
            if not isinstance(entry, Mapping):
                found.append("%s: each entry must be a mapping with at least a name" % where)
                continue
            name = entry.get("name")
            if not isinstance(name, str) or not NAME_RE.match(name):
                found.append("%s: name %r must be a plain word (letters, digits, _ . -, starting with a "
                             "letter or digit): it goes on sacctmgr's command line" % (where, name))
                continue
            key = "%s in account %s" % (name, entry.get("account")) if section == "users" else name
            if key in seen:
                found.append("%s %s: declared twice; merge the two entries" % (section, key))
            seen.add(key)
            state = entry.get("state", "present")
            if state not in STATES:
                found.append("%s %s: state %r must be present or absent" % (section, name, state))
            elif state == "present" and section == "qos":
                qos_present.add(name)
            elif state == "present" and section == "accounts":
                account_present.add(name)
    for entry in qos:
        if isinstance(entry, Mapping) and isinstance(entry.get("name"), str):
            found.extend(_limit_problems("qos", "qos %s" % entry["name"], entry.get("limits"), qos_present))
    for entry in accounts:
        if not (isinstance(entry, Mapping) and isinstance(entry.get("name"), str)):
            continue
        where = "account %s" % entry["name"]
        found.extend(_limit_problems("association", where, entry.get("limits"), qos_present))
        parent = entry.get("parent", "root")
        if entry.get("state", "present") == "present" and parent not in account_present:
            found.append("%s: parent %r is not declared (declare it under accounts, or use root)" % (where, parent))
        if parent == entry["name"]:
            found.append("%s: an account cannot be its own parent" % where)
        for user in entry.get("users") or []:
            if not isinstance(user, str) or not NAME_RE.match(user):
                found.append("%s: user %r in users must be a plain word (letters, digits, _ . -)" % (where, user))
    user_accounts = {}
    for entry in accounts:
        if isinstance(entry, Mapping) and entry.get("state", "present") == "present":
            for user in entry.get("users") or []:
                user_accounts.setdefault(user, set()).add(entry.get("name"))
    for entry in users:
        if isinstance(entry, Mapping) and entry.get("state", "present") == "present":
            user_accounts.setdefault(entry.get("name"), set()).add(entry.get("account"))
    for entry in users:
        if not (isinstance(entry, Mapping) and isinstance(entry.get("name"), str)):
            continue
        where = "user %s" % entry["name"]
        account = entry.get("account")
        if account is None:
            found.append("%s: account is missing (each users entry is one user in one account)" % where)
        elif account not in account_present and not (entry.get("state") == "absent" and account in account_declared):
            found.append("%s: account %r is not declared (declare it under accounts)" % (where, account))
        default = entry.get("default_account")
        if default is not None and default not in user_accounts.get(entry["name"], ()):
            found.append("%s: default_account %r is not an account this user is declared in (list the user "
                         "in that account's users, or add a users entry for it)" % (where, default))
        found.extend(_limit_problems("association", where, entry.get("limits"), qos_present))
    return found


def _limit_problems(kind, where, limits, qos_present):
    if limits is None:
        return []
    if not isinstance(limits, Mapping):
        return ["%s: limits must be a mapping of sacctmgr option names to values" % where]
    found = []
    normalised = {}
    for name, value in limits.items():
        canonical = canonical_limit_name(kind, name)
        if canonical is None:
            found.append("%s: unknown limit %s for %s (known: %s)" % (
                where, name, "a QOS" if kind == "qos" else "an account or user", ", ".join(sorted(LIMITS[kind]))))
            continue
        try:
            normalised[canonical] = normalise(LIMITS[kind][canonical]["kind"], value)
        except AccountingError as error:
            found.append("%s: limit %s: %s" % (where, canonical, error))
    for name in ("QOS", "Preempt", "DefaultQOS"):
        value = normalised.get(name)
        names = [value] if isinstance(value, str) else sorted(value or [])
        for qos_name in names:
            if qos_name not in qos_present:
                found.append("%s: limit %s names QOS %r, which is not declared (declare it under qos, or use "
                             "normal)" % (where, name, qos_name))
    if normalised.get("DefaultQOS") and normalised.get("QOS") and normalised["DefaultQOS"] not in normalised["QOS"]:
        found.append("%s: DefaultQOS %r is not in its QOS list (%s); add it there" % (
            where, normalised["DefaultQOS"], ",".join(sorted(normalised["QOS"]))))
    return found


def declared_state(accounts, qos, users=None):
    """The declaration as {qos, accounts, users, defaults}, with names canonical and values
    normalised. Assumes problems() found nothing."""
    wanted = {"qos": {}, "accounts": {}, "users": {}, "defaults": {}}
    for entry in _entries(qos):
        wanted["qos"][entry["name"]] = {
            "state": entry.get("state", "present"),
            "description": entry.get("description"),
            "limits": dict(_limit_items("qos", entry.get("limits"))),
        }
    for entry in _entries(accounts):
        name = entry["name"]
        wanted["accounts"][name] = {
            "state": entry.get("state", "present"),
            "description": entry.get("description"),
            "organization": entry.get("organization"),
            "parent": entry.get("parent") or "root",
            "limits": dict(_limit_items("association", entry.get("limits"))),
        }
        for user in entry.get("users") or []:
            if entry.get("state", "present") == "present":
                wanted["users"].setdefault((user, name), {"state": "present", "limits": {}})
                wanted["defaults"].setdefault(user, name)
    for entry in _entries(users):
        key = (entry["name"], entry["account"])
        state = entry.get("state", "present")
        wanted["users"][key] = {"state": state, "limits": dict(_limit_items("association", entry.get("limits")))}
        if entry.get("default_account"):
            wanted["defaults"][entry["name"]] = entry["default_account"]
        elif state == "present":
            wanted["defaults"].setdefault(entry["name"], entry["account"])
    return wanted


# --------------------------------------------------------------------------- planner

def _limit_changes(kind, current, wanted):
    """[(name, text)] that turn the current limits into the wanted ones; undeclared ones stay."""
    changes = []
    for name, value in sorted(wanted.items()):
        now = current.get(name)
        if value != now:
            changes.append((name, change_text(LIMITS[kind][name]["kind"], now, value)))
    return changes


def _new_limits(kind, wanted):
    """[(name, text)] for an add: unset values need not be given."""
    return [(name, render(LIMITS[kind][name]["kind"], value)) for name, value in sorted(wanted.items())
            if value is not None]


def _text_differs(wanted, current):
    """Descriptions and organizations: sacctmgr stores them in lower case."""
    return wanted is not None and wanted.lower() != (current or "").lower()


def _parents_first(accounts, parent_of):
    """Account names ordered so that every parent comes before its children."""
    ordered, placed = [], set()

    def place(name, trail=()):
        if name in placed or name in trail:
            return
        parent = parent_of(name)
        if parent in accounts:
            place(parent, trail + (name,))
        placed.add(name)
        ordered.append(name)

    for name in sorted(accounts):
        place(name)
    return ordered


def _shown(kind, limits):
    return dict((name, display(LIMITS[kind][name]["kind"], value)) for name, value in sorted(limits.items())
                if value is not None)


def plan(wanted, current, cluster, sacctmgr, exclusive=False):
    """The sacctmgr commands, in a safe order, that make `current` what `wanted` declares.

    wanted: declared_state(); current: {qos, accounts (names and texts), associations, users,
    defaults} from the parsers. Returns (commands, diff) with diff = {before, after} of the entities
    declared plus those exclusive removes.
    """
    commands = []
    before = {"qos": {}, "accounts": {}, "users": {}}
    after = {"qos": {}, "accounts": {}, "users": {}}
    cur_qos, cur_accounts, cur_assoc = current["qos"], current["accounts"], current["associations"]
    cur_users, cur_defaults = current["user_associations"], current["defaults"]

    # 1. QOS first: accounts and users name them.
    for name, qos in sorted(wanted["qos"].items()):
        now = cur_qos.get(name)
        if now:
            before["qos"][name] = dict(description=now["description"], **_shown("qos", now["limits"]))
        if qos["state"] == "absent":
            continue
        if now is None:
            commands.append(add_qos_args(sacctmgr, name, qos["description"], _new_limits("qos", qos["limits"])))
            limits = qos["limits"]
            description = qos["description"] if qos["description"] is not None else name
        else:
            settings = _limit_changes("qos", now["limits"], qos["limits"])
            description = now["description"]
            if _text_differs(qos["description"], now["description"]):
                settings.insert(0, ("Description", qos["description"]))
                description = qos["description"]
            if settings:
                commands.append(modify_qos_args(sacctmgr, name, settings))
            limits = dict(now["limits"], **qos["limits"])
        after["qos"][name] = dict(description=description, **_shown("qos", limits))

    # 2. Accounts, parents before children.
    def wanted_parent(name):
        return wanted["accounts"][name]["parent"]

    for name in _parents_first(wanted["accounts"], wanted_parent):
        account = wanted["accounts"][name]
        assoc, texts = cur_assoc.get(name), cur_accounts.get(name, {})
        if assoc:
            before["accounts"][name] = dict(parent=assoc["parent"], description=texts.get("description"),
                                            organization=texts.get("organization"),
                                            **_shown("association", assoc["limits"]))
        if account["state"] == "absent":
            continue
        description = account["description"] or texts.get("description") or name
        organization = account["organization"] or texts.get("organization") or name
        if assoc is None:
            commands.append(add_account_args(sacctmgr, cluster, name, description, organization, account["parent"],
                                             _new_limits("association", account["limits"])))
            limits = account["limits"]
        else:
            settings = _limit_changes("association", assoc["limits"], account["limits"])
            if account["parent"] != assoc["parent"]:
                settings.insert(0, ("Parent", account["parent"]))
            if settings:
                commands.append(modify_account_args(sacctmgr, name, settings, cluster=cluster))
            limits = dict(assoc["limits"], **account["limits"])
        # An account that exists on another cluster keeps its texts unless they are declared.
        texts_wanted = [(key, account[key]) for key in ("description", "organization")
                        if _text_differs(account[key], texts.get(key))]
        if texts and texts_wanted:
            commands.append(modify_account_args(sacctmgr, name, [(key.capitalize(), value)
                                                                 for key, value in texts_wanted]))
        after["accounts"][name] = dict(parent=account["parent"], description=description,
                                       organization=organization, **_shown("association", limits))

    # 3. Users in accounts, then each user's default account.
    defaults_given = {}
    # Each user's default account first: `add user ... DefaultAccount=X` also adds the user to X.
    def default_first(item):
        (user, account_name), _ = item
        return (user, account_name != wanted["defaults"].get(user), account_name)

    for (user, account_name), entry in sorted(wanted["users"].items(), key=default_first):
        key = "%s@%s" % (user, account_name)
        now = cur_users.get((user, account_name))
        if now:
            before["users"][key] = _shown("association", now["limits"])
        if entry["state"] == "absent":
            continue
        if now is None:
            # A user without a default account here gets it with the first association; one
            # who has a default keeps it until the modify below.
            default = None
            if cur_defaults.get(user) is None and user not in defaults_given:
                # Without DefaultAccount, Slurm makes the first account the default.
                default = account_name if account_name == wanted["defaults"].get(user) else None
                defaults_given[user] = account_name
            commands.append(add_user_args(sacctmgr, cluster, user, account_name, default,
                                          _new_limits("association", entry["limits"])))
            limits = entry["limits"]
        else:
            settings = _limit_changes("association", now["limits"], entry["limits"])
            if settings:
                commands.append(modify_user_args(sacctmgr, cluster, user, settings, account=account_name))
            limits = dict(now["limits"], **entry["limits"])
        after["users"][key] = _shown("association", limits)
    for user, default in sorted(wanted["defaults"].items()):
        if defaults_given.get(user, cur_defaults.get(user)) != default:
            commands.append(modify_user_args(sacctmgr, cluster, user, [("DefaultAccount", default)]))

    # 4. Deletions in reverse: users, child accounts, parents, QOS.
    doomed_users = sorted(key for key, entry in wanted["users"].items() if entry["state"] == "absent")
    doomed_accounts = [name for name, entry in wanted["accounts"].items() if entry["state"] == "absent"]
    doomed_qos = sorted(name for name, entry in wanted["qos"].items() if entry["state"] == "absent")
    if exclusive:
        declared_accounts = set(wanted["accounts"])
        doomed_users += sorted(key for key in cur_users
                               if key not in wanted["users"] and key[0] not in PROTECTED_USERS)
        doomed_accounts += [name for name in cur_assoc
                            if name not in declared_accounts and name not in PROTECTED_ACCOUNTS]
        doomed_qos += sorted(name for name in cur_qos if name not in wanted["qos"] and name not in PROTECTED_QOS)
    for user, account_name in doomed_users:
        now = cur_users.get((user, account_name))
        if now is None:
            continue
        before["users"]["%s@%s" % (user, account_name)] = _shown("association", now["limits"])
        commands.append(delete_user_args(sacctmgr, cluster, user, account_name))
    existing = dict((name, cur_assoc[name]) for name in doomed_accounts if name in cur_assoc)
    for name in reversed(_parents_first(existing, lambda child: cur_assoc[child]["parent"])):
        texts = cur_accounts.get(name, {})
        before["accounts"][name] = dict(parent=existing[name]["parent"], description=texts.get("description"),
                                        organization=texts.get("organization"),
                                        **_shown("association", existing[name]["limits"]))
        commands.append(delete_account_args(sacctmgr, cluster, name))
    for name in doomed_qos:
        now = cur_qos.get(name)
        if now is None:
            continue
        before["qos"][name] = dict(description=now["description"], **_shown("qos", now["limits"]))
        commands.append(delete_qos_args(sacctmgr, name))
    return commands, {"before": before, "after": after}
