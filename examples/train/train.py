"""A toy training script for mlfs: no SDK, just files.

It logs metrics by appending lines to $MLFS_METRICS (both forms), prints
to stdout (logs/user_logs/std_log.txt, live), and writes a model to
./outputs. Run it with:  mlfs submit EXPERIMENT_DIR request.json --wait
"""
import json
import math
import os
import sys
import time

epochs = int(sys.argv[sys.argv.index("--epochs") + 1]) if "--epochs" in sys.argv else 5
metrics = open(os.environ.get("MLFS_METRICS", "metrics.log"), "a", buffering=1)

weight = 0.0
for epoch in range(epochs):
    loss = math.exp(-epoch / 2)
    weight += 0.1 * loss
    metrics.write(f"loss {loss:.4f} {epoch}\n")               # NAME VALUE STEP
    metrics.write(json.dumps({"acc": round(1 - loss / 2, 4), "step": epoch}) + "\n")
    print(f"epoch {epoch}: loss {loss:.4f}")
    time.sleep(0.2)

os.makedirs("outputs", exist_ok=True)
with open("outputs/model.json", "w") as f:
    json.dump({"weight": weight, "epochs": epochs}, f)
print("saved outputs/model.json")
