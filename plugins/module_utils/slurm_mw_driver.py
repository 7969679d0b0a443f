# -*- coding: utf-8 -*-
# Copyright: contributors to the hpc.slurm collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Launcher and per-task driver of the hpc.slurm.slurm_mw_job module.

This one file is used in three places, always as source text, so that nothing has to be
installed on, or copied to, the compute nodes:

* the module imports it on the submit host for its helpers and reads its source;
* the *launcher* runs it on the batch host (batch mode) or the submit host (interactive and
  allocation modes) as ``python3 -c BOOTSTRAP <source> launch <config>``. It starts the job
  step with ``srun --label --input=all``, writes the job's secrets to the step's standard
  input, reads every rank's output, passes the master's address from rank 0's output to the
  workers the same way, and finally prints (and, in batch mode, sends back to the module) one
  result line with each rank's exit status;
* the *task driver* runs it once per rank on the compute nodes as
  ``python3 -c BOOTSTRAP <source> task <config>``: rank 0 starts the master, the other ranks
  wait for the master's address and start the workers.

Command lines are visible to every user of a node (``ps``), so they carry no secret: the
values of the module's ``env``, the self-test's check-in token and the batch result's token
reach the launcher in its environment (SECRETS_VARIABLE, removed at once) and the tasks as the
first line of their standard input.

Standard library only, Python 3.8 or newer: the nodes have Debian's python3 and nothing else.
Every rank of a job starts this file at once, often more ranks than CPUs: the modules that only
the launcher or a user command needs are imported where they are used.
"""

import json
import os
import re
import select
import socket
import struct
import sys
import time
from collections import deque

try:
    import fcntl
except ImportError:  # not on Linux: interface lookup by name is unavailable
    fcntl = None

# Runs the source passed as the next argument; sys.argv[1] keeps it for the next hop.
BOOTSTRAP = "import sys;exec(compile(sys.argv[1],'hpc.slurm.slurm_mw_driver','exec'))"
# Control lines start with this marker; user output never needs to.
MARKER = "@@hpc.slurm.mw "
# The launcher's environment variable that holds the job's secrets (JSON).
SECRETS_VARIABLE = "HPC_SLURM_MW_SECRETS"
CHECK_IN_MISSING = "never checked in with the master"
SIOCGIFADDR = 0x8915
LISTEN_STATE = "0A"
MAX_LINE_BYTES = 65536
SRUN_LABEL = re.compile(r"^\s*(\d+): ?(.*)$")
SRUN_TASK_END = re.compile(r"^srun: error: (\S+): tasks? ([0-9,\-\[\]]+): (.*?)\s*$")
SRUN_EXIT_CODE = re.compile(r"^Exited with exit code (\d+)$")
SRUN_QUEUED = re.compile(r"^srun: job (\d+) queued and waiting for resources")
SRUN_ALLOCATED = re.compile(r"^srun: job (\d+) has been allocated resources")
SLURM_ERROR = re.compile(r"^(?:srun|salloc|sbatch): (?:error|fatal): (.*)$")
_PLACEHOLDER = re.compile(r"\$\{(MW_[A-Z_]+)\}|\$(MW_[A-Z_]+)")


class TaskError(Exception):
    """A failure that the user can act on; reported as a message, never as a traceback."""


# --------------------------------------------------------------------------- helpers

def expand_hostlist(expression):
    """Expand a Slurm hostlist such as 'n[01-03,7],gpu1' into a list of names."""
    hosts = []
    for item in _split_outside_brackets(expression or ""):
        hosts.extend(_expand_hostlist_item(item))
    return hosts


def _split_outside_brackets(expression):
    items, depth, current = [], 0, ""
    for char in expression:
        if char == "[":
            depth += 1
        elif char == "]":
            depth -= 1
        if char == "," and depth == 0:
            items.append(current)
            current = ""
        else:
            current += char
    items.append(current)
    return [item.strip() for item in items if item.strip()]


def _expand_hostlist_item(item):
    match = re.match(r"^([^\[]*)\[([^\]]+)\](.*)$", item)
    if not match:
        return [item]
    prefix, ranges, rest = match.groups()
    heads = [prefix + number for number in expand_ranges(ranges, keep_width=True)]
    return [head + tail for head in heads for tail in _expand_hostlist_item(rest)]


def expand_ranges(ranges, keep_width=False):
    """'1-3,5' -> ['1', '2', '3', '5']; with keep_width, '01-03' keeps its zero padding."""
    numbers = []
    for part in ranges.strip("[]").split(","):
        part = part.strip()
        if not part:
            continue
        bounds = part.split("-", 1)
        width = len(bounds[0]) if keep_width else 0
        for number in range(int(bounds[0]), int(bounds[-1]) + 1):
            numbers.append(str(number).zfill(width))
    return numbers


def expand_placeholders(argument, values):
    """Replace $MW_NAME / ${MW_NAME} with the task's value; other text is left alone."""
    def replace(match):
        name = match.group(1) or match.group(2)
        return values.get(name, match.group(0))
    return _PLACEHOLDER.sub(replace, argument)


