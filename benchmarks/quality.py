"""quality: the model a search finds per unit of wall time, against what else that time buys.

On the built-in data at its "real" difficulty (as noisy as the Kaggle file: R² ≈ 0.15 for least
squares, ≈ 0.27 for gradient-boosted trees), at two sizes (≈20k tracks, the size of a sample of
the real file, and ≈177k, the real file's deduped size) and over several split-and-search seeds,
each contender gets the same wall time on the same split:

- poptune: `run_search` with a time budget, then the finalists step of `poptune analyze`
  (top configs and each family's best, retrained with 3 seeds, the winner chosen by mean
  validation error) and its final model (poptune/analysis/final_model.py). Its wall W = search
  call (Ray start included) + finalists + final model.
- poptune with `--sampler random`, the same budget: what TPE adds.
- plain Optuna: a short script as a practitioner writes it (TPE + SuccessiveHalvingPruner,
  `study.optimize(n_jobs=cores, timeout=W)`, its own training loop with torch's AdamW, the four
  families and the original ranges), its best trial retrained with 3 seeds for its best epoch.
- HistGradientBoosting: defaults, and tuned by Optuna TPE (`timeout=W`) on the validation split.
- seed_mlp: the reference model, trained as the reference study did.
- the anchors (benchmarks/_anchors.py, the ``bench`` extra): LightGBM defaults, FLAML AutoML
  with the wall W as its time budget, and pytabkit's TabM-D and RealMLP-TD (one default fit
  each: they have no time limit, so their own wall is reported beside W).

Reported per size, as ratios with their spread over seeds: poptune's winner (single model, mean
over its 3 seeds) against plain Optuna and seed_mlp; poptune's final model (the seed ensemble)
against default and tuned HGB and, in excess error, against the best anchor; random against TPE;
and time-to-target: wall seconds until each search first had a validation MSE at or below
seed_mlp's (and poptune's search, the best anchor's).

`python -m benchmarks.quality [--sizes 20k] [--seeds 0 1 2] [--no-anchors] [--record]` runs it
alone.

The built-in data knows the best prediction any model could make (`expected_popularity`), so each
split has a noise floor: the test RMSE of that oracle. RMSE ratios between good models are
squeezed against that floor (at this difficulty it is ≈ 98% of seed_mlp's RMSE), so the figures
also give the ratio of *excess* errors, RMSE minus the floor: the share of the error a model
could still lose that it did lose.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import optuna
import torch
from sklearn.ensemble import HistGradientBoostingRegressor

from benchmarks import _anchors
from benchmarks._common import Figure, run_standalone
from poptune.analysis.final_model import final_model
from poptune.analysis.finalists import finalists
from poptune.analysis.results import read_results
from poptune.analysis.retrain import RetrainPool
from poptune.data import DataSource, Prepared, prepare, synthetic_tracks
from poptune.data._synthetic import expected_popularity
from poptune.driver.runner import run_search
from poptune.driver.settings import BUDGET_SAMPLE_CAP, SearchSettings
from poptune.metric import regression_scores
from poptune.spaces import define_space
from poptune.trainables import (
    REFERENCE,
    REFERENCE_EPOCHS,
    ModelConfig,
    build_model,
    fit,
    predict,
)

# (label, rows generated, search budget in seconds): 26,300 rows keep ≈19,990 tracks after
# dedupe; 232,725 rows (the Kaggle file's count) keep ≈176,900.
SIZES = (("20k", 26_300, 30.0), ("177k", 232_725, 75.0))
SEEDS = (0, 1, 2)
MAX_EPOCHS = 10
RETRAIN_SEEDS = 3


@dataclass
class Outcome:
    """One contender on one split: its test RMSE, its wall, its time to seed_mlp's val MSE."""

    rmse: float
    wall_s: float
    to_target_s: float | None = None
    extra: dict[str, float] = field(default_factory=dict)
    # (seconds since the start, validation MSE) of every epoch a search reported
    curve: list[tuple[float, float]] = field(default_factory=list)
    trial_epochs: list[int] = field(default_factory=list)  # the epochs each trial reached
    best_epochs: tuple[int, ...] = ()  # the final model's: each seed's best validation epoch


