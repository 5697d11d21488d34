"""Fuzz worker: reads file paths from a list file, loads each, prints one JSON line per file.

Run under a memory limit (RLIMIT_AS) by the parent. Before each file it prints a
"start" line, so a crash or hang can be pinned on the file that caused it.
Outcomes: "format_error", "loaded" (the mutation left a valid file), "changed"
(a failed load altered the model), or "other: <type>: <message>" (a bug).
"""
import json
import os
import resource
import signal
import sys
import warnings

import numpy as np


def limit_memory(megabytes: int) -> None:
    limit = megabytes * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


class Timeout(Exception):
    pass


def main() -> None:
    per_file = float(sys.argv[1])
    with open(sys.argv[2]) as listing:
        paths = [line.strip() for line in listing if line.strip()]
    warnings.simplefilter("ignore")
    import linea
    from linea import io, nn

    def on_alarm(signum, frame):
        raise Timeout()

    signal.signal(signal.SIGALRM, on_alarm)
    for path in paths:
        print(json.dumps({"start": path}), flush=True)
        model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))
        before = {k: v.numpy().copy() for k, v in model.state_dict().items()}
        signal.setitimer(signal.ITIMER_REAL, per_file)
        try:
            if path.endswith((".keras", ".onnx")) or (path.endswith(".h5") and not path.endswith(".weights.h5")):
                io.load_model(path)
            else:
                io.load_state_dict(path)
            if path.endswith(".safetensors"):
                linea.load(path)  # checkpoints: the JSON tree in the metadata too
            try:
                io.load_model(path, model=model, activation="relu")
            except (linea.FormatError, linea.StateDictError, ValueError):
                pass
            outcome = "loaded"
        except linea.FormatError:
            outcome = "format_error"
        except Timeout:
            outcome = "other: timeout"
        except BaseException as error:  # noqa: BLE001 - every other outcome is a finding
            outcome = f"other: {type(error).__name__}: {str(error)[:200]}"
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
        after = {k: v.numpy() for k, v in model.state_dict().items()}
        if outcome != "loaded" and any(not np.array_equal(before[k], after[k]) for k in before):
            outcome = "changed"
        print(json.dumps({"done": path, "outcome": outcome}), flush=True)


if __name__ == "__main__":
    limit_memory(int(os.environ.get("LINEA_FUZZ_MEMORY_MB", "4096")))
    main()
