# -*- coding: utf-8 -*-
# Copyright: contributors to the hpc.slurm collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)


class ModuleDocFragment(object):
    """Options of modules that wait for a Slurm job to end."""

    DOCUMENTATION = r"""
options:
  wait:
    description:
      - Whether to wait until the job has ended and report its outcome.
      - With V(false) the module returns the job id as soon as Slurm has accepted the job. Only
        O(mode=batch) can return before the job ends; the other modes fail when this is V(false).
    type: bool
    default: true
  wait_timeout:
    description:
      - How many seconds to wait, counted on a monotonic clock from the submission, for the job to end.
      - When the time is up the job is cancelled with C(scancel) and the module fails, naming the job
        id, the job's last state and the time spent.
      - This is not the job's Slurm time limit; see O(time_limit).
    type: float
    default: 600
  poll_interval:
    description:
      - Seconds between two looks at the job's state with C(scontrol show job).
      - In O(mode=batch) the module also wakes up as soon as the job sends its result, so a long
        interval does not delay the result.
    type: float
    default: 1
"""
