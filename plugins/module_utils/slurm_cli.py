# -*- coding: utf-8 -*-
# Copyright: contributors to the hpc.slurm collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Slurm command lines: building arguments, running the commands, parsing their output.

Everything that knows the shape of a Slurm command or of its output lives here, so that it
can be tested on recorded real output without a cluster. Arguments are always lists; the C
locale is forced for every command whose output is parsed.
"""

import re
import shlex
import time

C_LOCALE = {"LANG": "C", "LC_ALL": "C", "LC_MESSAGES": "C"}

TERMINAL_STATES = frozenset((
    "BOOT_FAIL", "CANCELLED", "COMPLETED", "DEADLINE", "FAILED", "NODE_FAIL",
    "OUT_OF_MEMORY", "PREEMPTED", "TIMEOUT",
))
# Slurm's wording when a request can never be satisfied by the partition's nodes.
CAPACITY_REASONS = (
    "Requested node configuration is not available",
    "More processors requested than permitted",
    "Node count specification invalid",
)
# Module option -> Slurm option, for the options that shape the allocation.
ALLOCATION_OPTIONS = (
    ("ntasks", "--ntasks"),
    ("nodes", "--nodes"),
    ("ntasks_per_node", "--ntasks-per-node"),
    ("cpus_per_task", "--cpus-per-task"),
    ("partition", "--partition"),
    ("time_limit", "--time"),
    ("job_name", "--job-name"),
)
# Options the module must keep to itself, as long name -> short letter (or None). sbatch's
# --wrap would replace the batch script; in interactive mode, srun's I/O options would take the
# step's standard streams away from the launcher.
BANNED_OPTIONS = {"wrap": None}
STEP_IO_OPTIONS = {"input": "i", "output": "o", "error": "e", "label": "l", "pty": None}
# Short options that take an argument (required or optional), from the getopt_long option
# strings of Slurm 22.05's commands: in a bundle such as -lo/tmp/x, everything after one of
# these letters is its argument, not more options.
SHORT_WITH_ARGUMENT = {
    "sbatch": frozenset("AabDMCScdmexBGiJLkFwNnopqt"),
    "srun": frozenset("AbDMCScdmexBGIiJKLTkFwNnopqrtW"),
    "salloc": frozenset("AbDMCScdmxBGIJKLkFwNnpqt"),
}
# The commands that parse slurm_options in each mode (srun --test-only checks allocation mode's).
OPTION_PARSERS = {"batch": ("sbatch",), "interactive": ("srun",), "allocation": ("salloc", "srun")}

# sacct columns of the module's accounting records. JobName comes last: sacct --parsable2 does
# not escape a "|" in a job name, so everything after the last-but-one "|" is the name.
SACCT_FIELDS = ("JobID", "State", "ExitCode", "Elapsed", "ElapsedRaw", "Start", "End", "User", "Account",
                "Partition", "AllocCPUS", "NodeList", "JobName")
# What sacct prints (rc 1) when slurm.conf has AccountingStorageType=accounting_storage/none;
# the same words in Slurm 22.05 and 24.11.
ACCOUNTING_DISABLED = "accounting storage is disabled"

_SCONTROL_FIELD = re.compile(r"(?:^|\s)([A-Za-z][A-Za-z0-9_:/]*)=")
_TEST_ONLY = re.compile(
    r"Job (?P<job_id>\d+) to start at (?P<start_time>\S+) using (?P<processors>\d+) processors? "
    r"on nodes (?P<nodes>\S+) in partition (?P<partition>\S+)")
_SLURM_ERROR = re.compile(r"^(?:[a-z]+: )?(?:error|fatal): (.*)$")
_ALLOCATION_FAILURE = re.compile(r"^allocation failure: (.*)$")


class SlurmCommandError(Exception):
    """A Slurm command failed; carries what the module's failure result needs."""

    def __init__(self, msg, cmd=None, rc=None, stdout="", stderr=""):
        super(SlurmCommandError, self).__init__(msg)
        self.msg = msg
        self.cmd = cmd
        self.rc = rc
        self.stdout = stdout
        self.stderr = stderr

    def result(self):
        return {"msg": self.msg, "cmd": self.cmd, "rc": self.rc, "stdout": self.stdout, "stderr": self.stderr}


# --------------------------------------------------------------------------- arguments

def allocation_args(params):
    """Options that describe the allocation, in a fixed order, then the user's own options."""
    args = ["%s=%s" % (flag, params[name]) for name, flag in ALLOCATION_OPTIONS
            if params.get(name) not in (None, "")]
    return args + list(params.get("slurm_options") or [])


