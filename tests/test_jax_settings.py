"""JAX start-up settings: XLA_FLAGS composed from the user's own and bayescale's."""

import os
import subprocess
import sys

import pytest

from bayescale._jax import GPU_GRAPHS, xla_flags


@pytest.mark.parametrize(
    ("given", "count", "graphs", "expected"),
    [
        ("", 4, True, f"--xla_force_host_platform_device_count=4 {GPU_GRAPHS}"),
        (
            "--xla_force_host_platform_device_count=8 --xla_dump_to=/tmp/d",
            2,
            True,
            f"--xla_force_host_platform_device_count=2 --xla_dump_to=/tmp/d {GPU_GRAPHS}",
        ),
        # the user's own command-buffer setting wins, even an empty one (graphs off)
        (
            "--xla_gpu_enable_command_buffer=",
            4,
            True,
            "--xla_force_host_platform_device_count=4 --xla_gpu_enable_command_buffer=",
        ),
        (
            "--xla_dump_to=/tmp/d",
            1,
            False,
            "--xla_force_host_platform_device_count=1 --xla_dump_to=/tmp/d",
        ),
    ],
)
def test_xla_flags_keep_the_users_flags_and_add_bayescales(given, count, graphs, expected):
    assert xla_flags(given, count, graphs) == expected


def _flags_in_fresh_process(**env) -> str:
    code = (
        "import os, bayescale._jax as j; j.configure(); import jax; "
        "print(os.environ['XLA_FLAGS']); print(len(jax.devices('cpu')))"
    )
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("XLA_", "BAYESCALE_G"))}
    out = subprocess.run(
        [sys.executable, "-c", code],
        env={**clean, **env},
        capture_output=True,
        text=True,
        check=True,
    )
    return out.stdout


def test_a_fresh_process_gets_gpu_graphs_unless_turned_off():
    flags, devices = _flags_in_fresh_process(BAYESCALE_HOST_DEVICES="3").split("\n")[:2]
    assert flags == f"--xla_force_host_platform_device_count=3 {GPU_GRAPHS}"
    assert devices == "3"  # XLA accepted the flags and split the CPU
    off = _flags_in_fresh_process(BAYESCALE_HOST_DEVICES="3", BAYESCALE_GPU_GRAPHS="0")
    assert off.split("\n")[0] == "--xla_force_host_platform_device_count=3"
