"""
Training curves on the digits
=============================

Every update rule trains the digits demo's network (64 inputs, 64 tanh units, softmax
over 10 classes; ``fastopt.digits``) on scikit-learn's bundled 8x8 digits, at the
learning rate tuned for it (recorded in its rule module), with mini-batches of 32 and
early stopping on the validation loss. This is ``python -m fastopt --plot curves.png``.
"""
import os

import matplotlib.pyplot as plt

import fastopt
from fastopt import digits
from fastopt.kernels import REGISTRY

QUICK = os.environ.get("FASTOPT_DOCS_QUICK") == "1"      # CI's docs build: a few epochs
EPOCHS = 4 if QUICK else 60
BACKEND = "numba" if "numba" in fastopt.available_backends() else "numpy"

split = digits.load_split(seed=0)
fig, ax = plt.subplots(figsize=(9, 5), layout="constrained")
ax.set_prop_cycle(color=plt.cm.tab20.colors)       # a colour for each of the rules
for rule in REGISTRY:
    run = digits.train(rule.class_name, {"lr": rule.tuned_lr["digits"]}, split, BACKEND,
                       epochs=EPOCHS)
    epochs = range(1, len(run.val_losses) + 1)
    ax.plot(epochs, run.val_losses, label=f"{run.label}: {run.test_accuracy:.1%}")
    print(f"{run.label:18s} lr {run.lr:<8g} {run.epochs:3d} epochs, "
          f"test accuracy {run.test_accuracy:.1%}, {run.seconds_per_step * 1e6:.0f} us a step")

ax.set(xlabel="epoch", ylabel="validation loss", yscale="log",
       title=f"digits MLP, {BACKEND} backend (legend: test accuracy)")
ax.xaxis.get_major_locator().set_params(integer=True)
ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1))
plt.show()
