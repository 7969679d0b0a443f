#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: contributors to the hpc.slurm collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

DOCUMENTATION = r"""
module: slurm_accounting
short_description: Keep Slurm's accounts, users and QOS as declared, with sacctmgr
version_added: 0.1.0
description:
  - Reads the QOS, the accounts and the users' associations of one cluster from the accounting
    database with C(sacctmgr --parsable2 --noheader show ...), compares them with the declaration,
    and runs the fewest C(sacctmgr -i add|modify|delete ...) commands that make them match.
  - Values are compared by meaning, not by spelling. Times (V(60), V(01:00:00), V(1-00:00:00),
    V(UNLIMITED)); TRES in any order, memory in any unit (V(mem=2G) is V(mem=2048M)); QOS lists,
    Flags and PreemptMode as sets; numbers as numbers.
  - Order of the commands. QOS first, then accounts, parents before children, then users and each
    user's default account. Deletions come last and in reverse order (users, child accounts,
    parent accounts, QOS).
  - Runs on a host where C(sacctmgr) can reach slurmdbd as a Slurm administrator (root or
    SlurmUser), usually the slurmdbd host or the controller.
author:
  - hpc.slurm maintainers (!UNKNOWN)
attributes:
  check_mode:
    description: Can run in check_mode and return changed status prediction without modifying target.
    support: full
    details:
      - Runs only the C(show) commands; RV(commands) lists the commands a real run would run.
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in check_mode), when in diff mode.
    support: full
    details:
      - Before and after of the QOS, accounts and users that are declared, and of those that
        O(exclusive) removes. Only limits that are set appear.
options:
  cluster:
    description:
      - Cluster whose associations are managed (accounts and users belong to a cluster; QOS are
        shared by all clusters of the database).
      - When not set, the C(ClusterName) that C(scontrol show config) reports on this host.
    type: str
  qos:
    description:
      - Quality of service records.
    type: list
    elements: dict
    default: []
    suboptions:
      name:
        description: Name of the QOS, a plain word.
        type: str
        required: true
      description:
        description:
          - Description. When not set, a new QOS gets its name (Slurm's default) and an existing
            one keeps its own.
        type: str
      limits:
        description:
          - Settings of the QOS by sacctmgr's own option names (see C(man sacctmgr), "SPECIFICATIONS
            FOR QOS"), in any letter case, for example V(MaxWall), V(MaxJobsPerUser), V(GrpTRES),
            V(Priority), V(Flags), V(Preempt), V(PreemptMode), V(UsageFactor).
          - A setting not named here is left as it is. V(-1) clears a setting (for a TRES limit,
            V(-1) clears every TRES of it; V(cpu=4) alone clears the others).
        type: dict
        default: {}
      state:
        description: Whether the QOS exists.
        type: str
        choices: [present, absent]
        default: present
  accounts:
    description:
      - Accounts and their association with O(cluster).
    type: list
    elements: dict
    default: []
    suboptions:
      name:
        description: Name of the account, a plain word.
        type: str
        required: true
      description:
        description: Description. When not set, a new account gets its name; an existing one keeps its own.
        type: str
      organization:
        description: Organization. When not set, a new account gets its name; an existing one keeps its own.
        type: str
      parent:
        description: Parent account, which must exist or be declared too.
        type: str
        default: root
      users:
        description:
          - Users who belong to this account. Their associations get no limits of their own here
            (limits they already have are left alone; use O(users) to set some).
        type: list
        elements: str
        default: []
      limits:
        description:
          - Limits of the account's association by sacctmgr's option names (see C(man sacctmgr),
            "GENERAL SPECIFICATIONS FOR ASSOCIATION BASED ENTITIES"), in any letter case, for example
            V(MaxJobs), V(MaxSubmitJobs), V(MaxWall), V(GrpTRES), V(QOS), V(DefaultQOS), V(Fairshare).
          - A limit not named here is left as it is; V(-1) clears it.
        type: dict
        default: {}
      state:
        description:
          - Whether the account has an association with O(cluster). V(absent) removes it, and with
            it the users' associations in that account.
        type: str
        choices: [present, absent]
        default: present
  users:
    description:
      - One user in one account, with limits of its own (the long form of O(accounts[].users)).
    type: list
    elements: dict
    default: []
    suboptions:
      name:
        description: User name, a plain word.
        type: str
        required: true
      account:
        description: The account, which must be declared in O(accounts).
        type: str
        required: true
      default_account:
        description:
          - The user's default account on O(cluster). When not set, the first account that lists
            the user (in O(accounts), then in O(users)).
        type: str
      limits:
        description: Limits of this association, as in O(accounts[].limits).
        type: dict
        default: {}
      state:
        description: Whether the user has an association with this account.
        type: str
        choices: [present, absent]
        default: present
  exclusive:
    description:
      - Remove the QOS, the accounts' associations with O(cluster) and the users' associations
        that are not declared. Never the account C(root), the user C(root) or the QOS C(normal).
    type: bool
    default: false
notes:
  - The declaration is checked first, as the filter P(hpc.slurm.slurm_accounting_problems#filter)
    checks it, and nothing runs when it has any problem.
  - Accounts are shared by all clusters of the database, associations are not. This module adds and
    removes associations with O(cluster) only; an account's description and organization are
    changed for all clusters when they are declared.
  - Commands run with the C(C) locale, so their output parses on any host.
seealso:
  - name: Slurm sacctmgr
    description: Manage Slurm's accounting database.
    link: https://slurm.schedmd.com/sacctmgr.html
  - name: Slurm resource limits
    description: How association and QOS limits apply.
    link: https://slurm.schedmd.com/resource_limits.html
"""

