"""What each ``numcnn`` subcommand does, once its arguments are parsed (``cli`` parses them).

Each ``cmd_NAME(args)`` returns the exit status. Output goes through ``say``, which a rank of
a distributed run other than rank 0 silences (``quiet``).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

from . import rundir
from .checkpoint import describe_saved
from .errors import ConfigError, DataError, Interrupted, ModelFileError

DEMO_EPOCHS = {"fashion-mnist": 3, "sample": 8}

# -- output and shared pieces -----------------------------------------------------------------------------------
_quiet = False


def quiet(flag: bool = True) -> None:
    """Silence ``say`` (the ranks of a distributed run other than rank 0), or speak again."""
    global _quiet
    _quiet = bool(flag)


def say(text: str = "") -> None:
    """A line of the command's output on stdout, unless ``quiet``; characters stdout's encoding
    cannot hold (a file name in Chinese on an ASCII terminal) are written as escapes."""
    if not _quiet:
        encoding = getattr(sys.stdout, "encoding", None) or "utf-8"
        print(text.encode(encoding, "backslashreplace").decode(encoding), flush=True)


def _show_progress(args) -> bool:
    # A bar only where someone watches: a terminal, and not turned off.
    return not args.no_progress and sys.stderr.isatty()


def given(args) -> dict:
    """The recipe settings the command line gave (None where a flag was left out)."""
    from .recipe import DEFAULTS

    return {key: getattr(args, key, None) for key in DEFAULTS}


# -- train -------------------------------------------------------------------------------------
def distributed(args) -> bool:
    """Whether ``numcnn train`` runs as several processes: --processes N, --hosts or --hostfile,
    or a rank of an MPI job."""
    hosts = getattr(args, "hosts", None) or getattr(args, "hostfile", None)
    return (getattr(args, "processes", None) or 1) > 1 or bool(hosts) or _launched_size() > 1


def cmd_train(args, trainer_class=None, hooks=()) -> int:
    """One process's training (``launcher`` runs it on each rank of a distributed run).

    Parameters
    ----------
    trainer_class
        the Trainer subclass a distributed rank trains with (None: Trainer).
    hooks : more ``Hook`` objects for the trainer
    """
    from . import recipe

    extra = {"hooks": list(hooks)}
    if trainer_class is not None:
        extra["trainer_class"] = trainer_class
    for flag in ("max_restarts", "min_processes"):  # the launcher's, which would do nothing here
        if getattr(args, flag, None) is not None:
            raise ConfigError(f"--{flag.replace('_', '-')} is for a job of several processes: add --processes N "
                              f"(N > 1) or --hosts")
    plots = _plots_available(not args.no_plots)  # said before any work
    rundir.check_flags(args.resume, args.out, args.overwrite)
    if args.resume:
        changed = {key: value for key, value in given(args).items() if key not in ("epochs", "data_dir")}
        run, trainer = recipe.resume(args.resume, changed, epochs=args.epochs, data_dir=args.data_dir,
                                     progress=_show_progress(args), log=say, **extra)
        trainer.model.to(args.device)  # a checkpoint is host arrays: any device resumes it
        say(f"data: {run.config['dataset']} from {run.source}")
        within = f", at step {trainer.epoch_step} of epoch {trainer.epoch + 1}" if trainer.epoch_step else ""
        say(f"resuming {args.resume} after epoch {trainer.epoch} of {run.config['epochs']}{within}")
        return _fit_and_report(run, trainer, plots)
    config = recipe.settings(given(args))  # every cheap check before the data is read
    _check_flags_that_need_others(args, config)
    out = claim_run_folder(args.out, config, args.overwrite)
    return _train_new(config, out, _show_progress(args), plots, device=args.device, overwrite=args.overwrite,
                      **extra)


def claim_run_folder(out, config: dict, overwrite: bool) -> Path:
    """The folder a new run of these settings goes to (--out, or the default), checked before
    any work: free (or --overwrite), and not inside the image folder it trains on."""
    from .data import is_folder_dataset

    out = rundir.claimable(out or rundir.default(config["model"], config["dataset"]), overwrite)
    if is_folder_dataset(config["dataset"]):
        rundir.check_outside(out, config["dataset"])
    return out


def _check_flags_that_need_others(args, config) -> None:
    """A flag that would do nothing without another is an error, not silently ignored."""
    if config["jitter"] and not config["augment"]:
        raise ConfigError(f"--jitter {config['jitter']:g} sets augment's colour jitter: add --augment")
    if getattr(args, "sync_bn", None) and (args.processes or 1) <= 1 and _launched_size() <= 1:
        raise ConfigError("--sync-bn synchronises batch norm across processes: add --processes N (N > 1)")



def _launched_size() -> int:
    from .distributed.comm import launched_size  # reads the environment only, no MPI

    return launched_size()


def _plots_available(plots: bool) -> bool:
    """Whether the plots can be drawn; said before any work when they cannot (a missing
    matplotlib skips them, it does not fail the run)."""
    if plots:
        from .viz import missing_dependency

        missing = missing_dependency()
        if missing:
            say(f"note: plots will be skipped: {missing}")
            return False
    return plots


def _train_new(config: dict, out: Path, progress: bool, plots: bool, source_note: str = "",
               device: str = "cpu", overwrite: bool = False, **extra) -> int:
    from . import recipe

    run = recipe.build(config, progress=None if progress else False)  # a bar for large folders
    run.model.to(device)
    say(f"data: {run.config['dataset']} from {run.source}{source_note}")
    if _held_out(run.config):
        say(f"      {len(run.train[0])} training images, validating on {len(run.test[0])} held out of them "
            f"(the test set is left for numcnn evaluate)")
    else:
        say(f"      {len(run.train[0])} training images, {len(run.test[0])} test images "
            f"(the test set is the validation set)")
    config = run.config
    say(f"model: {config['model']} ({run.model.num_params():,} parameters), {type(run.optimizer).__name__} "
         f"lr {config['lr']:g}, batch {config['batch_size']}, {config['epochs']} epochs, "
         f"seed {config['seed']}{'' if device == 'cpu' else ', on ' + device} -> {out}")
    return _fit_and_report(run, run.trainer(out, progress=progress, log=say, overwrite=overwrite, **extra), plots)


def _held_out(config: dict) -> bool:
    """Whether a run validates on a part of a named dataset's training set (--val-fraction)."""
    from .data import is_folder_dataset

    return config.get("val_fraction") is not None and not is_folder_dataset(config["dataset"])