def command_argv(command, values):
    """A command given as an argv list runs as is (placeholders expanded); a string runs in /bin/sh."""
    if "argv" in command:
        return [expand_placeholders(str(argument), values) for argument in command["argv"]]
    return ["/bin/sh", "-c", command["shell"]]


def interface_address(name, host):
    """IPv4 address of a network interface of this node (SIOCGIFADDR)."""
    if fcntl is None:
        raise TaskError("looking up interface %r needs Linux" % name)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            packed = fcntl.ioctl(probe.fileno(), SIOCGIFADDR, struct.pack("256s", name.encode()[:15]))
        except OSError as error:
            raise TaskError("network interface %r has no IPv4 address on %s (%s)"
                            % (name, host, error.strerror or error))
    return socket.inet_ntoa(packed[20:24])


def source_address_towards(peer):
    """The local address this node uses to reach `peer` (a UDP connect sends no packet)."""
    target = socket.getaddrinfo(peer, 9, socket.AF_INET, socket.SOCK_DGRAM)[0][4]
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.connect(target)
        return probe.getsockname()[0]


def master_address(interface, environ, host):
    """The address the workers should use to reach this node.

    With `interface`, that interface's IPv4 address. Otherwise the address this node routes
    from towards the other nodes of the step (then the submit host): the address the other
    nodes reach it on, without trusting /etc/hosts entries such as 127.0.1.1.
    """
    if interface:
        return interface_address(interface, host)
    nodelist = environ.get("SLURM_STEP_NODELIST") or environ.get("SLURM_JOB_NODELIST") or ""
    peers = [name for name in expand_hostlist(nodelist) if name != host][:3]
    peers.append(environ.get("SLURM_SUBMIT_HOST"))
    for peer in peers:
        if not peer:
            continue
        try:
            address = source_address_towards(peer)
        except OSError:
            continue
        if not is_loopback(address):
            return address
    try:
        address = socket.gethostbyname(host)
    except OSError:
        address = "127.0.0.1"
    if is_loopback(address):
        raise TaskError("cannot tell which address other nodes reach %s on; set the interface option" % host)
    return address


def is_loopback(address):
    return address.startswith("127.") or address == "::1"


def free_port(address):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((address, 0))
        return probe.getsockname()[1]


def decode_proc_net_address(hex_address):
    """Address field of /proc/net/tcp{,6}: 32-bit words printed in host byte order."""
    raw = bytes.fromhex(hex_address)
    if sys.byteorder == "little":
        raw = b"".join(raw[index:index + 4][::-1] for index in range(0, len(raw), 4))
    return socket.inet_ntop(socket.AF_INET if len(raw) == 4 else socket.AF_INET6, raw)


