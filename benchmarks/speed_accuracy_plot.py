"""Plot WIDER AP against time per image from `facefaas eval` reports (a script, not a test).

Each run of the given `report.json` files becomes a point (mean ms/image, AP) per difficulty,
joined per model: the CenterFace input sizes show the trade of speed for small faces next to
MTCNN's presets.

    facefaas eval wider --root ../shared/eval/wider-val --model mtcnn --model centerface \\
        --preset default --preset input-1600 --preset input-1280 --preset input-960 \\
        --preset fast -o eval-out
    python benchmarks/speed_accuracy_plot.py eval-out/report.json -o docs/img/speed_accuracy.png
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def _name(run: dict[str, object]) -> str:
    """The preset's name, or ``input-N`` for a CenterFace parameter set."""
    if run.get("preset"):
        return str(run["preset"])
    params = run.get("params") or {}
    assert isinstance(params, dict)
    if "input_size" in params:
        return f"input-{params['input_size'] or 'full'}"
    return str(run["label"]).split("/")[-1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("reports", nargs="+", type=Path)
    parser.add_argument("-o", "--output", type=Path, required=True)
    args = parser.parse_args()
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs = [run for path in args.reports for run in json.loads(path.read_text())["runs"]]
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.8), dpi=110, sharey=True)
    for ax, setting in zip(axes, ("easy", "medium", "hard"), strict=True):
        for model in dict.fromkeys(run["model"] for run in runs):
            mine = sorted(
                (r for r in runs if r["model"] == model), key=lambda r: r["timing"]["mean_ms"]
            )
            xs = [r["timing"]["mean_ms"] for r in mine]
            ys = [r["settings"][setting]["ap"] for r in mine]
            ax.plot(xs, ys, marker="o", label=model)
            for r, x, y in zip(mine, xs, ys, strict=True):
                ax.annotate(_name(r), (x, y), fontsize=7,
                            textcoords="offset points", xytext=(4, -9))  # fmt: skip
        ax.set_title(f"WIDER {setting}")
        ax.set_xlabel("mean ms per image (2 cores)")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("AP")
    axes[0].legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(args.output)
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
