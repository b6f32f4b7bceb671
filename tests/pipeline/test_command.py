"""One way into Hydra: the composer, and Hydra's standard flags on every command."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
import yaml
from hydra.core.config_store import ConfigStore

from asi_slowdown import pipeline
from asi_slowdown.pipeline.cli import answer, calibrate, report, sweep, validate
from asi_slowdown.pipeline.configuration import compose
from asi_slowdown.pipeline.configuration.compose import Composer, compose_config, composer
from asi_slowdown.pipeline.configuration.errors import ConfigError

COMMANDS = {
    "asi-answer": answer.main,
    "asi-sweep": sweep.main,
    "asi-report": report.main,
    "asi-calibrate": calibrate.main,
    "asi-validate": validate.main,
}


def call(main, argv, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    out, err = capsys.readouterr()
    return exit_.value.code, out, err


@pytest.mark.parametrize("name", COMMANDS)
def test_cfg_job_prints_the_composed_config_without_hydra(name, capsys):
    code, out, err = call(COMMANDS[name], ["--cfg", "job", "cpus=8"], capsys)
    assert code == 0, err
    cfg = yaml.safe_load(out)
    assert cfg["cpus"] == 8 and "hydra" not in cfg and cfg["cpu"]["name"] == "sapphire_rapids"


@pytest.mark.parametrize("name", COMMANDS)
def test_help_and_info_searchpath(name, capsys, tmp_path):
    code, out, _ = call(COMMANDS[name], ["--help"], capsys)
    assert code == 0 and name in out and "--cfg job" in out and "fio_randread_tmpfs" in out
    code, out, _ = call(
        COMMANDS[name], ["--config-dir", str(tmp_path), "--info", "searchpath"], capsys
    )
    assert code == 0 and "pkg://asi_slowdown.pipeline.conf" in out and f"file://{tmp_path}" in out


def test_help_lists_every_config_group_of_the_defaults_list(capsys):
    """--help left out ``baseline`` (and ``report``): it lists what conf/config.yaml chooses."""
    chosen = [
        next(iter(entry))
        for entry in yaml.safe_load((compose.CONF_DIR / "config.yaml").read_text())["defaults"]
        if isinstance(entry, dict) and not next(iter(entry)).startswith("override ")
    ]
    assert {"baseline", "report", "workload", "experiment"} <= set(chosen)
    for main in COMMANDS.values():
        code, out, _ = call(main, ["--help"], capsys)
        listed = out.split("Config groups (choose with group=option):\n", 1)[1].splitlines()
        assert code == 0 and [line.split(":")[0].strip() for line in listed] == chosen
    assert "  baseline: ibpb_vmexit, kernel_default, mitigations_off" in out


def test_cfg_hydra_package_and_resolve(capsys):
    code, out, _ = call(answer.main, ["--cfg", "hydra", "--package", "sweeper"], capsys)
    assert code == 0 and "GridSweeper" in out
    code, out, _ = call(answer.main, ["-c", "job", "-p", "cpu.costs.ibpb", "cpu=amd_zen4"], capsys)
    assert code == 0 and set(yaml.safe_load(out)) >= {"dist", "source"}


def test_sweep_cfg_job_shows_the_sweep_without_running_it(capsys, tmp_path):
    argv = ["--cfg", "job", "cpus=1,2", f"store.path={tmp_path / 'store'}"]
    code, out, _ = call(sweep.main, argv, capsys)
    assert code == 0 and yaml.safe_load(out)["store"]["path"].endswith("store")
    assert not (tmp_path / "store").exists()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--bogus"], "--bogus: unknown flag"),
        (["--cfg", "nope"], "--cfg"),
        (["--run"], "--run: not supported"),
        (["-m", "cpus=1,2"], "--multirun: asi-answer evaluates one configuration"),
        (
            ["--config-dir", "/nonexistent/dir"],
            "--config-dir: '/nonexistent/dir' is not a directory",
        ),
        (["--cfg", "job", "cpus=[1"], "override 'cpus=[1' is malformed"),
        (["--cfg", "job", "-p", "nope"], "--package: 'nope' is not in the config"),
    ],
)
def test_bad_flags_are_one_line_and_exit_2(argv, message, capsys):
    code, out, err = call(answer.main, argv, capsys)
    assert code == 2 and out == ""
    assert err.startswith("error: ") and message in err and len(err.strip().splitlines()) == 1


def test_config_dir_adds_user_profiles_to_every_command(tmp_path, capsys):
    (tmp_path / "cpu").mkdir()
    own = compose_config(["cpu=amd_zen4"]).cpu
    doc = {**yaml.safe_load(compose.OmegaConf.to_yaml(own)), "name": "mine", "ghz": 3.1}
    (tmp_path / "cpu" / "mine.yaml").write_text(yaml.safe_dump(doc))
    argv = ["--config-dir", str(tmp_path), "--cfg", "job", "cpu=mine"]
    for main in COMMANDS.values():
        code, out, err = call(main, argv, capsys)
        assert code == 0, err
        assert yaml.safe_load(out)["cpu"]["ghz"] == 3.1
    code, out, _ = call(answer.main, ["--cfg", "job", "cpu=mine"], capsys)  # not without it
    assert code == 2


def test_user_config_dir_from_the_environment(tmp_path, monkeypatch, capsys):
    (tmp_path / "workload").mkdir()
    base = compose.OmegaConf.to_yaml(compose_config([]).workload)
    doc = {**yaml.safe_load(base), "name": "lab", "base_time": 777.0}
    (tmp_path / "workload" / "lab.yaml").write_text(yaml.safe_dump(doc))
    monkeypatch.setenv(compose.USER_CONFIG_ENV, str(tmp_path))
    assert compose.user_config_dir() == tmp_path
    assert compose_config(["workload=lab"]).workload.base_time == 777.0
    assert "lab" in composer().group_options("workload")


def test_the_tests_never_see_the_users_config_dir(tmp_path, monkeypatch, capsys):
    """A profile ``asi-calibrate`` wrote into ./outputs/conf (the default ASI_CONFIG_DIR) is
    not on the tests' search path, nor on that of the commands they run (tests/conftest.py):
    `make test` passes after the README's calibration step, and never asks for `make docs`."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "outputs" / "conf" / "cpu").mkdir(parents=True)
    own = compose_config(["cpu=amd_zen4"]).cpu
    doc = {**yaml.safe_load(compose.OmegaConf.to_yaml(own)), "name": "private"}
    (tmp_path / "outputs" / "conf" / "cpu" / "private.yaml").write_text(yaml.safe_dump(doc))
    assert not str(compose.user_config_dir()).startswith(str(tmp_path))
    assert "private" not in composer().group_options("cpu")
    code, out, _ = call(answer.main, ["--help"], capsys)
    assert code == 0 and "sapphire_rapids" in out and "private" not in out


