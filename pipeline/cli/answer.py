"""``asi-answer``: how much slowdown remains, stage by stage along the roadmap.

    asi-answer workload=fio_randread_tmpfs cpu=sapphire_rapids cpus=1
    asi-answer answer.format=json

Every stage of ``roadmap`` is evaluated for the same configuration with the
same cost draws (common random numbers), so the differences between stages
are paired, not noise. The first lines name the configuration: its presets,
dimensions, samples and seed, then every other override in force.

Options of the answer itself:

    answer.format=table        table (default) or json: one object with configuration,
                               source (per table) and stages (one object per stage)
    answer.source=auto         auto: a table comes from the results store (store.path) when
                               the store holds all its points, else from the model;
                               store: from the store, or a one-line error saying what it
                               lacks; model: always from the model. Each table says which.
    answer.vs_cpus=[1,8,64]    also tabulate every stage at these CPU counts (distinct
                               values, each in the range cpus= allows)
    answer.vs_slots=[1,2,4]    ... and at these ephmap slot counts (as ephmap.slots=)
    answer.budget=false        true: what each cost would have to cost for the last stage
                               to meet the 1 % target

Percentages get two decimals under 10 % (one above), and more when fewer would
show a value on the other side of the 1 % target or the 5 % threshold. A store
part file that fails its check is moved to ``<store.path>/_quarantine/`` and the
source line says so. Exit codes: 0 answered, 2 bad input (one ``error:`` line,
nothing read or moved).
"""

from asi_slowdown.pipeline.configuration.command import Invocation, command
from asi_slowdown.pipeline.projection.answer import run


@command("asi-answer")
def main(inv: Invocation) -> int:
    print(run(inv.overrides, inv.composer))
    return 0