def first_at_or_below(curve: list[tuple[float, float]], val_mse: float) -> float | None:
    """Seconds until a search first had a validation MSE at or below ``val_mse``."""
    times = [t for t, v in curve if v <= val_mse]
    return min(times) if times else None


# ----------------------------------------------------------------------------- poptune


def poptune_search(
    prepared: Prepared,
    rows: int,
    seed: int,
    budget: float,
    sampler: str,
    target: float,
    *,
    finalists_k: int | None = 3,
) -> Outcome:
    """A budgeted search and its finalists step (``finalists_k`` None: the search's best trial
    alone, retrained with the same seeds: what analysis did before finalists)."""
    with tempfile.TemporaryDirectory(prefix="poptune-quality-") as tmp:
        settings = SearchSettings(
            data=DataSource(synthetic_rows=rows, synthetic_difficulty="real"),
            num_samples=BUDGET_SAMPLE_CAP,
            time_budget=budget,
            max_epochs=MAX_EPOCHS,
            sampler=sampler,
            storage=str(Path(tmp) / "runs"),
            name=f"quality-{sampler}",
            seed=seed,
            force=True,
        )
        started_at, started = time.time(), time.perf_counter()
        with contextlib.redirect_stdout(io.StringIO()):  # one line per trial: not wanted here
            run_search(settings, prepared)
        search_s = time.perf_counter() - started
        results = read_results(Path(settings.experiment_uri))
        pool = RetrainPool(
            prepared, epochs=MAX_EPOCHS, seeds=RETRAIN_SEEDS, base_seed=seed, log=lambda _: None
        )
        if finalists_k is None:
            winner = pool.get(results.best().config)
        else:
            winner = finalists(results, finalists_k, pool)[0].retrained
        final = final_model(winner, prepared, base_seed=seed)
        wall = time.perf_counter() - started
    curve = [
        (h["ended_at"] - started_at, h["val_mse"])
        for t in results.trials
        for h in t.history
        if "val_mse" in h and "ended_at" in h
    ]
    return Outcome(
        rmse=winner.test_rmse.mean,
        wall_s=wall,
        to_target_s=first_at_or_below(curve, target),
        curve=curve,
        trial_epochs=[len(t.history) for t in results.trials],
        best_epochs=winner.best_epochs,
        extra={
            "final_rmse": final.ensemble_test["rmse"],
            # the final model as it was before: the finalists' own seeds, best epoch kept
            "kept_best_rmse": winner.ensemble_test["rmse"],
            "final_epochs": final.epochs,
            "search_s": search_s,
            "trials": len(results.trials),
            "families": len({t.config.family for t in results.trials}),
        },
    )


# ----------------------------------------------------------------------------- plain Optuna


def _plain_config(trial: optuna.Trial) -> ModelConfig:
    """The search space as a plain script writes it: the four families, the original ranges,
    no training recipe (poptune's space without its recipe keys)."""
    define_space(trial, recipe=False)
    return ModelConfig.from_dict(trial.params)