def step_args(params):
    """Options of the srun that starts the tasks inside an existing allocation.

    The step repeats ntasks and cpus-per-task because srun of newer Slurm releases no longer
    inherits cpus-per-task from the allocation.
    """
    args = ["--label", "--input=all", "--ntasks=%s" % params["ntasks"]]
    if params.get("cpus_per_task"):
        args.append("--cpus-per-task=%s" % params["cpus_per_task"])
    if params.get("chdir"):
        args.append("--chdir=%s" % params["chdir"])
    return args


def option_name(option):
    return option.split("=", 1)[0]


def options_set_by(item, parsers):
    """The options one argv item sets as getopt_long reads it, as (long name as written, maybe
    abbreviated) or (None, short letter) pairs. Covers '--name=value', '--name value' in one item
    and bundles like '-lo/tmp/x', where a letter that takes an argument ends the bundle (only
    when it does so for every command that parses the item)."""
    if item.startswith("--"):
        return [(re.split(r"[=\s]", item[2:], 1)[0], None)]
    stops = frozenset.intersection(*(SHORT_WITH_ARGUMENT[parser] for parser in parsers))
    found = []
    for letter in item[1:]:
        found.append((None, letter))
        if letter in stops:
            break
    return found


def banned_option(option, banned):
    """How a banned option is named when `option` (from options_set_by) selects it, else None.
    getopt_long takes any unique prefix of a long name; every prefix is refused here."""
    long_name, letter = option
    for name, short in sorted(banned.items()):
        if long_name is not None and name.startswith(long_name):
            return "--" + name
        if letter is not None and letter == short:
            return "-%s (--%s)" % (short, name)
    return None


def check_slurm_options(options, mode):
    """Problems with user-supplied Slurm options, as messages (empty when fine)."""
    problems = []
    parsers = OPTION_PARSERS[mode]
    for item in options:
        if not item.startswith("-") or item in ("-", "--") or item.startswith("--=") or item[2:3].isspace():
            problems.append("slurm_options item %r is not an option; give each one as '--name=value'" % item)
            continue
        for option in options_set_by(item, parsers):
            wrap = banned_option(option, BANNED_OPTIONS)
            step_io = banned_option(option, STEP_IO_OPTIONS) if mode == "interactive" else None
            if wrap:
                problems.append("slurm_options item %r means %s to %s: slurm_options must not contain --wrap, the module "
                                "writes the batch script" % (item, wrap, " and ".join(parsers)))
            elif step_io:
                problems.append("slurm_options item %r means %s to srun, which redirects the step's input or output that "
                                "the module reads; not allowed in interactive mode" % (item, step_io))
    return problems


def batch_script(python, launcher_args, environment=None):
    """The batch script: runs the launcher on the batch host with the job's environment.

    `environment` is exported by the script itself (only the job's user and Slurm read the
    script), so its values never appear on a command line.
    """
    exports = []
    for name, value in sorted((environment or {}).items()):
        exports += ["%s=%s" % (name, shlex.quote(value)), "export %s" % name]
    return "\n".join([
        "#!/bin/sh",
        "# Written by hpc.slurm.slurm_mw_job: the launcher starts the master/worker step with srun,",
        "# relays the master's address to the workers and reports each rank's exit status.",
    ] + exports + [
        "exec %s" % " ".join(shlex.quote(argument) for argument in [python] + list(launcher_args)),
        "",
    ])


# --------------------------------------------------------------------------- parsers

def parse_scontrol_record(line):
    """One line of `scontrol -o show ...` as a dict. Values may contain spaces."""
    matches = list(_SCONTROL_FIELD.finditer(line))
    record = {}
    for index, match in enumerate(matches):
        end = matches[index + 1].start() if index + 1 < len(matches) else len(line)
        record[match.group(1)] = line[match.end():end].strip()
    return record


def parse_scontrol_records(text):
    return [parse_scontrol_record(line) for line in text.splitlines() if "=" in line]


def parse_exit_code(value):
    """'2:0' -> (2, 0): exit code and signal number."""
    parts = (value or "").split(":", 1)
    try:
        return int(parts[0]), int(parts[1] if len(parts) > 1 else 0)
    except ValueError:
        return None, None


def base_state(value):
    """JobState as printed by scontrol/squeue/sacct ('CANCELLED by 0' -> 'CANCELLED')."""
    return (value or "").split(" ", 1)[0].rstrip("+")


def parse_sbatch_parsable(stdout):
    """`sbatch --parsable` prints 'jobid' or 'jobid;cluster'."""
    for line in stdout.splitlines():
        head = line.strip().split(";", 1)[0]
        if head.isdigit():
            return int(head)
    return None


def parse_test_only(stderr):
    """What `sbatch --test-only` says the job would get, or None."""
    match = _TEST_ONLY.search(stderr)
    if not match:
        return None
    found = match.groupdict()
    found["processors"] = int(found["processors"])
    return found


