#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: contributors to the hpc.slurm collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

DOCUMENTATION = r"""
module: slurm_mw_job
short_description: Run a master/worker job on a Slurm cluster and prove its tasks can talk
version_added: 0.1.0
description:
  - Launches one Slurm job of O(ntasks) tasks in which rank 0 runs a master program and ranks 1 to
    O(ntasks)-1 run worker programs, and reports how each rank ended.
  - Rank 0 finds the address of its node (on O(interface), or the address the other nodes route
    to) and a free port; the workers start only once the master listens there, without any fixed
    sleep. Every task gets the master's address and its own rank as environment variables and as
    placeholders for its command line.
  - With no O(master_command) and O(worker_command), runs a built-in self-test instead. The master
    listens on TCP, every worker connects, sends its rank and host name, and the master checks
    that each worker checked in. One call proves munge, C(srun) and node-to-node networking.
  - Runs on a submit host of the cluster (the controller or a login node). The submit host and the
    compute nodes need Slurm's client commands and python3 from the standard distribution and
    nothing else; the per-task driver travels inside the job as source text, so no shared
    filesystem and no copy step are needed.
author:
  - hpc.slurm maintainers (!UNKNOWN)
extends_documentation_fragment:
  - hpc.slurm.slurm_wait
attributes:
  check_mode:
    description: Can run in check_mode and return changed status prediction without modifying target.
    support: full
    details:
      - Submits nothing (and so asks C(sacct) nothing). Validates the request with C(sbatch --test-only) (C(srun --test-only) in
        O(mode=interactive) and O(mode=allocation)) and returns what Slurm says the job would get,
        and the commands it would run.
      - Every run outside check mode starts with the same validation, because Slurm accepts a job
        that no partition can ever hold and leaves it pending for ever.
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in check_mode), when in diff mode.
    support: none
options:
  mode:
    description:
      - How Slurm launches the job.
      - V(batch) submits a batch script with C(sbatch); the script runs on the first node of the
        allocation and starts the tasks with C(srun).
      - V(interactive) runs C(srun) on the submit host, which allocates and starts the tasks in one go.
      - V(allocation) runs C(salloc) on the submit host, then C(srun) inside that allocation.
    type: str
    choices: [batch, interactive, allocation]
    default: batch
  ntasks:
    description:
      - Number of tasks. Rank 0 is the master, the others are workers. At least 1.
    type: int
    default: 2
  nodes:
    description:
      - Number of nodes (C(--nodes)), a count such as V(2) or a range such as V(2-4).
    type: str
  ntasks_per_node:
    description:
      - Tasks per node (C(--ntasks-per-node)).
    type: int
  cpus_per_task:
    description:
      - CPUs per task (C(--cpus-per-task)).
    type: int
  partition:
    description:
      - Partition to run in (C(--partition)). The cluster's default partition when not set.
    type: str
  time_limit:
    description:
      - Slurm time limit of the job (C(--time)), for example V(10) (minutes) or V(01:00:00).
    type: str
  job_name:
    description:
      - Job name (C(--job-name)).
    type: str
    default: mw_job
  chdir:
    description:
      - Working directory of the tasks on the compute nodes (C(--chdir)). It must exist on them.
      - In O(mode=batch) this is also where Slurm writes the job's output file (C(slurm-JOBID.out)
        unless O(slurm_options) sets C(--output)); the job fails at once if the job's user cannot
        write there.
      - When not set, Slurm uses the current directory of the module on the submit host.
    type: str
  env:
    description:
      - Extra environment variables for the master and worker commands.
      - The C(MW_*) variables described in O(master_command) take precedence.
      - The values are kept secret. No command line carries them (the launcher gets them in
        its environment or, in O(mode=batch), from the batch script, and every task on its standard
        input), the result shows the names only (C(********) for each value), and they are not
        logged. The names are on the tasks' command lines. At most 32768 bytes in all (as JSON).
    type: dict
    default: {}
  slurm_options:
    description:
      - Further options for C(sbatch), C(salloc) or (in O(mode=interactive)) C(srun), one option per
        item in the C(--name=value) form, for example V(--mem=1G) or V(--overcommit).
      - In O(mode=allocation) they go to C(salloc) and must be options that C(srun) knows too, since
        C(srun --test-only) checks the request first (C(salloc) has no such check).
      - Each item is passed as one argument, never through a shell. Items come after the options
        that the module builds, so they can override them.
      - Not allowed are C(--wrap), and in O(mode=interactive) the options that redirect the tasks' input
        or output (C(--input), C(--output), C(--error), C(--label), C(--pty)), because the module reads
        that input and output itself. They are recognised the way C(sbatch), C(srun) and C(salloc) read
        them, abbreviated (C(--outp=x)), with the value in the same item after a space, and as short
        options, also bundled with others or with their value attached (C(-lo/tmp/x)).
    type: list
    elements: str
    default: []
  master_command:
    description:
      - The master's command, run on rank 0. Requires O(worker_command).
      - A list is run as an argument vector, without a shell. In each item, V($MW_MASTER_IP),
        V($MW_MASTER_PORT), V($MW_MASTER_HOST), V($MW_PROC_ID) and V($MW_NUM_PROC) (also written
        V(${MW_MASTER_IP}) and so on) are replaced with the task's values; nothing else is expanded.
      - A string is run with C(/bin/sh -c), where the same names are ordinary environment variables.
      - Every task has these environment variables. V(MW_MASTER_IP) and V(MW_MASTER_PORT) are where
        the master must listen (unless O(master_listens=false)), V(MW_PROC_ID) is the rank (0 for
        the master) and V(MW_NUM_PROC) the number of tasks.
      - When neither command is given, the built-in self-test runs.
    type: raw
  worker_command:
    description:
      - The workers' command, run on ranks 1 and up, as a list or a string like O(master_command).
      - It starts only once the master listens on V(MW_MASTER_IP):V(MW_MASTER_PORT) (or, with
        O(master_listens=false), once the master has started). Requires O(master_command).
    type: raw
  master_listens:
    description:
      - Whether the master command listens on V($MW_MASTER_IP):V($MW_MASTER_PORT). Rank 0 then
        watches the node's socket table and releases the workers as soon as the port accepts
        connections, without connecting to it itself.
      - Set to V(false) for a master that does not listen on that port; the workers then start as
        soon as the master process has started.
    type: bool
    default: true
  master_port:
    description:
      - TCP port for the master. V(0) picks a free port on the master's node.
    type: int
    default: 0
  interface:
    description:
      - Network interface of the master's node whose IPv4 address the master uses, for example V(ib0).
      - When not set, the address the master's node routes from towards the other nodes of the job
        (or towards the submit host when the job has a single node).
    type: str
  connect_timeout:
    description:
      - Seconds the master may take to start listening, and that each worker waits for the master's
        address and, in the self-test, to check in. Workers retry with a short backoff within
        this bound. More than 0 and at most 1e9 (as O(wait_timeout) and O(poll_interval)).
    type: float
    default: 60
  python_interpreter:
    description:
      - Python 3 interpreter on the compute nodes that runs the per-task driver (and, in
        O(mode=batch), the launcher on the first node).
    type: str
    default: python3
  output_tail_lines:
    description:
      - How many of the last lines of each rank's standard output and standard error to return.
    type: int
    default: 20
notes:
  - B(How the pieces reach the nodes.) The module runs C(python3 -c) with the driver's source as an
    argument. Slurm delivers the arguments of a step to every node, so nothing is copied and no
    shared filesystem is needed (C(sbcast) would need a node-local directory, a clean-up, and an
    allocation to exist first, which O(mode=interactive) does not have).
  - B(How the workers learn the master's address.) The step runs with C(srun --label --input=all).
    A launcher reads each rank's output; when rank 0 announces that the master listens, the
    launcher writes the address to the step's standard input, which srun delivers to every task.
    The user's commands get C(/dev/null) as their standard input.
  - B(What stays off the command lines.) Every user of a node can read every command line, so none
    carries the values of O(env) or the job's tokens. The module hands them to the launcher in its
    environment (in O(mode=batch), the batch script sets it; only the job's user and Slurm can read
    the script), and the launcher writes them to the step's standard input first, ahead of the
    master's address. In the self-test, a worker checks in with a token only the job's tasks
    know, and the master counts each worker's rank once; the batch launcher authenticates its
    result to the module the same way.
  - B(How exit codes are known.) Each rank's driver prints one status line with its exit code;
    C(srun)'s own messages fill in for a rank that was killed before it could. The job's state and
    exit code come from C(scontrol show job), so no accounting database is needed (C(sacct) fills in
    when slurmctld has already forgotten the job).
  - B(Accounting.) Where Slurm accounting is enabled, the module asks C(sacct) for the job's records
    once the job has ended and returns them in RV(accounting). slurmctld sends the end of a job to
    slurmdbd asynchronously, so the module asks again every O(poll_interval) seconds until the job
    allocation's record shows a terminal state and its partition (Slurm 22.05 may first show a
    stand-in record named C(allocation), of user root and without partition), for at most 30
    seconds; after that it returns what C(sacct) had and warns. Accounting never fails the module. Without accounting
    (C(AccountingStorageType=accounting_storage/none)) RV(accounting) is empty and
    RV(accounting_unavailable) says why.
  - In O(mode=batch) the launcher runs on the first node and sends its result back to the module
    over TCP, to the submit host's name as Slurm knows it (C(SLURM_SUBMIT_HOST)); the compute nodes
    must be able to reach the submit host, as C(srun) in the other modes also requires. The
    result also stays in the job's output file.
  - To run the job as an ordinary user, use C(become) with C(become_user) on the task; that user
    must exist with the same uid on the submit host and the compute nodes.
  - The commands run with the C(C) locale (C(LC_ALL=C)), which the job inherits; set other locale
    variables in O(env) if the programs need them.
seealso:
  - name: Slurm sbatch
    description: Submit a batch script.
    link: https://slurm.schedmd.com/sbatch.html
  - name: Slurm srun
    description: Run parallel jobs.
    link: https://slurm.schedmd.com/srun.html
  - name: Slurm salloc
    description: Obtain a job allocation.
    link: https://slurm.schedmd.com/salloc.html
"""