def _fit_and_report(run, trainer, plots: bool) -> int:
    try:
        run.fit(trainer)
    except KeyboardInterrupt:
        saved = describe_saved(trainer.out_dir)  # the one on disk, maybe from inside an epoch
        kept = (f"{saved} is kept; continue with: numcnn train --resume {trainer.out_dir}" if saved else
                "nothing was saved yet")
        raise Interrupted(f"interrupted during epoch {trainer.epoch + 1}; {kept}") from None
    history = trainer.history
    if history["val_accuracy"] and history["val_accuracy"][-1] is not None:
        # The last epoch already evaluated this very model on the test set.
        result = {"accuracy": history["val_accuracy"][-1], "loss": history["val_loss"][-1]}
    else:
        result = trainer.evaluate(*run.test)
    what = "held-out training" if _held_out(run.config) else "test"
    say(f"{'validation' if _held_out(run.config) else 'test'} accuracy: {result['accuracy']:.2%} "
        f"(loss {result['loss']:.4f}) on {len(run.test[0])} {run.config['dataset']} {what} images")
    say(f"saved: {trainer.out_dir / rundir.MODEL}, {rundir.CHECKPOINT}, {rundir.HISTORY}")
    if plots:
        from .viz import plot_model

        trainer.model.to("cpu")  # the plots read weights and activations with NumPy
        paths = plot_model(trainer.model, *run.test, list(run.dataset.classes), trainer.out_dir, trainer.history)
        say(f"plots: {', '.join(str(p) for p in paths.values())}")
    return 0


# -- the other commands ------------------------------------------------------------------------
def cmd_evaluate(args) -> int:
    from . import data, recipe
    from .model import read_model
    from .inference import evaluate

    model, training = read_model(args.model)
    model.to(args.device)
    dataset, data_dir, options = recipe.data_of(training, args.dataset, args.data_dir,
                                                getattr(model, "input_shape", None))
    described, folder, source = data.prepare(dataset, data_dir, **options)
    _, (x_test, y_test) = described.reader(folder, described)
    model_classes = training.get("classes")
    if dataset != training.get("dataset") and model_classes:  # another dataset's labels, matched by name
        y_test = data.to_model_labels(y_test, described.classes, model_classes)
    result = evaluate(model, x_test, y_test, batch_size=args.batch_size)
    if args.json:
        path = rundir.model_path(args.model)
        print(json.dumps({"accuracy": result["accuracy"], "loss": result["loss"], "samples": len(x_test),
                          "dataset": dataset, "source": source, "model": str(path)}))
    else:
        say(f"data: {dataset} test set from {source}")
        say(f"accuracy {result['accuracy']:.2%} ({round(result['accuracy'] * len(x_test))}/{len(x_test)}), "
             f"loss {result['loss']:.4f}")
    return 0


