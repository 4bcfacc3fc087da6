"""``python -m bench --quick`` (under two minutes) or ``--full``: run the benchmarks, write results and plots."""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
from pathlib import Path

import click

from bench.runner import ORDER, ROOT, run_suite, save


@click.command()
@click.option("--quick", "mode", flag_value="quick", default=True, help="Scaled down: under two minutes (default).")
@click.option("--full", "mode", flag_value="full", help="The sizes docs/BENCHMARKS.md reports (~15 minutes).")
@click.option("--smoke", "mode", flag_value="smoke", help="The smallest configuration, seconds (the smoke test).")
@click.option("--size", type=click.Choice(["smoke", "quick", "full"]),
              help="The same as --smoke, --quick or --full (and wins over them).")
@click.option("--only", help=f"Comma-separated subset of: {', '.join(ORDER)}.")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=ROOT / "bench" / "results",
              show_default=True, help="Where <mode>.json and <mode>.md go.")
@click.option("--plots", type=click.Path(file_okay=False, path_type=Path),
              help="Where the PNGs go [default: docs/plots for --full, <out>/plots-<mode> otherwise].")
@click.option("--write-docs/--no-write-docs", default=None,
              help="Rewrite the generated region of docs/BENCHMARKS.md [default: only with --full and no --only].")
@click.option("--workdir", type=click.Path(file_okay=False, path_type=Path),
              help="Scratch folder for brokers and databases [default: the system temp folder].")
@click.option("--render", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Run nothing: redraw the Markdown and plots from a saved results JSON.")
def main(mode: str, size: str | None, only: str | None, out: Path, plots: Path | None, write_docs: bool | None,
         workdir: Path | None, render: Path | None) -> None:
    """Run the smileloop benchmarks; each figure is a ratio against a baseline measured in the same run.

    Exits 1 if a benchmark could not run (its error is in the results).

    \b
    Example:
        python -m bench --quick
        python -m bench --full                # also rewrites docs/BENCHMARKS.md and docs/plots/
        python -m bench --quick --only tap,drain
        python -m bench --only drain --size full  # one benchmark at full size: bench/results/full-drain.*
        python -m bench --render bench/results/full.json --write-docs   # redraw docs from the saved run
    """
    os.environ.setdefault("KIVY_NO_ARGS", "1")
    mode = size or mode
    # SIGTERM unwinds like Ctrl-C, so the brokers and central processes started here are stopped.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    logging.basicConfig(level=logging.ERROR, stream=sys.stderr)
    selected = tuple(x.strip() for x in only.split(",")) if only else ()
    unknown = [x for x in selected if x not in ORDER]
    if unknown:
        raise click.BadParameter(f"unknown benchmark(s) {', '.join(unknown)}; choose from {', '.join(ORDER)}",
                                 param_hint="--only")
    if render is not None:
        results = json.loads(render.read_text())
        mode = results["mode"]
    else:
        results = run_suite(mode, only=selected, workdir=workdir, log=lambda s: click.echo(s, err=True))
    if plots is None:
        plots = ROOT / "docs" / "plots" if mode == "full" and not results.get("only") else out / f"plots-{mode}"
    whole_full_run = mode == "full" and not results.get("only")  # a subset must not replace the whole table
    doc = ROOT / "docs" / "BENCHMARKS.md" if (write_docs if write_docs is not None else whole_full_run) else None
    for path in save(results, out, plots, doc):
        click.echo(f"wrote {path}")
    failed = [k for k, v in results.items() if isinstance(v, dict) and "error" in v]
    if failed:
        click.echo(f"could not run: {', '.join(failed)}", err=True)
        sys.exit(1)


if __name__ == "__main__":
    main()