def listening_sockets(tables=("/proc/net/tcp", "/proc/net/tcp6")):
    """(address, port) of every TCP socket in LISTEN state in this network namespace."""
    found = []
    for table in tables:
        try:
            with open(table) as handle:
                rows = handle.read().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            fields = row.split()
            if len(fields) < 4 or fields[3] != LISTEN_STATE:
                continue
            address, port = fields[1].split(":", 1)
            found.append((decode_proc_net_address(address), int(port, 16)))
    return found


def is_listening_on(address, port, sockets):
    reachable = {address, "0.0.0.0", "::", "::ffff:" + address}
    return any(port == listen_port and listen_address in reachable for listen_address, listen_port in sockets)


def read_line(connection, limit=MAX_LINE_BYTES):
    data = b""
    while b"\n" not in data and len(data) < limit:
        chunk = connection.recv(4096)
        if not chunk:
            break
        data += chunk
    return data.split(b"\n", 1)[0].decode("utf-8", "replace")


def exit_status(returncode):
    """(exit_code, signal name) from a Popen returncode; a signal counts as 128 + its number."""
    if returncode is not None and returncode < 0:
        import signal
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = str(-returncode)
        return 128 - returncode, name
    return returncode, None


class InputLines(object):
    """Lines of a file descriptor, each awaited until a monotonic deadline."""

    def __init__(self, descriptor):
        self.descriptor = descriptor
        self.data = b""

    def line(self, deadline):
        """The next line; raises TimeoutError past the deadline, EOFError at the end of input."""
        while b"\n" not in self.data:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError()
            if not select.select([self.descriptor], [], [], remaining)[0]:
                continue
            chunk = os.read(self.descriptor, 65536)
            if not chunk:
                raise EOFError()
            self.data += chunk
        line, self.data = self.data.split(b"\n", 1)
        return line.decode("utf-8", "replace")


def emit(event, **fields):
    fields["event"] = event
    sys.stdout.write(MARKER + json.dumps(fields, sort_keys=True) + "\n")
    sys.stdout.flush()


# --------------------------------------------------------------------------- task driver

