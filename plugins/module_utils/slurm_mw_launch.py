# -*- coding: utf-8 -*-
# Copyright: contributors to the hpc.slurm collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Submit-host side of hpc.slurm.slurm_mw_job: starts the launcher in one of Slurm's three
launch modes, waits for the job with a monotonic deadline and turns what it learnt into the
module's result."""

import hmac
import inspect
import json
import os
import re
import secrets as secrets_module
import selectors
import signal
import socket
import subprocess
import sys
import time
from collections import deque

from ansible_collections.hpc.slurm.plugins.module_utils import slurm_mw_driver
from ansible_collections.hpc.slurm.plugins.module_utils.slurm_cli import (
    ACCOUNTING_DISABLED,
    C_LOCALE,
    Deadline,
    SlurmCommandError,
    allocation_args,
    base_state,
    batch_script,
    parse_exit_code,
    parse_sbatch_parsable,
    parse_test_only,
    step_args,
    wait_for_accounting,
    wait_for_end,
)
from ansible_collections.hpc.slurm.plugins.module_utils.slurm_mw_driver import (
    BOOTSTRAP,
    CHECK_IN_MISSING,
    MARKER,
    SECRETS_VARIABLE,
    elide_source,
    expand_hostlist,
)

SALLOC_JOB = re.compile(r"^salloc: (?:Granted|Pending) job allocation (\d+)")
RESULT_LIMIT_BYTES = 32 * 1024 * 1024
# After the job has sent its result only the batch step's end remains: poll briskly.
SETTLE_POLL_SECONDS = 0.05
CANCEL_SETTLE_SECONDS = 15
KILL_GRACE_SECONDS = 5
# How long sacct may take, once the job has ended, to show that end (slurmctld sends it to
# slurmdbd asynchronously; measured here it takes well under a second).
ACCOUNTING_WAIT_SECONDS = 30


def driver_source():
    return inspect.getsource(slurm_mw_driver)


def task_config(params):
    def command(value):
        if value is None:
            return None
        if isinstance(value, (list, tuple)):
            return {"argv": [str(argument) for argument in value]}
        return {"shell": str(value)}

    return {
        "master_command": command(params.get("master_command")),
        "worker_command": command(params.get("worker_command")),
        "master_listens": params.get("master_listens", True),
        "master_port": params.get("master_port") or 0,
        "interface": params.get("interface"),
        "connect_timeout": params["connect_timeout"],
        # Names only: the values travel on the tasks' standard input (see job_secrets).
        "env_names": sorted(str(key) for key in (params.get("env") or {})),
    }


def job_secrets(params, callback_token=None):
    """What must stay off every command line: env values and the job's tokens."""
    secrets = {
        "env": dict((str(key), str(value)) for key, value in (params.get("env") or {}).items()),
        "check_in_token": secrets_module.token_hex(16),
    }
    if callback_token:
        secrets["callback_token"] = callback_token
    return secrets


class ResultListener(object):
    """Batch mode: the launcher on the batch host connects back here with its result.

    Nodes do not share a filesystem with the submit host in general, so the job's output file
    may be out of reach; the TCP connection is the same direction srun's own I/O takes.
    """

    def __init__(self):
        self.token = secrets_module.token_hex(16)
        self.result = None
        if socket.has_dualstack_ipv6():
            self.server = socket.create_server(("::", 0), family=socket.AF_INET6, dualstack_ipv6=True)
        else:
            self.server = socket.create_server(("0.0.0.0", 0))
        self.port = self.server.getsockname()[1]

    def callback(self):
        """Where the launcher finds this host: its names first, then its addresses. The token
        goes with the job's secrets, never on the launcher's command line."""
        return {"hosts": submit_host_names(), "port": self.port}

    def pause(self, seconds):
        """Wait up to `seconds`, returning early when the result arrives."""
        if self.result is not None:
            time.sleep(min(seconds, SETTLE_POLL_SECONDS))
            return
        deadline = time.monotonic() + seconds
        while self.result is None:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            self.server.settimeout(remaining)
            try:
                connection = self.server.accept()[0]
            except socket.timeout:
                return
            with connection:
                self.receive(connection)

    def receive(self, connection):
        connection.settimeout(10)
        data = b""
        try:
            while len(data) < RESULT_LIMIT_BYTES:
                chunk = connection.recv(65536)
                if not chunk:
                    break
                data += chunk
            message = json.loads(data.decode("utf-8"))
        except (OSError, ValueError):
            return
        token = message.get("token") if isinstance(message, dict) else None
        if isinstance(token, str) and hmac.compare_digest(token.encode("utf-8"), self.token.encode("utf-8")):
            self.result = message.get("result")
            try:
                connection.sendall(b"ok\n")
            except OSError:
                pass

    def close(self):
        self.server.close()


