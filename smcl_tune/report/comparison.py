"""Several studies side by side: the best completed trial of each, and each study's difference to the first.

Where a study has completed trials at several imbalance factors and the studies share one, they
are compared per factor: each study's best at that factor, and its difference to the first study
that has it (the best of a study across factors is, by its validation score, that of its easiest).
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from smcl_tune.report.captions import completed_objectives, epoch_rule_of
from smcl_tune.report.cells import as_percent, empty_group, is_missing, named_trial, percent_cell
from smcl_tune.report.display_frames import GROUP_SIZE_OF, HEADINGS
from smcl_tune.report.leaderboard import ACCURACY_COLUMNS, Leaderboard, best_trial
from smcl_tune.report.markdown_table import markdown_table
from smcl_tune.report.text_table import text_table
from smcl_tune.results import TrialState

GROUP_COLUMNS = ("many_classes", "medium_classes", "few_classes")
NO_FACTOR = "none"  # no imbalance factor recorded: data taken as its benchmark gives it, or a store that lacks it


@dataclass
class Compared:
    """The studies' best trials at one imbalance factor (`factor` "" where they are compared whole)."""

    factor: str
    bests: list[tuple[Leaderboard, pd.Series | None]]  # the studies with a completed trial there, in the order given


def _factor_of(value) -> str:
    number = pd.to_numeric(value, errors="coerce")
    return NO_FACTOR if pd.isna(number) else f"{number:g}"


def compared(boards: list[Leaderboard]) -> list[Compared]:
    """One comparison of every study's best trial; per imbalance factor where a study has completed
    trials at several and another study has completed trials at one of them."""
    completed = [board.trials[board.trials["state"] == TrialState.COMPLETED] for board in boards]
    factors = [trials["imbalance_factor"].map(_factor_of) for trials in completed]
    shared = [
        factor for factor in set().union(*map(set, factors)) if sum((found == factor).any() for found in factors) > 1
    ]
    if all(found.nunique() <= 1 for found in factors) or not shared:
        return [Compared("", [(board, board.best()) for board in boards])]
    order = list(dict.fromkeys(factor for found in factors for factor in found))
    return [
        Compared(
            factor,
            [
                (board, best_trial(trials[found == factor], board.mode))
                for board, trials, found in zip(boards, completed, factors)
                if (found == factor).any()
            ],
        )
        for factor in order
    ]


def _difference(reference, value) -> str:
    if is_missing(reference) or is_missing(value):
        return "n/a"
    return f"{as_percent(value - reference):+.1f}"


def comparison_rule(boards: list[Leaderboard]) -> str:
    """Which epoch's test metrics the studies' completed trials give (without a validation split: the last)."""
    objectives = [completed_objectives(board) for board in boards]
    return epoch_rule_of(pd.concat(objectives, ignore_index=True) if objectives else pd.Series(dtype=object))


NO_BEST = "none: no validation split to select on"


def per_factor_words(groups: list[Compared]) -> str:
    """ ", per imbalance factor" where the studies are compared per factor (`compared`), else ""."""
    return ", per imbalance factor" if groups[0].factor else ""


def comparison_title(boards: list[Leaderboard], groups: list[Compared]) -> str:
    return f"best trial of each study{per_factor_words(groups)} (test metrics of {comparison_rule(boards)}, %)"


def comparison_frame(groups: list[Compared]) -> pd.DataFrame:
    """Best completed trial of each study, then the difference of each study to the first one (per
    imbalance factor where `compared` found the studies share one: a column says which)."""
    rows = []
    for group in groups:
        where = {"imbalance factor": group.factor} if group.factor else {}
        for board, best in group.bests:
            row = {
                **where,
                "study": board.study,
                "best trial": _best_name(board, best),
                "val objective": "" if best is None else percent_cell(best["objective"]),
            }
            for column in ACCURACY_COLUMNS:
                group_size = None if best is None else best.get(GROUP_SIZE_OF.get(column))
                row[HEADINGS[column]] = "" if best is None else percent_cell(best[column], group_size)
            rows.append(row)
        (first, reference), *others = group.bests
        for board, best in others:
            row = {**where, "study": f"{board.study} - {first.study}", "best trial": "difference", "val objective": ""}
            for column in ACCURACY_COLUMNS:
                row[HEADINGS[column]] = _difference(
                    None if reference is None else reference[column], None if best is None else best[column]
                )
            rows.append(row)
    return pd.DataFrame(rows)


def _best_name(board: Leaderboard, best: pd.Series | None) -> str:
    if best is not None:
        return named_trial(best)
    return NO_BEST if (board.trials["state"] == TrialState.COMPLETED).any() else ""


