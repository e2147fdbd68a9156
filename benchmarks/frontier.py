"""The measured frontier: held-out PSNR against training time for each model on one dataset.

Each model trains at fractions of its default step budget (separate runs, so a schedule
such as cosine decays over each run's own length), for every light rule, through
relightzoo's ablation runner: a run interrupted half-way resumes without redoing finished
cells. The full budget comes from a ``relightzoo ablate`` results.json given with
``--ablation`` (the models table of docs/ablation.md), or is trained here too with
``--fractions 0.25,0.5,1``. The blend baseline is measured per rule. Writes, into --out:

- ``frontier.json``: one row per (model, rule, steps) with training seconds and PSNR/SSIM
  over all test lights and inside the cap, plus the blend rows;
- ``frontier.md``: the same as a markdown table;
- ``frontier_<rule>.png``: PSNR (all test lights) against training seconds, one line per
  model and a flat line for blend.

    relightzoo ablate demo --models siren,low-rank,learned-blend --encoders direction \
        --activations sine --lights uniform:100,xu5:0.77 --out models
    python benchmarks/frontier.py demo --ablation models/results.json --out frontier
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

from relightzoo.ablate import build_grid, check_rules, claim_results_dir, run_grid
from relightzoo.ablate.runner import model_settings
from relightzoo.data import load_dataset
from relightzoo.plots import Series, line_plot

MODELS = ["siren", "low-rank", "learned-blend"]
RULES = ["uniform:100", "xu5:0.77"]


def _row(record: dict) -> dict:
    """The frontier's view of one ablation cell record."""
    return {
        "model": record["model"],
        "rule": record["lights"],
        "steps": record.get("steps", 0),
        "train_s": record.get("train_s", 0.0),
        "psnr_all": record["eval"]["all"]["psnr"],
        "psnr_in_cap": record["eval"]["in_cap"]["psnr"],
        "ssim_all": record["eval"]["all"]["ssim"],
    }


def run(data: str, out: Path, *, rules: list[str], fractions: list[float], encoder: str, activation: str) -> dict:
    """Train every (model, fraction of its budget) for every rule; return frontier.json's rows."""
    dataset = load_dataset(data)
    rows: list[dict] = []
    blend: dict[str, dict] = {}
    for model in MODELS:
        full = model_settings(build_grid(data, models=model, encoders=encoder, activations=activation,
                                         lights=rules, seeds=[0]), model)["steps"]
        for steps in sorted({max(1, round(full * f)) for f in fractions}):
            grid = build_grid(
                data, models=model, encoders=encoder, activations=activation, lights=rules, seeds=[0], steps=steps
            )
            splits = check_rules(grid, dataset.lights)
            folder = out / "runs" / f"{model}-{steps}"
            claim_results_dir(folder, grid)
            for name, record in run_grid(grid, folder, dataset, splits).items():
                if record.get("status") != "done":
                    continue
                row = _row(record)
                if record.get("baseline"):
                    blend[row["rule"]] = row
                else:
                    rows.append(row)
                print(f"{name} ({steps} steps): {row['psnr_all']:.2f} dB in {row['train_s']:.0f} s", flush=True)
    return {"data": data, "encoder": encoder, "activation": activation, "rows": rows, "blend": blend}


def markdown(doc: dict) -> str:
    """The frontier as a markdown table per rule."""
    lines = []
    for rule, base in doc["blend"].items():
        lines += [
            f"### {rule}",
            "",
            f"blend (baseline): {base['psnr_all']:.2f} dB all, {base['psnr_in_cap']:.2f} dB in cap",
            "",
            "| model | steps | training s | PSNR all | PSNR in cap | vs blend (all) |",
            "|---|---|---|---|---|---|",
        ]
        for r in sorted((r for r in doc["rows"] if r["rule"] == rule), key=lambda r: (r["model"], r["steps"])):
            lines.append(
                f"| {r['model']} | {r['steps']} | {r['train_s']:.0f} | {r['psnr_all']:.2f} | "
                f"{r['psnr_in_cap']:.2f} | {r['psnr_all'] - base['psnr_all']:+.2f} |"
            )
        lines.append("")
    return "\n".join(lines)


def plots(doc: dict, out: Path) -> list[Path]:
    """One PNG per rule: PSNR (all test lights) against log10 training seconds."""
    paths = []
    for rule, base in doc["blend"].items():
        series = []
        xs = []
        for model in MODELS:
            pts = sorted((r["train_s"], r["psnr_all"]) for r in doc["rows"] if r["rule"] == rule and r["model"] == model)
            if pts:
                series.append(Series(model, [math.log10(max(t, 1e-3)) for t, _ in pts], [p for _, p in pts]))
                xs += [math.log10(max(t, 1e-3)) for t, _ in pts]
        if xs:
            series.append(Series("blend (no training)", [min(xs), max(xs)], [base["psnr_all"]] * 2))
        image = line_plot(
            series,
            title=f"{doc['data']}, training lights {rule}: held-out PSNR against training time",
            xlabel="log10 training seconds (2 CPU cores)",
            ylabel="PSNR, all test lights (dB)",
        )
        path = out / f"frontier_{rule.replace(':', '').replace('.', '')}.png"
        image.save(path)
        paths.append(path)
    return paths


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data", nargs="?", default="demo")
    parser.add_argument("--out", type=Path, default=Path("frontier"))
    parser.add_argument("--rules", default=",".join(RULES))
    parser.add_argument("--fractions", default="0.25,0.5", help="fractions of each model's default steps to train")
    parser.add_argument("--ablation", type=Path, help="a relightzoo ablate results.json whose cells join the frontier")
    parser.add_argument("--encoder", default="direction", help="encoder of the models that take one")
    parser.add_argument("--activation", default="sine", help="activation of the models that take one")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    fractions = [float(f) for f in args.fractions.split(",")]
    doc = run(args.data, args.out, rules=args.rules.split(","), fractions=fractions, encoder=args.encoder,
              activation=args.activation)
    if args.ablation is not None:
        ablation = json.loads(args.ablation.read_text())
        doc["rows"] += [_row(r) for r in ablation["cells"] if r.get("status") == "done" and r["model"] in MODELS]
    (args.out / "frontier.json").write_text(json.dumps(doc, indent=2) + "\n")
    (args.out / "frontier.md").write_text(markdown(doc))
    for path in plots(doc, args.out):
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