def slurm_error_messages(stderr):
    """The error text of Slurm client messages, without the 'sbatch: error:' prefix, in order."""
    messages = []
    for line in stderr.splitlines():
        line = line.strip()
        match = _SLURM_ERROR.match(line) or _ALLOCATION_FAILURE.match(line)
        if match and match.group(1) not in messages:
            messages.append(match.group(1))
    return messages


def is_capacity_error(messages):
    return any(reason in message for message in messages for reason in CAPACITY_REASONS)


def parse_sinfo_partitions(stdout):
    """`sinfo --noheader --format=%P|%D|%C|%a` -> partitions with node and CPU counts."""
    partitions = []
    for line in stdout.splitlines():
        fields = line.strip().split("|")
        if len(fields) != 4:
            continue
        name, nodes, cpus, availability = fields
        allocated, idle, other, total = (cpus.split("/") + ["0"] * 4)[:4]
        partitions.append({
            "partition": name.rstrip("*"),
            "default": name.endswith("*"),
            "nodes": int(nodes),
            "cpus": int(total),
            "cpus_idle": int(idle),
            "available": availability,
        })
    return partitions


def parse_sacct_job(stdout):
    """`sacct --noheader --parsable2 --allocations --format=JobID,State,ExitCode,Elapsed,NodeList`."""
    for line in stdout.splitlines():
        fields = line.split("|")
        if len(fields) >= 5 and fields[0].isdigit():
            return {"JobId": fields[0], "JobState": base_state(fields[1]), "ExitCode": fields[2],
                    "RunTime": fields[3], "NodeList": fields[4]}
    return None


def sacct_argv(sacct, job_id):
    """sacct for one job: its allocation's record first, then one per step."""
    return [sacct, "--noheader", "--parsable2", "--format=%s" % ",".join(SACCT_FIELDS), "--jobs=%s" % job_id]


def parse_sacct_records(stdout):
    """Output of sacct_argv() -> one dict per record, in sacct's order (allocation, then steps).

    `step` is None for the allocation, else the step's name ("batch", "extern", "0"...).
    """
    records = []
    for line in stdout.splitlines():
        fields = line.split("|", len(SACCT_FIELDS) - 1)
        if len(fields) != len(SACCT_FIELDS):
            continue
        raw = dict(zip(SACCT_FIELDS, fields))
        job_id, _, step = raw["JobID"].partition(".")
        exit_code, exit_signal = parse_exit_code(raw["ExitCode"])
        records.append({
            "job_id": raw["JobID"],
            "step": step or None,
            "job_name": raw["JobName"],
            "state": base_state(raw["State"]),
            "exit_code": exit_code,
            "exit_signal": exit_signal,
            "elapsed": raw["Elapsed"],
            "elapsed_seconds": int(raw["ElapsedRaw"]) if raw["ElapsedRaw"].isdigit() else None,
            "start": raw["Start"],
            "end": raw["End"],
            "user": raw["User"],
            "account": raw["Account"],
            "partition": raw["Partition"],
            "alloc_cpus": int(raw["AllocCPUS"]) if raw["AllocCPUS"].isdigit() else None,
            "node_list": raw["NodeList"],
        })
    return records


def accounting_finished(records, job_id, expected=None):
    """Whether sacct has the whole record of the job allocation's end.

    A terminal state alone is not enough: when a job's end reaches slurmdbd before its start,
    Slurm 22.05 shows a stand-in record (job name "allocation", user root) until the start
    arrives. The stand-in has no partition; every job's real record has one. Slurm 22.05 may
    also record the start of a job that has already ended with its final state but exit code 0,
    and the exit code only with the end: with `expected` (slurmctld's own final "state" and
    "exit_code" of the job), the record must agree with it.
    """
    expected = dict((key, value) for key, value in (expected or {}).items()
                    if key in ("state", "exit_code") and value is not None)
    return any(record["job_id"] == str(job_id) and record["state"] in TERMINAL_STATES and record["partition"]
               and all(record.get(key) == value for key, value in expected.items())
               for record in records)


# --------------------------------------------------------------------------- waiting

class Deadline(object):
    """A monotonic deadline: wall-clock changes cannot stretch or cut it."""

    def __init__(self, seconds, clock=time.monotonic):
        self.clock = clock
        self.seconds = seconds
        self.started = clock()

    def elapsed(self):
        return self.clock() - self.started

    def remaining(self):
        return max(0.0, self.started + self.seconds - self.clock())

    def expired(self):
        return self.remaining() <= 0


def wait_for_end(query, deadline, poll_interval, pause=time.sleep):
    """Poll `query()` (a job record or None) until the job reaches a terminal state.

    `pause(seconds)` waits between polls and may return early (batch mode wakes up as soon as
    the job reports its result). Returns (last record seen, timed_out).
    """
    last = None
    while True:
        record = query()
        if record is not None:
            last = record
            if base_state(record.get("JobState")) in TERMINAL_STATES:
                return last, False
        if deadline.expired():
            return last, True
        pause(min(poll_interval, deadline.remaining()))