def _plain_train(
    config: ModelConfig,
    prepared: Prepared,
    epochs: int,
    seed: int,
    on_epoch: Callable[[int, float], None] = lambda epoch, val: None,
) -> torch.nn.Module:
    """The textbook loop: torch's AdamW, shuffled index batches, MSE on standardised targets."""
    g = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    mean, std = float(prepared.y_train.mean()), float(prepared.y_train.std())
    x = torch.from_numpy(prepared.x_train)
    y = torch.from_numpy((prepared.y_train - mean) / std).unsqueeze(1)
    x_val = torch.from_numpy(prepared.x_val)
    model = build_model(config)
    model.target = (mean, std)
    opt = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    for epoch in range(1, epochs + 1):
        model.train()
        order = torch.randperm(len(x), generator=g)
        for i in range(0, len(x) - 1, config.batch_size):  # a last batch of one: BatchNorm
            idx = order[i : i + config.batch_size]
            loss = torch.nn.functional.mse_loss(model(x[idx]), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
        model.eval()
        with torch.no_grad():
            pred = model(x_val).squeeze(1).numpy() * std + mean
        on_epoch(epoch, regression_scores(prepared.y_val, pred)["mse"])
    return model


def _plain_predict(model: torch.nn.Module, x: np.ndarray) -> np.ndarray:
    mean, std = model.target
    with torch.no_grad():
        return model(torch.from_numpy(x)).squeeze(1).numpy() * std + mean


def plain_optuna(prepared: Prepared, seed: int, timeout: float, target: float) -> Outcome:
    cores = os.cpu_count() or 1
    torch.set_num_threads(1)
    reached: list[float] = []
    started = time.perf_counter()

    def objective(trial: optuna.Trial) -> float:
        config = _plain_config(trial)
        curve: dict[int, float] = {}

        def on_epoch(epoch: int, val: float) -> None:
            curve[epoch] = val
            if val <= target:
                reached.append(time.perf_counter() - started)
            trial.report(val, epoch)
            if trial.should_prune():
                raise optuna.TrialPruned

        try:
            _plain_train(config, prepared, MAX_EPOCHS, seed, on_epoch)
        finally:
            if curve:
                trial.set_user_attr("best_epoch", min(curve, key=curve.get))
        return min(curve.values())

    study = optuna.create_study(
        sampler=optuna.samplers.TPESampler(seed=seed),
        pruner=optuna.pruners.SuccessiveHalvingPruner(),
    )
    study.optimize(objective, timeout=timeout, n_jobs=cores)
    wall = time.perf_counter() - started
    best = study.best_trial
    config = _plain_config(optuna.trial.FixedTrial(best.params))
    rmses = []
    for s in range(RETRAIN_SEEDS):
        model = _plain_train(config, prepared, best.user_attrs["best_epoch"], seed + 1000 * (s + 1))
        rmses.append(
            regression_scores(prepared.y_test, _plain_predict(model, prepared.x_test))["rmse"]
        )
    return Outcome(
        rmse=statistics.mean(rmses),
        wall_s=wall,
        to_target_s=min(reached) if reached else None,
        extra={"trials": len(study.trials)},
    )


# ----------------------------------------------------------------------------- baselines


def hgb_default(prepared: Prepared, seed: int) -> float:
    model = HistGradientBoostingRegressor(random_state=seed).fit(prepared.x_train, prepared.y_train)
    return regression_scores(prepared.y_test, model.predict(prepared.x_test))["rmse"]


def hgb_tuned(prepared: Prepared, seed: int, timeout: float) -> Outcome:
    def build(trial: optuna.Trial) -> HistGradientBoostingRegressor:
        return HistGradientBoostingRegressor(
            learning_rate=trial.suggest_float("learning_rate", 0.01, 0.3, log=True),
            max_leaf_nodes=trial.suggest_int("max_leaf_nodes", 8, 128, log=True),
            min_samples_leaf=trial.suggest_int("min_samples_leaf", 5, 200, log=True),
            l2_regularization=trial.suggest_float("l2_regularization", 1e-8, 10.0, log=True),
            max_iter=trial.suggest_int("max_iter", 50, 500, log=True),
            random_state=seed,
        )

    def objective(trial: optuna.Trial) -> float:
        model = build(trial).fit(prepared.x_train, prepared.y_train)
        return regression_scores(prepared.y_val, model.predict(prepared.x_val))["mse"]

    started = time.perf_counter()
    study = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=seed))
    study.optimize(objective, timeout=timeout)
    model = build(optuna.trial.FixedTrial(study.best_params)).fit(
        prepared.x_train, prepared.y_train
    )
    rmse = regression_scores(prepared.y_test, model.predict(prepared.x_test))["rmse"]
    return Outcome(rmse=rmse, wall_s=time.perf_counter() - started)


