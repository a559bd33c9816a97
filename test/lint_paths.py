"""What test_flake8.py and test_pep257.py lint: the package's Python, not the venv or builds."""
from pathlib import Path


REPO = Path(__file__).resolve().parents[1]

#: Linted folders (and setup.py).
LINTED = [REPO / name for name in ('hand_tracker_ros', 'hand_tracker_training', 'launch',
                                   'benchmarks', 'test', 'tools', 'setup.py')]

#: Files not linted (none at present; a path here is skipped by both linters).
EXCLUDED: list[Path] = []


def excluded() -> list[Path]:
    """Return the EXCLUDED files that exist."""
    return [p for p in EXCLUDED if p.exists()]


def lint_argv() -> list[str]:
    """Return the command line of the ament linters: the LINTED paths less the excluded files."""
    argv = [str(p) for p in LINTED]
    if excluded():
        argv += ['--exclude'] + [str(p) for p in excluded()]
    return argv
