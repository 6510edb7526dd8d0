"""The ``numcnn`` command: train, resume, evaluate, predict, summary, plot, demo, export, import, bench.

::

    numcnn train --model simple-convnet --dataset fashion-mnist --epochs 3 --out runs/x
    numcnn train --resume runs/x --epochs 5
    numcnn evaluate runs/x/model.npz --json
    numcnn predict runs/x/model.npz shoe.png --top 3
    numcnn demo

Every mistake a user can make (a bad flag, a missing or corrupt file, a diverging run) ends
with one line on stderr starting with ``error:`` and exit status 2, never a traceback. Ctrl-C
ends with status 130; the last checkpoint written (after each epoch, and every
--checkpoint-every steps) stays on disk, and the line says where it stands.
"""

from __future__ import annotations

import argparse
import math
import os
import sys

from . import commands, pretrained, runtime
from .cliparser import Parser, UsageError
from .errors import EXIT_ERROR, EXIT_INTERRUPTED, Interrupted, NumcnnError, one_line


# -- argument types ----------------------------------------------------------------------------
def _number(kind: type, minimum: float, inclusive: bool, maximum: float = math.inf):
    """An argparse type: a finite int or float >= minimum (> minimum if not inclusive), <= maximum."""
    bound = f"{'>=' if inclusive else '>'} {minimum:g}" + (f" and <= {maximum:g}" if maximum < math.inf else "")
    what = f"an integer {bound}" if kind is int else f"a finite number {bound}"

    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
        if not (math.isfinite(value) and (value >= minimum if inclusive else value > minimum) and value <= maximum):
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}")
        return value

    return parse


_positive_int = _number(int, 1, inclusive=True)
_non_negative_int = _number(int, 0, inclusive=True)
_positive_float = _number(float, 0, inclusive=False)
_non_negative_float = _number(float, 0, inclusive=True)
_port = _number(int, 0, inclusive=True, maximum=65535)


