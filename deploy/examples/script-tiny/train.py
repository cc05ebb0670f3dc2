"""A tiny linear regression in pure Python, run as a bosun `script` job (or alone)."""

import json
import random
import sys
import time

from shared.sdk import run

params = run.spec
steps = int(params.get("steps", 30))
delay = float(params.get("delay", 0.0))
rng = random.Random(0)
data = [(x, 3.0 * x + 1.0 + rng.gauss(0, 0.1)) for x in (rng.uniform(-1, 1) for _ in range(64))]
state = {"step": 0, "w": 0.0, "b": 0.0}
latest = run.latest_checkpoint()
if latest is not None:
    state = json.loads(latest.read_text())
    print(f"resumed at step {state['step']}", flush=True)
for step in range(state["step"] + 1, steps + 1):
    gw = sum(2 * (state["w"] * x + state["b"] - y) * x for x, y in data) / len(data)
    gb = sum(2 * (state["w"] * x + state["b"] - y) for x, y in data) / len(data)
    state.update(step=step, w=state["w"] - 0.1 * gw, b=state["b"] - 0.1 * gb)
    loss = sum((state["w"] * x + state["b"] - y) ** 2 for x, y in data) / len(data)
    run.log_metric("loss", loss, step)
    run.progress(step, steps)
    if step % 5 == 0:
        run.save_checkpoint(json.dumps(state).encode(), step)
    if run.should_stop():
        run.save_checkpoint(json.dumps(state).encode(), step)
        print("got SIGTERM, stopping cleanly", flush=True)
        sys.exit(0)
    time.sleep(delay)
run.save_artifact("model.json", json.dumps(state))
print(f"done: w={state['w']:.3f} b={state['b']:.3f}", flush=True)
