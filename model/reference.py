"""Slow scalar reference: one point, one cost sample, plain Python.

Written to be read, not to be fast: it walks through one op the way the
kernel does and adds up what each step costs. The vectorized model
(:mod:`model.evaluate`) must agree with it to 1e-9 relative; the tests check
that on random points. Keep the two independent: this file imports nothing
from the rest of the model but constants.
"""

from __future__ import annotations

import math

from .mechanism import EPHMAP_REGION_PAGES, INVLPG_CEILING, RECLAIM_BATCH
from .units import PAGE_SIZE


def reference_op(point: dict, cost: dict) -> dict:
    """Native and ASI time per op [ns] plus exits by source and extra time by cost.

    ``point`` holds every :data:`model.params.POINT_PARAMS` name as a Python
    scalar; ``cost`` one sample of every :data:`model.costs.COST_NAMES` name.
    """
    p, k = point, cost
    cpus = p["cpus"]

    # ---- the page cache -------------------------------------------------
    pages = math.ceil(p["io_size"] / PAGE_SIZE)
    if p["sequential"]:
        hit = 1.0 if p["file_size"] <= p["page_cache_size"] else 0.0
    else:
        hit = min(1.0, p["page_cache_size"] / p["file_size"])
    miss = 1.0 - hit
    transfer = p["io_size"] * cpus / (p["device_bandwidth"] / 1e9)
    if p["sequential"]:
        blocks = miss * min(1.0, p["io_size"] / p["readahead"])
        device_wait = miss * transfer
    else:
        blocks = miss
        device_wait = miss * (p["device_latency"] + transfer)

    # ---- native time per op --------------------------------------------
    io = p["io_per_op"]
    faults_in_io = io * p["io_fault_fraction"]
    user_faults = p["zero_fill_per_op"] + p["cow_per_op"] + faults_in_io
    migrated = p["migrations_per_op"]
    bytes_moved = io * p["io_size"] + PAGE_SIZE * (user_faults + migrated)
    ns_per_byte = max(1.0 / k["copy_bandwidth"], cpus / k["mem_bandwidth"])
    t_native = (
        p["base_time"]
        + io * device_wait
        + (io + p["syscalls_per_op"]) * k["syscall"]
        + io * pages * k["page_lookup"]
        + user_faults * k["user_fault"]
        + (2 * io * blocks + p["ctxsw_per_op"]) * k["context_switch"]
        + bytes_moved * ns_per_byte
    )

    # ---- which steps exit ASI ------------------------------------------
    slots = p["ephmap_slots"] if p["multi_slot"] else 1
    zero_via_ephmap = p["ephmap"] and p["ephmap_zeroing"]
    cow_via_ephmap = p["ephmap"] and p["multi_slot"] and slots >= 2
    if p["ctxsw_same_mm"]:
        switch_exits = p["ctxsw_mm_change"]
    else:
        switch_exits = 1.0

    # One I/O syscall: the first step that exits takes the whole syscall out.
    chance_still_restricted = 1.0
    per_io = {}
    p_meta = 0.0 if p["metadata_mapped"] else p["metadata_per_io"]
    per_io["metadata"] = chance_still_restricted * p_meta
    chance_still_restricted *= 1 - p_meta
    p_block = blocks * switch_exits
    per_io["context_switch"] = chance_still_restricted * p_block
    chance_still_restricted *= 1 - p_block
    reads_via_ephmap = p["ephmap"] and p["ephmap_read_path"]
    p_copy = 0.0 if reads_via_ephmap else 1.0
    per_io["page_cache"] = chance_still_restricted * p_copy
    chance_still_restricted *= 1 - p_copy
    if not zero_via_ephmap:
        per_io["zeroing"] = chance_still_restricted * p["io_fault_fraction"]
        per_io["nested_slot"] = 0.0
    elif reads_via_ephmap and slots < 2:  # read() holds the only slot
        per_io["zeroing"] = 0.0
        per_io["nested_slot"] = chance_still_restricted * p["io_fault_fraction"]
    else:
        per_io["zeroing"] = per_io["nested_slot"] = 0.0

    exits = {name: io * value for name, value in per_io.items()}
    exits["context_switch"] += p["ctxsw_per_op"] * switch_exits
    exits["zeroing"] += 0.0 if zero_via_ephmap else p["zero_fill_per_op"]
    exits["cow"] = 0.0 if cow_via_ephmap else p["cow_per_op"]
    total_exits = sum(exits.values())
    faulting_exits = total_exits - exits["context_switch"]

    # ---- the ephmap's own work -----------------------------------------
    mapped = invlpgs = full_flushes = shootdowns = 0.0
    lazy = p["ephmap"] and p["multi_slot"]
    if reads_via_ephmap:
        per_map = min(p["folio_pages"], pages)
        maps = math.ceil(pages / per_map)
        mapped += io * pages
        if not lazy:
            if per_map < INVLPG_CEILING:
                invlpgs += io * pages
            else:
                full_flushes += io * maps
    if zero_via_ephmap:
        slot_free_in_io = not (reads_via_ephmap and slots < 2)
        zero_pages = p["zero_fill_per_op"] + (faults_in_io if slot_free_in_io else 0.0)
        mapped += zero_pages
        invlpgs += 0.0 if lazy else zero_pages
    if cow_via_ephmap:
        mapped += 2 * p["cow_per_op"]
        invlpgs += 0.0 if lazy else 2 * p["cow_per_op"]
    if lazy:
        full_flushes += mapped / EPHMAP_REGION_PAGES
        if reads_via_ephmap:
            # evicted pages may be stale in any CPU's lazily flushed region:
            # per reclaim batch, every CPU flushes its whole region
            shootdowns = io * pages * miss / RECLAIM_BATCH
            full_flushes += shootdowns

    # ---- page migration of direct-map-removed pages ----------------------
    mm_switches = 0.0
    if migrated:
        # two pages' PTEs (direct map or ephmap) and two local INVLPGs either way
        mapped += 2 * migrated
        invlpgs += 2 * migrated
        if p["ephmap"] and p["multi_slot"] and slots >= 2:
            if p["migration_temporary_mm"]:
                mm_switches = migrated
        else:
            shootdowns += migrated  # the restored direct map is flushed on every CPU

    # ---- what ASI adds per op ------------------------------------------
    extra = {
        "fault_entry": faulting_exits * k["fault_entry"],
        "cr3_write": 2 * (total_exits + mm_switches) * k["cr3_write"],
        "tlb_refill": ((0.0 if p["cr3_noflush"] else total_exits) + full_flushes) * k["tlb_refill"],
        "ibpb": (total_exits if p["ibpb"] else 0.0) * k["ibpb"],
        "rsb_fill": (total_exits if p["ibpb"] else 0.0) * k["rsb_fill"],
        "l1d_flush": (total_exits if p["l1tf"] else 0.0) * k["l1d_flush"],
        "ephmap_pte": mapped * k["ephmap_pte"],
        "invlpg": invlpgs * k["invlpg"],
        "full_flush": full_flushes * k["full_flush"],
        "shootdown_base": (shootdowns if cpus > 1 else 0.0) * k["shootdown_base"],
        "shootdown_per_cpu": shootdowns * (cpus - 1) * k["shootdown_per_cpu"],
    }
    t_asi = t_native + sum(extra.values())
    return {"t_native": t_native, "t_asi": t_asi, "exits": exits, "extra": extra}