EXAMPLES = r"""
- name: Prove that jobs run across the nodes and the tasks reach each other (1 master, 3 workers)
  hpc.slurm.slurm_mw_job:
    ntasks: 4
    nodes: "2"
  register: self_test

- name: Same check over the InfiniBand interface, launched with salloc + srun
  hpc.slurm.slurm_mw_job:
    mode: allocation
    ntasks: 8
    interface: ib0

- name: Run the user's own master and workers, as an ordinary user
  hpc.slurm.slurm_mw_job:
    ntasks: 16
    partition: compute
    time_limit: "00:30:00"
    chdir: /home/alice/run
    master_command: [/home/alice/bin/master, --listen, "$MW_MASTER_IP:$MW_MASTER_PORT", --workers, "$MW_NUM_PROC"]
    worker_command: [/home/alice/bin/worker, --master, "$MW_MASTER_IP:$MW_MASTER_PORT", --rank, "$MW_PROC_ID"]
    env:
      OMP_NUM_THREADS: "1"
    slurm_options:
      - --mem-per-cpu=2G
    wait_timeout: 2400
  become: true
  become_user: alice

- name: Workers as shell strings; the master does not listen on the given port
  hpc.slurm.slurm_mw_job:
    ntasks: 4
    master_command: "./prepare-queue && ./serve-queue"
    worker_command: "./pull-from-queue --rank $MW_PROC_ID"
    master_listens: false
    chdir: /srv/shared/project

- name: Submit and return at once
  hpc.slurm.slurm_mw_job:
    ntasks: 4
    wait: false
  register: submitted

- name: Only check that Slurm would accept the request
  hpc.slurm.slurm_mw_job:
    ntasks: 64
    partition: compute
  check_mode: true
"""

