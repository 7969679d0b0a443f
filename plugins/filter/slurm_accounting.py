"""Filter for the check play, before any host changes: what is wrong with the accounts, users and
QOS that hpc.slurm.slurm_accounting will be given.

    slurm_accounting_accounts | hpc.slurm.slurm_accounting_problems(slurm_accounting_qos, slurm_accounting_users)

returns a list of messages (empty when all is well), each naming the entry and the setting and
saying what to fix. The module refuses the same declarations with the same messages: both use
the tables and checks of plugins/module_utils/slurm_accounting.py.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from ansible_collections.hpc.slurm.plugins.module_utils.slurm_accounting import problems


def _as_list(value, what):
    if value is None:
        return [], []
    if isinstance(value, Sequence) and not isinstance(value, (str, bytes)):
        return list(value), []
    if isinstance(value, Mapping):
        return [], [f"{what} must be a list of entries (- name: ...), got a mapping"]
    return [], [f"{what} must be a list of entries (- name: ...), got {value!r}"]


def slurm_accounting_problems(accounts, qos=None, users=None):
    """Messages about the declaration; [] when hpc.slurm.slurm_accounting can apply it."""
    accounts, found = _as_list(accounts, "accounts")
    qos, qos_found = _as_list(qos, "qos")
    users, users_found = _as_list(users, "users")
    return found + qos_found + users_found + problems(accounts, qos, users)


class FilterModule:
    """Accounting checks."""

    def filters(self):
        return {"slurm_accounting_problems": slurm_accounting_problems}