def submit_host_names():
    names = [socket.gethostname(), socket.getfqdn()]
    try:
        infos = socket.getaddrinfo(socket.gethostname(), None, proto=socket.IPPROTO_TCP)
    except OSError:
        infos = []
    addresses = [info[4][0] for info in infos if not info[4][0].startswith("127.") and info[4][0] != "::1"]
    return list(dict.fromkeys(names + addresses))


def result_from_output(text):
    """The launcher's result line, from its relayed output."""
    result = None
    for line in text.splitlines():
        if line.startswith(MARKER):
            try:
                event = json.loads(line[len(MARKER):])
            except ValueError:
                continue
            if event.get("event") == "result":
                result = event
    return result


def job_summary(record):
    """The parts of a job record the module returns."""
    if not record:
        return {}
    exit_code, exit_signal = parse_exit_code(record.get("ExitCode"))
    user = record.get("UserId", "")
    summary = {
        "state": base_state(record.get("JobState")),
        "reason": record.get("Reason"),
        "exit_code": exit_code,
        "exit_signal": exit_signal,
        "run_time": record.get("RunTime"),
        "nodes": expand_hostlist(record.get("NodeList")) if record.get("NodeList") != "(null)" else [],
        "user": user.split("(", 1)[0] if user else None,
    }
    for key, name in (("BatchHost", "batch_host"), ("StdOut", "stdout_path"), ("StdErr", "stderr_path")):
        if record.get(key):
            summary[name] = record[key]
    return summary