RETURN = r"""
job_id:
  description: Slurm job id. Absent in check mode.
  returned: when Slurm accepted the job
  type: int
  sample: 42
mode:
  description: The launch mode used.
  returned: always
  type: str
  sample: batch
state:
  description:
    - The job's state from C(scontrol show job) (or C(sacct) once slurmctld forgot the job), such
      as C(COMPLETED), C(FAILED) or C(CANCELLED). With O(wait=false), the state right after submission.
  returned: when Slurm accepted the job
  type: str
  sample: COMPLETED
reason:
  description: Slurm's reason field for the state (why a job is pending, for example).
  returned: when Slurm accepted the job
  type: str
  sample: None
exit_code:
  description: The job's exit code (the first half of Slurm's C(ExitCode)).
  returned: when Slurm accepted the job
  type: int
  sample: 0
exit_signal:
  description: The signal that ended the job, 0 if none (the second half of Slurm's C(ExitCode)).
  returned: when Slurm accepted the job
  type: int
  sample: 0
elapsed:
  description: Seconds the module spent, from submission until the job had ended.
  returned: when Slurm accepted the job
  type: float
  sample: 1.42
run_time:
  description: The job's run time as Slurm counts it.
  returned: when Slurm accepted the job
  type: str
  sample: "00:00:01"
nodes:
  description: Nodes of the job's allocation.
  returned: when Slurm accepted the job
  type: list
  elements: str
  sample: [node1, node2]
user:
  description: The user the job ran as.
  returned: when Slurm accepted the job
  type: str
  sample: alice
batch_host:
  description: The node that ran the batch script.
  returned: in batch mode, once the job has started
  type: str
  sample: node1
stdout_path:
  description: The job's output file, on the batch host.
  returned: in batch mode
  type: str
  sample: /home/alice/run/slurm-42.out
stderr_path:
  description: The job's error file, on the batch host.
  returned: in batch mode
  type: str
  sample: /home/alice/run/slurm-42.out
master:
  description: Where the master listened.
  returned: when the master became ready
  type: dict
  contains:
    host:
      description: Node of rank 0.
      type: str
      sample: node1
    ip:
      description: Address the workers were given.
      type: str
      sample: 10.0.0.11
    port:
      description: TCP port the workers were given.
      type: int
      sample: 40123
tasks:
  description: How each rank ended, in rank order.
  returned: when the job ran
  type: list
  elements: dict
  contains:
    rank:
      description: The task's rank (C(SLURM_PROCID)); 0 is the master.
      type: int
    host:
      description: Node the task ran on.
      type: str
    exit_code:
      description: Exit code of the rank's command (128 + N if signal N ended it); null if unknown.
      type: int
    signal:
      description: Name of the signal that ended the rank's command, if one did.
      type: str
    error:
      description: Why the rank failed, when the driver or srun could tell.
      type: str
    stdout_tail:
      description: The last O(output_tail_lines) lines of the rank's standard output.
      type: list
      elements: str
    stderr_tail:
      description: The last O(output_tail_lines) lines of the rank's standard error.
      type: list
      elements: str
  sample:
    - {rank: 0, host: node1, exit_code: 0, stdout_tail: ["sum=60"], stderr_tail: []}
    - {rank: 1, host: node1, exit_code: 0, stdout_tail: [], stderr_tail: []}
failed_ranks:
  description: Ranks whose command exited non-zero or whose status is unknown.
  returned: when the job ran
  type: list
  elements: int
  sample: []
workers_connected:
  description: Self-test only. The workers that checked in with the master.
  returned: when the self-test ran
  type: list
  elements: dict
  contains:
    rank:
      description: The worker's rank.
      type: int
    host:
      description: The node the worker said it runs on.
      type: str
    address:
      description: The address the master saw the connection come from.
      type: str
  sample:
    - {rank: 1, host: node1, address: 10.0.0.11}
    - {rank: 2, host: node2, address: 10.0.0.12}
workers_missing:
  description: Self-test only. Ranks that never checked in with the master.
  returned: when the self-test ran
  type: list
  elements: int
  sample: []
stdout:
  description:
    - The last lines of the step's standard output, labelled with the rank (C(srun --label)).
    - In check mode, what C(sbatch --test-only) printed; on a timeout, what C(scancel) printed.
  returned: always
  type: str
stderr:
  description: The last lines of the step's standard error and of Slurm's own messages.
  returned: always
  type: str
cmd:
  description:
    - The command the module ran to submit or start the job (C(sbatch), C(salloc), or the launcher
      that runs C(srun)), with the driver's source replaced by a short note. It holds no value of
      O(env).
  returned: always
  type: list
  elements: str
step_cmd:
  description:
    - The C(srun) command that starts the tasks, with the driver's source replaced by a short note.
    - It names the variables of O(env) (C(env_names)), never their values.
  returned: always
  type: list
  elements: str
rc:
  description: On failure, the exit code of the failed command or of the job.
  returned: failed
  type: int
msg:
  description: What went wrong.
  returned: failed
  type: str
  sample: "master/worker job 42 failed: ranks 2 failed (rank 2 on node2: exit code 5)"
timed_out:
  description: True when O(wait_timeout) passed and the job was cancelled.
  returned: on timeout
  type: bool
last_state:
  description: The job's state when the module gave up waiting.
  returned: on timeout
  type: str
  sample: RUNNING
accounting:
  description:
    - The job's records in Slurm's accounting database as C(sacct) shows them after the job ended
      (C(sacct --parsable2 --jobs=JOBID)), in C(sacct)'s order. The job allocation's record comes
      first; then one record per step, such as C(batch) (the batch script), C(extern) and C(0)
      (the master/worker step; in O(mode=interactive) the only step).
    - Empty when accounting is not enabled or C(sacct) failed; RV(accounting_unavailable) then says why.
    - When C(sacct) had not recorded the job's end within 30 seconds, the records as they were (the
      allocation's RV(accounting[].state) still C(RUNNING), for example) and a warning.
  returned: when the module waited for the job to end (not in check mode nor with O(wait=false))
  type: list
  elements: dict
  contains:
    job_id:
      description: C(sacct)'s JobID, with the step after a dot for a step (C(42.batch), C(42.0)).
      type: str
      sample: "42"
    step:
      description: The step's name (C(batch), C(extern), C(interactive), C(0)...), null for the job allocation.
      type: str
      sample: "0"
    job_name:
      description: The job's name, or for a step the command it ran.
      type: str
      sample: mw_job
    state:
      description: The state, without C(sacct)'s additions (C(CANCELLED by 1000) becomes C(CANCELLED)).
      type: str
      sample: COMPLETED
    exit_code:
      description: The exit code (the first half of C(sacct)'s ExitCode).
      type: int
      sample: 0
    exit_signal:
      description: The signal that ended it, 0 if none (the second half of C(sacct)'s ExitCode).
      type: int
      sample: 0
    elapsed:
      description: The elapsed time as C(sacct) prints it (C([D-]HH:MM:SS)).
      type: str
      sample: "00:00:02"
    elapsed_seconds:
      description: The elapsed time in seconds (C(sacct)'s ElapsedRaw).
      type: int
      sample: 2
    start:
      description: When it started, in the submit host's local time (C(Unknown) before it started).
      type: str
      sample: "2026-12-02T17:08:49"
    end:
      description: When it ended (C(Unknown) while it runs).
      type: str
      sample: "2026-12-02T17:08:51"
    user:
      description: The job's user; empty for a step.
      type: str
      sample: alice
    account:
      description: The Slurm account the job was charged to; empty for a step, and where the user has no account.
      type: str
      sample: physics
    partition:
      description: The partition; empty for a step.
      type: str
      sample: debug
    alloc_cpus:
      description: Number of CPUs allocated.
      type: int
      sample: 2
    node_list:
      description: The nodes, as a Slurm hostlist (C(node[1-2])).
      type: str
      sample: node[1-2]
  sample:
    - {job_id: "42", step: null, job_name: mw_job, state: COMPLETED, exit_code: 0, exit_signal: 0,
       elapsed: "00:00:02", elapsed_seconds: 2, start: "2026-12-02T17:08:49", end: "2026-12-02T17:08:51",
       user: alice, account: "", partition: debug, alloc_cpus: 2, node_list: "node[1-2]"}
    - {job_id: "42.batch", step: batch, job_name: batch, state: COMPLETED, exit_code: 0, exit_signal: 0,
       elapsed: "00:00:02", elapsed_seconds: 2, start: "2026-12-02T17:08:49", end: "2026-12-02T17:08:51",
       user: "", account: "", partition: "", alloc_cpus: 1, node_list: node1}
    - {job_id: "42.0", step: "0", job_name: python3, state: COMPLETED, exit_code: 0, exit_signal: 0,
       elapsed: "00:00:01", elapsed_seconds: 1, start: "2026-12-02T17:08:50", end: "2026-12-02T17:08:51",
       user: "", account: "", partition: "", alloc_cpus: 2, node_list: "node[1-2]"}
accounting_unavailable:
  description:
    - Why RV(accounting) is empty. C(sacct)'s own message, such as C(Slurm accounting storage is disabled)
      when slurm.conf has C(AccountingStorageType=accounting_storage/none) (no warning then), or the
      error of a C(sacct) that could not reach the database (with a warning).
  returned: when RV(accounting) is returned empty
  type: str
  sample: Slurm accounting storage is disabled
test_only:
  description: What C(sbatch --test-only) said the job would get.
  returned: in check mode
  type: dict
  contains:
    job_id:
      description: The number Slurm quoted; no job is created.
      type: str
    start_time:
      description: When the job would start.
      type: str
    processors:
      description: Number of processors it would get.
      type: int
    nodes:
      description: Nodes it would run on, as a Slurm hostlist.
      type: str
    partition:
      description: Partition it would run in.
      type: str
"""

