"""``asi-sweep``: run a Hydra grid of model points on Ray into the results store.

    asi-sweep cpus=1,2,4,8 workload.file_size=64M,1G ephmap.slots=1,2 'mitigations=glob(*)'
    asi-sweep experiment=default            # a preset grid (conf/experiment/)
    asi-sweep experiment=nightly ray=cluster  # on a running Ray cluster

Every point lands in the Parquet store (``store.path``); points already there
are skipped, so rerunning a sweep computes nothing and extending a grid
computes only the new points. The sweep directory (``hydra.sweep.dir``) keeps
``multirun.yaml`` and ``summary.json``. Exit codes: 0 every point stored,
1 some chunks failed (their ids are in the summary; rerun to retry), 2 bad
input (nothing was run or written), 130 interrupted (finished chunks are
committed; rerun to resume).

Overrides use Hydra's grammar (``a=1,2``, ``range()``, ``choice()``,
``glob()``); ``-m`` is implied. Execution settings: ``sweep.*`` (chunking),
``ray.*`` (``conf/ray``), ``store.*``. Points run as Ray tasks, so
``hydra/launcher=...`` is refused.
"""

from asi_slowdown.pipeline.configuration.command import Invocation, command
from asi_slowdown.pipeline.sweep.run import interrupted_line, main_sweep


@command("asi-sweep", multirun=True, interrupted=interrupted_line)
def main(inv: Invocation) -> int:
    return main_sweep(inv.overrides, inv.composer, inv.config_name)