class Task(object):
    """One rank of the step: rank 0 runs the master, every other rank a worker."""

    def __init__(self, config, environ):
        self.config = config
        self.environ = environ
        self.rank = int(environ["SLURM_PROCID"])
        self.num_proc = int(environ.get("SLURM_STEP_NUM_TASKS") or environ["SLURM_NTASKS"])
        self.host = environ.get("SLURMD_NODENAME") or socket.gethostname()
        self.connect_timeout = float(config["connect_timeout"])
        self.self_test = config.get("master_command") is None
        self.input = InputLines(sys.stdin.fileno())
        self.secrets = {"env": {}, "check_in_token": None}

    def run(self):
        emit("start", rank=self.rank, host=self.host, job_id=self.environ.get("SLURM_JOB_ID"))
        try:
            self.secrets = self.read_secrets()
            status = self.run_master() if self.rank == 0 else self.run_worker()
        except TaskError as error:
            status = {"exit_code": 1, "error": str(error)}
        emit("status", rank=self.rank, host=self.host, **status)
        exit_code = status.get("exit_code")
        return min(exit_code, 255) if isinstance(exit_code, int) else 1

    def read_secrets(self):
        """The first line of standard input: env values and the check-in token, never on argv."""
        try:
            secrets = json.loads(self.input.line(time.monotonic() + self.connect_timeout))
        except TimeoutError:
            raise TaskError("rank %d on %s got no job secrets on its standard input within %g s"
                            % (self.rank, self.host, self.connect_timeout))
        except (EOFError, ValueError):
            raise TaskError("rank %d on %s: standard input ended or was garbled before the job secrets came "
                            "(the launcher sends them first)" % (self.rank, self.host))
        if (not isinstance(secrets, dict) or not isinstance(secrets.get("env"), dict)
                or sorted(secrets["env"]) != sorted(self.config.get("env_names") or [])
                or not isinstance(secrets.get("check_in_token"), str)):
            raise TaskError("rank %d on %s: the job secrets on standard input are not this job's"
                            % (self.rank, self.host))
        return secrets

    def values(self, master):
        return {
            "MW_MASTER_IP": master["ip"],
            "MW_MASTER_PORT": str(master["port"]),
            "MW_MASTER_HOST": master["host"],
            "MW_PROC_ID": str(self.rank),
            "MW_NUM_PROC": str(self.num_proc),
        }

    def start(self, command, master, role):
        values = self.values(master)
        child_environ = dict(self.environ)
        child_environ.update(self.secrets["env"])
        child_environ.update(values)
        argv = command_argv(command, values)
        import subprocess
        try:
            return subprocess.Popen(argv, env=child_environ, stdin=subprocess.DEVNULL)
        except OSError as error:
            raise TaskError("cannot start the %s command %r on %s: %s"
                            % (role, argv[0], self.host, error.strerror or error))

    def run_master(self):
        address = master_address(self.config.get("interface"), self.environ, self.host)
        port = int(self.config.get("master_port") or 0)
        if self.self_test:
            return self.self_test_master(address, port)
        master = {"host": self.host, "ip": address, "port": port or free_port(address)}
        process = self.start(self.config["master_command"], master, "master")
        try:
            if self.config.get("master_listens", True):
                self.wait_until_listening(process, master)
            emit("ready", **master)
            exit_code, signal_name = exit_status(process.wait())
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
        status = {"exit_code": exit_code}
        if signal_name:
            status["signal"] = signal_name
        return status

    def wait_until_listening(self, process, master):
        """Poll the kernel's socket table, so no test connection reaches the user's master."""
        deadline = time.monotonic() + self.connect_timeout
        pause = 0.005
        while not is_listening_on(master["ip"], master["port"], listening_sockets()):
            if process.poll() is not None:
                raise TaskError("the master command exited with code %s before it listened on %s:%s"
                                % (exit_status(process.returncode)[0], master["ip"], master["port"]))
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TaskError("the master command did not listen on %s:%s within %g s (it must listen on "
                                "$MW_MASTER_IP:$MW_MASTER_PORT, or set master_listens to false)"
                                % (master["ip"], master["port"], self.connect_timeout))
            time.sleep(min(pause, remaining))
            pause = min(pause * 2, 0.1)

    def self_test_master(self, address, port):
        server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                server.bind((address, port))
            except OSError as error:
                raise TaskError("the master cannot listen on %s:%s on %s: %s"
                                % (address, port, self.host, error.strerror or error))
            server.listen(max(self.num_proc, 16))
            master = {"host": self.host, "ip": address, "port": server.getsockname()[1]}
            emit("ready", **master)
            connected = self.collect_check_ins(server, time.monotonic() + self.connect_timeout)
        finally:
            server.close()
        missing = [rank for rank in range(1, self.num_proc) if rank not in connected]
        status = {
            "exit_code": 1 if missing else 0,
            "workers_connected": [connected[rank] for rank in sorted(connected)],
            "workers_missing": missing,
        }
        if missing:
            status["error"] = "ranks %s %s at %s:%s within %g s" % (
                ", ".join(str(rank) for rank in missing), CHECK_IN_MISSING, master["ip"], master["port"],
                self.connect_timeout)
        return status

    def collect_check_ins(self, server, deadline):
        connected = {}
        while len(connected) < self.num_proc - 1:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            server.settimeout(remaining)
            try:
                connection, peer = server.accept()
            except socket.timeout:
                break
            with connection:
                connection.settimeout(min(remaining, 10.0))
                try:
                    message = json.loads(read_line(connection))
                    rank, token = int(message["rank"]), message["token"]
                except (OSError, ValueError, KeyError, TypeError):
                    continue
                accepted = self.accepts(rank, token, connected)
                if accepted:
                    connected[rank] = {"rank": rank, "host": str(message.get("host")), "address": peer[0]}
                try:
                    connection.sendall(b'{"ok": true}\n' if accepted else b'{"ok": false}\n')
                except OSError:
                    pass
        return connected

    def accepts(self, rank, token, connected):
        """Only this job's workers: its token, a worker's rank, each rank once."""
        import hmac
        expected = self.secrets["check_in_token"]
        return (isinstance(token, str) and hmac.compare_digest(token.encode(), expected.encode())
                and 0 < rank < self.num_proc and rank not in connected)

    def run_worker(self):
        deadline = time.monotonic() + self.connect_timeout
        master = self.wait_for_master(deadline)
        if self.self_test:
            self.check_in(master, deadline)
            return {"exit_code": 0}
        process = self.start(self.config["worker_command"], master, "worker")
        try:
            exit_code, signal_name = exit_status(process.wait())
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
        status = {"exit_code": exit_code}
        if signal_name:
            status["signal"] = signal_name
        return status

    def wait_for_master(self, deadline):
        """The launcher writes the master's address to every task's stdin once rank 0 is ready."""
        try:
            return json.loads(self.input.line(deadline))
        except TimeoutError:
            raise TaskError("rank %d on %s got no master address within %g s"
                            % (self.rank, self.host, self.connect_timeout))
        except EOFError:
            raise TaskError("rank %d on %s: the master (rank 0) ended before it was ready"
                            % (self.rank, self.host))

    def check_in(self, master, deadline):
        """Connect to the master, retrying with a short backoff until the deadline."""
        pause = 0.02
        last_error = "no attempt"
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TaskError("rank %d on %s could not check in with the master at %s:%s within %g s: %s"
                                % (self.rank, self.host, master["ip"], master["port"],
                                   self.connect_timeout, last_error))
            try:
                with socket.create_connection((master["ip"], master["port"]), timeout=min(remaining, 5.0)) as conn:
                    check_in = {"rank": self.rank, "host": self.host, "token": self.secrets["check_in_token"]}
                    conn.sendall((json.dumps(check_in) + "\n").encode())
                    reply = json.loads(read_line(conn) or "{}")
                    if reply.get("ok"):
                        return
                    last_error = "the master did not confirm"
            except (OSError, ValueError) as error:
                last_error = getattr(error, "strerror", None) or str(error)
            time.sleep(min(pause, max(deadline - time.monotonic(), 0)))
            pause = min(pause * 2, 0.5)


