"""Doctor checks that need no endpoint: sandbox layer lines, a kernel without the OS layer, GPU and packages."""

import dataclasses

from spatialclaw_ros.config import Config, KernelConfig, PerceptionConfig, SAM3Config
from spatialclaw_ros.kernel.layers import SandboxLayer
from spatialclaw_ros.doctor import check_gpu, check_kernel, check_packages, check_perception, sandbox_checks


def test_sandbox_lines_for_a_kernel_without_os_layer():
    kernel = KernelConfig(os_sandbox=False, static_check=False, memory_limit_mb=2048)
    config = dataclasses.replace(Config(), kernel=kernel)
    checks = check_kernel(config)
    assert checks[0].name == "kernel" and checks[0].ok and checks[0].required
    assert [check.line() for check in checks[1:]] == [
        "missing sandbox static check: off (kernel.static_check)",
        "missing sandbox OS layers: not applied (kernel.os_sandbox is off)"]


def test_sandbox_lines_show_every_layer_of_a_real_kernel():
    checks = check_kernel(dataclasses.replace(Config(), kernel=KernelConfig(memory_limit_mb=2048)))
    by_name = {check.name: check for check in checks}
    assert by_name["kernel"].ok
    for layer in ("pid_namespace", "sandbox_uid", "landlock", "seccomp"):
        assert by_name[f"sandbox {layer}"].ok, by_name[f"sandbox {layer}"].line()
    assert "sees and can name no other process" in by_name["sandbox pid_namespace"].detail
    assert by_name["sandbox rlimits"].detail.startswith("AS=2147483648, CPU=1800")


def test_sandbox_lines_name_an_accepted_missing_layer():
    layers = [SandboxLayer("pid_namespace", False, False, "unshare: Operation not permitted"),
              SandboxLayer("seccomp", True, True, "40 syscalls refused")]
    checks = sandbox_checks(KernelConfig(), layers, {"RLIMIT_AS": 1024})
    assert [(check.ok, check.detail) for check in checks] == [
        (True, "AST check before every cell"),
        (False, "unshare: Operation not permitted (accepted by kernel.optional_layers)"),
        (True, "40 syscalls refused"), (True, "AS=1024")]


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
