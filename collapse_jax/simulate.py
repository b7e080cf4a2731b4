"""Thin entry point: validate a config, run the chains, attach theory, write summary.json."""

from __future__ import annotations

import os
import sys

from collapse_jax.settings import get_setting
from collapse_jax.summary import build_summary, write_chains, write_summary


def predictions_for(setting: str, config: dict) -> dict:
    """Theory for every recorded metric of a resolved config (imports `theory`, which never imports us).
    Theory gets the typed values (`SettingDefinition.values`: option strings already parsed into
    `(kind, value)` pairs, arrays and numbers), never the option strings."""
    import jax

    import theory

    predictor = theory.PREDICTORS.get(setting)
    if predictor is None:
        return {}
    values = get_setting(setting).values(config)
    arguments = {name: values[name] for name in config}  # the parameters, without derived values
    with jax.enable_x64(True):
        return {name: predictor(name, **arguments) for name in config.get("metrics", ())}


def rich_progress(description: str):
    """A progress callback drawing a bar with ETA on stderr; returns (callback, close)."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    bar = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total} chains"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        transient=True,
    )
    task = None

    def update(done, total, generation=None):
        nonlocal task
        if task is None:
            bar.start()
            task = bar.add_task(description, total=total)
        if generation is None:
            bar.update(task, completed=done)
        else:
            bar.update(task, description=f"{description}, generation {generation}")

    return update, bar.stop


def check_output_directory(out, where: str = "out (--out)") -> str:
    """Create the output directory `out` if needed and check that a file can be written in it, before
    any run: raise ValueError naming `where` (a path that is empty, a file such as /dev/null, or not
    writable). Returns the path as a string."""
    import tempfile

    if isinstance(out, bytes) or not isinstance(out, (str, os.PathLike)):
        raise ValueError(f"{where} must be a directory path, got {out!r}")
    path = os.fspath(out)
    if not path.strip():
        raise ValueError(f"{where} must be a directory path, got {out!r}")
    if os.path.exists(path) and not os.path.isdir(path):
        raise ValueError(f"{where}: {path!r} exists and is not a directory")
    try:
        os.makedirs(path, exist_ok=True)
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as error:
        raise ValueError(f"{where}: cannot write to directory {path!r}: {error.strerror or error}") from None
    return path


def prepare(setting: str, overrides: dict | None = None, *, devices=None, out=None):
    """Validate a config (and the output directory `out`, if given) and compile its program: returns
    `(config, prepared run)`.

    Invalid values raise ValueError naming the parameter before anything is compiled.
    """
    definition = get_setting(setting)
    config = definition.resolve(overrides)
    if out is not None:
        check_output_directory(out)
    import jax

    # float64 exactly when the config asks: a float32 run after an x64 run in the same process must draw
    # and round as it does alone (JAX's x64 flag is global and would otherwise stay on)
    jax.config.update("jax_enable_x64", config["x64"])
    from collapse_jax.runner import Cells, prepare_program

    setting_fn, spec = definition.program(config)
    cells = Cells(
        (config["seed"],), (config["chains"],), {name: (config[name],) for name in definition.traced_for(config)}
    )
    prepared = prepare_program(
        setting_fn,
        spec,
        cells,
        chunk_size=config["chunk_size"] or None,
        devices=devices,
        quantile_chains=config["quantile_chains"],
    )
    return config, prepared


def finish(
    setting: str, config: dict, prepared, *, out: str | None = None, save_chains: bool = False, progress: bool = False
) -> dict:
    """Execute a prepared run, attach theory, write `out/summary.json` (and `chains.npz`); return the summary."""
    from collapse_jax.chain import listen_to_generations
    from collapse_jax.runner import execute

    callback, close = (
        rich_progress(f"{setting} {config['policy']}") if progress and sys.stderr.isatty() else (None, None)
    )
    total = prepared.cells.num_chains[0]
    listener = (lambda k: callback(0, total, f"{k}/{config['generations']}")) if callback else (lambda k: None)
    try:
        with listen_to_generations(listener):
            result = execute(prepared, save_chains=save_chains, progress=callback)
    finally:
        if close:
            close()
    summary = build_summary(setting, config, result, predictions_for(setting, config))
    if out is not None:
        os.makedirs(out, exist_ok=True)
        write_summary(summary, os.path.join(out, "summary.json"))
        if save_chains:
            write_chains(result.chains, result.generations, os.path.join(out, "chains.npz"))
    return summary


def simulate(
    setting: str,
    overrides: dict | None = None,
    *,
    out: str | None = None,
    save_chains: bool = False,
    progress: bool = False,
    devices=None,
) -> dict:
    """Run a registered setting and return its summary (also written to `out/summary.json`).

    Args:
      setting: registered setting name (see `collapse_jax.settings.SETTINGS`).
      overrides: parameter values; the rest take their defaults. Invalid values raise ValueError naming
        the parameter, before anything is compiled.
      out: directory for `summary.json` (and `chains.npz` with `save_chains`); created and checked for
        writing before the run (ValueError naming it otherwise).
      save_chains: also write the per-chain metrics.
      progress: draw a progress bar on stderr.
    """
    config, prepared = prepare(setting, overrides, devices=devices, out=out)
    return finish(setting, config, prepared, out=out, save_chains=save_chains, progress=progress)
