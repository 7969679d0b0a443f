"""Checks of the declared cluster users and groups, for hpc.slurm.cluster_users's validate step.

Each filter returns a list of messages (empty when all is well), each naming the setting, the
account and, for the hosts' accounts, the host and what to do.
"""

from __future__ import annotations

from collections import Counter


def _repeated(values):
    return sorted(str(value) for value, count in Counter(values).items() if count > 1)


def cluster_users_duplicates(users, groups):
    """Names and numbers declared twice in cluster_users_users / cluster_users_groups."""
    errors = []
    for what, setting, items, number in (("user", "cluster_users_users", users, "uid"),
                                         ("group", "cluster_users_groups", groups, "gid")):
        for name in _repeated(item["name"] for item in items):
            errors.append(f"{setting} declares the {what} name '{name}' more than once.")
        for value in _repeated(int(item[number]) for item in items):
            owners = ", ".join(item["name"] for item in items if int(item[number]) == int(value))
            errors.append(f"{setting} gives {number} {value} to more than one {what} ({owners}); each needs its own.")
    return errors


def _entries(lines):
    """getent output lines -> list of (name, number)."""
    entries = []
    for line in lines:
        fields = line.split(":")
        if len(fields) >= 3 and fields[2].isdigit():
            entries.append((fields[0], int(fields[2])))
    return entries


def cluster_users_conflicts(declared, getent_lines, database, host, setting):
    """Accounts of this host (getent passwd/group lines) that a declared account would clash with:
    its number held by another name, or its name holding another number.

    declared: list of {name, uid} for 'passwd', {name, gid} for 'group', each with an optional
    'setting' that declares it (for the message; default: setting).
    """
    kind = "user" if database == "passwd" else "group"
    number = "uid" if database == "passwd" else "gid"
    existing = _entries(getent_lines)
    errors = []
    for item in declared:
        name, wanted, where = item["name"], int(item[number]), item.get("setting", setting)
        for other, value in existing:
            if value == wanted and other != name:
                errors.append(
                    f"{where}: {number} {wanted} of {kind} '{name}' belongs to the {kind} '{other}' "
                    f"on {host}; choose a free {number}.")
            elif other == name and value != wanted:
                errors.append(
                    f"{where}: the {kind} '{name}' exists on {host} with {number} {value}, not {wanted}. "
                    f"Either declare {value} (if every host has it), or renumber it on {host} yourself "
                    f"(stop the services running as it, usermod/groupmod, chown its files) and run again; "
                    f"this collection does not renumber live accounts.")
    return errors


class FilterModule:
    def filters(self):
        return {
            "cluster_users_duplicates": cluster_users_duplicates,
            "cluster_users_conflicts": cluster_users_conflicts,
        }