import json
import math

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.hpc.slurm.plugins.module_utils.slurm_cli import SlurmCli, SlurmCommandError, check_slurm_options
from ansible_collections.hpc.slurm.plugins.module_utils.slurm_mw_launch import MasterWorkerJob

# env travels to the tasks on their standard input, ahead of srun reading it: one pipe's worth.
MAX_ENV_BYTES = 32768
# Longer waits overflow the timeouts of select() and sockets (and a job waits no decades).
MAX_SECONDS = 1e9
REQUIRED_COMMANDS = {
    "batch": ("sbatch", "scontrol", "scancel"),
    "interactive": ("srun", "scontrol", "scancel"),
    "allocation": ("salloc", "srun", "scontrol", "scancel"),
}


def argument_spec():
    return dict(
        mode=dict(type="str", choices=["batch", "interactive", "allocation"], default="batch"),
        ntasks=dict(type="int", default=2),
        nodes=dict(type="str"),
        ntasks_per_node=dict(type="int"),
        cpus_per_task=dict(type="int"),
        partition=dict(type="str"),
        time_limit=dict(type="str"),
        job_name=dict(type="str", default="mw_job"),
        chdir=dict(type="str"),
        env=dict(type="dict", default={}, no_log=True),
        slurm_options=dict(type="list", elements="str", default=[]),
        master_command=dict(type="raw"),
        worker_command=dict(type="raw"),
        master_listens=dict(type="bool", default=True),
        master_port=dict(type="int", default=0),
        interface=dict(type="str"),
        connect_timeout=dict(type="float", default=60),
        python_interpreter=dict(type="str", default="python3"),
        output_tail_lines=dict(type="int", default=20),
        wait=dict(type="bool", default=True),
        wait_timeout=dict(type="float", default=600),
        poll_interval=dict(type="float", default=1),
    )


