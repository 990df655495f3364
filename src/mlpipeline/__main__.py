"""``python -m mlpipeline`` is the same as the ``mlpipeline`` console script."""

import sys

try:
    from mlpipeline.cli import run
except ModuleNotFoundError as exc:  # a Python without the project's environment: say which, not a traceback
    sys.stderr.write(
        f"ERROR {sys.executable} lacks the package {exc.name!r} that mlpipeline needs: run `make setup` "
        "(or activate .venv)\n"
    )
    sys.exit(2)

run()
