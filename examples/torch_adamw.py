"""
A PyTorch training loop
=======================

``fastopt.torch.AdamW`` with two param groups (no weight decay on biases) and a torch lr
scheduler. The only change from ``torch.optim`` is the import of the optimizer class.

.. code-block:: bash

    pip install ".[torch]"              # numba and torch, from a clone
    python examples/torch_adamw.py
"""
import torch

import fastopt.torch

torch.manual_seed(0)
x = torch.randn(512, 20)
y = (x[:, :1] * 2 - x[:, 1:2]).tanh() + 0.05 * torch.randn(512, 1)
model = torch.nn.Sequential(torch.nn.Linear(20, 64), torch.nn.ReLU(), torch.nn.Linear(64, 1))

decay = [p for name, p in model.named_parameters() if name.endswith("weight")]
no_decay = [p for name, p in model.named_parameters() if name.endswith("bias")]
opt = fastopt.torch.AdamW([{"params": decay, "weight_decay": 0.01},
                           {"params": no_decay, "weight_decay": 0.0}], lr=3e-3)
scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=200)

for step in range(200):
    opt.zero_grad()
    loss = torch.nn.functional.mse_loss(model(x), y)
    loss.backward()
    opt.step()
    scheduler.step()
    if step % 50 == 0 or step == 199:
        print(f"step {step:3d}  loss {loss.item():.4f}  lr {scheduler.get_last_lr()[0]:.2e}")

# the checkpoint is in torch's layout: torch.optim.AdamW continues from it
checkpoint = opt.state_dict()
same = torch.optim.AdamW([{"params": decay}, {"params": no_decay}])
same.load_state_dict(checkpoint)
print("torch.optim.AdamW loaded the checkpoint: lr", same.param_groups[0]["lr"])
