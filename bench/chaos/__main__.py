"""``python -m bench.chaos``: the accounting harness from the command line."""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

import click

from bench.chaos.harness import FAULT_KINDS, ChaosPlan, run_chaos


@click.command()
@click.option("--taps", type=click.IntRange(min=1), default=300, show_default=True)
@click.option("--rate", type=click.FloatRange(min=0.5), default=30.0, show_default=True, help="Taps per second.")
@click.option("--faults", type=click.IntRange(min=0), default=3, show_default=True, help="Faults of each kind.")
@click.option("--kinds", default=",".join(FAULT_KINDS), show_default=True, help="Comma-separated fault kinds.")
@click.option("--seed", type=int, default=1, show_default=True)
@click.option("--window-rules", is_flag=True, help="Keep central's window and misuse rules on (slow at this rate).")
@click.option("--outage", type=click.FloatRange(min=0), default=0.0, show_default=True,
              help="Make the last SECONDS of taps with the broker down, then time the drain of that backlog.")
@click.option("--drain-timeout", type=click.FloatRange(min=1), default=300.0, show_default=True)
@click.option("--workdir", type=click.Path(file_okay=False, path_type=Path),
              help="Keep databases and logs here (default: a temporary folder).")
@click.option("--json", "json_path", type=click.Path(dir_okay=False, path_type=Path), help="Write the report here.")
def main(taps: int, rate: float, faults: int, kinds: str, seed: int, window_rules: bool, outage: float,
         drain_timeout: float, workdir: Path | None, json_path: Path | None) -> None:
    """Push TAPS taps through real processes while injecting FAULTS faults of each kind; exit 1 if any is lost.

    \b
    Example:
        python -m bench.chaos --taps 10000 --rate 40 --faults 20 --outage 30 --workdir /tmp/chaos
    """
    chosen = tuple(k.strip() for k in kinds.split(",") if k.strip())
    unknown = set(chosen) - set(FAULT_KINDS)
    if unknown:
        raise click.BadParameter(f"unknown {', '.join(sorted(unknown))}; known: {', '.join(FAULT_KINDS)}",
                                 param_hint="--kinds")
    work = workdir or Path(tempfile.mkdtemp(prefix="smileloop-chaos-"))
    plan = ChaosPlan(workdir=work, taps=taps, rate=rate, faults=faults, kinds=chosen, seed=seed,
                     drain_timeout=drain_timeout, window_rules=window_rules, outage=outage)
    report = run_chaos(plan, progress=True)
    click.echo("\n".join(report.lines()))
    click.echo(f"logs and databases in {work}")
    if json_path:
        json_path.write_text(json.dumps(report.as_dict(), indent=2))
    sys.exit(0 if report.ok else 1)


if __name__ == "__main__":
    main()