# -- the parser --------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    from .data import DATASETS
    from .data.folder import MAX_IMAGE_SIZE
    from .recipe import SCHEDULES
    from .zoo import MODELS

    parser = Parser(prog="numcnn", description="Convolutional networks in NumPy: train, inspect, predict.")
    parser.add_argument("--version", action="version", version=f"numcnn {_version()}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.required = True

    train = commands.add_parser("train", help="train a model (or --resume a run)",
                                description="Train a zoo model; writes model.npz, checkpoint.npz, "
                                            "history.json and plots into --out.")
    train.add_argument("--model", help=f"one of: {', '.join(MODELS)} (default simple-convnet)")
    train.add_argument("--dataset", metavar="NAME|PATH",
                       help=f"one of: {', '.join(DATASETS)} (default fashion-mnist), or a folder of images: "
                            f"PATH/train/<class>/* and PATH/test/<class>/*, or PATH/<class>/* alone")
    train.add_argument("--data-dir", help="folder holding a named dataset's files (default: look it up)")
    train.add_argument("--epochs", type=_positive_int, help="total epochs of the run (default 3)")
    train.add_argument("--batch-size", type=_positive_int, help="default 100")
    train.add_argument("--optimizer", help="sgd, momentum, nesterov, adagrad, rmsprop, adam, adamw (default adam)")
    train.add_argument("--lr", type=_positive_float, help="learning rate (default 1e-3)")
    train.add_argument("--weight-decay", type=_non_negative_float,
                       help="L2 penalty (decoupled for adamw); default: the optimizer's (0; 1e-2 for adamw)")
    train.add_argument("--schedule", choices=SCHEDULES, help="learning-rate schedule (default none)")
    train.add_argument("--augment", action="store_true", default=None,
                       help="random shifts (2 pixels at 28x28; a random crop with 4-pixel padding for CIFAR "
                            "and image folders), and left-right flips where a mirror image keeps its class "
                            "(not digits)")
    train.add_argument("--jitter", type=_non_negative_float,
                       help="with --augment: random brightness and contrast, e.g. 0.2 for +-20%% (default 0)")
    train.add_argument("--width", type=_positive_int,
                       help="channels of the model's first stage, for models that have one "
                            "(cifar-resnet: default 8; 16 is the paper's ResNet-20)")
    normalize = train.add_mutually_exclusive_group()
    normalize.add_argument("--normalize", action="store_true", default=None,
                           help="standardise each channel with the training set's mean and std, inside "
                                "the model (default for CIFAR and image folders)")
    normalize.add_argument("--no-normalize", dest="normalize", action="store_false")
    train.add_argument("--labels", choices=("fine", "coarse"),
                       help="cifar100: the 100 fine classes (default) or the 20 superclasses")
    train.add_argument("--image-size", type=_number(int, 1, inclusive=True, maximum=MAX_IMAGE_SIZE), metavar="N",
                       help="image folders: resize the shorter side to N and crop the centre (default: "
                            "the pictures' own size where all share one, else their median shorter side, "
                            "at most 64; square for a model that takes square images)")
    train.add_argument("--channels", type=int, choices=(1, 3),
                       help="image folders: 1 (gray) or 3 (RGB); default RGB if any picture has colour")
    train.add_argument("--val-fraction", type=_positive_float, metavar="F",
                       help="hold out this fraction of each class of the training set and validate on it (image folders without test/: default 0.2; named datasets: the test set is then left for numcnn evaluate)")
    train.add_argument("--strict", action="store_true", default=None,
                       help="image folders: an unreadable picture is an error, not a skip with a warning")
    train.add_argument("--limit", type=_positive_int, help="train on the first N training images only")
    train.add_argument("--test-limit", type=_positive_int, help="evaluate on the first N test images only")
    train.add_argument("--seed", type=_non_negative_int, help="seeds weights, shuffling, dropout (default 0)")
    train.add_argument("--out", help="run folder (default runs/MODEL-DATASET)")
    train.add_argument("--overwrite", action="store_true", help="replace a run already in --out")
    train.add_argument("--resume", metavar="RUN_DIR", help="continue the run in RUN_DIR from its checkpoint")
    train.add_argument("--dtype", choices=("float32", "float64"), help="weights, images and arithmetic (default float32)")
    train.add_argument("--checkpoint-every", type=_positive_int, metavar="STEPS",
                       help="also write the checkpoint every STEPS steps inside the epochs, so a run stopped "
                            "anywhere redoes at most STEPS steps (default: after each epoch only)")
    train.add_argument("--processes", type=_positive_int, metavar="N",
                       help="train data-parallel on N processes, started through MPI's mpiexec (needs "
                            "numcnn[mpi]); --batch-size stays the global batch")
    train.add_argument("--hosts", metavar="HOST:SLOTS,...",
                       help="run the processes on these hosts (MPICH's mpiexec -hosts: passwordless ssh, numcnn "
                            "installed alike, the run folder and data on a shared filesystem); default N: every slot")
    train.add_argument("--hostfile", metavar="PATH",
                       help="the hosts from a file, one HOST[:SLOTS] a line; read again before each restart")
    train.add_argument("--max-restarts", type=_non_negative_int, metavar="K",
                       help="when a process dies, raises or hangs, start the job again from the last checkpoint, "
                            "up to K times (default 0); Ctrl-C is never restarted")
    train.add_argument("--min-processes", type=_positive_int, metavar="M",
                       help="with --hosts: when hosts are unreachable, go on with the slots left if at least M "
                            "(the global batch and learning rate stay; each process takes a larger share)")
    train.add_argument("--sync-bn", action="store_true", default=None,
                       help="with several processes: batch norm with the global batch's statistics "
                            "(default: each process's own, as PyTorch's DDP)")
    _add_common_train_flags(train)

    evaluate = commands.add_parser("evaluate", help="accuracy and loss of a model on a test set")
    evaluate.add_argument("model", nargs="?", help="a model .npz file or a run folder (or --pretrained NAME)")
    evaluate.add_argument("--dataset", help="default: the dataset the model was trained on")
    evaluate.add_argument("--data-dir")
    evaluate.add_argument("--batch-size", type=_positive_int, default=500)
    evaluate.add_argument("--json", action="store_true", help="print one JSON object")
    _add_threads_flag(evaluate)

    predict = commands.add_parser("predict", help="classify image files (PNG, JPEG, ...)")
    predict.add_argument("model", nargs="?", help="a model .npz file or a run folder (or --pretrained NAME)")
    predict.add_argument("images", nargs="+")
    predict.add_argument("--top", type=_positive_int, default=3, help="classes to show per image (default 3)")
    predict.add_argument("--dataset", help="for class names (default: the dataset the model was trained on)")
    _add_threads_flag(predict)

    summary = commands.add_parser("summary", help="layers, output shapes and parameter counts")
    summary.add_argument("model", nargs="?",
                         help=f"a model .npz file, a run folder, or a zoo name ({', '.join(MODELS)})")

    plot = commands.add_parser("plot", help="(re)draw the plots of a run folder")
    plot.add_argument("run_dir", nargs="?", help="a run folder (or --pretrained NAME)")
    plot.add_argument("--dataset", help="default: the run's dataset")
    plot.add_argument("--data-dir")
    plot.add_argument("--out", help="folder for the plots (default: the run folder; with --pretrained, "
                                    "plots-NAME)")
    plot.add_argument("--overwrite", action="store_true",
                      help="replace files of the plots' names in an --out folder other than the run's")

    demo = commands.add_parser("demo", help="train SimpleConvNet on the best data available offline",
                               description="Train the book's SimpleConvNet on full Fashion-MNIST if it "
                                           "is on this machine, else on the bundled sample, into runs/demo.")
    demo.add_argument("--epochs", type=_positive_int, help="default 3 on Fashion-MNIST, 8 on the sample")
    demo.add_argument("--data-dir", help="a Fashion-MNIST folder to use")
    demo.add_argument("--out", default="runs/demo")
    demo.add_argument("--seed", type=_non_negative_int, default=0)
    demo.add_argument("--overwrite", action="store_true", help="replace a run already in --out")
    _add_common_train_flags(demo)

    export = commands.add_parser("export", help="write a model as ONNX (needs the onnx extra)")
    export.add_argument("model", nargs="?", help="a model .npz file or a run folder (or --pretrained NAME)")
    export.add_argument("output", nargs="?", help="the .onnx file to write")
    export.add_argument("--overwrite", action="store_true", help="replace an existing output file")

    import_ = commands.add_parser("import", help="read an ONNX model into a numcnn .npz (needs the onnx extra)")
    import_.add_argument("onnx_file")
    import_.add_argument("output", help="the model .npz to write")
    import_.add_argument("--overwrite", action="store_true", help="replace an existing output file")

    serve = commands.add_parser("serve", help="a web page that explains a model on your drawing or photo "
                                              "(needs the serve extra)")
    serve.add_argument("model", nargs="?", help="a model .npz file or a run folder (or --pretrained NAME)")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only)")
    serve.add_argument("--port", type=_port, default=8000, help="default 8000; 0 picks a free port")
    _add_threads_flag(serve)

    commands.add_parser("pretrained", help="the pretrained models shipped with numcnn: accuracy and provenance")
    for command in (evaluate, predict, summary, plot, export, serve):
        command.add_argument("--pretrained", metavar="NAME",
                             help="a pretrained model shipped with numcnn instead of a file (numcnn pretrained "
                                  "lists them)")
    commands.add_parser("bench", help="benchmarks (numcnn bench --help for its options)", add_help=False)
    return parser


