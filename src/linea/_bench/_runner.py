"""Run every case in its own subprocess and print the comparison table (and JSON)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time

from linea._bench._cases import LINEAR_SHAPES, PRECISION_SHAPES

_WORKER = ("import json, sys; from linea._bench import _cases; "
           "print('RESULT ' + json.dumps(getattr(_cases, sys.argv[1])(json.loads(sys.argv[2]))))")


def run_case(function: str, params: dict, timeout: float = 600) -> dict:
    """A case in ``params["rounds"]`` fresh interpreters; each timing is the best round's median.

    On a shared 2-core machine a whole process sometimes runs ~30% slow (the two
    BLAS threads placed badly); every competitor gets the same number of rounds.
    """
    best: dict = {}
    for _ in range(params.get("rounds", 1)):
        result = _run_once(function, params, timeout)
        if "skipped" in result:
            return result
        for key, value in result.items():
            if isinstance(value, float) and key != "peak_bytes" and key in best:
                best[key] = min(best[key], value)
            elif key not in best:
                best[key] = value
    return best


def _run_once(function: str, params: dict, timeout: float) -> dict:
    environment = dict(os.environ, PYTHONWARNINGS="ignore", OMP_NUM_THREADS=str(params["threads"]),
                       MKL_NUM_THREADS=str(params["threads"]))
    try:
        done = subprocess.run([sys.executable, "-c", _WORKER, function, json.dumps(params)],
                              capture_output=True, text=True, timeout=timeout, env=environment)
    except subprocess.TimeoutExpired:
        return {"skipped": f"timed out after {timeout:.0f} s"}
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    if done.returncode != 0 or not lines:
        error = (done.stderr.strip().splitlines() or ["no output"])[-1]
        if "ModuleNotFoundError" in error or "ImportError" in error:
            return {"skipped": f"not installed ({error.split(':')[-1].strip()})"}
        return {"skipped": f"failed: {error[:200]}"}
    time.sleep(0.2)  # let the cores settle between competitors
    return json.loads(lines[-1][len("RESULT "):])


_HEAVY = ("linea.keras", "linea.io", "scipy", "ml_dtypes", "h5py", "onnx", "safetensors", "torch")


def import_cost(runs: int = 7) -> dict:
    """``import linea`` in fresh interpreters: linea's own share (NumPy's excluded), median.

    Read from ``python -X importtime``; also lists the heavy modules it loaded (none expected).
    """
    shares, loaded = [], set()
    # NumPy (with numpy.random, which linea's generators use) is loaded first, so the
    # cumulative time of the `linea` line is linea's own share.
    probe = ("import numpy, numpy.random; import sys, linea; print('LOADED', ' '.join(sorted(m for m in sys.modules "
             f"if m.split('.')[0] in {sorted({h.split('.')[0] for h in _HEAVY})!r} and "
             f"m.startswith({_HEAVY!r}))))")
    for _ in range(runs):
        done = subprocess.run([sys.executable, "-X", "importtime", "-c", probe], capture_output=True,
                              text=True, env=dict(os.environ, PYTHONWARNINGS="ignore"))
        cumulative = {}
        for line in done.stderr.splitlines():
            parts = [part.strip() for part in line.split("|")]
            if len(parts) == 3 and parts[1].isdigit():
                name = parts[2]
                if name == "linea":
                    cumulative[name] = int(parts[1])
        if "linea" in cumulative:
            shares.append(cumulative["linea"] / 1e6)
        for line in done.stdout.splitlines():
            if line.startswith("LOADED"):
                loaded.update(line.split()[1:])
    shares.sort()
    return {"linea_share": shares[len(shares) // 2] if shares else None, "runs": len(shares),
            "heavy_modules": sorted(loaded)}


def _flops(shape, backward: bool) -> float:
    batch, n_in, n_out = shape
    rows = 1
    for size in (batch if isinstance(batch, (list, tuple)) else (batch,)):
        rows *= size
    return 2.0 * rows * n_in * n_out * (3 if backward else 1)


SECTIONS = ("environment", "import", "linear", "mlp", "train", "dask", "memory", "precision", "random")
#: --quick's sections (under 30 s on 2 cores): each case is a fresh interpreter, so fewer cases.
QUICK_SECTIONS = ("import", "linear", "mlp", "train", "random")


def run_benchmark(threads: int = 2, quick: bool = False, sections=None, progress=print,
                  rounds: int | None = None) -> dict:
    budget = 0.05 if quick else 0.4
    base = {"threads": threads, "budget": budget, "rounds": rounds or (1 if quick else 3)}
    sections = set(sections or (QUICK_SECTIONS if quick else SECTIONS))
    results: dict = {"threads": threads, "quick": quick}
    if "import" in sections:
        progress("timing `import linea` …")
        results["import"] = import_cost(3 if quick else 7)
    if "environment" in sections:
        progress("measuring the machine's GEMM rate …")
        results["environment"] = {**run_case("environment", base), **run_case("torch_environment", base)}
    if "linear" in sections:
        results["linear"] = []
        shapes = LINEAR_SHAPES[:1] if quick else LINEAR_SHAPES
        for shape in shapes:
            progress(f"Linear {shape} …")
            row = {"shape": shape}
            for competitor in ("linea", "numpy", "torch"):
                row[competitor] = run_case(f"linear_{competitor}", {**base, "shape": shape})
            results["linear"].append(row)
    if "precision" in sections:
        results["precision"] = []
        for shape in PRECISION_SHAPES[:1] if quick else PRECISION_SHAPES:
            progress(f"int8 and bf16 Linear {shape} …")
            row = {"shape": shape}
            for competitor in ("linea", "torch"):
                row[competitor] = run_case(f"precision_{competitor}", {**base, "shape": shape})
            results["precision"].append(row)
    if "mlp" in sections:
        results["mlp"] = []
        for batch in (32,) if quick else (1, 32):
            progress(f"MLP inference, batch {batch} …")
            row = {"batch": batch}
            for competitor in ("linea", "numpy", "torch", "onnxruntime"):
                row[competitor] = run_case(f"mlp_{competitor}", {**base, "batch": batch})
            results["mlp"].append(row)
    if "train" in sections:
        progress("a training epoch on the digits …")
        results["train"] = {c: run_case(f"train_{c}", base) for c in ("linea", "numpy", "torch", "sklearn")}
    if "dask" in sections:
        rows = 10 ** 6 if quick else 10 ** 7
        progress(f"Dask scoring of {rows:,} rows …")
        single = {**base, "rounds": 1, "rows": rows}
        results["dask"] = {"rows": rows, "numpy": run_case("dask_numpy", single),
                           **{f"linea_{n}": run_case("dask_linea", {**single, "workers": n}) for n in (1, 2)}}
    if "random" in sections:
        progress("seeded draws (torch's stream) …")
        results["random"] = {c: run_case(f"random_{c}", base) for c in ("linea", "numpy", "torch")}
    if "memory" in sections:
        progress("peak memory of a training step …")
        results["memory"] = {c: run_case(f"memory_{c}", {**base, "rounds": 1}) for c in ("linea", "torch")}
    return results


def _time(seconds: float) -> str:
    if seconds < 1e-3:
        return f"{seconds * 1e6:8.1f} µs"
    if seconds < 1:
        return f"{seconds * 1e3:8.2f} ms"
    return f"{seconds:8.2f} s "


def _ratio(value, reference) -> str:
    return f"{value / reference:6.2f}×" if value and reference else "     –"


def format_report(results: dict) -> str:
    out = []
    environment = results.get("environment")
    if environment:
        pools = ", ".join(f"{p.get('internal_api')} {p.get('version')} ({p.get('num_threads')} threads, "
                          f"{p.get('architecture')})" for p in environment.get("pools", []))
        out.append(f"BLAS: {pools or 'unknown'}; torch {environment.get('torch', 'not installed')}")
        gemm = [f"NumPy {environment.get(f'numpy_gemm_{s}', 0):.0f}" for s in (2048, 4096)]
        gemm_torch = [f"PyTorch {environment.get(f'torch_gemm_{s}', 0):.0f}" for s in (2048, 4096)]
        out.append(f"fp32 GEMM GFLOP/s at 2048² / 4096²: {' / '.join(gemm)}; {' / '.join(gemm_torch)}")
        out.append("")
    if results.get("import"):
        cost = results["import"]
        share = cost.get("linea_share")
        out.append(f"import linea: {share * 1e3:.1f} ms of linea's own (NumPy preloaded; median of "
                   f"{cost['runs']} fresh interpreters); heavy modules loaded: "
                   f"{', '.join(cost['heavy_modules']) or 'none'}" if share is not None else
                   "import linea: not measured")
        out.append("")
    if results.get("linear"):
        out.append("Linear (ratios: competitor time / linea time; > 1 means linea is faster)")
        out.append(f"{'shape (batch, in, out)':<24}{'pass':<18}{'linea':>12}{'GFLOP/s':>9}"
                   f"{'NumPy':>12}{'ratio':>8}{'PyTorch':>12}{'ratio':>8}")
        for row in results["linear"]:
            for key, label in (("forward", "forward"), ("forward_backward", "forward+backward")):
                ours = row["linea"].get(key)
                if ours is None:
                    out.append(f"{str(tuple(row['shape'])):<24}{label:<18}  {row['linea'].get('skipped')}")
                    continue
                flops = _flops(row["shape"], key == "forward_backward")
                cells = []
                for competitor in ("numpy", "torch"):
                    theirs = row[competitor].get(key)
                    cells.append(f"{_time(theirs) if theirs else 'skipped':>12}{_ratio(theirs, ours):>8}")
                out.append(f"{str(tuple(row['shape'])):<24}{label:<18}{_time(ours):>12}"
                           f"{flops / ours / 1e9:>9.1f}" + "".join(cells))
        out.append("")
    if results.get("precision"):
        out.extend(_precision_report(results["precision"], results.get("threads")))
    if results.get("mlp"):
        out.append("MLP 64→128→128→10 inference (ratios: competitor / linea under no_grad)")
        for row in results["mlp"]:
            ours = row["linea"].get("no_grad")
            parts = [f"linea no_grad {_time(ours)}", f"linea compiled {_time(row['linea'].get('compiled', 0))}"]
            for competitor, key in (("numpy", "hand-written"), ("torch", "eager"), ("onnxruntime", "session.run")):
                theirs = row[competitor].get(key)
                parts.append(f"{competitor} {_time(theirs)} ({_ratio(theirs, ours).strip()})" if theirs
                             else f"{competitor} {row[competitor].get('skipped')}")
            out.append(f"  batch {row['batch']:>2}: " + " | ".join(parts))
        out.append("")
    if results.get("train"):
        ours = results["train"]["linea"].get("epoch")
        out.append("A training epoch of that MLP on the digits (1,797 images, batch 32, Adam)")
        for competitor in ("linea", "numpy", "torch", "sklearn"):
            theirs = results["train"][competitor].get("epoch")
            out.append(f"  {competitor:<8} {_time(theirs) if theirs else results['train'][competitor].get('skipped')}"
                       + (f"  ({_ratio(theirs, ours).strip()} linea's time)" if theirs and competitor != "linea" else ""))
        compiled = results["train"]["linea"].get("compiled")
        if compiled:
            others = "; ".join(f"compiled/{competitor} {_ratio(compiled, results['train'][competitor]['epoch']).strip()}"
                               for competitor in ("numpy", "torch") if results["train"][competitor].get("epoch"))
            out.append(f"  linea compiled {_time(compiled)}  (eager/compiled {_ratio(ours, compiled).strip()}; "
                       f"{others})")
        out.append("")
    if results.get("dask"):
        dask = results["dask"]
        out.append(f"Dask scoring of that MLP over {dask['rows']:,} generated rows (LocalCluster processes, "
                   "1 thread each; rows/s, higher is better)")
        one = dask["linea_1"].get("rows_per_s")
        for key, label in (("numpy", "NumPy, one process"), ("linea_1", "linea.dask, 1 worker"),
                           ("linea_2", "linea.dask, 2 workers")):
            value = dask[key].get("rows_per_s")
            out.append(f"  {label:<22} " + (f"{value:12,.0f} rows/s" if value else str(dask[key].get("skipped")))
                       + (f"  (2 workers / 1: {value / one:.2f}×)" if key == "linea_2" and value and one else ""))
        out.append("")
    if results.get("random"):
        out.extend(_random_report(results["random"]))
    if results.get("memory"):
        out.append("Peak memory of one training step (MLP 1024→4096→1024, batch 256, Adam), above setup")
        for competitor in ("linea", "torch"):
            value = results["memory"][competitor].get("peak_bytes")
            out.append(f"  {competitor:<8} " + (f"{value / 2 ** 20:8.1f} MiB" if value is not None
                                                else str(results["memory"][competitor].get("skipped"))))
    return "\n".join(out)


def _random_report(random: dict) -> list:
    ours, numpy, torch = random["linea"], random["numpy"], random["torch"]
    out = [f"Seeded draws, torch's stream bit for bit (linea kernel: {ours.get('kernel', '?')}; "
           "ratios: linea time / that time; < 1 means linea is faster)"]
    labels = (("normal_1e6", "normal_ of 10⁶ float32"), ("normal_64", "normal_ of 64"),
              ("randperm_60000", "randperm(60000)"), ("linear_init", "nn.Linear(784, 256)"))
    for key, label in labels:
        cells = [f"  {label:<24}{_time(ours[key])}"]
        for name, theirs in (("PyTorch", torch), ("NumPy PCG64", numpy)):
            if theirs.get(key):
                cells.append(f"{name} {_time(theirs[key]).strip()} (linea/{name.split()[0]} "
                             f"{ours[key] / theirs[key]:.2f}×)")
        out.append("  ".join(cells))
    out.append("")
    return out


def _precision_report(rows, threads) -> list:
    path = rows[0]["linea"].get("path", "?")
    out = [f"int8 dynamic quantization and bf16 autocast, Linear forward, {threads} thread(s); "
           f"linea's int8 kernel path: {path} (ratios: float32 time / that time; > 1 is faster)",
           f"{'shape (batch, in, out)':<24}{'linea f32':>11}{'int8':>11}{'×':>7}{'fallback':>11}{'×':>7}"
           f"{'torch int8':>12}{'×':>7}{'linea/torch':>12}{'bf16 ac':>11}{'×':>7}{'torch bf16':>12}{'×':>7}"]
    for row in rows:
        ours, theirs = row["linea"], row["torch"]
        if "float32" not in ours:
            out.append(f"{str(tuple(row['shape'])):<24}  {ours.get('skipped')}")
            continue
        f32 = ours["float32"]
        torch_cells = (f"{_time(theirs['int8']):>12}{_ratio(theirs['float32'], theirs['int8']):>7}"
                       f"{_ratio(theirs['int8'], ours['int8']):>12}") if "int8" in theirs else \
            f"{theirs.get('skipped', 'skipped'):>31}"
        torch_bf16 = (f"{_time(theirs['bf16_autocast']):>12}{_ratio(theirs['float32'], theirs['bf16_autocast']):>7}"
                      if "bf16_autocast" in theirs else "")
        out.append(f"{str(tuple(row['shape'])):<24}{_time(f32):>11}{_time(ours['int8']):>11}"
                   f"{_ratio(f32, ours['int8']):>7}{_time(ours['int8_fallback']):>11}"
                   f"{_ratio(f32, ours['int8_fallback']):>7}" + torch_cells +
                   f"{_time(ours['bf16_autocast']):>11}{_ratio(f32, ours['bf16_autocast']):>7}" + torch_bf16)
    out.append("  linea/torch > 1: linea's int8 is faster than torch's quantize_dynamic; bf16 × < 1 "
               "means autocast is slower than float32")
    out.append("")
    return out


def main(argv=None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="linea bench", description=__doc__)
    parser.add_argument("--threads", type=int, default=2, help="BLAS threads for every competitor")
    parser.add_argument("--quick", action="store_true",
                        help="short timings of one Linear shape, the MLP at batch 32, a training epoch and the "
                             "seeded draws (under 30 s on 2 cores); --only adds other sections")
    parser.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    parser.add_argument("--rounds", type=int, help="fresh processes per case, best kept (default 3)")
    parser.add_argument("--only", nargs="+", choices=SECTIONS,
                        help="run only these sections")
    args = parser.parse_args(argv)
    results = run_benchmark(args.threads, args.quick, args.only,
                            progress=lambda text: print(text, file=sys.stderr, flush=True),
                            rounds=args.rounds)
    print(format_report(results))
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(results, handle, indent=1)
    return 0
