"""The ``numcnn`` command: train, resume, evaluate, predict, summary, plot, demo, export, import, bench.

    numcnn train --model simple-convnet --dataset fashion-mnist --epochs 3 --out runs/x
    numcnn train --resume runs/x --epochs 5
    numcnn evaluate runs/x/model.npz --json
    numcnn predict runs/x/model.npz shoe.png --top 3
    numcnn demo

Every mistake a user can make (a bad flag, a missing or corrupt file, a diverging run) ends
with one line on stderr starting with ``error:`` and exit status 2, never a traceback. Ctrl-C
ends with status 130; the checkpoint of the last completed epoch stays on disk.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import numpy as np

from .errors import ConfigError, DataError, ModelFileError, NumcnnError

EXIT_ERROR = 2
EXIT_INTERRUPTED = 130
SCHEDULE_CHOICES = ("none", "step", "cosine", "warmup-cosine")
DEMO_EPOCHS = {"fashion-mnist": 3, "sample": 8}


class UsageError(Exception):
    """A command-line mistake found by argparse or by our own checks."""


class Interrupted(Exception):
    """Ctrl-C during training, with the message saying what was kept."""


class _Parser(argparse.ArgumentParser):
    # argparse prints usage and exits itself; we want our one-line "error:" instead.
    def error(self, message):
        raise UsageError(f"{self.prog}: {message} (see {self.prog} --help)")


# -- argument types ----------------------------------------------------------------------------
def _number(kind: type, minimum: float, inclusive: bool):
    """An argparse type: a finite int or float >= minimum (> minimum if not inclusive)."""
    bound = f"{'>=' if inclusive else '>'} {minimum:g}"
    what = f"an integer {bound}" if kind is int else f"a finite number {bound}"

    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
        if not (math.isfinite(value) and (value >= minimum if inclusive else value > minimum)):
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}")
        return value

    return parse


_positive_int = _number(int, 1, inclusive=True)
_non_negative_int = _number(int, 0, inclusive=True)
_positive_float = _number(float, 0, inclusive=False)
_non_negative_float = _number(float, 0, inclusive=True)


# -- the parser --------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    from .zoo import MODELS

    parser = _Parser(prog="numcnn", description="Convolutional networks in NumPy: train, inspect, predict.")
    parser.add_argument("--version", action="version", version=f"numcnn {_version()}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.required = True

    train = commands.add_parser("train", help="train a model (or --resume a run)",
                                description="Train a zoo model; writes model.npz, checkpoint.npz, "
                                            "history.json and plots into --out.")
    train.add_argument("--model", help=f"one of: {', '.join(MODELS)} (default simple-convnet)")
    train.add_argument("--dataset", help="mnist, fashion-mnist or sample (default fashion-mnist)")
    train.add_argument("--data-dir", help="folder holding the dataset's 4 IDX files (default: look it up)")
    train.add_argument("--epochs", type=_positive_int, help="total epochs of the run (default 3)")
    train.add_argument("--batch-size", type=_positive_int, help="default 100")
    train.add_argument("--optimizer", help="sgd, momentum, nesterov, adagrad, rmsprop, adam, adamw (default adam)")
    train.add_argument("--lr", type=_positive_float, help="learning rate (default 1e-3)")
    train.add_argument("--weight-decay", type=_non_negative_float,
                       help="L2 penalty (decoupled for adamw); default: the optimizer's (0; 1e-2 for adamw)")
    train.add_argument("--schedule", choices=SCHEDULE_CHOICES, help="learning-rate schedule (default none)")
    train.add_argument("--augment", action="store_true", default=None,
                       help="random shifts of up to 2 pixels (and left-right flips for Fashion-MNIST)")
    train.add_argument("--limit", type=_positive_int, help="train on the first N training images only")
    train.add_argument("--test-limit", type=_positive_int, help="evaluate on the first N test images only")
    train.add_argument("--seed", type=_non_negative_int, help="seeds weights, shuffling, dropout (default 0)")
    train.add_argument("--out", help="run folder (default runs/MODEL-DATASET)")
    train.add_argument("--overwrite", action="store_true", help="replace a run already in --out")
    train.add_argument("--resume", metavar="RUN_DIR", help="continue the run in RUN_DIR from its checkpoint")
    _add_common_train_flags(train)

    evaluate = commands.add_parser("evaluate", help="accuracy and loss of a model on a test set")
    evaluate.add_argument("model", help="a model .npz file or a run folder")
    evaluate.add_argument("--dataset", help="default: the dataset the model was trained on")
    evaluate.add_argument("--data-dir")
    evaluate.add_argument("--batch-size", type=_positive_int, default=500)
    evaluate.add_argument("--json", action="store_true", help="print one JSON object")

    predict = commands.add_parser("predict", help="classify image files (PNG, JPEG, ...)")
    predict.add_argument("model", help="a model .npz file or a run folder")
    predict.add_argument("images", nargs="+")
    predict.add_argument("--top", type=_positive_int, default=3, help="classes to show per image (default 3)")
    predict.add_argument("--dataset", help="for class names (default: the dataset the model was trained on)")

    summary = commands.add_parser("summary", help="layers, output shapes and parameter counts")
    summary.add_argument("model", help=f"a model .npz file, a run folder, or a zoo name ({', '.join(MODELS)})")

    plot = commands.add_parser("plot", help="(re)draw the plots of a run folder")
    plot.add_argument("run_dir")
    plot.add_argument("--dataset", help="default: the run's dataset")
    plot.add_argument("--data-dir")

    demo = commands.add_parser("demo", help="train SimpleConvNet on the best data available offline",
                               description="Train the book's SimpleConvNet on full Fashion-MNIST if it "
                                           "is on this machine, else on the bundled sample, into runs/demo.")
    demo.add_argument("--epochs", type=_positive_int, help="default 3 on Fashion-MNIST, 8 on the sample")
    demo.add_argument("--data-dir", help="a Fashion-MNIST folder to use")
    demo.add_argument("--out", default="runs/demo")
    demo.add_argument("--seed", type=_non_negative_int, default=0)
    _add_common_train_flags(demo)

    export = commands.add_parser("export", help="write a model as ONNX (needs the onnx extra)")
    export.add_argument("model", help="a model .npz file or a run folder")
    export.add_argument("output", help="the .onnx file to write")

    import_ = commands.add_parser("import", help="read an ONNX model into a numcnn .npz (needs the onnx extra)")
    import_.add_argument("onnx_file")
    import_.add_argument("output", help="the model .npz to write")

    commands.add_parser("bench", help="benchmarks (numcnn bench --help for its options)", add_help=False)
    return parser


def _add_common_train_flags(parser) -> None:
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("--no-plots", action="store_true", help="skip the plots")


def _version() -> str:
    from . import __version__
    return __version__


# -- helpers -----------------------------------------------------------------------------------
def _model_path(path: str) -> Path:
    """A model file, or the model.npz inside a run folder."""
    p = Path(path)
    return p / "model.npz" if p.is_dir() else p


def _load_model(path: str):
    from .io import read_npz
    from .model import model_from_arrays

    p = _model_path(path)
    arrays, meta = read_npz(p)
    training = meta.get("training")
    return model_from_arrays(arrays, meta, p), (training if isinstance(training, dict) else {})


def _load_data(dataset: str, data_dir, limit: int | None = None, test_limit: int | None = None,
               download: bool = True):
    """((x, y), (x_test, y_test), source line), the sets cut to ``limit`` and ``test_limit``."""
    from . import data

    folder, source = data.resolve(dataset, data_dir, download=download)
    (x, y), (x_test, y_test) = data.load(dataset, folder, download=False)
    if limit is not None:
        x, y = x[:limit], y[:limit]
    if test_limit is not None:
        x_test, y_test = x_test[:test_limit], y_test[:test_limit]
    return (x, y), (x_test, y_test), source


def _augmentation(dataset: str):
    """Shifts for every dataset; flips too for clothes (a mirrored shoe is a shoe, a 2 is not a 2)."""
    from . import data

    shift = data.RandomShift(2)
    return shift if dataset == "mnist" else data.Compose([shift, data.RandomHorizontalFlip(0.5)])


def _build_schedule(name: str, optimizer, epochs: int, batches_per_epoch: int):
    """(schedule or None, "epoch" or "batch"): when the trainer steps it."""
    from . import optim

    if name in (None, "none"):
        return None, "epoch"
    if name == "step":
        return optim.StepLR(optimizer, step_size=max(1, epochs // 3), gamma=0.1), "epoch"
    if name == "cosine":
        return optim.CosineAnnealingLR(optimizer, T_max=epochs), "epoch"
    total = epochs * batches_per_epoch
    warmup = min(batches_per_epoch, total - 1)  # one epoch of warm-up
    return optim.WarmupCosine(optimizer, warmup_steps=warmup, total_steps=total), "batch"


def _say(text: str = "") -> None:
    print(text, flush=True)


def _show_progress(args) -> bool:
    # A bar only where someone watches: a terminal, and not turned off.
    return not args.no_progress and sys.stderr.isatty()


# -- train -------------------------------------------------------------------------------------
TRAIN_DEFAULTS = {"model": "simple-convnet", "dataset": "fashion-mnist", "epochs": 3, "batch_size": 100,
                  "optimizer": "adam", "lr": 1e-3, "weight_decay": None, "schedule": "none", "augment": False,
                  "seed": 0}


def cmd_train(args) -> int:
    if args.resume:
        return _resume(args)
    settings = {key: getattr(args, key) if getattr(args, key) is not None else default
                for key, default in TRAIN_DEFAULTS.items()}
    out = Path(args.out or f"runs/{settings['model']}-{settings['dataset']}")
    return _train_new(settings, out, args.data_dir, args.limit, args.test_limit, overwrite=args.overwrite,
                      progress=_show_progress(args), plots=not args.no_plots)


def _train_new(settings: dict, out: Path, data_dir, limit, test_limit, overwrite: bool, progress: bool,
               plots: bool, source_note: str = "") -> int:
    from . import data, init, optim, zoo
    from .train import CHECKPOINT, Trainer

    # Check everything cheap before the data is read.
    zoo_name = settings["model"]
    if zoo_name not in zoo.MODELS:
        raise ConfigError(f"unknown model {zoo_name!r}: expected one of {', '.join(zoo.MODELS)}")
    data.class_names(settings["dataset"])  # unknown dataset -> DataError
    if settings["optimizer"].lower() not in optim.OPTIMIZERS:
        raise ConfigError(f"unknown optimizer {settings['optimizer']!r}: expected one of "
                          f"{', '.join(optim.OPTIMIZERS)}")
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out}: exists and is not a folder")
    if (out / CHECKPOINT).exists():
        if not overwrite:
            raise ConfigError(f"{out} already holds a run; continue it with --resume {out}, "
                              f"or pass --overwrite to start over")
        (out / CHECKPOINT).unlink()  # a stale checkpoint must never be resumed into the new run

    (x, y), (x_test, y_test), source = _load_data(settings["dataset"], data_dir, limit, test_limit)
    _say(f"data: {settings['dataset']} from {source}{source_note}")
    _say(f"      {len(x)} training images, {len(x_test)} test images (the test set is the validation set)")

    init.manual_seed(settings["seed"])
    model = zoo.get_model(zoo_name, num_classes=len(data.class_names(settings["dataset"])))
    # Without --weight-decay each optimizer keeps its own default (0, or 1e-2 for AdamW).
    extra = {"weight_decay": settings["weight_decay"]} if settings["weight_decay"] is not None else {}
    optimizer = optim.get_optimizer(settings["optimizer"], model, lr=settings["lr"], **extra)
    settings = {**settings, "weight_decay": optimizer.weight_decay}
    batches = math.ceil(len(x) / settings["batch_size"])
    schedule, per = _build_schedule(settings["schedule"], optimizer, settings["epochs"], batches)
    config = {**settings, "data_dir": str(data_dir) if data_dir is not None else None, "limit": limit,
              "test_limit": test_limit}
    trainer = Trainer(model, None, optimizer, schedule, seed=settings["seed"], out_dir=out, progress=progress,
                      log=_say, config=config, schedule_per=per)
    _say(f"model: {zoo_name} ({model.num_params():,} parameters), {type(optimizer).__name__} "
         f"lr {settings['lr']:g}, batch {settings['batch_size']}, {settings['epochs']} epochs, "
         f"seed {settings['seed']} -> {out}")
    return _fit_and_report(trainer, x, y, x_test, y_test, settings["epochs"], plots)


def _resume(args) -> int:
    from .train import Trainer, read_checkpoint

    given = [f"--{key.replace('_', '-')}" for key in (*TRAIN_DEFAULTS, "limit", "test_limit", "out")
             if key != "epochs" and getattr(args, key) is not None]
    if given:
        raise ConfigError(f"--resume takes the run's settings from its checkpoint; drop {', '.join(given)} "
                          f"(only --epochs, --data-dir, --no-progress and --no-plots may be given)")
    run = Path(args.resume)
    if not run.is_dir():
        raise ModelFileError(f"--resume {run}: no such run folder")
    _, meta = read_checkpoint(run)
    config = meta["config"]
    if not config.get("dataset") or not config.get("batch_size"):
        raise ModelFileError(f"{run}: the checkpoint was not written by `numcnn train` (no dataset recorded)")
    epochs = args.epochs or int(config.get("epochs", meta["epoch"]))
    if epochs < meta["epoch"]:
        raise ConfigError(f"--epochs {epochs}: the run in {run} already completed {meta['epoch']} epochs")
    data_dir = args.data_dir if args.data_dir is not None else config.get("data_dir")
    (x, y), (x_test, y_test), source = _load_data(config["dataset"], data_dir, config.get("limit"),
                                                  config.get("test_limit"))
    _say(f"data: {config['dataset']} from {source}")
    trainer = Trainer.resume(run, progress=_show_progress(args), log=_say)
    planned = int(config.get("epochs", epochs))
    if epochs > planned and trainer.schedule is not None:
        # Re-planning the schedule would change the run; keeping it is the honest default.
        _say(f"note: the {config.get('schedule')} schedule was planned for {planned} epochs and is kept as it "
             f"was; epochs {planned + 1}-{epochs} run past its end")
    trainer.config["epochs"] = epochs
    _say(f"resuming {run} after epoch {trainer.epoch} of {epochs}")
    return _fit_and_report(trainer, x, y, x_test, y_test, epochs, not args.no_plots)


def _fit_and_report(trainer, x, y, x_test, y_test, epochs: int, plots: bool) -> int:
    from . import data

    config = trainer.config
    augment = _augmentation(config["dataset"]) if config.get("augment") else None
    try:
        trainer.fit(x, y, epochs, batch_size=config["batch_size"], validation=(x_test, y_test), augment=augment)
    except KeyboardInterrupt:
        kept = (f"the checkpoint of epoch {trainer.epoch} is kept in {trainer.out_dir}; "
                f"continue with: numcnn train --resume {trainer.out_dir}" if trainer.epoch else
                "no epoch had completed, so nothing was saved")
        raise Interrupted(f"interrupted during epoch {trainer.epoch + 1}; {kept}") from None
    history = trainer.history
    if history["val_accuracy"] and history["val_accuracy"][-1] is not None:
        # The last epoch already evaluated this very model on the test set.
        result = {"accuracy": history["val_accuracy"][-1], "loss": history["val_loss"][-1]}
    else:
        result = trainer.evaluate(x_test, y_test)
    _say(f"test accuracy: {result['accuracy']:.2%} (loss {result['loss']:.4f}) on {len(x_test)} "
         f"{config['dataset']} test images")
    _say(f"saved: {trainer.out_dir / 'model.npz'}, checkpoint.npz, history.json")
    if plots:
        from .viz import plot_model

        paths = plot_model(trainer.model, x_test, y_test, data.class_names(config["dataset"]),
                           trainer.out_dir, trainer.history)
        _say(f"plots: {', '.join(str(p) for p in paths.values())}")
    return 0


# -- the other commands ------------------------------------------------------------------------
def cmd_evaluate(args) -> int:
    from .train import Trainer

    model, training = _load_model(args.model)
    dataset = args.dataset or training.get("dataset")
    if not dataset:
        raise ConfigError(f"{args.model}: the model does not record its dataset; pass --dataset")
    data_dir = args.data_dir if args.data_dir is not None else (None if args.dataset else training.get("data_dir"))
    _, (x_test, y_test), source = _load_data(dataset, data_dir)
    from .optim import SGD  # the trainer wants an optimizer; evaluation never steps it

    trainer = Trainer(model, None, SGD(model, lr=0.0), progress=False)
    result = trainer.evaluate(x_test, y_test, batch_size=args.batch_size)
    if args.json:
        print(json.dumps({"accuracy": result["accuracy"], "loss": result["loss"], "samples": len(x_test),
                          "dataset": dataset, "source": source, "model": str(_model_path(args.model))}))
    else:
        _say(f"data: {dataset} test set from {source}")
        _say(f"accuracy {result['accuracy']:.2%} ({round(result['accuracy'] * len(x_test))}/{len(x_test)}), "
             f"loss {result['loss']:.4f}")
    return 0


def read_image(path, shape: tuple[int, int, int]) -> tuple[np.ndarray, bool]:
    """An image file as a (C, H, W) float32 array in [0, 1], the way MNIST draws: light on dark.

    shape : the model's (C, H, W); C must be 1 (grayscale) or 3 (RGB).
    Returns (image, inverted): a picture with a light background (dark ink on paper, judged
    by the mean brightness of its border) is inverted to match the training data.
    """
    try:
        from PIL import Image, UnidentifiedImageError
    except ImportError:  # pragma: no cover - Pillow is in the "train" extra
        raise ConfigError("reading images needs Pillow: pip install 'numcnn[train]'") from None
    channels, height, width = shape
    if channels not in (1, 3):
        raise ConfigError(f"the model takes {channels}-channel images; only 1 (gray) or 3 (RGB) can be read")
    try:
        with Image.open(path) as image:
            image = image.convert("L" if channels == 1 else "RGB").resize((width, height), Image.LANCZOS)
            array = np.asarray(image, dtype=np.float32) / 255.0
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise DataError(f"{path}: cannot read it as an image ({exc})") from None
    array = array[None] if channels == 1 else array.transpose(2, 0, 1)
    gray = array.mean(axis=0)
    border = np.concatenate([gray[0], gray[-1], gray[:, 0], gray[:, -1]])
    inverted = bool(border.mean() > 0.5)
    if inverted:
        array = 1.0 - array
    return np.ascontiguousarray(array), inverted


def cmd_predict(args) -> int:
    from . import data
    from .train import predict_proba

    model, training = _load_model(args.model)
    shape = getattr(model, "input_shape", None)
    if not shape or len(shape) != 3:
        raise ConfigError(f"{args.model}: the model does not record an image input shape (C, H, W)")
    dataset = args.dataset or training.get("dataset")
    names = data.class_names(dataset) if dataset else None
    images, flags = zip(*(read_image(path, shape) for path in args.images))
    probs = predict_proba(model, np.stack(images))
    if names is not None and len(names) != probs.shape[1]:
        raise ConfigError(f"{dataset} has {len(names)} classes but the model outputs {probs.shape[1]}")
    for path, p, inverted in zip(args.images, probs, flags):
        note = " (inverted: dark on light)" if inverted else ""
        _say(f"{path}{note}")
        for rank, k in enumerate(np.argsort(-p, kind="stable")[:args.top], start=1):
            label = names[k] if names is not None else f"class {k}"
            _say(f"  {rank}. {label:<14} {p[k]:7.2%}")
    return 0


def cmd_summary(args) -> int:
    from . import zoo

    if Path(args.model).exists():
        model, _ = _load_model(args.model)
    elif args.model.strip().lower().replace("_", "-") in zoo.MODELS:
        model = zoo.get_model(args.model)
    else:
        raise ModelFileError(f"{args.model}: no such file, and not a zoo model ({', '.join(zoo.MODELS)})")
    _say(model.summary())
    return 0


def cmd_plot(args) -> int:
    from .viz import plot_run

    paths = plot_run(args.run_dir, dataset=args.dataset, data_dir=args.data_dir)
    for name, path in paths.items():
        _say(f"{name}: {path}")
    return 0


def cmd_demo(args) -> int:
    from . import data

    try:
        data.resolve("fashion-mnist", args.data_dir, download=False)
        dataset, note = "fashion-mnist", ""
    except DataError:
        if args.data_dir is not None:
            raise
        dataset = "sample"
        note = ("\n      (full Fashion-MNIST is not on this machine; the demo never downloads. "
                "`numcnn train --dataset fashion-mnist` would fetch it)")
    settings = {**TRAIN_DEFAULTS, "dataset": dataset, "epochs": args.epochs or DEMO_EPOCHS[dataset],
                "seed": args.seed}
    data_dir = args.data_dir if dataset == "fashion-mnist" else None
    return _train_new(settings, Path(args.out), data_dir, None, None, overwrite=True,
                      progress=_show_progress(args), plots=not args.no_plots, source_note=note)


def _interop():
    try:
        from . import interop
        interop.export_onnx  # noqa: B018 - the package itself imports without onnx
    except ImportError as exc:
        raise ConfigError(str(exc)) from None
    return interop


def cmd_export(args) -> int:
    model, _ = _load_model(args.model)
    try:
        path = _interop().export_onnx(model, args.output)
    except ImportError as exc:  # onnx is imported on first use
        raise ConfigError(str(exc)) from None
    _say(f"wrote {path}")
    return 0


def cmd_import(args) -> int:
    try:
        model = _interop().import_onnx(args.onnx_file)
    except ImportError as exc:
        raise ConfigError(str(exc)) from None
    _say(f"wrote {model.save(args.output)} ({model.num_params():,} parameters)")
    return 0


def cmd_bench(argv: list[str]) -> int:
    import importlib

    try:
        bench = importlib.import_module(f"{__package__}.bench")
    except ModuleNotFoundError as exc:
        if exc.name != f"{__package__}.bench":
            raise
        raise ConfigError("the benchmarks (numcnn.bench) are not part of this installation") from None
    return int(bench.main(argv) or 0)


COMMANDS = {"train": cmd_train, "evaluate": cmd_evaluate, "predict": cmd_predict, "summary": cmd_summary,
            "plot": cmd_plot, "demo": cmd_demo, "export": cmd_export, "import": cmd_import}


def _one_line(message: str) -> str:
    return " ".join(part.strip() for part in str(message).splitlines() if part.strip())


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit status (0, 2 for errors, 130 for Ctrl-C)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        if argv[:1] == ["bench"]:
            return cmd_bench(argv[1:])
        try:
            args = build_parser().parse_args(argv)
        except SystemExit as exc:  # --help and --version
            return int(exc.code or 0)
        return COMMANDS[args.command](args)
    except UsageError as exc:
        print(f"error: {_one_line(exc)}", file=sys.stderr)
    except Interrupted as exc:
        print(f"error: {_one_line(exc)}", file=sys.stderr)
        return EXIT_INTERRUPTED
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except NumcnnError as exc:
        print(f"error: {_one_line(exc)}", file=sys.stderr)
    except OSError as exc:
        print(f"error: {_one_line(exc)}", file=sys.stderr)
    except ImportError as exc:  # plots, progress bars and images need the "train" extra
        print(f"error: {exc.name or exc} is not installed; pip install 'numcnn[train]'", file=sys.stderr)
    return EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())
