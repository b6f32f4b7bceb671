"""``asi-answer``: how much slowdown remains, stage by stage along the roadmap.

    asi-answer workload=fio_randread_tmpfs cpu=sapphire_rapids cpus=1
    asi-answer answer.format=json

Every stage of ``roadmap`` is evaluated for the same configuration with the
same cost draws (common random numbers), so the differences between stages
are paired, not noise.
"""

from pipeline.configuration.command import Invocation, command
from pipeline.projection.answer import run


@command("asi-answer")
def main(inv: Invocation) -> int:
    print(run(inv.overrides, inv.composer))
    return 0
