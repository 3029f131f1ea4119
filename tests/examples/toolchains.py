"""The toolchains the example tests need, and the examples built once per session.

A missing tool is a test failure, not a skip: ``.ci/run`` installs every one of them (Debian
packages and ``npm ci`` for Axios), so a gap here means CI is broken.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

__all__ = ["EXAMPLES", "Built", "build_examples", "require"]

EXAMPLES = Path(__file__).resolve().parents[2] / "docs" / "examples"
BUILD_TIMEOUT = 240.0
"""Seconds a compile step may take (a cold Go build cache or kotlinc on a busy machine)."""


@dataclass(frozen=True)
class Built:
    """Where the compiled examples are."""

    python: str
    go_bin: Path
    java_classes: Path


def require(*tools: str) -> None:
    """Fail the test unless every tool is on PATH."""
    missing = [tool for tool in tools if shutil.which(tool) is None]
    if missing:
        pytest.fail(f"toolchain missing: {', '.join(missing)} (bash .ci/run installs them)", pytrace=False)


def run_tool(argv: list[str], *, cwd: Path | None = None, env: dict[str, str] | None = None) -> str:
    """Run a build or check step; fail the test with its output when it fails."""
    try:
        done = subprocess.run(
            argv,
            cwd=cwd,
            env=env,
            capture_output=True,
            text=True,
            timeout=BUILD_TIMEOUT,
            check=False,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"{argv[0]} took more than {BUILD_TIMEOUT} s", pytrace=False)
    if done.returncode != 0:
        pytest.fail(f"{' '.join(argv)} failed:\n{done.stdout}\n{done.stderr}", pytrace=False)
    return done.stdout + done.stderr


def build_examples(out: Path) -> Built:
    """Check the executed languages' toolchains and compile the Go and Java examples into ``out``."""
    require("bash", "curl", "jq", "openssl", "node", "php", "ruby", "go", "javac", "java")
    if not (EXAMPLES / "axios" / "node_modules" / "axios").is_dir():
        pytest.fail(
            "axios is not installed: run `npm ci` in docs/examples/axios (.ci/run does)", pytrace=False
        )
    run_tool(["php", "-r", "exit(function_exists('curl_init') ? 0 : 1);"])
    run_tool(["ruby", "-e", "require 'webrick'"])
    go_env = {
        **os.environ,
        "GOCACHE": str(out / "gocache"),
        "GOPATH": str(out / "gopath"),
        "GOPROXY": "off",  # standard library only: nothing to download
        "GOFLAGS": "-mod=mod",
    }
    run_tool(["go", "vet", "./..."], cwd=EXAMPLES / "go", env=go_env)
    run_tool(["go", "build", "-o", str(out / "go") + os.sep, "./..."], cwd=EXAMPLES / "go", env=go_env)
    java_sources = sorted(str(p) for p in (EXAMPLES / "java").glob("*.java"))
    run_tool(["javac", "-Werror", "-Xlint:all,-serial", "-d", str(out / "java"), *java_sources])
    return Built(python=sys.executable, go_bin=out / "go", java_classes=out / "java")


def build_kotlin(out: Path) -> Path:
    """Compile the Kotlin examples into one jar with the Kotlin runtime inside; its path."""
    require("kotlinc", "java")
    jar = out / "relaygate-kotlin.jar"
    sources = sorted(str(p) for p in (EXAMPLES / "kotlin").glob("*.kt"))
    run_tool(["kotlinc", "-Werror", "-include-runtime", "-d", str(jar), *sources])
    return jar


def check_csharp(out: Path) -> Path:
    """Compile the C# examples with Mono's mcs (warnings are errors) against System.Net.Http and
    a signature stub of System.Text.Json (Mono has none); the built assembly's path."""
    require("mcs")
    stub = out / "System.Text.Json.dll"
    run_tool(
        [
            "mcs",
            "-target:library",
            f"-out:{stub}",
            str(Path(__file__).parent / "csharp_stub" / "System.Text.Json.cs"),
        ]
    )
    exe = out / "RelaygateExamples.exe"
    sources = sorted(str(p) for p in (EXAMPLES / "csharp").glob("*.cs"))
    run_tool(["mcs", "-warnaserror", "-r:System.Net.Http.dll", f"-r:{stub}", f"-out:{exe}", *sources])
    return exe


def check_php_syntax(folder: Path) -> list[Path]:
    """``php -l`` every PHP file under ``folder``; the files checked."""
    require("php")
    files = sorted(folder.rglob("*.php"))
    for path in files:
        run_tool(["php", "-l", str(path)])
    return files
