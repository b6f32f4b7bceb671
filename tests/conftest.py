import atexit
import logging
import os
import shutil
import tempfile
from pathlib import Path

import pytest

from asi_slowdown.model.params import DEFAULT_MITIGATIONS, VM_EXIT_REASONS
from asi_slowdown.pipeline.configuration.compose import USER_CONFIG_ENV
from tests import profiles

profiles.register()  # dev | ci | exhaustive (HYPOTHESIS_PROFILE; see tests/profiles.py)

# The user's own config directory (ASI_CONFIG_DIR, else ./outputs/conf: where asi-calibrate
# writes) is never the tests': a profile calibrated in the checkout would join every group
# listing and `glob(*)` the tests make. Each test process (and the commands it starts, which
# inherit the variable) gets a directory of its own that does not exist; a test that has one
# made (a calibration without calibrate.conf_dir) has it removed after it.
_NO_USER_CONFIGS = Path(tempfile.mkdtemp(prefix="asi-tests-")) / "conf"
atexit.register(shutil.rmtree, _NO_USER_CONFIGS.parent, ignore_errors=True)
os.environ[USER_CONFIG_ENV] = str(_NO_USER_CONFIGS)


@pytest.fixture(autouse=True)
def _no_user_configs():
    yield
    if _NO_USER_CONFIGS.exists():
        shutil.rmtree(_NO_USER_CONFIGS, ignore_errors=True)


@pytest.fixture(autouse=True)
def _logging_as_it_was():
    """Put the logging configuration back after each test.

    In-process runs of the commands go through Hydra, which configures logging
    (handlers on the streams of that moment: a test's redirected or captured
    stdout, closed afterwards; levels). Left in place, a later test in the same
    worker logs into a closed stream, and Python prints "--- Logging error ---"
    with a traceback into that test's stderr.
    """
    manager = logging.Logger.manager
    before = {
        name: (logger.level, logger.handlers[:], logger.propagate, logger.disabled)
        for name, logger in [("", logging.getLogger()), *manager.loggerDict.items()]
        if isinstance(logger, logging.Logger)
    }
    disable = manager.disable
    yield
    logging.disable(disable)
    for name, logger in [("", logging.getLogger()), *manager.loggerDict.items()]:
        if not isinstance(logger, logging.Logger):
            continue
        if name in before:
            level, logger.handlers[:], logger.propagate, logger.disabled = before[name]
            logger.setLevel(level)  # setLevel, not .level: it also clears the loggers' caches
        else:  # made during the test: keep it, but without handlers on that test's streams
            logger.handlers[:] = [
                h for h in logger.handlers if not isinstance(h, logging.StreamHandler)
            ]


@pytest.fixture
def base_point():
    """A hand-checkable point: 4 KiB random reads on tmpfs, one CPU, nothing else."""
    return {
        "cpus": 1,
        "ephmap_slots": 1,
        "io_size": 4096,
        "io_per_op": 1.0,
        "file_size": 1 << 30,
        "page_cache_size": 1 << 34,
        "sequential": False,
        "readahead": 128 * 1024,
        "folio_pages": 1,
        "ephmap_read_path": True,
        "unconverted_io_share": 0.0,
        "io_module_text": False,
        "device_latency": 0.0,
        "device_bandwidth": 3e9,
        "syscalls_per_op": 0.0,
        "base_time": 300.0,
        "ctxsw_per_op": 0.0,
        "ctxsw_mm_change": 0.0,
        "zero_fill_per_op": 0.0,
        "cow_per_op": 0.0,
        "metadata_per_io": 0.0,
        "io_fault_fraction": 0.0,
        "migrations_per_op": 0.0,
        "migration_temporary_mm": False,
        "kernel_thread": False,
        "tlb_working_set": 10.0,
        "tlb_flushes_per_op": 0.0,
        "mm_setups_per_op": 0.0,
        "irq_exits_per_s": 0.0,
        "kthread_switches_per_s": 0.0,
        "base_kernel_share": 0.0,
        "ibpb_task_share": 0.0,
        **{f"vmexits_{r}_per_s": 0.0 for r in VM_EXIT_REASONS},
        "kvm_run_returns_per_s": 0.0,
        "vmm_io_syscalls_per_s": 0.0,
        "vmm_thread_switches_per_s": 0.0,
        "guest_ram_touched_per_op": 0.0,
        "guest_ram_huge": False,
        "ephmap": False,
        "ctxsw_same_mm": False,
        "cr3_noflush": False,
        "ephmap_zeroing": False,
        "multi_slot": False,
        "metadata_mapped": False,
        "mapping_fastpath": False,
        "kvm_vmm_switch": False,
        "smt_stun": False,
        "ibpb": True,
        "l1tf": False,
        "pcid": True,
        "kernel_version": 617,
        **{f"default_{m}": False for m in DEFAULT_MITIGATIONS},
        **{f"asi_keeps_{m}": True for m in DEFAULT_MITIGATIONS},
    }


@pytest.fixture
def round_costs():
    """One cost sample with round numbers [ns]; bandwidths [bytes/ns]; ``tick_exits`` 0 [1/s]
    so that only the tests of time-driven exits have any."""
    return {
        "syscall": 100.0,
        "page_lookup": 200.0,
        "user_fault": 500.0,
        "context_switch": 1000.0,
        "copy_bandwidth": 16.0,
        "mem_bandwidth": 64.0,
        "kernel_rest": 2000.0,
        "fault_entry": 250.0,
        "cr3_write": 30.0,
        "page_walk": 100.0,
        "ibpb": 900.0,
        "rsb_fill": 20.0,
        "l1d_flush": 400.0,
        "generation_check": 10.0,
        "smt_stun": 1000.0,
        "ephmap_pte": 10.0,
        "ephmap_software": 40.0,
        "ephmap_software_fast": 5.0,
        "invlpg": 80.0,
        "psc_rewalk": 30.0,
        "full_flush": 50.0,
        "shootdown_base": 600.0,
        "shootdown_per_cpu": 100.0,
        "asi_mm_setup": 1000.0,
        "ephmap_setup_per_cpu": 500.0,
        "pti": 130.0,
        "spec_ctrl_write": 300.0,
        "bhb_clear": 30.0,
        "pbrsb": 5.0,
        "verw": 100.0,
        "srso": 200.0,
        "swapgs_fence": 10.0,
        "ibrs_factor": 0.25,
        "retpoline_factor": 0.1,
        "call_depth_factor": 0.05,
        "its_factor": 0.02,
        "safe_ret_factor": 0.2,
        "tick_exits": 0.0,
        **{f"vmexit_share_{r}": 0.0 for r in VM_EXIT_REASONS},
    }