EXAMPLES = r"""
- name: Two QOS, an account tree and its users on the local cluster
  hpc.slurm.slurm_accounting:
    qos:
      - name: short
        description: Jobs of up to one hour
        limits: {MaxWall: "01:00:00", MaxJobsPerUser: 2, GrpTRES: "cpu=8", Priority: 10, Flags: DenyOnLimit}
      - name: long
        limits: {MaxWall: "7-00:00:00"}
    accounts:
      - name: science
      - name: physics
        parent: science
        users: [alice, bob]
        limits: {MaxJobs: 10, GrpTRES: "cpu=64,mem=256G", QOS: "normal,short", DefaultQOS: normal}
    users:
      - name: alice
        account: physics
        limits: {MaxJobs: 2, MaxWall: "02:00:00"}

- name: Preview what would change, then make it so and remove everything undeclared
  hpc.slurm.slurm_accounting:
    cluster: mycluster
    accounts: "{{ slurm_accounting_accounts }}"
    qos: "{{ slurm_accounting_qos }}"
    exclusive: true
  check_mode: true
  diff: true

- name: Clear a limit and remove a user from an account
  hpc.slurm.slurm_accounting:
    accounts:
      - name: physics
        limits: {MaxJobs: -1}
    users:
      - name: bob
        account: physics
        state: absent
"""