def seed_mlp(prepared: Prepared, seed: int) -> tuple[float, float]:
    """The reference model's test RMSE and its last validation MSE (the time-to-target bar)."""
    result = fit(REFERENCE, prepared, epochs=REFERENCE_EPOCHS, seed=seed)
    rmse = regression_scores(prepared.y_test, predict(result.model, prepared.x_test,
                                                      result.target_scale))["rmse"]  # fmt: skip
    return rmse, result.history[-1]["val_mse"]


# ----------------------------------------------------------------------------- figures


def _spread(values: list[float]) -> str:
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    each = ", ".join(f"{v:.3f}" for v in values)
    return f"{statistics.mean(values):.3f} ± {sd:.3f} (per seed {each})"


def _mean(values: list[float]) -> float:
    return statistics.mean(values)


def run(
    sizes: tuple[str, ...] = tuple(label for label, *_ in SIZES),
    seeds: tuple[int, ...] = SEEDS,
    anchors: bool = True,
) -> list[Figure]:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    absent = _anchors.missing() if anchors else []
    if absent:
        print(
            f"  anchors not installed, left out: {', '.join(absent)} "
            "(pip install -c constraints.txt -e '.[dev,bench]')",
            flush=True,
        )
    figures = []
    for label, rows, budget in (size for size in SIZES if size[0] in sizes):
        frame = synthetic_tracks(rows, 0, difficulty="real")
        oracle = expected_popularity(rows, 0, difficulty="real")
        runs: dict[str, list] = {
            k: [] for k in ("pop", "rand", "plain", "hgb", "hgbt", "ref", "floor", "anchors")
        }
        for seed in seeds:
            prepared = prepare(frame, seed=seed)
            floor = oracle.loc[prepared.test_ids].to_numpy()
            runs["floor"].append(regression_scores(prepared.y_test, floor)["rmse"])
            ref_rmse, ref_val = seed_mlp(prepared, seed)
            runs["ref"].append(ref_rmse)
            runs["hgb"].append(hgb_default(prepared, seed))
            pop = poptune_search(prepared, rows, seed, budget, "tpe", ref_val)
            runs["pop"].append(pop)
            if label == SIZES[0][0]:  # random vs TPE at the small size only (time)
                runs["rand"].append(poptune_search(prepared, rows, seed, budget, "random", ref_val))
            runs["plain"].append(plain_optuna(prepared, seed, pop.wall_s, ref_val))
            runs["hgbt"].append(hgb_tuned(prepared, seed, pop.wall_s))
            if anchors:
                runs["anchors"].append(_anchors.run_anchors(prepared, seed, pop.wall_s))
            print(
                f"  [{label} seed {seed}] poptune {pop.rmse:.3f} "
                f"(final {pop.extra['final_rmse']:.3f}, "
                f"{pop.extra['trials']:.0f} trials, wall {pop.wall_s:.0f} s) · plain Optuna "
                f"{runs['plain'][-1].rmse:.3f} ({runs['plain'][-1].extra['trials']:.0f} trials) · "
                f"seed_mlp {ref_rmse:.3f} · hgb {runs['hgb'][-1]:.3f} · hgb tuned "
                f"{runs['hgbt'][-1].rmse:.3f} · noise floor {runs['floor'][-1]:.3f}"
                + (f" · random {runs['rand'][-1].rmse:.3f}" if runs["rand"] else "")
                + "".join(
                    f" · {name} {a.rmse:.3f} ({a.wall_s:.0f} s)"
                    for name, a in (runs["anchors"][-1].items() if anchors else ())
                ),
                flush=True,
            )
        figures += _figures(label, rows, budget, runs)
        if anchors and runs["anchors"] and runs["anchors"][0]:
            figures += _anchor_figures(label, runs)
    return figures


