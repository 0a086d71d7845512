"""The state directory: data, logs and config in one place, and the example config files."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from postflow_webhooks.app.settings import SettingsError, load_settings

EXAMPLES = Path(__file__).resolve().parents[2] / "config"


def test_without_a_state_directory_everything_is_relative_to_the_working_directory() -> None:
    """Nothing set: ./data, ./logs and ./config, as make run has always used."""
    settings = load_settings({})
    assert (settings.data_dir, settings.log_dir, settings.config_dir) == (
        Path("data"),
        Path("logs"),
        Path("config"),
    )
    assert settings.state_dir is None


def test_a_state_directory_holds_data_logs_and_config(tmp_path: Path) -> None:
    """POSTFLOW_STATE_DIR: STATE/data, STATE/logs, and the config files read from STATE/config."""
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "receiver.json").write_text('{"port": 9001}', encoding="utf-8")
    settings = load_settings({"POSTFLOW_STATE_DIR": str(tmp_path)})
    assert settings.data_dir == tmp_path / "data" and settings.log_dir == tmp_path / "logs"
    assert settings.config_dir == tmp_path / "config" and settings.port == 9001


def test_systemds_state_directory_is_the_default_under_systemd(tmp_path: Path) -> None:
    """A unit with StateDirectory= sets STATE_DIRECTORY; the receiver uses it when nothing else."""
    settings = load_settings({"STATE_DIRECTORY": f"{tmp_path}:/var/lib/other"})
    assert settings.data_dir == tmp_path / "data" and settings.config_dir == tmp_path / "config"
    chosen = load_settings({"STATE_DIRECTORY": str(tmp_path), "POSTFLOW_STATE_DIR": "/srv/pf"})
    assert chosen.data_dir == Path("/srv/pf/data")


def test_explicit_directories_win_over_the_state_directory(tmp_path: Path) -> None:
    """--data-dir, POSTFLOW_LOG_DIR and --config-dir each beat the state directory's default."""
    settings = load_settings(
        {"POSTFLOW_STATE_DIR": str(tmp_path), "POSTFLOW_LOG_DIR": "/var/log/pf"},
        {"data_dir": "./data", "config_dir": str(tmp_path / "etc")},
    )
    assert settings.data_dir == Path("data") and settings.log_dir == Path("/var/log/pf")
    assert settings.config_dir == tmp_path / "etc"


def test_the_flag_wins_and_a_config_key_moves_data_and_logs(tmp_path: Path) -> None:
    """--state-dir beats the variable; state_dir in receiver.json places data and logs."""
    config = tmp_path / "config"
    config.mkdir()
    (config / "receiver.json").write_text(
        json.dumps({"state_dir": str(tmp_path / "from-file")}), encoding="utf-8"
    )
    from_file = load_settings({"POSTFLOW_CONFIG_DIR": str(config)})
    assert from_file.data_dir == tmp_path / "from-file" / "data"
    flagged = load_settings(
        {"POSTFLOW_STATE_DIR": "/elsewhere"}, {"state_dir": str(tmp_path / "flag")}
    )
    assert flagged.data_dir == tmp_path / "flag" / "data"


def test_a_malformed_state_directory_names_its_variable() -> None:
    """An empty-looking value is no state directory; a list is refused, naming the key."""
    assert load_settings({"POSTFLOW_STATE_DIR": ""}).state_dir is None
    with pytest.raises(SettingsError, match="state_dir"):
        load_settings({}, {"state_dir": ["a"]})


@pytest.mark.parametrize("name", ["frameio_config", "receiver"])
def test_the_example_config_files_load(tmp_path: Path, name: str) -> None:
    """config/*.example.json, copied to their real names, are read without an error."""
    shutil.copy(EXAMPLES / f"{name}.example.json", tmp_path / f"{name}.json")
    settings = load_settings({"POSTFLOW_CONFIG_DIR": str(tmp_path)})
    if name == "receiver":
        assert settings.log_format == "json" and settings.retention_days == 14
    else:
        assert settings.frameio_client_id == "your_client_id"
        assert settings.tunnel == "named" and settings.tunnel_hostname == "hooks.example.com"