def wait_for_accounting(query, job_id, deadline, poll_interval, pause=time.sleep, expected=None):
    """Poll `query()` (sacct's (records, error)) until sacct has recorded the end of the job.

    slurmctld sends a job's end to slurmdbd asynchronously, so sacct may still show it running
    for a moment after the job ended. Returns (records, error, finished): the last records seen,
    sacct's error message if it failed, and whether the allocation's record is terminal. An error
    ends the wait at once: disabled accounting stays disabled, and a database that does not
    answer now is not worth holding up the job's result for. `expected`: see accounting_finished.
    """
    while True:
        records, error = query()
        finished = accounting_finished(records, job_id, expected)
        if error or finished or deadline.expired():
            return records, error, finished
        pause(min(poll_interval, deadline.remaining()))


# --------------------------------------------------------------------------- running

class SlurmCli(object):
    """Runs Slurm's client commands for one module invocation and remembers what it ran."""

    def __init__(self, module, required, optional=("sinfo", "sacct")):
        self.module = module
        self.binaries = dict((name, module.get_bin_path(name, required=True)) for name in required)
        for name in optional:
            self.binaries[name] = module.get_bin_path(name)
        self.commands = []
        self.query_error = None

    def path(self, name):
        return self.binaries[name]

    def run(self, argv, data=None):
        self.commands.append(list(argv))
        return self.module.run_command(argv, data=data, binary_data=data is not None,
                                       environ_update=C_LOCALE)

    def show_job(self, job_id):
        """The job's record from slurmctld, or from accounting once slurmctld has forgotten it.

        None when neither knows it right now; a controller that does not answer for a moment
        must not end a long wait, so its error is kept for the timeout message instead.
        """
        rc, stdout, stderr = self.run([self.path("scontrol"), "--oneliner", "show", "job", str(job_id)])
        records = parse_scontrol_records(stdout) if rc == 0 else []
        if records:
            self.query_error = None
            return records[0]
        if "Invalid job id" in stderr:
            return self.accounting_record(job_id)
        self.query_error = (stderr or stdout).strip() or "scontrol exited with code %s" % rc
        return None

    def accounting_record(self, job_id):
        """sacct, only where accounting works (no database is required by this module)."""
        if not self.binaries.get("sacct"):
            return None
        rc, stdout = self.run([self.path("sacct"), "--noheader", "--parsable2", "--allocations",
                               "--jobs=%s" % job_id, "--format=JobID,State,ExitCode,Elapsed,NodeList"])[:2]
        return parse_sacct_job(stdout) if rc == 0 else None

    def job_accounting(self, job_id):
        """sacct's records of the job, as (records, error): error is sacct's message when it
        cannot answer (ACCOUNTING_DISABLED among others), or why sacct was not asked."""
        if not self.binaries.get("sacct"):
            return [], "sacct is not installed on this host"
        rc, stdout, stderr = self.run(sacct_argv(self.path("sacct"), job_id))
        if rc != 0:
            return [], (stderr or stdout).strip() or "sacct exited with code %s" % rc
        return parse_sacct_records(stdout), None

    def cancel(self, job_id):
        rc, stdout, stderr = self.run([self.path("scancel"), str(job_id)])
        return rc, stdout, stderr

    def partitions(self):
        if not self.binaries.get("sinfo"):
            return []
        rc, stdout = self.run([self.path("sinfo"), "--noheader", "--format=%P|%D|%C|%a"])[:2]
        return parse_sinfo_partitions(stdout) if rc == 0 else []

    def capacity_hint(self, params):
        """One sentence on what the partition can give, for 'cannot ever run' errors."""
        partitions = self.partitions()
        wanted = params.get("partition")
        chosen = [p for p in partitions if (p["partition"] == wanted if wanted else p["default"])]
        if not chosen:
            return ""
        partition = chosen[0]
        return ("; partition %s has %d CPUs on %d nodes (use fewer tasks, or an option such as "
                "--overcommit in slurm_options)" % (partition["partition"], partition["cpus"], partition["nodes"]))

    def submission_error(self, what, params, rc, stdout, stderr, cmd=None):
        cmd = cmd or self.commands[-1]
        messages = slurm_error_messages(stderr) or [line.strip() for line in stderr.splitlines() if line.strip()][:1]
        reason = "; ".join(messages) or "exit code %s" % rc
        msg = "Slurm rejected the job (%s): %s" % (what, reason)
        if is_capacity_error(messages):
            msg += self.capacity_hint(params)
        return SlurmCommandError(msg, cmd=cmd, rc=rc, stdout=stdout, stderr=stderr)