RETURN = r"""
cluster:
  description: The cluster whose associations were compared.
  returned: always
  type: str
  sample: mycluster
commands:
  description:
    - The sacctmgr commands that ran, each as its argument list, in order. In check mode, the
      commands a real run would run.
  returned: always
  type: list
  elements: list
  sample: [["/usr/bin/sacctmgr", "-i", "add", "qos", "short", "MaxWall=01:00:00"]]
diff:
  description: Before and after of the managed entities (with O(ansible_diff_mode)).
  returned: when diff mode is on
  type: dict
  contains:
    before:
      description: The QOS, accounts and users (as C(user@account)) as they were, with their limits.
      type: dict
    after:
      description: As they are after the run (or would be, in check mode).
      type: dict
msg:
  description: On failure, what went wrong, in Slurm's words where Slurm gave them.
  returned: failure
  type: str
  sample: "sacctmgr failed (exit code 1): Parent account 'nosuch' doesn't exist on cluster mycluster"
cmd:
  description: On a failed command, its argument list.
  returned: failure
  type: list
  elements: str
rc:
  description: On a failed command, its exit code.
  returned: failure
  type: int
stdout:
  description: On a failed command, its standard output (sacctmgr writes most errors there).
  returned: failure
  type: str
stderr:
  description: On a failed command, its standard error.
  returned: failure
  type: str
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.hpc.slurm.plugins.module_utils.slurm_accounting import (
    C_LOCALE,
    current_from,
    declared_state,
    parse_cluster_name,
    plan,
    problems,
    sacctmgr_words,
    show_commands,
    show_config_args,
)

ENTRY_OPTIONS = dict(
    name=dict(type="str", required=True),
    limits=dict(type="dict", default={}),
    state=dict(type="str", choices=["present", "absent"], default="present"),
)


class CommandFailed(Exception):
    def __init__(self, result):
        super(CommandFailed, self).__init__(result["msg"])
        self.result = result


def run(module, argv):
    """Runs one command with the C locale; a failure becomes CommandFailed with Slurm's words."""
    rc, stdout, stderr = module.run_command(argv, environ_update=C_LOCALE)
    if rc != 0:
        words = sacctmgr_words(stdout, stderr) or "no message"
        raise CommandFailed({"msg": "%s failed (exit code %s): %s" % (argv[0].rsplit("/", 1)[-1], rc, words),
                             "cmd": argv, "rc": rc, "stdout": stdout, "stderr": stderr})
    return stdout


def current_state(module, sacctmgr, cluster):
    return current_from(dict((what, run(module, argv)) for what, argv in show_commands(sacctmgr, cluster)))


def local_cluster(module):
    scontrol = module.get_bin_path("scontrol", required=True)
    try:
        stdout = run(module, show_config_args(scontrol))
    except CommandFailed as failed:
        failed.result["msg"] += "; set the module's cluster option"
        raise
    name = parse_cluster_name(stdout)
    if not name:
        module.fail_json(msg="scontrol show config reports no ClusterName; set the module's cluster option")
    return name


def main():
    module = AnsibleModule(
        argument_spec=dict(
            cluster=dict(type="str"),
            qos=dict(type="list", elements="dict", default=[], options=dict(
                ENTRY_OPTIONS, description=dict(type="str"))),
            accounts=dict(type="list", elements="dict", default=[], options=dict(
                ENTRY_OPTIONS, description=dict(type="str"), organization=dict(type="str"),
                parent=dict(type="str", default="root"), users=dict(type="list", elements="str", default=[]))),
            users=dict(type="list", elements="dict", default=[], options=dict(
                ENTRY_OPTIONS, account=dict(type="str", required=True), default_account=dict(type="str"))),
            exclusive=dict(type="bool", default=False),
        ),
        supports_check_mode=True,
    )
    params = module.params
    found = problems(params["accounts"], params["qos"], params["users"])
    if found:
        module.fail_json(msg="The declaration has %d problem(s): %s" % (len(found), "; ".join(found)),
                         problems=found)
    sacctmgr = module.get_bin_path("sacctmgr", required=True)
    commands_run = []
    try:
        cluster = params["cluster"] or local_cluster(module)
        wanted = declared_state(params["accounts"], params["qos"], params["users"])
        commands, diff = plan(wanted, current_state(module, sacctmgr, cluster), cluster, sacctmgr,
                              exclusive=params["exclusive"])
        if not module.check_mode:
            for argv in commands:
                run(module, argv)
                commands_run.append(argv)
    except CommandFailed as failed:
        module.fail_json(commands=commands_run, **failed.result)
    result = dict(changed=bool(commands), cluster=cluster, commands=commands)
    if module._diff:
        result["diff"] = diff
    module.exit_json(**result)


if __name__ == "__main__":
    main()