def cmd_predict(args) -> int:
    from . import data
    from .model import read_model
    from .inference import predict_proba

    model, training = read_model(args.model)
    model.to(args.device)
    shape = getattr(model, "input_shape", None)
    if not shape or len(shape) != 3:
        raise ConfigError(f"{args.model}: the model does not record an image input shape (C, H, W)")
    # Class names and the background rule come from the model's own record, else the dataset's.
    dataset = args.dataset or training.get("dataset")
    names, dark = data.model_labels(training, args.dataset)
    images, flags = zip(*(data.read_image(path, shape, dark) for path in args.images))
    probs = predict_proba(model, np.stack(images))
    if names is not None and len(names) != probs.shape[1]:
        raise ConfigError(f"{dataset} has {len(names)} classes but the model outputs {probs.shape[1]}")
    for path, p, inverted in zip(args.images, probs, flags):
        note = " (inverted: dark on light)" if inverted else ""
        say(f"{path}{note}")
        for rank, k in enumerate(np.argsort(-p, kind="stable")[:args.top], start=1):
            label = names[k] if names is not None else f"class {k}"
            say(f"  {rank}. {label:<14} {p[k]:7.2%}")
    return 0


def cmd_summary(args) -> int:
    from . import zoo
    from .model import read_model

    if Path(args.model).exists():
        model, _ = read_model(args.model)
    elif args.model.strip().lower().replace("_", "-") in zoo.MODELS:
        model = zoo.get_model(args.model)
    else:
        raise ModelFileError(f"{args.model}: no such file, and not a zoo model ({', '.join(zoo.MODELS)})")
    say(model.summary())
    return 0


def cmd_plot(args) -> int:
    from .viz import missing_dependency, plot_run

    if missing_dependency():
        raise ConfigError(missing_dependency())
    paths = plot_run(args.run_dir, dataset=args.dataset, data_dir=args.data_dir, out_dir=args.out,
                     overwrite=args.overwrite)
    for name, path in paths.items():
        say(f"{name}: {path}")
    return 0


def cmd_demo(args) -> int:
    from . import data, recipe

    plots = _plots_available(not args.no_plots)
    try:
        data.resolve("fashion-mnist", args.data_dir, download=False)
        dataset, note = "fashion-mnist", ""
    except DataError:
        if args.data_dir is not None:
            raise
        dataset = "sample"
        note = ("\n      (full Fashion-MNIST is not on this machine; the demo never downloads. "
                "`numcnn train --dataset fashion-mnist` would fetch it)")
    config = recipe.settings({"dataset": dataset, "epochs": args.epochs or DEMO_EPOCHS[dataset], "seed": args.seed,
                              "data_dir": args.data_dir if dataset == "fashion-mnist" else None})
    out = rundir.claimable(args.out, args.overwrite)
    return _train_new(config, out, _show_progress(args), plots, source_note=note, device=args.device,
                      overwrite=args.overwrite)


def _interop():
    try:
        from . import interop
        interop.export_onnx  # noqa: B018 - the package itself imports without onnx
    except ImportError as exc:
        raise ConfigError(str(exc)) from None
    return interop


def cmd_export(args) -> int:
    from .io import check_output
    from .model import read_model

    source = rundir.model_path(args.model)
    check_output(args.output, args.overwrite, source=source)
    model, training = read_model(args.model)
    try:  # the training record (class names, background rule, ...) goes into the file's metadata
        path = _interop().export_onnx(model, args.output, training=training)
    except ImportError as exc:  # onnx is imported on first use
        raise ConfigError(str(exc)) from None
    say(f"wrote {path}")
    return 0


def cmd_import(args) -> int:
    from .io import check_output, npz_path
    from .model import save

    output = check_output(npz_path(args.output), args.overwrite, source=args.onnx_file)
    try:
        model, training = _interop().read_onnx(args.onnx_file)
    except ImportError as exc:
        raise ConfigError(str(exc)) from None
    path = save(model, output, {"training": training} if training else None)
    say(f"wrote {path} ({model.num_params():,} parameters)")
    return 0


def cmd_serve(args) -> int:
    from . import serve

    serve.require()  # the extra, before the model is read
    examples = None
    if getattr(args, "pretrained", None):
        from .pretrained import examples as shipped_examples
        examples = shipped_examples(args.pretrained)
    return serve.serve(args.model, args.host, args.port, log=say, device=args.device, examples=examples)


def cmd_bench(argv: list[str]) -> int:
    import importlib

    try:
        bench = importlib.import_module(f"{__package__}.bench")
    except ModuleNotFoundError as exc:
        if exc.name != f"{__package__}.bench":
            raise
        raise ConfigError("the benchmarks (numcnn.bench) are not part of this installation") from None
    return int(bench.main(argv) or 0)


def cmd_pretrained(args) -> int:
    from .pretrained import available

    models = available()
    if not models:
        say("no pretrained models in this installation")
        return 0
    say(f"{'name':16} {'model':16} {'dataset':14} {'parameters':>10} {'test accuracy':>13}")
    for entry in models.values():
        say(f"{entry.name:16} {entry.model:16} {entry.dataset:14} {entry.parameters:>10,} "
            f"{entry.test_accuracy:>13.2%}")
    for entry in models.values():
        say(f"\n{entry.name}:")
        for key, value in entry.provenance.items():
            say(f"  {key}: {value}")
    say("\nuse one: numcnn serve --pretrained NAME (or evaluate, predict, summary, plot, export)")
    return 0