class MasterWorkerJob(object):
    """One master/worker job: rank 0 runs the master, ranks 1..N-1 the workers."""

    def __init__(self, module, cli, params):
        self.module = module
        self.cli = cli
        self.params = params
        self.mode = params["mode"]
        self.source = driver_source()
        self.started = time.monotonic()

    # ------------------------------------------------------------------ commands

    def launch_config(self, step_argv, callback=None):
        return {
            "ntasks": self.params["ntasks"],
            "tail_lines": self.params["output_tail_lines"],
            "step_argv": step_argv,
            "task": task_config(self.params),
            "callback": callback,
        }

    def step_argv(self, srun):
        """srun for the step; in interactive mode the same srun also makes the allocation."""
        python = self.params["python_interpreter"]
        if self.mode == "interactive":
            args = ["--label", "--input=all"] + allocation_args(self.params)
            if self.params.get("chdir"):
                args.append("--chdir=%s" % self.params["chdir"])
        else:
            args = step_args(self.params)
        return [srun] + args + [python, "-c", BOOTSTRAP]

    def launcher_args(self, config):
        return ["-c", BOOTSTRAP, self.source, "launch", json.dumps(config)]

    def sbatch_argv(self, test_only=False):
        argv = [self.cli.path("sbatch"), "--test-only" if test_only else "--parsable"]
        argv += allocation_args(self.params)
        if self.params.get("chdir"):
            argv.append("--chdir=%s" % self.params["chdir"])
        return argv

    def shown_step(self, config):
        return self.shown(config["step_argv"] + [self.source, "task", json.dumps(config["task"])])

    def shown(self, argv):
        """A command as returned to the user: the driver source elided (it holds no secret)."""
        return elide_source(argv, self.source)

    # ------------------------------------------------------------------ check mode

    def test_only(self):
        """--test-only with the same allocation: schedules nothing, creates no job.

        Run before every submission too: Slurm accepts a job that no partition can ever hold
        (unless EnforcePartLimits is set) and leaves it pending for ever, while --test-only
        rejects it at once. srun checks the interactive modes: salloc has no --test-only, and
        srun knows the options that salloc and srun share but sbatch lacks (--immediate).
        """
        if self.mode == "batch":
            config = self.launch_config(self.step_argv("srun"))
            script = batch_script(self.params["python_interpreter"], self.launcher_args(config))
            argv, data = self.sbatch_argv(test_only=True), script
        else:
            argv = [self.cli.path("srun"), "--test-only"] + allocation_args(self.params)
            if self.params.get("chdir"):
                argv.append("--chdir=%s" % self.params["chdir"])
            argv, data = argv + ["true"], None
        rc, stdout, stderr = self.cli.run(argv, data=data)
        if rc != 0:
            raise self.cli.submission_error("%s --test-only" % os.path.basename(argv[0]), self.params,
                                            rc, stdout, stderr)
        return argv, stdout, stderr

    def check(self):
        argv, stdout, stderr = self.test_only()
        config = self.launch_config(self.step_argv(self.cli.path("srun") if self.mode != "batch" else "srun"))
        return {
            "changed": True,
            "mode": self.mode,
            "test_only": parse_test_only(stderr),
            "cmd": argv,
            "step_cmd": self.shown_step(config),
            "stdout": stdout,
            "stderr": stderr,
        }

    # ------------------------------------------------------------------ batch mode

    def run_batch(self):
        self.test_only()
        listener = ResultListener() if self.params["wait"] else None
        try:
            return self._run_batch(listener)
        finally:
            if listener:
                listener.close()

    def _run_batch(self, listener):
        config = self.launch_config(self.step_argv("srun"), listener.callback() if listener else None)
        secrets = job_secrets(self.params, listener.token if listener else None)
        script = batch_script(self.params["python_interpreter"], self.launcher_args(config),
                              {SECRETS_VARIABLE: json.dumps(secrets)})
        argv = self.sbatch_argv()
        rc, stdout, stderr = self.cli.run(argv, data=script)
        if rc != 0:
            raise self.cli.submission_error("sbatch", self.params, rc, stdout, stderr)
        job_id = parse_sbatch_parsable(stdout)
        if job_id is None:
            raise SlurmCommandError("sbatch printed no job id", cmd=argv, rc=rc, stdout=stdout, stderr=stderr)
        base = {"changed": True, "mode": self.mode, "job_id": job_id, "cmd": argv,
                "step_cmd": self.shown_step(config)}
        if not listener:
            base.update(job_summary(self.cli.show_job(job_id)))
            base["elapsed"] = round(time.monotonic() - self.started, 3)
            return base, None

        deadline = Deadline(self.params["wait_timeout"])
        record, timed_out = wait_for_end(lambda: self.cli.show_job(job_id), deadline,
                                         self.params["poll_interval"], listener.pause)
        if timed_out:
            return base, self.timed_out(job_id, record, deadline)
        result = listener.result or self.result_from_file(record)
        return base, self.outcome(job_id, record, result, launcher_rc=None)

    def result_from_file(self, record):
        """Where the output file is visible here (shared filesystem, or the submit host ran it)."""
        path = (record or {}).get("StdOut")
        if not path or not os.path.isfile(path):
            return None
        try:
            with open(path, errors="replace") as handle:
                return result_from_output(handle.read())
        except OSError:
            return None

    # ------------------------------------------------------------------ interactive / allocation

    def run_local(self):
        """interactive: the launcher runs srun, which allocates and launches in one go;
        allocation: salloc allocates and runs the launcher, whose srun launches the step."""
        self.test_only()
        config = self.launch_config(self.step_argv(self.cli.path("srun")))
        launcher = [sys.executable] + self.launcher_args(config)
        if self.mode == "allocation":
            argv = [self.cli.path("salloc")] + allocation_args(self.params) + launcher
        else:
            argv = launcher
        base = {"changed": True, "mode": self.mode, "cmd": self.shown(argv),
                "step_cmd": self.shown_step(config)}
        deadline = Deadline(self.params["wait_timeout"])
        run = LocalRun(argv, self.params["output_tail_lines"], {SECRETS_VARIABLE: json.dumps(job_secrets(self.params))})
        finished = run.wait(deadline)
        base["job_id"] = int(run.job_id) if run.job_id else None
        if not finished:
            record = self.cli.show_job(run.job_id) if run.job_id else None
            return base, self.timed_out(run.job_id, record, deadline, local_run=run)

        result = run.result
        if run.job_id is None:
            # srun or salloc refused the job before it got an id; their messages (relayed by the
            # launcher in interactive mode) say why.
            raise self.cli.submission_error("salloc" if self.mode == "allocation" else "srun", self.params,
                                            run.returncode, "\n".join(run.stdout), "\n".join(run.stderr),
                                            cmd=base["cmd"])
        record = wait_for_end(lambda: self.cli.show_job(run.job_id), Deadline(CANCEL_SETTLE_SECONDS),
                              SETTLE_POLL_SECONDS)[0]
        outcome = self.outcome(run.job_id, record, result, launcher_rc=run.returncode)
        outcome.setdefault("stdout", "\n".join(run.stdout))
        outcome.setdefault("stderr", "\n".join(run.stderr))
        return base, outcome

    # ------------------------------------------------------------------ outcome

    def accounting(self, job_id, summary=None):
        """sacct's records of the ended job: {"accounting": [...]}, plus "accounting_unavailable"
        when sacct gives none. Never fails the module: a warning says what is missing. `summary`
        is slurmctld's view of the ended job, which the database's record must reach."""
        deadline = Deadline(ACCOUNTING_WAIT_SECONDS)
        records, error, finished = wait_for_accounting(lambda: self.cli.job_accounting(job_id), job_id,
                                                       deadline, self.params["poll_interval"], expected=summary)
        found = {"accounting": records}
        if error:
            found["accounting_unavailable"] = error
            if ACCOUNTING_DISABLED not in error:
                self.module.warn("no accounting records for job %s: %s" % (job_id, error))
        elif not finished:
            allocation = [record["state"] for record in records if record["step"] is None]
            if not records:
                found["accounting_unavailable"] = "sacct had no record of job %s after %.1f s" % (
                    job_id, deadline.elapsed())
            self.module.warn("sacct had not recorded the end of job %s after %.1f s; 'accounting' holds what it "
                             "had (allocation state %s)" % (job_id, deadline.elapsed(),
                                                            allocation[0] if allocation else "not recorded"))
        return found

    def timed_out(self, job_id, record, deadline, local_run=None):
        last = job_summary(record)
        last_state = last.get("state") or "unknown"
        cancel = None
        if job_id:
            cancel = self.cli.cancel(job_id)
        if local_run:
            local_run.stop()
        final = None
        if job_id:
            final = wait_for_end(lambda: self.cli.show_job(job_id), Deadline(CANCEL_SETTLE_SECONDS),
                                 SETTLE_POLL_SECONDS)[0]
        summary = job_summary(final) or last
        if last_state == "unknown" and self.cli.query_error:
            last_state = "unknown: %s" % self.cli.query_error
        msg = "job %s did not finish within %g s (last state %s%s after %.1f s); %s" % (
            job_id if job_id else "(no id yet)", self.params["wait_timeout"], last_state,
            ", reason %s" % last["reason"] if last.get("reason") not in (None, "None") else "",
            deadline.elapsed(),
            "cancelled it with scancel" if cancel and cancel[0] == 0 else
            "scancel failed: %s" % cancel[2].strip() if cancel else
            "Slurm had not given it an id yet; stopped the launcher")
        outcome = dict(summary, failed=True, msg=msg, timed_out=True, last_state=last_state,
                       elapsed=round(time.monotonic() - self.started, 3),
                       rc=cancel[0] if cancel else None,
                       stdout=cancel[1] if cancel else "", stderr=cancel[2] if cancel else "")
        if local_run:
            outcome["stdout"] = "\n".join(local_run.stdout)
            outcome["stderr"] = "\n".join(local_run.stderr)
        if job_id:
            outcome.update(self.accounting(job_id, summary))
        return outcome

    def outcome(self, job_id, record, result, launcher_rc):
        summary = job_summary(record)
        outcome = dict(summary, elapsed=round(time.monotonic() - self.started, 3))
        outcome.update(self.accounting(job_id, summary))
        if result:
            outcome.update({
                "master": result.get("master"),
                "tasks": result.get("tasks", []),
                "failed_ranks": result.get("failed_ranks", []),
                "stdout": "\n".join(result.get("stdout", [])),
                "stderr": "\n".join(result.get("stderr", [])),
            })
            if "workers_connected" in result:
                outcome["workers_connected"] = result["workers_connected"]
                outcome["workers_missing"] = result["workers_missing"]
        state = summary.get("state")
        problems = []
        if result is not None:
            problems.extend(describe_failures(result))
        elif state == "COMPLETED" and summary.get("exit_code") == 0:
            # The launcher exits 0 only when every rank did: success, without the details.
            self.module.warn("job %s completed, but its per-rank result did not reach this host (the compute "
                             "nodes could not connect back to it); it is at the end of %s on %s"
                             % (job_id, summary.get("stdout_path", "the job's output"), summary.get("batch_host")))
        else:
            problems.append("the job reported no result (it ended in state %s with exit code %s; see %s)"
                            % (state, summary.get("exit_code"), summary.get("stdout_path", "its output")))
        if state and state != "COMPLETED" and not problems:
            problems.append("job ended in state %s" % state)
        if problems:
            outcome.update(failed=True, msg="master/worker job %s failed: %s" % (job_id, "; ".join(problems)),
                           rc=summary.get("exit_code") if launcher_rc is None else launcher_rc)
        return outcome


