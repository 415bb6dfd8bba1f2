"""`lm-probe`: the command-line entry point.

`lm-probe demo` trains one probe per chosen layer of a model on a labelled text set
(by default SmolLM2-135M on Rotten Tomatoes, both offline), prints progress and a
per-layer table of held-out metrics, and writes metrics.csv, metrics.json and
report.html (the layer sweep as an inline image, then the table) to an output folder.
`lm-probe fit DATA` does the same on the user's own CSV, JSON Lines or parquet file;
the file and its columns are checked before the model loads.

pandas, numpy, torch and matplotlib are imported inside the functions that use them,
so `lm-probe --help` and a bad file answer at once.

The package's modules, one job each: `args` (the parser), `inputs` (the data
file), `checks` (model and output flags), `run` (demo and fit), `progress`,
`exports` (the output folder), `report` (report.html), `store`, `errors`.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

from .args import DEFAULT_LAYERS, DEFAULT_N, build_parser
from .checks import resolve_layers
from .errors import CLIError, cli_wording
from .inputs import LabelledTexts, read_labelled_file
from .report import report_html, sweep_frame, sweep_png
from .run import default_threads, fit_and_report, run_demo, run_fit
from .store import run_store

__all__ = [
    "DEFAULT_LAYERS",
    "DEFAULT_N",
    "CLIError",
    "LabelledTexts",
    "build_parser",
    "cli_wording",
    "default_threads",
    "fit_and_report",
    "main",
    "read_labelled_file",
    "report_html",
    "resolve_layers",
    "run_demo",
    "run_fit",
    "run_store",
    "sweep_frame",
    "sweep_png",
]


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")  # no fork warnings
    from ..core.io.loading import DatasetLoadError, ModelLoadError

    try:
        from ..core.errors import ProbeError
    except ImportError:  # pragma: no cover - the core is always there in a release
        ProbeError = CLIError  # noqa: N806
    try:
        if args.command == "demo":
            return run_demo(args)
        if args.command == "fit":
            return run_fit(args)
        if args.command == "store":
            return run_store(args)
    except (CLIError, ModelLoadError, DatasetLoadError, ProbeError, ValueError) as e:
        print(f"lm-probe: error: {cli_wording(str(e))}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(
            "\nlm-probe: interrupted; the same command again reuses the features "
            "computed so far (they are stored)",
            file=sys.stderr,
        )
        return 130
    return 1