# --------------------------------------------------------------------------- launcher

class StepCollector(object):
    """Reads `srun --label` output: control lines, per-rank output tails and srun's own messages."""

    def __init__(self, ntasks, tail_lines, self_test):
        self.ntasks = ntasks
        self.self_test = self_test
        self.job_id = None
        self.master = None
        self.tasks = dict((rank, {"rank": rank, "host": None, "exit_code": None,
                                  "stdout": deque(maxlen=tail_lines), "stderr": deque(maxlen=tail_lines)})
                          for rank in range(ntasks))
        self.output = {"stdout": deque(maxlen=tail_lines), "stderr": deque(maxlen=tail_lines)}
        self.slurm_errors = deque(maxlen=tail_lines)
        self.srun_ends = {}

    def feed(self, stream, line):
        """Take one output line; returns the control events it carried."""
        labelled = SRUN_LABEL.match(line)
        if not labelled:
            self.output[stream].append(line)
            self._srun_message(line)
            return []
        rank, text = int(labelled.group(1)), labelled.group(2)
        task = self.tasks.get(rank)
        position = text.find(MARKER)
        user_text = text if position < 0 else text[:position]
        if user_text or position < 0:
            self.output[stream].append(line if position < 0 else line[:len(line) - len(text) + position])
            if task is not None:
                task[stream].append(user_text)
        if position < 0:
            return []
        try:
            event = json.loads(text[position + len(MARKER):])
        except ValueError:
            return []
        event["rank"] = rank
        self._record(event)
        return [event]

    def _record(self, event):
        task = self.tasks.get(event["rank"])
        if task is None:
            return
        if event.get("host"):
            task["host"] = event["host"]
        kind = event.get("event")
        if kind == "start" and event.get("job_id") and not self.job_id:
            self.job_id = str(event["job_id"])
        elif kind == "ready" and event["rank"] == 0:
            self.master = {"host": event.get("host"), "ip": event.get("ip"), "port": event.get("port")}
        elif kind == "status":
            task["reported"] = True
            for key in ("exit_code", "signal", "error", "workers_connected", "workers_missing"):
                if key in event:
                    task[key] = event[key]

    def _srun_message(self, line):
        queued = SRUN_QUEUED.match(line) or SRUN_ALLOCATED.match(line)
        if queued and not self.job_id:
            self.job_id = queued.group(1)
        ended = SRUN_TASK_END.match(line)
        if ended:
            host, ranks, how = ended.groups()
            for rank in expand_ranges(ranks):
                self.srun_ends[int(rank)] = (host, how)
            return
        error = SLURM_ERROR.match(line)
        if error:
            self.slurm_errors.append(error.group(1))

    def result(self, srun_returncode, launch_error=None):
        tasks = []
        for rank in range(self.ntasks):
            task = self.tasks[rank]
            entry = {"rank": rank, "host": task["host"], "exit_code": task["exit_code"],
                     "stdout_tail": list(task["stdout"]), "stderr_tail": list(task["stderr"])}
            for key in ("signal", "error"):
                if task.get(key):
                    entry[key] = task[key]
            if not task.get("reported"):
                self._fill_from_srun(rank, entry)
            tasks.append(entry)
        failed = [task["rank"] for task in tasks if task["exit_code"] != 0]
        result = {
            "job_id": self.job_id,
            "master": self.master,
            "tasks": tasks,
            "failed_ranks": failed,
            "srun_rc": srun_returncode,
            "slurm_errors": list(self.slurm_errors),
            "stdout": list(self.output["stdout"]),
            "stderr": list(self.output["stderr"]),
        }
        if launch_error:
            result["launch_error"] = launch_error
        if self.self_test:
            master_task = self.tasks[0]
            result["workers_connected"] = master_task.get("workers_connected", [])
            result["workers_missing"] = master_task.get("workers_missing", list(range(1, self.ntasks)))
        result["ok"] = bool(srun_returncode == 0 and not failed and not launch_error
                            and not result.get("workers_missing"))
        return result

    def _fill_from_srun(self, rank, entry):
        ended = self.srun_ends.get(rank)
        if not ended:
            entry["error"] = "no status reported (task did not start, or was killed)"
            return
        host, how = ended
        entry["host"] = entry["host"] or host
        code = SRUN_EXIT_CODE.match(how)
        if code:
            entry["exit_code"] = int(code.group(1))
        else:
            entry["signal"] = how
        entry["error"] = "srun: " + how