def describe_failures(result):
    """What went wrong, cause first: ranks that only failed because of another are not repeated."""
    problems = [result["launch_error"]] if result.get("launch_error") else []
    tasks = result.get("tasks", [])
    failed_ranks = result.get("failed_ranks") or []
    master = result.get("master")
    if tasks and not master and not result.get("launch_error"):
        # Without the master's address no worker could start: rank 0 is the whole story.
        problems.append("the master (rank 0 on %s) never became ready: %s"
                        % (tasks[0].get("host") or "?", describe_task(tasks[0])))
        if result.get("slurm_errors"):
            problems.append("srun: " + "; ".join(result["slurm_errors"]))
        return problems
    explained = set()
    missing = result.get("workers_missing") or []
    if missing:
        reasons = [task["error"] for task in tasks if task["rank"] in missing and task.get("error")]
        problems.append("self-test: %s never checked in with the master at %s:%s%s" % (
            ranks_phrase(missing), master["ip"], master["port"], " (%s)" % "; ".join(reasons) if reasons else ""))
        explained.update(missing)
        if tasks and CHECK_IN_MISSING in (tasks[0].get("error") or ""):
            explained.add(0)
    failed = [task for task in tasks if task["rank"] in failed_ranks and task["rank"] not in explained]
    if failed:
        problems.append("%s failed (%s)" % (
            ranks_phrase([task["rank"] for task in failed]),
            "; ".join("rank %s on %s: %s" % (task["rank"], task.get("host") or "?", describe_task(task))
                      for task in failed)))
    if not problems and result.get("srun_rc") not in (0, None):
        problems.append("srun exited with code %s: %s" % (result["srun_rc"], "; ".join(result.get("slurm_errors", []))))
    return problems


