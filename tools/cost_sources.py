"""Print docs/costs.md: every cost of every shipped CPU profile with its range and source.

.venv/bin/python tools/cost_sources.py > docs/costs.md
"""

from __future__ import annotations

from asi_slowdown.model.costs import COST_NAMES
from asi_slowdown.pipeline.configuration.compose import composer, packaged_options

HEADER = """# Where every cost comes from

Generated from the shipped CPU profiles (`conf/cpu/`) by
`tools/cost_sources.py`; rerun it after editing a profile. Each cost is a
distribution (`dist`: `loguniform` between `low` and `high`, `fixed` at
`value`, ...) in the unit shown; the source is the profile's own note, which
says where the range comes from or that no public number exists (then the
range is a deliberately wide prior). `asi-calibrate` narrows the ranges with
measurements and records what it moved in the profile it writes.
"""


def spread(spec) -> str:
    if spec.get("value") is not None:
        return f"{spec['value']:g}"
    return f"{spec['low']:g} - {spec['high']:g}"


def main() -> None:
    profiles = packaged_options("cpu")  # yours (ASI_CONFIG_DIR) are not shipped
    print(HEADER)
    for name in profiles:
        cfg = composer().compose([f"cpu={name}"])
        print(f"## `{name}`: {cfg.cpu.description or name} ({cfg.cpu.ghz:g} GHz)\n")
        print("| cost | distribution | range | unit | source |")
        print("|---|---|---|---|---|")
        for cost in COST_NAMES:
            spec = cfg.cpu.costs[cost]
            source = " ".join(str(spec.source).split()).replace("|", "/")
            print(f"| `{cost}` | {spec.dist} | {spread(spec)} | {spec.unit} | {source} |")
        print()


if __name__ == "__main__":
    main()