MODEL_COMMANDS = ("evaluate", "predict", "summary", "plot", "export", "serve")  # those that take --pretrained


def _take_pretrained(args) -> None:
    """With --pretrained NAME, the model is that verified file, and a positional given is what
    comes after the model (an image, the output); without it, a model must be given."""
    if args.command not in MODEL_COMMANDS:
        return
    field = "run_dir" if args.command == "plot" else "model"
    given, name = getattr(args, field), getattr(args, "pretrained", None)
    if name is None:
        if given is None:
            raise UsageError(f"numcnn {args.command}: give a model file or run folder, or --pretrained NAME")
        if args.command == "export" and args.output is None:
            raise UsageError("numcnn export: give the .onnx file to write after the model")
        if args.command == "predict" and not args.images:
            raise UsageError("numcnn predict: give the image files after the model")
        return
    if given is not None:
        if args.command == "predict" and (os.path.isdir(given) or given.endswith(".npz")):  # a model
            raise UsageError("numcnn predict: give a model or --pretrained NAME, not both")
        if args.command == "predict":
            args.images = [given, *args.images]
        elif args.command == "export" and args.output is None:
            args.output = given
        else:
            raise UsageError(f"numcnn {args.command}: give a model or --pretrained NAME, not both")
    if args.command == "export" and args.output is None:
        raise UsageError("numcnn export: give the .onnx file to write")
    if args.command == "predict" and not args.images:
        raise UsageError("numcnn predict: give the image files to classify")
    if args.command == "plot" and args.out is None:
        args.out = f"plots-{name}"
    setattr(args, field, str(pretrained.model_path(name)))