def _figures(label: str, rows: int, budget: float, runs: dict[str, list]) -> list[Figure]:
    pop = [o.rmse for o in runs["pop"]]
    final = [o.extra["final_rmse"] for o in runs["pop"]]
    kept = [o.extra["kept_best_rmse"] for o in runs["pop"]]
    plain = [o.rmse for o in runs["plain"]]
    walls = _spread([o.wall_s for o in runs["pop"]])
    ratio = lambda a, b: [x / y for x, y in zip(a, b, strict=True)]  # noqa: E731
    setup = (
        f"{label} tracks (real difficulty), {len(runs['pop'])} seeds, search budget "
        f"{budget:.0f} s + finalists: poptune wall {walls} s, every other contender the same wall"
    )
    out = [
        Figure(
            f"quality {label}: poptune winner / plain Optuna (test RMSE)",
            _mean(ratio(pop, plain)),
            "<= 0.98",
            f"{setup}. Ratios {_spread(ratio(pop, plain))}; poptune {_spread(pop)}, plain Optuna "
            f"{_spread(plain)} ({_spread([o.extra['trials'] for o in runs['plain']])} trials)",
        ),
        Figure(
            f"quality {label}: poptune winner / seed_mlp (test RMSE)",
            _mean(ratio(pop, runs["ref"])),
            "<= 0.97",
            f"ratios {_spread(ratio(pop, runs['ref']))}; seed_mlp {_spread(runs['ref'])}",
        ),
        Figure(
            f"quality {label}: poptune final model / default HGB (test RMSE)",
            _mean(ratio(final, runs["hgb"])),
            "<= 1.01",
            f"ratios {_spread(ratio(final, runs['hgb']))}; final (3-seed ensemble) "
            f"{_spread(final)}, default HGB {_spread(runs['hgb'])}",
        ),
        Figure(
            f"quality {label}: poptune final model / Optuna-tuned HGB (test RMSE)",
            _mean(ratio(final, [o.rmse for o in runs["hgbt"]])),
            "",
            f"tuned HGB {_spread([o.rmse for o in runs['hgbt']])} at the same wall",
        ),
    ]
    if runs["rand"]:
        rand = [o.rmse for o in runs["rand"]]
        out.append(
            Figure(
                f"quality {label}: poptune TPE / poptune random search (test RMSE)",
                _mean(ratio(pop, rand)),
                "",
                f"ratios {_spread(ratio(pop, rand))}; random {_spread(rand)}",
            )
        )
    floor = runs["floor"]
    excess = lambda a: [x - f for x, f in zip(a, floor, strict=True)]  # noqa: E731
    hgb = runs["hgb"]
    out += [
        Figure(
            f"quality {label}: excess RMSE over the noise floor, poptune winner / plain Optuna",
            _mean(ratio(excess(pop), excess(plain))),
            "",
            f"noise floor (the oracle's test RMSE) {_spread(floor)}; excess: poptune "
            f"{_spread(excess(pop))}, plain Optuna {_spread(excess(plain))}",
        ),
        Figure(
            f"quality {label}: excess RMSE over the noise floor, poptune winner / seed_mlp",
            _mean(ratio(excess(pop), excess(runs["ref"]))),
            "",
            f"excess: seed_mlp {_spread(excess(runs['ref']))}",
        ),
        Figure(
            f"quality {label}: excess RMSE, final model / the winner's best-epoch retrains",
            _mean(ratio(excess(final), excess(kept))),
            "< 1",
            "ablation of the final model's cosine decay to zero at the retrains' mean best "
            "epoch (1.5× that for a constant-rate winner) "
            f"({_spread([o.extra['final_epochs'] for o in runs['pop']])} epochs; the retrains "
            f"kept their best epoch of {MAX_EPOCHS}): excess {_spread(excess(final))} against "
            f"{_spread(excess(kept))}",
        ),
        Figure(
            f"quality {label}: excess RMSE over the noise floor, final model / default HGB",
            _mean(ratio(excess(final), excess(hgb))),
            "",
            f"excess: final {_spread(excess(final))}, default HGB {_spread(excess(hgb))}",
        ),
    ]
    tt_pop = [o.to_target_s for o in runs["pop"]]
    tt_plain = [o.to_target_s for o in runs["plain"]]
    show = lambda ts: ", ".join("never" if t is None else f"{t:.0f} s" for t in ts)  # noqa: E731
    both = [(a, b) for a, b in zip(tt_pop, tt_plain, strict=True) if a is not None and b]
    out.append(
        Figure(
            f"quality {label}: time to seed_mlp's val MSE, poptune / plain Optuna",
            _mean([a / b for a, b in both]) if both else float("nan"),
            "",
            f"wall until a search first had a validation MSE ≤ seed_mlp's (Ray start included "
            f"for poptune): poptune {show(tt_pop)}; plain Optuna {show(tt_plain)}",
        )
    )
    return out


