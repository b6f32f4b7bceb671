"""Slow scalar reference: one point, one cost sample, plain Python.

Written to be read, not to be fast: it walks through one op the way the
kernel does and adds up what each step costs. The vectorized model
(:mod:`model.evaluate`) must agree with it to 1e-9 relative; the tests check
that on random points. Keep the two independent: this file imports nothing
from the rest of the model but constants.
"""

from __future__ import annotations

import math

from .mechanism import (
    EPHMAP_REGION_PAGES,
    GUEST_SOURCES,
    HUGE_PAGE_SIZE,
    INVLPG_CEILING,
    RECLAIM_BATCH,
)
from .params import VM_EXIT_REASONS
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
    p_module = 1.0 if p["io_module_text"] else 0.0  # entering module text faults
    per_io["module_text"] = p_module
    chance_still_restricted *= 1 - p_module
    p_meta = 0.0 if p["metadata_mapped"] else p["metadata_per_io"]
    per_io["metadata"] = chance_still_restricted * p_meta
    chance_still_restricted *= 1 - p_meta
    p_block = blocks * switch_exits
    per_io["context_switch"] = chance_still_restricted * p_block
    chance_still_restricted *= 1 - p_block
    reads_via_ephmap = p["ephmap"] and p["ephmap_read_path"]
    # the ephmap converts reads of its file system only: writes, pipes and other file
    # systems still copy through the physmap
    converted = (1.0 - p["unconverted_io_share"]) if reads_via_ephmap else 0.0
    p_copy = 1.0 - converted
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
    # a switch that waits inside an I/O call whose copy exits anyway (a pipe read or write)
    # exits first, and the copy then runs unrestricted: that call exits once, counted above
    own_switches = p["ctxsw_per_op"] * (1.0 - p["ctxsw_in_exiting_io"])
    exits["context_switch"] += own_switches * switch_exits
    exits["zeroing"] += 0.0 if zero_via_ephmap else p["zero_fill_per_op"]
    exits["cow"] = 0.0 if cow_via_ephmap else p["cow_per_op"]
    # host pages backing guest RAM, zeroed on the EPT violation of the guest's first touch:
    # one fault per huge page (clear_huge_page), or per 4 KiB page
    backing_page = HUGE_PAGE_SIZE if p["guest_ram_huge"] else PAGE_SIZE
    exits["guest_ram_zeroing"] = (
        0.0 if zero_via_ephmap else p["guest_ram_touched_per_op"] / backing_page
    )

    # ---- the ephmap's own work -----------------------------------------
    mapped = invlpgs = invlpg_unmaps = uses = 0.0
    silent_full = wraps = reclaims = shootdowns = invalidations = 0.0
    lazy = p["ephmap"] and p["multi_slot"]
    if reads_via_ephmap:
        per_map = min(p["folio_pages"], pages)
        maps = math.ceil(pages / per_map)
        io_converted = io * converted
        mapped += io_converted * pages
        uses += io_converted * maps
        if not lazy:
            invalidations += io_converted * maps
            if per_map < INVLPG_CEILING:
                invlpgs += io_converted * pages
                invlpg_unmaps += io_converted * maps
            else:
                silent_full += io_converted * maps  # invpcid_flush_all: no exit
    if zero_via_ephmap:
        slot_free_in_io = not (reads_via_ephmap and slots < 2)
        # guest RAM goes through the ephmap 4 KiB at a time, huge pages too
        zero_pages = (
            p["zero_fill_per_op"]
            + p["guest_ram_touched_per_op"] / PAGE_SIZE
            + (faults_in_io if slot_free_in_io else 0.0)
        )
        mapped += zero_pages
        uses += zero_pages
        if not lazy:
            invlpgs += zero_pages
            invlpg_unmaps += zero_pages
            invalidations += zero_pages
    if cow_via_ephmap:
        mapped += 2 * p["cow_per_op"]
        uses += 2 * p["cow_per_op"]
        if not lazy:
            invlpgs += 2 * p["cow_per_op"]
            invlpg_unmaps += 2 * p["cow_per_op"]
            invalidations += 2 * p["cow_per_op"]
    if lazy:
        wraps = mapped / EPHMAP_REGION_PAGES  # the mermap's flush on wrap
        invalidations += wraps
        if reads_via_ephmap:
            # evicted pages may be stale in any CPU's lazily flushed region:
            # per reclaim batch, every CPU flushes its whole region
            reclaims = io * converted * pages * miss / RECLAIM_BATCH
            shootdowns += reclaims
            invalidations += reclaims

    # ---- page migration of direct-map-removed pages ----------------------
    mm_switches = 0.0
    if migrated:
        # two pages' PTEs (direct map or ephmap), two software uses and two
        # local INVLPGs in one unmap, either way
        mapped += 2 * migrated
        uses += 2 * migrated
        invlpgs += 2 * migrated
        invlpg_unmaps += migrated
        invalidations += 2 * migrated
        if p["ephmap"] and p["multi_slot"] and slots >= 2:
            if p["migration_temporary_mm"]:
                mm_switches = migrated
        else:
            shootdowns += migrated  # the restored direct map is flushed on every CPU

    # every full local flush exits: the native kernel's, the mermap's wrap,
    # and a reclaim shootdown's on the initiator and every remote CPU
    exits["tlb_flush"] = p["tlb_flushes_per_op"] + wraps + reclaims * cpus

    # ---- how long each exit leaves the CPU unrestricted ------------------
    dwell_io = 0.5 * k["syscall"] + pages * k["page_lookup"] + p["io_size"] * ns_per_byte
    dwell_fault = k["user_fault"] + PAGE_SIZE * ns_per_byte
    dwell_rest = k["kernel_rest"]
    dwell = {
        "module_text": dwell_io,
        "page_cache": dwell_io,
        "metadata": dwell_io,
        "zeroing": dwell_fault,
        "cow": dwell_fault,
        "nested_slot": dwell_fault,
        "context_switch": dwell_rest,
        "tlb_flush": dwell_rest,
        "tick": dwell_rest,
        "interrupt": dwell_rest,
        "kthread_switch": dwell_rest,
        **{f"vmexit_{r}": dwell_rest for r in VM_EXIT_REASONS},
        "kvm_run_return": dwell_rest,
        "vmm_syscall": dwell_rest,
        "vmm_switch": dwell_rest,
        "guest_ram_zeroing": dwell_fault,
    }
    unrestricted = sum(exits[s] * dwell[s] for s in list(exits))

    # ---- exits that come from time: a rate over the restricted time --------
    restricted_seconds = max(0.0, 1.0 - unrestricted / t_native) * t_native * 1e-9
    if p["kernel_thread"]:  # stays unrestricted: nothing to exit from
        restricted_seconds = 0.0
    exits["tick"] = k["tick_exits"] * restricted_seconds
    exits["interrupt"] = p["irq_exits_per_s"] * restricted_seconds
    kthread_rate = 0.0 if p["ctxsw_same_mm"] else p["kthread_switches_per_s"]
    exits["kthread_switch"] = kthread_rate * restricted_seconds
    # A guest's VM exits, per reason: those whose handling touches sensitive data exit;
    # a HLT exit does so only when the vCPU blocks, in the host's context switch.
    vm_rate = {r: 0.0 if p["kernel_thread"] else p[f"vmexits_{r}_per_s"] for r in VM_EXIT_REASONS}
    for r in VM_EXIT_REASONS:
        blocked_switch = switch_exits if r == "hlt" else 1.0
        share = k[f"vmexit_share_{r}"]
        exits[f"vmexit_{r}"] = vm_rate[r] * share * blocked_switch * restricted_seconds
    # The host's work around the guest: returns to the VMM end in asi_exit unless KVM and the
    # VMM switch directly (kvm_vmm_switch); the VMM's page-cache syscalls exit; its I/O
    # threads' switches exit as any switch in the VMM's mm does.
    guest = 0.0 if p["kernel_thread"] else 1.0
    returns = p["kvm_run_returns_per_s"] * guest
    exits["kvm_run_return"] = (0.0 if p["kvm_vmm_switch"] else returns) * restricted_seconds
    exits["vmm_syscall"] = p["vmm_io_syscalls_per_s"] * guest * restricted_seconds
    exits["vmm_switch"] = p["vmm_thread_switches_per_s"] * guest * switch_exits * restricted_seconds
    direct_switches = (returns if p["kvm_vmm_switch"] else 0.0) * restricted_seconds
    time_driven = (
        "tick",
        "interrupt",
        "kthread_switch",
        *(f"vmexit_{r}" for r in VM_EXIT_REASONS),
        "kvm_run_return",
        "vmm_syscall",
        "vmm_switch",
    )
    for source in time_driven:
        unrestricted += exits[source] * dwell[source]
    total_exits = sum(exits.values())
    # asi_exit without a fault: switches (a blocked vCPU's too) and TLB flushes
    direct = (
        "context_switch",
        "kthread_switch",
        "tlb_flush",
        "vmexit_hlt",
        "kvm_run_return",
        "vmm_switch",
    )
    faulting_exits = sum(count for source, count in exits.items() if source not in direct)

    # ---- one exit/enter pair ---------------------------------------------
    if not p["cr3_noflush"]:
        refill = 1.0  # neither CR3 write sets NOFLUSH
    elif total_exits > 0:
        # only after an invalidation the other address space may hold
        refill = -math.expm1(-invalidations / total_exits)
    else:
        refill = 0.0
    walks_per_pair = refill * p["tlb_working_set"]
    pair_without_entry = (
        2 * k["cr3_write"]
        + walks_per_pair * k["page_walk"]
        + (k["ibpb"] if p["ibpb"] else 0.0)
        + k["rsb_fill"]  # fill_return_buffer() runs with or without IBPB
        + (k["l1d_flush"] if p["l1tf"] else 0.0)
        + (k["generation_check"] if p["cr3_noflush"] else 0.0)
        + (k["smt_stun"] if p["smt_stun"] else 0.0)
    )
    by_source = {}
    for source, count in exits.items():
        pair = pair_without_entry + (dwell[source] if p["smt_stun"] else 0.0)
        if source not in direct:
            pair += k["fault_entry"]
        by_source[source] = count * pair

    # ---- what ASI adds per op ------------------------------------------
    flushed_tlbs = silent_full + wraps + reclaims * cpus
    # the optimised path does a subset of the walk's work: never dearer than the walk
    fast = min(k["ephmap_software_fast"], k["ephmap_software"])
    sw_cost = fast if p["mapping_fastpath"] else k["ephmap_software"]
    # a direct KVM <-> VMM switch pair: two CR3 writes, the refill unless NOFLUSH is kept
    direct_refill = 0.0 if p["cr3_noflush"] else p["tlb_working_set"]
    extra = {
        "fault_entry": faulting_exits * k["fault_entry"],
        "cr3_write": 2 * (total_exits + mm_switches + direct_switches) * k["cr3_write"],
        "page_walk": (
            total_exits * walks_per_pair
            + flushed_tlbs * p["tlb_working_set"]
            + direct_switches * direct_refill
        )
        * k["page_walk"],
        "ibpb": (total_exits if p["ibpb"] else 0.0) * k["ibpb"],
        "rsb_fill": total_exits * k["rsb_fill"],
        "l1d_flush": (total_exits if p["l1tf"] else 0.0) * k["l1d_flush"],
        "generation_check": (total_exits if p["cr3_noflush"] else 0.0) * k["generation_check"],
        "smt_stun": (total_exits * k["smt_stun"] + unrestricted) if p["smt_stun"] else 0.0,
        "ephmap_pte": mapped * k["ephmap_pte"],
        "ephmap_software": 0.0 if p["mapping_fastpath"] else uses * sw_cost,
        "ephmap_software_fast": uses * sw_cost if p["mapping_fastpath"] else 0.0,
        "invlpg": invlpgs * k["invlpg"],
        "psc_rewalk": invlpg_unmaps * k["psc_rewalk"],
        "full_flush": (silent_full + wraps + reclaims) * k["full_flush"],
        "shootdown_base": (shootdowns if cpus > 1 else 0.0) * k["shootdown_base"],
        "shootdown_per_cpu": shootdowns * (cpus - 1) * k["shootdown_per_cpu"],
        "asi_mm_setup": p["mm_setups_per_op"] * k["asi_mm_setup"],
        "ephmap_setup_per_cpu": (p["mm_setups_per_op"] * cpus * k["ephmap_setup_per_cpu"])
        if p["ephmap"]
        else 0.0,
    }
    t_asi = t_native + sum(extra.values())
    rates = {
        "page_fault": faulting_exits,
        "context_switch": exits["context_switch"]
        + exits["kthread_switch"]
        + exits["vmexit_hlt"]
        + exits["vmm_switch"],
        "tlb_flush": exits["tlb_flush"],
        "user_ret": 0.0,
        "misc": exits["kvm_run_return"],
    }
    exit_rates = {reason: count / t_asi * 1e9 for reason, count in rates.items()}
    host_exit_rates = {source: exits[source] / t_asi * 1e9 for source in GUEST_SOURCES}

    # ---- the kernel's default mitigations, the alternative to ASI ----------
    entries = io + p["syscalls_per_op"] + p["zero_fill_per_op"] + p["cow_per_op"]
    syscalls = io + p["syscalls_per_op"]
    switches = 2 * io * blocks + p["ctxsw_per_op"]
    # a guest: every VM exit comes back through a VM entry; the conditional L1D flush runs
    # after the exits that touched sensitive data (blocked or not)
    guest_seconds = t_native * 1e-9
    vm_entries = sum(vm_rate.values()) * guest_seconds
    unsafe_vm_entries = sum(vm_rate[r] * k[f"vmexit_share_{r}"] for r in vm_rate) * guest_seconds
    vmm_exits = (0.0 if p["kernel_thread"] else p["kvm_run_returns_per_s"]) * guest_seconds
    # the kernel's own time per op: the kernel paths priced above and base_time's kernel share
    kernel_time = (
        p["base_time"] * p["base_kernel_share"]
        + (io + p["syscalls_per_op"]) * k["syscall"]
        + io * pages * k["page_lookup"]
        + user_faults * k["user_fault"]
        + (2 * io * blocks + p["ctxsw_per_op"]) * k["context_switch"]
        + bytes_moved * ns_per_byte
    )
    # which defaults this kernel runs: each from its version; IBRS replaces the retpolines,
    # call-depth tracking (retbleed=stuff) replaces IBRS
    since = {"pti": 415, "ibrs": 519, "retpoline": 415, "call_depth": 602, "bhi": 609}
    since |= {"its": 615, "verw": 502, "srso": 605, "swapgs_fence": 503, "rsb_ctxsw": 415}
    since |= {"ibpb_cond": 420, "l1d_vmentry": 419, "pbrsb_vmexit": 600, "vmscape": 617}
    runs = {m: p[f"default_{m}"] and p["kernel_version"] >= v for m, v in since.items()}
    runs["ibrs"] = runs["ibrs"] and not runs["call_depth"]
    runs["retpoline"] = runs["retpoline"] and not runs["ibrs"]
    costs_of = {
        # PTI: a CR3 pair per entry; without PCID each entry refills the TLB working set
        "pti": entries * k["pti"]
        + (0.0 if p["pcid"] else entries * p["tlb_working_set"] * k["page_walk"]),
        # legacy IBRS: SPEC_CTRL written on entry and on exit, the kernel slowed while set
        "ibrs": 2 * entries * k["spec_ctrl_write"] + kernel_time * k["ibrs_factor"],
        "retpoline": kernel_time * k["retpoline_factor"],
        "call_depth": kernel_time * k["call_depth_factor"],
        "bhi": (syscalls + vm_entries) * k["bhb_clear"],
        "its": kernel_time * k["its_factor"],
        "verw": (entries + vm_entries) * k["verw"],
        "srso": entries * k["srso"] + kernel_time * k["safe_ret_factor"],
        "swapgs_fence": entries * k["swapgs_fence"],
        "rsb_ctxsw": switches * k["rsb_fill"],
        "ibpb_cond": switches * p["ctxsw_mm_change"] * p["ibpb_task_share"] * k["ibpb"],
        "l1d_vmentry": unsafe_vm_entries * k["l1d_flush"],
        "pbrsb_vmexit": vm_entries * k["pbrsb"],
        "vmscape": vmm_exits * k["ibpb"],
    }
    default_cost = {m: cost if runs[m] else 0.0 for m, cost in costs_of.items()}
    kept = sum(cost for m, cost in default_cost.items() if p[f"asi_keeps_{m}"])
    t_default = t_native + sum(default_cost.values())

    # ---- the blanket VM protection: IBPB on every VM exit, L1D flush on every VM entry
    baseline_cost = {
        "ibpb_vmexit": vm_entries * k["ibpb"],
        "l1d_always": vm_entries * k["l1d_flush"] if p["l1tf"] else 0.0,
    }
    t_blanket = t_default + sum(baseline_cost.values())
    if vm_entries > 0:
        if p["l1tf"]:  # flushing always replaces the conditional flush
            t_blanket -= default_cost["l1d_vmentry"]
        t_blanket -= default_cost["vmscape"]  # an IBPB on every exit covers VMSCAPE's
    return {
        "t_native": t_native,
        "t_asi": t_asi,
        "exits": exits,
        "extra": extra,
        "by_source": by_source,
        "exit_rates": exit_rates,
        "host_exit_rates": host_exit_rates,
        "t_default": t_default,
        "t_asi_with_kept": t_asi + kept,
        "default_cost": default_cost,
        "vm_exits": vm_entries,
        "t_blanket": t_blanket,
        "baseline_cost": baseline_cost,
    }
