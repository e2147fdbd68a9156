"""Ablation grids: train and score encoders x activations (x models, light rules, seeds).

The public API::

    build_grid(data, *, models, encoders, activations, lights, seeds, steps, batch_size, lr, ...) -> Grid
    check_rules(grid, lights) -> {rule: LightSplit}
    claim_results_dir(out, grid) -> bool           # writes/compares out/grid.json
    run_grid(grid, out, dataset, splits, *, jobs=1, device="auto", on_event=None) -> {name: record}
    results_document(grid, records, dataset, splits) -> dict
    write_reports(doc, out, dataset, splits) -> {kind: path}

``relightzoo ablate`` (:mod:`relightzoo.cli.ablate_cmd`) strings these together.
"""

from __future__ import annotations

from .grid import BASELINE, BASELINES, GRID_FILE, Cell, Grid, GridError, build_grid, cell_name, check_rules, claim_results_dir, parse_list
from .report import (
    CONTACT_SHEET,
    LOSS_CURVES,
    RESULTS_CSV,
    RESULTS_JSON,
    RESULTS_MD,
    markdown_table,
    results_document,
    write_reports,
)
from .runner import CELLS, RESULT, cell_dir, read_result, run_cell, run_grid, worker_threads

__all__ = [
    "BASELINE",
    "BASELINES",
    "CELLS",
    "CONTACT_SHEET",
    "GRID_FILE",
    "LOSS_CURVES",
    "RESULT",
    "RESULTS_CSV",
    "RESULTS_JSON",
    "RESULTS_MD",
    "Cell",
    "Grid",
    "GridError",
    "build_grid",
    "cell_dir",
    "cell_name",
    "check_rules",
    "claim_results_dir",
    "markdown_table",
    "parse_list",
    "read_result",
    "results_document",
    "run_cell",
    "run_grid",
    "worker_threads",
    "write_reports",
]
