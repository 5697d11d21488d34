"""The ``linea`` command: ``linea demo | bench | inspect | convert``.

Exit codes: 0 success, 1 a failure while running (one line on stderr), 2 bad arguments.
"""
from __future__ import annotations

import argparse
import sys
import warnings

from linea._errors import FormatError

FORMATS = ("safetensors", "torch", "keras", "onnx")

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="linea", description="linea: the linear layer of deep learning, on NumPy.")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    demo = commands.add_parser("demo", help="train an MLP of nn.Linear on the shipped digits")
    demo.add_argument("--epochs", type=int, default=20, help="training epochs (default 20)")
    demo.add_argument("--batch-size", type=int, default=32, help="mini-batch size (default 32)")
    demo.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate (default 1e-3)")
    demo.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    demo.add_argument("--checkpoint", default=None,
                      help="where to save the trained model (default: a temporary folder, removed "
                           "after the reload check)")
    demo.add_argument("--plot", metavar="FILE.png", help="draw the loss and accuracy curves")
    demo.add_argument("--quiet", action="store_true", help="print nothing")
    demo.add_argument("--quantize", action="store_true",
                      help="also run the trained model int8-quantized: accuracy, size, time")
    demo.add_argument("--autocast", choices=("bf16", "fp16"),
                      help="also run inference under linea.autocast in this dtype")

    bench = commands.add_parser("bench", help="time linea against PyTorch, ONNX Runtime, NumPy, scikit-learn",
                                add_help=False)
    bench.add_argument("rest", nargs=argparse.REMAINDER)

    inspect = commands.add_parser("inspect", help="list the layers, shapes and parameters of a file")
    inspect.add_argument("file", help="a .safetensors, .pt/.pth, .weights.h5/.keras or .onnx file")
    inspect.add_argument("--format", choices=FORMATS, action=_Once,
                         help="the file's format, if its extension does not say")
    inspect.add_argument("--from", dest="layout", choices=("torch", "keras"), action=_Once,
                         help="the weight layout, where names do not say")

    convert = commands.add_parser(
        "convert", help="write a model's weights for the other framework, verified against the "
                        "source file")
    convert.add_argument("input", help="the file to read")
    convert.add_argument("output", help="the file to write; its extension picks the format")
    convert.add_argument("--format", dest="source_format", choices=FORMATS, action=_Once,
                         help="the input's format, if its extension does not say")
    convert.add_argument("--to-format", dest="target_format", choices=FORMATS, action=_Once,
                         help="the output's format, if its extension does not say")
    convert.add_argument("--from", dest="from_layout", choices=("torch", "keras"), action=_Once,
                         help="the input's layout, needed when its names do not say and layers are square")
    convert.add_argument("--to", dest="to_layout", choices=("torch", "keras"), action=_Once,
                         help="the output's layout (default: the other framework's)")
    convert.add_argument("--activation", action=_Once,
                         help="the one activation between the linear layers of a bare state dict "
                         "(relu, tanh, gelu, sigmoid, silu, …, or linear)")
    convert.add_argument("--layers", action=_Once,
                         help="the whole architecture of a bare state dict, comma-separated, e.g. "
                         "linear,layernorm,relu,linear (activations, layernorm, dropout, flatten, "
                         "conv2d(padding=1), maxpool2d(kernel=2), avgpool2d(kernel=2), batchnorm, "
                         "adaptiveavgpool, globalavgpool)")
    convert.add_argument("--input-shape", dest="input_shape", action=_Once, type=_shape,
                         help="the image size C,H,W (PyTorch's order) of a bare state dict of a "
                         "model with conv layers")
    return parser


def _shape(text: str) -> tuple:
    try:
        sizes = tuple(int(part) for part in text.replace("x", ",").split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not sizes such as 3,32,32") from None
    if not sizes or any(size <= 0 for size in sizes):
        raise argparse.ArgumentTypeError(f"{text!r}: sizes must be positive")
    return sizes


class _Once(argparse.Action):
    """A single-value option that refuses to be given twice (argparse's default is last-wins)."""

    def __call__(self, parser, namespace, values, option_string=None):
        if getattr(namespace, self.dest, None) is not None:
            parser.error(f"{option_string} was given twice ({getattr(namespace, self.dest)!r} and "
                         f"{values!r}); give it once (for several activations use --layers)")
        setattr(namespace, self.dest, values)


def _demo(args) -> int:
    from linea._demo import run_demo

    if args.epochs < 1 or args.batch_size < 1:
        print("linea demo: --epochs and --batch-size must be at least 1", file=sys.stderr)
        return 2
    if args.plot:
        from linea._errors import require

        try:
            require("matplotlib", "plot", "--plot")
        except ImportError as error:
            print(f"linea demo: {error}", file=sys.stderr)
            return 1
    run_demo(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, seed=args.seed,
             checkpoint=args.checkpoint, plot=args.plot, quiet=args.quiet,
             quantize=args.quantize, autocast=args.autocast)
    return 0


def _inspect(args) -> int:
    from linea._inspect import format_table, inspect_rows

    rows, kind, note = inspect_rows(args.file, args.format, args.layout, with_note=True)
    print(format_table(rows, f"{args.file}: {kind} file, {len(rows)} entries"))
    if note:
        print(note)
    return 0


def _convert(args) -> int:
    from linea._inspect import convert_file

    if args.layers is not None and args.activation is not None:
        print("linea convert: give --layers (the whole architecture) or --activation, not both",
              file=sys.stderr)
        return 2
    report = convert_file(args.input, args.output, args.from_layout, args.to_layout,
                          args.activation, layers=args.layers, source_format=args.source_format,
                          target_format=args.target_format, input_shape=args.input_shape)
    if not report.ok:
        print(f"linea convert: nothing written: the converted model differs from the source by "
              f"{report.difference:.3g} ({report.verdict()})", file=sys.stderr)
        return 1
    print(f"wrote {args.output}: {report.description}")
    if report.flatten_note:
        print(report.flatten_note)
    print(report.verdict())
    return 0


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors (exit status 2)."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog.split()[0]} --help)\n")


def _one_line(error: BaseException) -> str:
    text = " ".join(str(error).split())
    return text or type(error).__name__


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["bench"]:  # the benchmark parses its own options
        from linea._bench import main as bench_main

        return bench_main(argv[1:])
    parser = _parser()
    if not argv:  # a bare `linea`: the usage line, as CLI conventions go
        parser.print_usage(sys.stderr)
        print("linea: choose a command (linea --help lists them)", file=sys.stderr)
        return 2
    args = parser.parse_args(argv)
    handlers = {"demo": _demo, "inspect": _inspect, "convert": _convert}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # one clear line on failure, no stray warnings
        try:
            return handlers[args.command](args)
        except KeyboardInterrupt:
            print("linea: interrupted", file=sys.stderr)
            return 130
        except (FormatError, ImportError, OSError) as error:
            print(f"linea {args.command}: {_one_line(error)}", file=sys.stderr)
            return 1
        except (ValueError, TypeError) as error:
            print(f"linea {args.command}: {_one_line(error)}", file=sys.stderr)
            return 2 if args.command != "demo" else 1
        except RuntimeError as error:
            print(f"linea {args.command}: {_one_line(error)}", file=sys.stderr)
            return 1


if __name__ == "__main__":
    sys.exit(main())
