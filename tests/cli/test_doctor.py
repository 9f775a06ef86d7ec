"""Doctor checks that need no endpoint: sandbox layer lines, a kernel without the OS layer, GPU and packages."""

import dataclasses

from spatialclaw_ros.config import Config, KernelConfig, PerceptionConfig, SAM3Config
from spatialclaw_ros.doctor import check_gpu, check_kernel, check_packages, check_perception, sandbox_checks


def test_sandbox_lines_for_a_kernel_without_os_layer():
    kernel = KernelConfig(os_sandbox=False, static_check=False, memory_limit_mb=2048)
    config = dataclasses.replace(Config(), kernel=kernel)
    checks = check_kernel(config)
    assert checks[0].name == "kernel" and checks[0].ok and checks[0].required
    by_name = {check.name: check for check in checks[1:]}
    static = by_name["sandbox static check"]
    assert not static.ok and static.detail == "off (kernel.static_check)"
    for layer in ("sandbox landlock", "sandbox seccomp", "sandbox rlimits", "sandbox no ptrace/core"):
        assert not by_name[layer].ok and by_name[layer].detail == "not applied (kernel.os_sandbox is off)"
    assert by_name["sandbox landlock"].line() == "missing sandbox landlock: not applied (kernel.os_sandbox is off)"


def test_sandbox_lines_name_what_is_missing():
    checks = sandbox_checks({"static_check": True, "landlock": "unavailable: no ABI", "seccomp": False,
                             "seccomp_error": "pyseccomp is not installed", "rlimits": {"RLIMIT_AS": 1024},
                             "dumpable": False})
    assert [(check.ok, check.detail) for check in checks] == [
        (True, "AST check before every cell"), (False, "unavailable: no ABI"), (False, "pyseccomp is not installed"),
        (True, "AS=1024"), (True, "process not dumpable")]


def test_optional_parts_are_never_required():
    gpu = check_gpu()
    assert not gpu.required and gpu.detail
    packages = check_packages()
    assert [check.name for check in packages][-1] == "ROS 2"
    assert not any(check.required for check in packages)


def test_perception_line_names_the_missing_model_files(tmp_path):
    assert check_perception(Config()).line() == (
        "ok      perception: reconstruction sensor, segmentation classical: no model files needed")
    checkpoint = tmp_path / "sam3.pt"
    checkpoint.write_bytes(b"x")
    sam3 = PerceptionConfig(segmentation="sam3", sam3=SAM3Config(checkpoint=str(checkpoint), bpe_path="/no/bpe.gz"))
    check = check_perception(dataclasses.replace(Config(), perception=sam3))
    assert not check.ok and not check.required
    assert check.detail == ("reconstruction sensor, segmentation sam3: perception.sam3.bpe_path '/no/bpe.gz' not "
                            "found (see models/README.md)")
    both = dataclasses.replace(sam3, reconstruction="da3", sam3=SAM3Config(checkpoint=str(checkpoint),
                                                                         bpe_path=str(checkpoint)))
    assert "perception.da3.model_dir '' not found" in check_perception(dataclasses.replace(Config(), perception=both)).detail
    both.da3.model_dir = str(tmp_path)
    assert check_perception(dataclasses.replace(Config(), perception=both)).detail.endswith(": model files found")