def ranks_phrase(ranks):
    return ("rank %s" if len(ranks) == 1 else "ranks %s") % ", ".join(str(rank) for rank in ranks)


def describe_task(task):
    parts = []
    if task.get("exit_code") is not None:
        parts.append("exit code %s" % task["exit_code"])
    if task.get("signal"):
        parts.append("signal %s" % task["signal"])
    if task.get("error"):
        parts.append(task["error"])
    return ", ".join(parts) or "no status"


class LocalRun(object):
    """The launcher (or salloc running it) as a child of the module, read as it runs."""

    def __init__(self, argv, tail_lines, environment=None):
        self.argv = argv
        self.environment = environment or {}
        self.stdout = deque(maxlen=tail_lines)
        self.stderr = deque(maxlen=tail_lines)
        self.job_id = None
        self.result = None
        self.returncode = None
        self.process = None

    def wait(self, deadline):
        """True when the launcher ended before the deadline."""
        environ = dict(os.environ, **C_LOCALE)
        environ.update(self.environment)
        try:
            self.process = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                            stderr=subprocess.PIPE, env=environ, start_new_session=True)
        except OSError as error:
            raise SlurmCommandError("cannot run %s: %s" % (self.argv[0], error.strerror or error), cmd=self.argv)
        streams = selectors.DefaultSelector()
        pending = {"stdout": b"", "stderr": b""}
        streams.register(self.process.stdout, selectors.EVENT_READ, "stdout")
        streams.register(self.process.stderr, selectors.EVENT_READ, "stderr")
        try:
            while streams.get_map():
                remaining = deadline.remaining()
                if remaining <= 0:
                    return False
                for key, unused_events in streams.select(timeout=remaining):
                    chunk = os.read(key.fd, 65536)
                    if not chunk:
                        streams.unregister(key.fileobj)
                        lines = [pending[key.data]] if pending[key.data] else []
                    else:
                        lines = (pending[key.data] + chunk).split(b"\n")
                        pending[key.data] = lines.pop()
                    for line in lines:
                        self.on_line(key.data, line.decode("utf-8", "replace"))
        finally:
            streams.close()
        try:
            self.returncode = self.process.wait(timeout=max(deadline.remaining(), 0.1))
        except subprocess.TimeoutExpired:
            return False
        return True

    def on_line(self, stream, line):
        if stream == "stdout" and line.startswith(MARKER):
            try:
                event = json.loads(line[len(MARKER):])
            except ValueError:
                event = {}
            if event.get("event") == "job" and event.get("job_id"):
                self.job_id = str(event["job_id"])
            elif event.get("event") == "result":
                self.result = event
                self.job_id = self.job_id or event.get("job_id")
            return
        getattr(self, stream).append(line)
        granted = SALLOC_JOB.match(line)
        if granted and self.job_id is None:
            self.job_id = granted.group(1)

    def stop(self):
        """Ends the launcher's whole process group: scancel has already ended the job."""
        if self.process is None or self.process.poll() is not None:
            return
        for sig, grace in ((signal.SIGTERM, KILL_GRACE_SECONDS), (signal.SIGKILL, KILL_GRACE_SECONDS)):
            try:
                os.killpg(self.process.pid, sig)
            except OSError:
                return
            try:
                self.process.wait(timeout=grace)
                return
            except subprocess.TimeoutExpired:
                continue
