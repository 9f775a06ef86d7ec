"""The declared settings: YAML loading checks keys, types, ranges and choices; every setting is declared."""

from __future__ import annotations

import dataclasses

import pytest

from spatialclaw_ros.config import Config, declared_settings, load_config


def write(tmp_path, text: str):
    path = tmp_path / "config.yaml"
    path.write_text(text)
    return path


def test_yaml_values_override_defaults_and_the_environment_overrides_yaml(tmp_path):
    path = write(tmp_path, "agent:\n  max_steps: 7\n  context: {max_images: 3}\nmodel:\n  base_url: http://a/v1\n")
    config = load_config(path, env={"SPATIALCLAW_BASE_URL": "http://b/v1", "SPATIALCLAW_API_KEY": "k"})
    assert (config.agent.max_steps, config.agent.context.max_images) == (7, 3)
    assert (config.model.base_url, config.model.api_key) == ("http://b/v1", "k")
    assert config.agent.cell_timeout_s == Config().agent.cell_timeout_s


@pytest.mark.parametrize("text, message", [
    ("agent:\n  max_stepz: 3\n", "unknown config key 'config.agent.max_stepz'"),
    ("agent:\n  max_steps: many\n", "'config.agent.max_steps' must be int, got 'many'"),
    ("agent:\n  max_steps: true\n", "'config.agent.max_steps' must be int, got True"),
    ("agent:\n  max_steps: 0\n", r"'config.agent.max_steps' = 0 is outside \[1, 1000\]"),
    ("kernel:\n  interrupt_grace_s: .nan\n", "'config.kernel.interrupt_grace_s' must be finite"),
    ("perception:\n  reconstruction: vggt\n", "'config.perception.reconstruction': 'vggt' is not one of sensor, da3"),
    ("model:\n  api_key: secret\n", "unknown config key 'config.model.api_key'"),
    ("agent: 3\n", "config section 'config.agent' must be a mapping"),
])
def test_bad_yaml_is_refused_naming_the_key(tmp_path, text, message):
    with pytest.raises(ValueError, match=message):
        load_config(write(tmp_path, text), env={})


def test_every_leaf_field_is_a_declared_setting_except_the_api_key():
    def leaves(obj, prefix=""):
        for item in dataclasses.fields(obj):
            value = getattr(obj, item.name)
            if dataclasses.is_dataclass(value):
                yield from leaves(value, f"{prefix}{item.name}.")
            else:
                yield f"{prefix}{item.name}"

    declared = [entry.name for entry in declared_settings(Config())]
    assert sorted(declared) == sorted(set(leaves(Config())) - {"model.api_key"})
    assert all(entry.setting.description for entry in declared_settings(Config()))
    assert "planner.max_tokens" in {name.split(".", 1)[1] for name in declared}
    defaults = {entry.name: entry.value for entry in declared_settings(Config())}
    assert (defaults["model.planner.max_tokens"], defaults["model.vlm.temperature"]) == (1024, 0.0)


def test_the_backend_choices_are_the_registered_backends():
    from spatialclaw_ros.config import RECONSTRUCTION_BACKENDS, SEGMENTATION_BACKENDS
    from spatialclaw_ros.perception import backends

    assert sorted(RECONSTRUCTION_BACKENDS) == sorted(backends.RECONSTRUCTION_BACKENDS)
    assert sorted(SEGMENTATION_BACKENDS) == sorted(backends.SEGMENTATION_BACKENDS)


def test_a_list_setting_takes_a_yaml_list_of_its_choices(tmp_path):
    config = load_config(write(tmp_path, "kernel:\n  optional_layers: [landlock, pid_namespace]\n"), env={})
    assert config.kernel.optional_layers == ("landlock", "pid_namespace")
    with pytest.raises(ValueError, match="'config.kernel.optional_layers': 'selinux' is not one of pid_namespace"):
        load_config(write(tmp_path, "kernel:\n  optional_layers: [selinux]\n"), env={})
    with pytest.raises(ValueError, match="must be a list of strings, got .landlock."):
        load_config(write(tmp_path, "kernel:\n  optional_layers: landlock\n"), env={})
