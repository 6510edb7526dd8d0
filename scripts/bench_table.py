"""A markdown table of a ``numcnn bench --json`` record, for the Performance page.

    python scripts/bench_table.py benchmarks/results/2026-12-07/float32.json [--mode fwd+bwd]
"""

import argparse
import json
import sys


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("record")
    parser.add_argument("--mode", default="fwd+bwd", help="fwd or fwd+bwd (training steps are always shown)")
    args = parser.parse_args()
    record = json.load(open(args.record))
    meta = record["meta"]
    print(f"{meta['cpu']} ({meta['isa']}), {meta['usable_cpus']} CPUs; numpy {meta['numpy']} with {meta['blas']}; "
          f"torch {meta.get('torch', '-')}; numcnn {meta.get('numcnn_threads')} threads, torch its default\n")
    print("| workload | dtype | numcnn ms | torch ms | textbook ms | numcnn / torch (rounds) | textbook / numcnn |")
    print("|---|---|---|---|---|---|---|")
    for row in record["rows"]:
        if row["mode"] not in (args.mode, "step"):
            continue
        ratio = row["numcnn_over_torch"]
        book = row["textbook_over_numcnn"]
        times = [row["seconds"].get(impl, {}) for impl in ("numcnn", "torch", "textbook")]
        shown = [f"{t['value'] * 1e3:.3g}" if isinstance(t, dict) and "value" in t else "-" for t in times]
        ratio_text = "-" if not ratio else f"{ratio['value']:.2f} ({ratio['min']:.2f}-{ratio['max']:.2f})"
        book_text = "-" if not book else f"{book['value']:.2f}"
        print(f"| {row['workload']} {'step' if row['mode'] == 'step' else ''} | {row['dtype']} | {shown[0]} | "
              f"{shown[1]} | {shown[2]} | {ratio_text} | {book_text} |")
    for key, text in record.get("summary", {}).items():
        print(f"\n{text}", end="")
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
