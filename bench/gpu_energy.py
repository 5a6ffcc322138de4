"""NVML energy through the whole of ckg, on a machine with an NVIDIA GPU and PyTorch.

Ingests a one-step workflow that multiplies matrices on the GPU for a few seconds, runs it
with ``ckg run``, and prints the Measurements the graph then holds, next to a check: the
NVML energy divided by the step's wall time is the GPU's mean power, which must lie between
its idle draw and its power limit as NVML reports them.

    python bench/gpu_energy.py [--seconds 5]

Exits 0 when the graph holds an ``energy`` Measurement with method ``nvml`` whose mean power
is plausible and the run's energy is the sum of its devices' parts, 1 otherwise, 2 (with a
reason) where there is no GPU or no PyTorch.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

WORKLOAD = textwrap.dedent(
    """
    import json, sys, time
    import torch
    seconds = float(sys.argv[1])
    a = torch.randn(8192, 8192, device="cuda", dtype=torch.bfloat16)
    b = torch.randn(8192, 8192, device="cuda", dtype=torch.bfloat16)
    torch.cuda.synchronize()
    start, done = time.perf_counter(), 0
    while time.perf_counter() - start < seconds:
        for _ in range(20):
            a @ b
        torch.cuda.synchronize()
        done += 20
    elapsed = time.perf_counter() - start
    print(json.dumps({"throughput": done / elapsed, "tflops": done * 2 * 8192**3 / elapsed / 1e12}))
    """
)

WORKFLOW = textwrap.dedent(
    """
    alias: gpu-matmul
    uid: ckg-bench-gpu-matmul
    kind: workflow
    tags: [bench, gpu]
    params:
      seconds: 5
    run: "{python} {artifact_dir}/matmul.py {seconds}"
    timeout: 300
    """
)


def ckg(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", "from ckg.entry import main; main()", *args],
        capture_output=True,
        text=True,
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    args = parser.parse_args()
    try:
        import pynvml
        import torch  # noqa: F401 - the workload needs it
    except ImportError as exc:
        print(f"skipped: {exc}")
        return 2
    pynvml.nvmlInit()
    if pynvml.nvmlDeviceGetCount() == 0:
        print("skipped: no NVIDIA GPU")
        return 2
    gpu = pynvml.nvmlDeviceGetHandleByIndex(0)
    limit_w = pynvml.nvmlDeviceGetEnforcedPowerLimit(gpu) / 1000
    idle_w = pynvml.nvmlDeviceGetPowerUsage(gpu) / 1000
    print(f"{pynvml.nvmlDeviceGetName(gpu)}: power now {idle_w:.0f} W, limit {limit_w:.0f} W")

    with tempfile.TemporaryDirectory() as tmp:
        os.environ["CKG_HOME"] = str(Path(tmp) / "home")
        folder = Path(tmp) / "gpu-matmul"
        folder.mkdir()
        (folder / "ckg.yaml").write_text(WORKFLOW)
        (folder / "matmul.py").write_text(WORKLOAD)
        for step in (
            ["ingest", str(folder)],
            ["platform", "--json"],
            ["run", "gpu-matmul", "--grid", f"seconds={args.seconds}", "--json"],
        ):
            done = ckg(*step)
            print(f"$ ckg {' '.join(step)}  -> exit {done.returncode}")
            print(done.stdout[-1500:], done.stderr[-1500:], sep="\n")
            if done.returncode != 0:
                return 1
        rows = json.loads(
            ckg(
                "query",
                "MATCH (r:Run)-[:MEASURED]->(m:Measurement) "
                "RETURN m.metric AS metric, m.method AS method, m.device AS device, "
                "m.value AS value, m.unit AS unit, r.duration_s AS duration_s "
                "ORDER BY metric, method",
                "--json",
            ).stdout
        )
        ckg("db", "stop")
    for row in rows:
        where = f"{row['method'] or ''} {row['device'] or ''}"
        print(f"  {row['metric']:<16} {where:<24} {row['value']:>12.4g} {row['unit']}")
    nvml = [r for r in rows if r["metric"] == "energy" and r["method"] == "nvml"]
    if not nvml:
        print("FAIL: no energy Measurement with method nvml")
        return 1
    mean_w = nvml[0]["value"] / nvml[0]["duration_s"]
    plausible = 0.5 * idle_w <= mean_w <= 1.1 * limit_w
    print(
        f"nvml energy {nvml[0]['value']:.1f} J over {nvml[0]['duration_s']:.2f} s: "
        f"mean {mean_w:.0f} W ({'plausible' if plausible else 'IMPLAUSIBLE'})"
    )
    total = [r for r in rows if r["metric"] == "energy" and not r["device"]]
    parts = sum(r["value"] for r in rows if r["metric"] == "energy" and r["device"])
    adds_up = len(total) == 1 and abs(total[0]["value"] - parts) < 1e-6 * max(parts, 1)
    print(
        f"run energy (all devices) {total[0]['value'] if total else None} J: "
        f"{'the sum of its parts' if adds_up else 'NOT the sum of its parts'}"
    )
    return 0 if plausible and adds_up else 1


if __name__ == "__main__":
    sys.exit(main())
