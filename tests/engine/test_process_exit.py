"""Console entry points leave through ``os._exit`` after flushing: the code and the output survive."""

from __future__ import annotations

import subprocess
import sys

import pytest


def _run(body: str) -> subprocess.CompletedProcess[str]:
    code = f"from s1mple_engine.process_exit import console\n{body}"
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)


def test_output_buffered_on_a_pipe_is_flushed_and_the_code_kept() -> None:
    # stdout to a pipe is block-buffered: without the explicit flush os._exit would drop these lines
    done = _run("import logging, sys\n"
                "logging.basicConfig(stream=sys.stderr)\n"
                "def main():\n"
                "    print('\\n'.join(str(i) for i in range(500)))\n"
                "    logging.getLogger('x').warning('logged')\n"
                "    return 3\n"
                "console(main)")
    assert done.returncode == 3
    assert done.stdout.splitlines() == [str(i) for i in range(500)]
    assert "logged" in done.stderr


@pytest.mark.parametrize(
    ("raise_", "code", "stderr"),
    [("raise SystemExit(0)", 0, ""), ("raise SystemExit('bad flag')", 1, "bad flag"), ("return None", 0, "")],
)
def test_system_exit_codes_match_the_interpreter(raise_: str, code: int, stderr: str) -> None:
    done = _run(f"def main():\n    {raise_}\nconsole(main)")
    assert done.returncode == code
    assert stderr in done.stderr


def test_the_installed_commands_use_it() -> None:
    # argparse's --help raises SystemExit(0) inside main: the console wrapper must keep code 0 and the text
    for command in ("s1mple", "s1mple-runner"):
        done = subprocess.run(
            [sys.executable, "-c", f"import sys; from importlib.metadata import entry_points; "
             f"ep = [e for e in entry_points(group='console_scripts') if e.name == '{command}'][0]; "
             f"sys.argv = ['{command}', '--help']; ep.load()()"],
            capture_output=True, text=True, timeout=60,
        )
        assert done.returncode == 0, done.stderr
        assert "usage:" in done.stdout