def elide_source(argv, source):
    return ["<hpc.slurm slurm_mw_driver.py, %d bytes>" % len(source) if argument == source else argument
            for argument in argv]


def send_result(callback, result):
    """Batch mode: hand the result to the waiting module on the submit host."""
    payload = json.dumps({"token": callback["token"], "result": result}).encode("utf-8")
    hosts = list(callback.get("hosts") or []) + [os.environ.get("SLURM_SUBMIT_HOST")]
    errors = []
    for host in dict.fromkeys(host for host in hosts if host):
        try:
            with socket.create_connection((host, int(callback["port"])), timeout=5) as connection:
                connection.sendall(payload)
                connection.shutdown(socket.SHUT_WR)
                connection.recv(16)
            return True
        except OSError as error:
            errors.append("%s:%s: %s" % (host, callback["port"], error.strerror or error))
    sys.stderr.write("hpc.slurm.mw: could not send the result to the module (%s); it is in this output\n"
                     % "; ".join(errors))
    return False


class Launcher(object):
    def __init__(self, config, source):
        self.config = config
        self.source = source
        self.collector = StepCollector(int(config["ntasks"]), int(config.get("tail_lines", 20)),
                                       self_test=config["task"].get("master_command") is None)
        self.announced_job = None
        self.stdin_open = False
        self.secrets = {}

    def argv(self):
        return list(self.config["step_argv"]) + [self.source, "task", json.dumps(self.config["task"])]

    def run(self):
        # Removed before srun starts, so no task inherits it: they get theirs on standard input.
        secrets = os.environ.pop(SECRETS_VARIABLE, None)
        self.collector.job_id = os.environ.get("SLURM_JOB_ID")
        self.announce_job()
        try:
            self.secrets = json.loads(secrets)
            for_tasks = {"env": self.secrets["env"], "check_in_token": self.secrets["check_in_token"]}
        except (TypeError, ValueError, KeyError):
            return self.finish(None, "the launcher found no job secrets in its environment (%s)" % SECRETS_VARIABLE)
        argv = self.argv()
        import subprocess
        try:
            process = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                       stderr=subprocess.PIPE)
        except OSError as error:
            return self.finish(None, "cannot run %s: %s" % (argv[0], error.strerror or error))
        self.stdin_open = True
        self.write_stdin(process, (json.dumps(for_tasks) + "\n").encode())
        try:
            self.relay(process)
        finally:
            self.close_stdin(process)
        return self.finish(process.wait())

    def relay(self, process):
        import selectors
        streams = selectors.DefaultSelector()
        pending = {}
        for stream, pipe, target in (("stdout", process.stdout, 1), ("stderr", process.stderr, 2)):
            streams.register(pipe, selectors.EVENT_READ, (stream, target))
            pending[stream] = b""
        while streams.get_map():
            for key, unused_events in streams.select():
                stream, target = key.data
                chunk = os.read(key.fd, 65536)
                if not chunk:
                    streams.unregister(key.fileobj)
                    lines = [pending[stream]] if pending[stream] else []
                else:
                    os.write(target, chunk)
                    lines = (pending[stream] + chunk).split(b"\n")
                    pending[stream] = lines.pop()
                    if len(pending[stream]) > MAX_LINE_BYTES:
                        lines.append(pending[stream])
                        pending[stream] = b""
                for line in lines:
                    self.on_line(process, stream, line.decode("utf-8", "replace"))
        streams.close()

    def on_line(self, process, stream, line):
        for event in self.collector.feed(stream, line):
            if event["rank"] != 0:
                continue
            if event.get("event") == "ready":
                rendezvous = {"host": event["host"], "ip": event["ip"], "port": event["port"]}
                self.write_stdin(process, (json.dumps(rendezvous) + "\n").encode())
                self.close_stdin(process)
            elif event.get("event") == "status":
                # The master is done; workers still waiting for its address see end of input.
                self.close_stdin(process)
        self.announce_job()

    def announce_job(self):
        if self.collector.job_id and self.announced_job != self.collector.job_id:
            self.announced_job = self.collector.job_id
            emit("job", job_id=self.collector.job_id)

    def write_stdin(self, process, data):
        if not self.stdin_open:
            return
        try:
            process.stdin.write(data)
            process.stdin.flush()
        except OSError:
            self.stdin_open = False

    def close_stdin(self, process):
        if self.stdin_open:
            self.stdin_open = False
            try:
                process.stdin.close()
            except OSError:
                pass

    def finish(self, returncode, launch_error=None):
        result = self.collector.result(returncode, launch_error)
        result["step_cmd"] = elide_source(self.argv(), self.source)
        emit("result", **result)
        if self.config.get("callback"):
            send_result(dict(self.config["callback"], token=self.secrets.get("callback_token")), result)
        return 0 if result["ok"] else 1


def main(argv):
    """argv: [source, 'launch' | 'task', config JSON] (after python3 -c BOOTSTRAP)."""
    if len(argv) != 3 or argv[1] not in ("launch", "task"):
        sys.stderr.write("usage: python3 -c BOOTSTRAP SOURCE launch|task CONFIG_JSON\n")
        return 2
    source, role, config = argv[0], argv[1], json.loads(argv[2])
    if role == "launch":
        return Launcher(config, source).run()
    return Task(config, os.environ).run()


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
