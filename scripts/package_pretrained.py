"""Ship a finished training run as a pretrained model: evaluate it once on the test set, copy its
model file and one test image per class into src/numcnn/weights/, and record the checksums and
provenance in MANIFEST.json.

    python scripts/package_pretrained.py RUN_DIR NAME --command "numcnn train ..." --machine "AMD EPYC, 2 cores"

The run must have chosen its settings on a validation split (``--val-fraction``); this is the
one time its test set is read.
"""

import argparse
import hashlib
import json
import shutil
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from numcnn import data  # noqa: E402
from numcnn.inference import evaluate  # noqa: E402
from numcnn.io import atomic_savez  # noqa: E402
from numcnn.model import read_model  # noqa: E402
from numcnn.pretrained import MANIFEST, WEIGHTS  # noqa: E402


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("name")
    parser.add_argument("--command", required=True, help="the numcnn train command that made the run")
    parser.add_argument("--machine", required=True)
    parser.add_argument("--licence", default="Fashion-MNIST: © Zalando SE, MIT licence")
    parser.add_argument("--into", type=Path, default=WEIGHTS, help="the weights folder (default: the package's)")
    args = parser.parse_args()

    model, training = read_model(args.run_dir)
    history = json.loads((args.run_dir / "history.json").read_text())
    dataset = training["dataset"]
    _, (x_test, y_test) = data.load(dataset, dtype=None)
    result = evaluate(model, x_test, y_test)
    print(f"{args.name}: test accuracy {result['accuracy']:.2%} on {len(x_test)} {dataset} test images")

    weights = args.into
    weights.mkdir(exist_ok=True)
    model_file = f"{args.name}-{dataset}.npz"
    shutil.copyfile(args.run_dir / "model.npz", weights / model_file)
    first = [int(np.flatnonzero(y_test == k)[0]) for k in range(int(y_test.max()) + 1)]
    examples_file = f"{args.name}-{dataset}-examples.npz"
    atomic_savez(weights / examples_file, {"x": x_test[first], "y": y_test[first]},
                 {"format": "numcnn-examples", "dataset": dataset, "test_indices": first})

    manifest_path = weights / MANIFEST
    manifest = json.loads(manifest_path.read_text()) if manifest_path.is_file() else {}
    seconds = sum(t for t in history["time"] if t)
    manifest[args.name] = {
        "model": training["model"], "dataset": dataset, "file": model_file, "sha256": sha256(weights / model_file),
        "examples": examples_file, "examples_sha256": sha256(weights / examples_file),
        "parameters": int(model.num_params()), "test_accuracy": round(float(result["accuracy"]), 4),
        "provenance": {
            "command": args.command,
            "seed": training.get("seed"),
            "epochs": training.get("epochs_done"),
            "validation accuracy (last epoch)": f"{history['val_accuracy'][-1]:.2%} on a {training.get('val_fraction')} "
                                                f"split of the training set",
            "test accuracy": f"{result['accuracy']:.2%} on the {len(x_test)} test images, evaluated once",
            "training time": f"{seconds / 3600:.1f} h of epochs on {args.machine}",
            "data": args.licence,
        },
    }
    manifest_path.write_text(json.dumps(manifest, indent=1) + "\n")
    print(f"wrote {weights / model_file}, {weights / examples_file} and {manifest_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