def request_problems(params):
    """Everything wrong with the request that needs no cluster to tell."""
    problems = []
    if params["ntasks"] < 1:
        problems.append("ntasks must be at least 1 (rank 0 is the master), got %d" % params["ntasks"])
    for name in ("ntasks_per_node", "cpus_per_task"):
        if params[name] is not None and params[name] < 1:
            problems.append("%s must be at least 1, got %d" % (name, params[name]))
    for name in ("connect_timeout", "wait_timeout", "poll_interval"):
        if not math.isfinite(params[name]) or params[name] > MAX_SECONDS:
            problems.append("%s must be a number of seconds up to %g, got %s" % (name, MAX_SECONDS, params[name]))
        elif params[name] <= 0:
            problems.append("%s must be more than 0 seconds, got %g" % (name, params[name]))
    if params["output_tail_lines"] < 0:
        problems.append("output_tail_lines must not be negative")
    if not 0 <= params["master_port"] <= 65535:
        problems.append("master_port must be between 0 and 65535, got %d" % params["master_port"])
    if not params["wait"] and params["mode"] != "batch":
        problems.append("wait=false needs mode=batch: in mode %s the module itself runs the job's "
                        "srun or salloc until the job ends" % params["mode"])
    if not all(isinstance(value, (str, int, float, bool)) for value in params["env"].values()):
        problems.append("env values must be strings or numbers (each becomes one environment variable)")
    elif len(json.dumps(params["env"])) > MAX_ENV_BYTES:
        problems.append("env is %d bytes as JSON; at most %d fit through the tasks' standard input"
                        % (len(json.dumps(params["env"])), MAX_ENV_BYTES))
    for name in ("master_command", "worker_command"):
        value = params[name]
        if value is None:
            continue
        if isinstance(value, list):
            if not value or not all(isinstance(item, (str, int, float)) for item in value) or not str(value[0]):
                problems.append("%s as a list must be a non-empty list of strings (an argument vector)" % name)
        elif not isinstance(value, str) or not value.strip():
            problems.append("%s must be a string (run with /bin/sh -c) or a list (run as is)" % name)
    problems.extend(check_slurm_options(params["slurm_options"], params["mode"]))
    return problems


def main():
    module = AnsibleModule(
        argument_spec=argument_spec(),
        required_together=[("master_command", "worker_command")],
        supports_check_mode=True,
    )
    # env is no_log so that Ansible never logs it, but its values are masked here, by name: Ansible
    # would blank out every occurrence of a value such as "1" in the whole result.
    env = module.params["env"] or {}
    module.no_log_values.difference_update(str(value) for value in env.values())
    module.params["env"] = dict.fromkeys(env, "********")
    params = dict(module.params, env=env)
    problems = request_problems(params)
    if problems:
        module.fail_json(msg="; ".join(problems))

    cli = SlurmCli(module, REQUIRED_COMMANDS[params["mode"]])
    job = MasterWorkerJob(module, cli, params)
    try:
        if module.check_mode:
            module.exit_json(**job.check())
        base, outcome = job.run_batch() if params["mode"] == "batch" else job.run_local()
    except SlurmCommandError as error:
        module.fail_json(mode=params["mode"], **error.result())

    result = dict(base, **(outcome or {}))
    if result.pop("failed", False):
        module.fail_json(**result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