def _anchor_figures(label: str, runs: dict[str, list]) -> list[Figure]:
    """The final model against each anchor, in excess RMSE over the noise floor, and the time
    poptune's search took to reach the best anchor's validation error."""
    floor = runs["floor"]
    final = [o.extra["final_rmse"] - f for o, f in zip(runs["pop"], floor, strict=True)]
    names = list(runs["anchors"][0])
    excess = {
        n: [a[n].rmse - f for a, f in zip(runs["anchors"], floor, strict=True)] for n in names
    }
    best = min(names, key=lambda n: _mean(excess[n]))
    ratios = [p / a for p, a in zip(final, excess[best], strict=True)]
    each = "; ".join(
        f"{n} excess {_spread(excess[n])}, RMSE "
        f"{_spread([a[n].rmse for a in runs['anchors']])}, wall "
        f"{_spread([a[n].wall_s for a in runs['anchors']])} s"
        for n in names
    )
    out = [
        Figure(
            f"quality {label}: final excess / best anchor's",
            _mean(final) / _mean(excess[best]),
            "<= 0.7",
            f"mean excess over mean excess; best anchor {best} (least mean excess); per-seed "
            f"ratios {_spread(ratios)}; poptune final model excess "
            f"{_spread(final)} at wall {_spread([o.wall_s for o in runs['pop']])} s; {each}. "
            "FLAML got poptune's wall as its time_budget; LightGBM and the pytabkit TD models "
            "ran their default fit to the end",
        )
    ]
    reach = [
        first_at_or_below(o.curve, a[best].val_mse)
        for o, a in zip(runs["pop"], runs["anchors"], strict=True)
    ]
    shown = ", ".join("never" if t is None else f"{t:.0f} s" for t in reach)
    walls = [a[best].wall_s for a in runs["anchors"]]
    both = [t / w for t, w in zip(reach, walls, strict=True) if t is not None]
    out.append(
        Figure(
            f"quality {label}: time to {best}'s val MSE, poptune search / {best} fit",
            _mean(both) if both else float("nan"),
            "",
            f"wall until a poptune trial first had a validation MSE ≤ {best}'s (Ray start "
            f"included): {shown}; {best}'s fit {_spread(walls)} s",
        )
    )
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.quality",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    labels = [label for label, *_ in SIZES]
    parser.add_argument("--sizes", nargs="+", choices=labels, default=labels)
    parser.add_argument("--seeds", nargs="+", type=int, default=list(SEEDS))
    parser.add_argument("--no-anchors", action="store_true", help="leave the anchors out")
    parser.add_argument("--record", action="store_true", help="append to benchmarks/RESULTS.md")
    args = parser.parse_args(argv)
    return run_standalone(
        "quality",
        lambda: run(tuple(args.sizes), tuple(args.seeds), anchors=not args.no_anchors),
        record=args.record,
    )


if __name__ == "__main__":
    raise SystemExit(main())
