"""The ``linea`` command: ``linea demo`` (and, as they arrive, bench, inspect, convert).

Exit codes: 0 success, 1 a failure while running (one line on stderr), 2 bad arguments.
"""
from __future__ import annotations

import argparse
import sys

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="linea", description="linea: the linear layer of deep learning, on NumPy.")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.required = True
    demo = commands.add_parser("demo", help="train an MLP of nn.Linear on the shipped digits")
    demo.add_argument("--epochs", type=int, default=20, help="training epochs (default 20)")
    demo.add_argument("--batch-size", type=int, default=32, help="mini-batch size (default 32)")
    demo.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate (default 1e-3)")
    demo.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    demo.add_argument("--checkpoint", default="linea-demo.safetensors",
                      help="where to save the trained model (default linea-demo.safetensors)")
    demo.add_argument("--plot", metavar="FILE.png", help="draw the loss and accuracy curves")
    demo.add_argument("--quiet", action="store_true", help="print nothing")
    return parser


def _demo(args) -> int:
    from linea._demo import run_demo

    if args.epochs < 1 or args.batch_size < 1:
        print("linea demo: --epochs and --batch-size must be at least 1", file=sys.stderr)
        return 2
    if args.plot:
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            print("linea demo: --plot needs matplotlib; install it with "
                  "pip install 'linea[plot]'", file=sys.stderr)
            return 1
    run_demo(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, seed=args.seed,
             checkpoint=args.checkpoint, plot=args.plot, quiet=args.quiet)
    return 0


def main(argv=None) -> int:
    args = _parser().parse_args(argv)
    handlers = {"demo": _demo}
    try:
        return handlers[args.command](args)
    except KeyboardInterrupt:
        print("linea: interrupted", file=sys.stderr)
        return 130
    except (OSError, RuntimeError, ValueError) as error:
        print(f"linea {args.command}: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