def comparison_csv(groups: list[Compared]) -> str:
    """The comparison as the single-study CSV gives numbers: raw fractions, an empty cell where a
    value is missing (an empty shot group, a study without a completed trial)."""
    rows = []
    for group in groups:
        where = {"imbalance_factor": group.factor} if group.factor else {}
        for board, best in group.bests:
            row = {**where, "study": board.study, "row": "best", "trial": "", "condition": "", "objective": None}
            if best is not None:
                row |= {"trial": best["trial"], "condition": best["condition"], "objective": best["objective"]}
            for column in ACCURACY_COLUMNS:
                row[column] = _present(best, column)
            rows.append(row)
        (first, reference), *others = group.bests
        for board, best in others:
            row = {**where, "study": board.study, "row": f"difference to {first.study}"}
            for column in ACCURACY_COLUMNS:
                before, value = _present(reference, column), _present(best, column)
                row[column] = None if before is None or value is None else value - before
            rows.append(row)
    return pd.DataFrame(rows).to_csv(index=False)


def _present(best: pd.Series | None, column: str) -> float | None:
    """A best trial's metric; None where it has none (no trial, or an empty shot group)."""
    if best is None:
        return None
    group_size = best.get(GROUP_SIZE_OF.get(column))
    value = best[column]
    return None if is_missing(value) or empty_group(group_size) else float(value)


# What a best trial recorded of the data it trained on, and of where its shot groups are drawn.
DATA_COLUMNS = ("source", "imbalance_factor", "subset_protocol", "n_max", "profile", "subset_seed")
THRESHOLD_COLUMNS = ("many_above", "few_below")
POOLS_OF_THEIR_OWN = ("cifar10", "cifar100")  # the data is the source's pool and the recorded subset of it


def _recorded(best: pd.Series, columns: tuple[str, ...]) -> tuple | None:
    values = tuple(best.get(column) for column in columns)
    return None if any(is_missing(value) or value == "" for value in values) else values


def _only_thresholds_differ(bests: list[tuple[Leaderboard, pd.Series]]) -> bool:
    """Whether the best trials trained on the same recorded data (as many classes) and their shot
    groups differ only because they are drawn at other thresholds (`data.many_above`, `few_below`)."""
    if not all(best.get("source") in POOLS_OF_THEIR_OWN for _, best in bests):
        return False  # an image folder's or the synthetic data's images are not in what a trial records
    data = {_recorded(best, DATA_COLUMNS) for _, best in bests}
    thresholds = {_recorded(best, THRESHOLD_COLUMNS) for _, best in bests}
    classes = {sum(int(best[column]) for column in GROUP_COLUMNS) for _, best in bests}
    return len(data) == 1 and None not in data and None not in thresholds and len(thresholds) > 1 and len(classes) == 1


def _thresholds_said(best: pd.Series) -> str:
    return f"many above {best['many_above']:g}, few below {best['few_below']:g}"


def different_data_note(groups: list[Compared]) -> str | None:
    """A note where the best trials compared with each other have different shot groups: the studies
    measure different data (another benchmark, imbalance factor or split), and their differences
    compare benchmarks, not methods; or, on the same data, shot groups drawn at other thresholds,
    whose many, medium and few columns do not compare."""
    differing, thresholds = [], []
    for group in groups:
        bests = [
            (board, best)
            for board, best in group.bests
            if best is not None and not any(is_missing(best.get(column)) for column in GROUP_COLUMNS)
        ]
        sizes = {board.study: "/".join(str(int(best[column])) for column in GROUP_COLUMNS) for board, best in bests}
        if len(set(sizes.values())) < 2:
            continue
        at = f"imbalance factor {group.factor}: " if group.factor else ""
        if _only_thresholds_differ(bests):
            shown = "; ".join(f"{board.study} {_thresholds_said(best)}" for board, best in bests)
            thresholds.append(f"{at}{shown}")
        else:
            differing.append(at + ", ".join(f"{study} {found}" for study, found in sizes.items()))
    notes = []
    if differing:
        notes.append(
            f"note: the best trials' shot groups differ ({'; '.join(differing)} many/medium/few classes): the "
            "studies train on different data, so a difference compares their benchmarks as much as their methods"
        )
    if thresholds:
        notes.append(
            f"note: the best trials' shot groups are drawn at other thresholds ({' | '.join(thresholds)}): on the "
            "same data, their many, medium and few columns count other classes and do not compare; top-1 and "
            "balanced accuracy do"
        )
    return "\n".join(notes) or None


def format_comparison(boards: list[Leaderboard], fmt: str) -> str:
    groups = compared(boards)
    if fmt == "csv":
        return comparison_csv(groups)
    frame, note, title = comparison_frame(groups), different_data_note(groups), comparison_title(boards, groups)
    if fmt == "markdown":
        return f"## {title}\n\n{markdown_table(frame)}\n" + (f"\n{note}\n" if note else "")
    return f"{title}\n\n{text_table(frame)}" + (f"\n\n{note}" if note else "")