def test_hydra_is_initialised_once_and_compositions_are_cached(monkeypatch):
    calls = []
    original = compose.initialize_config_module

    def counting(*args, **kwargs):
        calls.append(args)
        return original(*args, **kwargs)

    monkeypatch.setattr(compose, "initialize_config_module", counting)
    fresh = Composer()
    monkeypatch.setattr(compose, "_initialised", None)
    loads = []
    loader = fresh.loader()
    real = loader.load_configuration
    monkeypatch.setattr(
        loader, "load_configuration", lambda *a, **k: loads.append(k) or real(*a, **k)
    )
    for _ in range(3):
        fresh.compose(["cpus=2"])
        fresh.compose(["cpus=3"])
        assert fresh.group_options("cpu")
    assert len(calls) == 1
    assert len(loads) == 2  # one per distinct override tuple
    first, second = fresh.compose(["cpus=2"]), fresh.compose(["cpus=2"])
    first.cpus = 99  # a caller's edit never reaches the cache
    assert second.cpus == 2 and fresh.compose(["cpus=2"]).cpus == 2


def test_the_sweeper_refuses_a_hydra_launcher_in_one_line(tmp_path):
    ConfigStore.instance().store(
        group="hydra/launcher", name="elsewhere", node={"_target_": "some.Launcher"}
    )
    from asi_slowdown.pipeline.sweep.run import sweep as run_sweep

    with pytest.raises(ConfigError, match=r"^hydra/launcher=elsewhere: the grid sweeper runs"):
        run_sweep(["hydra/launcher=elsewhere", "cpus=1,2", f"store.path={tmp_path}"])


def test_no_argv_or_environment_swaps_and_no_private_hydra_imports():
    root = Path(pipeline.__file__).parent
    for path in root.rglob("*.py"):
        text = path.read_text()
        assert "sys.argv =" not in text and "sys.argv," not in text, path
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.Assign):
                for target in node.targets:
                    assert "os.environ" not in ast.unparse(target), path
            if isinstance(node, ast.ImportFrom) and node.module:
                assert "._internal" not in node.module and "_internal." not in node.module, path


def test_config_name_picks_another_primary_config(tmp_path, capsys):
    (tmp_path / "eight.yaml").write_text("defaults:\n  - config\n  - _self_\ncpus: 8\n")
    argv = ["--config-dir", str(tmp_path), "--config-name", "eight"]
    code, out, err = call(answer.main, [*argv, "--cfg", "job"], capsys)
    assert code == 0 and yaml.safe_load(out)["cpus"] == 8, err
    code, out, err = call(answer.main, [*argv, "samples=16", "answer.source=model"], capsys)
    assert code == 0 and "cpus=8" in out, err


@pytest.mark.parametrize("name", COMMANDS)
def test_version_prints_the_model_version_beside_the_package(name, capsys):
    """Users compare stored results by the model version, not the package's."""
    from asi_slowdown.model import MODEL_VERSION

    code, out, _ = call(COMMANDS[name], ["--version"], capsys)
    assert code == 0
    assert f"model {MODEL_VERSION}" in out and out.startswith(name), out
