"""Speed and memory benchmarks (not tests). ``make bench`` runs them all.

Each benchmark runs the contender and its baseline side by side in one
process and reports ratios: this machine is shared and noisy, so absolute
times drift but ratios hold. Results merge into ``benchmarks/results.json``, which is
committed: ``make docs`` renders the README's benchmark table from it.
"""