def _add_common_train_flags(parser) -> None:
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("--no-plots", action="store_true", help="skip the plots")
    _add_threads_flag(parser)


def _add_threads_flag(parser) -> None:
    parser.add_argument("--threads", type=_positive_int,
                        help="threads to compute with (default: the library's: $NUMCNN_NUM_THREADS, else "
                             "$OMP_NUM_THREADS, else every core this process may use)")
    parser.add_argument("--device", default="cpu", metavar="cpu|cuda",
                        help="where to compute: cpu (default), or cuda / cuda:N, an NVIDIA GPU through "
                             "CuPy (pip install 'numcnn[cuda]')")


def _check_device(args) -> None:
    """--device, checked before any work: a GPU asked for and not usable is one error line."""
    from .backend import check_device, cuda_module

    if getattr(args, "device", "cpu") != "cpu":
        cuda_module(check_device(args.device))


def _version() -> str:
    from . import __version__
    return __version__


def _train(args) -> int:
    if commands.distributed(args):
        from .launcher import train  # needs mpi4py, said in one line if missing
        return train(args)
    return commands.cmd_train(args)


COMMANDS = {"train": _train, "evaluate": commands.cmd_evaluate, "predict": commands.cmd_predict,
            "summary": commands.cmd_summary, "plot": commands.cmd_plot, "demo": commands.cmd_demo,
            "export": commands.cmd_export, "import": commands.cmd_import, "serve": commands.cmd_serve,
            "pretrained": commands.cmd_pretrained}


def _warning_line(message, category, filename, lineno, file=None, line=None) -> None:
    print(f"warning: {one_line(message)}", file=sys.stderr if file is None else file, flush=True)


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit status (0, 2 for errors, 130 for Ctrl-C)."""
    import warnings

    with warnings.catch_warnings():  # restores the caller's warning display afterwards
        warnings.showwarning = _warning_line  # "warning: ..." on one line, like our errors
        return _main(list(sys.argv[1:] if argv is None else argv))


def _main(argv: list[str]) -> int:
    try:
        if argv[:1] == ["bench"]:
            return commands.cmd_bench(argv[1:])
        try:
            args, unknown = build_parser().parse_known_args(argv)
        except SystemExit as exc:  # --help and --version
            return int(exc.code or 0)
        if unknown:  # named after the command they were given to, whose --help lists its options
            prog = f"numcnn {args.command}" if getattr(args, "command", None) else "numcnn"
            raise UsageError(f"{prog}: unrecognized arguments: {' '.join(unknown)} (see {prog} --help)")
        args.argv = argv  # a distributed launch starts the same command on every rank
        _take_pretrained(args)
        runtime.configure(threads=getattr(args, "threads", None))  # None: the library's default
        _check_device(args)
        return COMMANDS[args.command](args)
    except UsageError as exc:
        print(f"error: {one_line(exc)}", file=sys.stderr)
    except Interrupted as exc:
        print(f"error: {one_line(exc)}", file=sys.stderr)
        return EXIT_INTERRUPTED
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except NumcnnError as exc:
        print(f"error: {one_line(exc)}", file=sys.stderr)
    except OSError as exc:
        print(f"error: {one_line(exc)}", file=sys.stderr)
    except MemoryError as exc:  # e.g. pictures decoded at a size this machine cannot hold
        print(f"error: out of memory: {one_line(exc) or 'a request for memory failed'}", file=sys.stderr)
    except ImportError as exc:  # plots, progress bars and images need the "train" extra
        print(f"error: {exc.name or exc} is not installed; pip install 'numcnn[train]'", file=sys.stderr)
    return EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())
