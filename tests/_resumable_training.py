"""A training run that checkpoints every epoch and can be killed and resumed.

python _resumable_training.py CHECKPOINT RESULT EPOCHS [KILL_AFTER_EPOCH]

Trains an MLP with Dropout on the digits with Adam and StepLR; shuffling and
dropout draw from generators whose states are in the checkpoint. With
KILL_AFTER_EPOCH it SIGKILLs itself right after saving that epoch.
"""
import os
import signal
import sys

import linea
from linea import nn
from linea.data import load_digits


def main(checkpoint, result, epochs, kill_after=None):
    images, labels = load_digits()
    images = images[:600] / 16.0
    labels = labels[:600]
    linea.manual_seed(0)
    shuffle = linea.Generator().manual_seed(1)
    drop = linea.Generator().manual_seed(2)
    model = nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Dropout(0.2, generator=drop), nn.Linear(32, 10))
    optimizer = linea.optim.Adam(model.parameters(), lr=3e-3)
    scheduler = linea.optim.lr_scheduler.StepLR(optimizer, step_size=2, gamma=0.5)
    start = 0
    if os.path.exists(checkpoint):
        state = linea.load(checkpoint)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        shuffle.set_state(state["shuffle"])
        drop.set_state(state["dropout"])
        start = state["epoch"]
    for epoch in range(start, epochs):
        order = linea.randperm(len(labels), generator=shuffle).numpy()
        for begin in range(0, len(order), 50):
            index = order[begin:begin + 50]
            loss = nn.functional.cross_entropy(model(images[index]), linea.tensor(labels[index]))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        scheduler.step()
        linea.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                    "scheduler": scheduler.state_dict(), "shuffle": shuffle.get_state(),
                    "dropout": drop.get_state(), "epoch": epoch + 1}, checkpoint)
        if kill_after is not None and epoch + 1 == kill_after:
            os.kill(os.getpid(), signal.SIGKILL)
    linea.save(model.state_dict(), result)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]) if len(sys.argv) > 4 else None)
