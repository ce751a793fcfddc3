"""The torch MLP family: a small network with an sklearn-like face.

Stored as plain numbers (``to_parts``): its settings as JSON and its weights as arrays, so a
model file holds no torch module and loading it runs no pickle (see ``model_files``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch

from retraining_assets.core.dataset import Task

__all__ = ["MLPConfig", "TorchMLP"]


@dataclass
class MLPConfig:
    hidden: tuple[int, int] = (64, 32)
    dropout: float = 0.1
    learning_rate: float = 1e-3
    weight_decay: float = 1e-5
    batch_size: int = 256
    max_epochs: int = 50
    patience: int = 5


def _network(n_inputs: int, n_outputs: int, config: MLPConfig) -> torch.nn.Sequential:
    first, second = config.hidden
    return torch.nn.Sequential(
        torch.nn.Linear(n_inputs, first),
        torch.nn.ReLU(),
        torch.nn.Dropout(config.dropout),
        torch.nn.Linear(first, second),
        torch.nn.ReLU(),
        torch.nn.Linear(second, n_outputs),
    )


class TorchMLP:
    """A small MLP with an sklearn-like face. Inputs arrive standardised by the preprocessor;
    regression targets are standardised here. Pickles (legacy artifacts) as a state_dict."""

    def __init__(self, task: Task, config: MLPConfig, seed: int) -> None:
        self.task, self.config, self.seed = task, config, seed
        self.n_inputs = self.n_outputs = 0
        self.y_mean, self.y_std = 0.0, 1.0
        self.epochs_trained = self.best_epoch = 0
        self.net: torch.nn.Sequential | None = None

    def fit(
        self,
        X: np.ndarray,
        y: np.ndarray,
        X_valid: np.ndarray,
        y_valid: np.ndarray,
        weight: np.ndarray | None = None,
    ) -> None:
        regression = self.task == "regression"
        if regression:
            self.y_mean, self.y_std = float(y.mean()), float(y.std()) or 1.0
        self.n_inputs = X.shape[1]
        self.n_outputs = 1 if regression else int(y.max()) + 1
        loss_fn = torch.nn.MSELoss() if regression else torch.nn.CrossEntropyLoss()
        row_loss = (
            torch.nn.MSELoss(reduction="none")
            if regression
            else torch.nn.CrossEntropyLoss(reduction="none")
        )
        w_train = torch.from_numpy(
            (np.ones(len(X)) if weight is None else weight).astype(np.float32)
        )
        x_train, y_train = torch.from_numpy(X), self._target_tensor(y)
        x_valid, y_valid_t = torch.from_numpy(X_valid), self._target_tensor(y_valid)
        # fork_rng: fixed seeds for init, dropout and shuffling without touching the caller's RNG.
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed)
            net = _network(self.n_inputs, self.n_outputs, self.config)
            optimiser = torch.optim.Adam(
                net.parameters(),
                lr=self.config.learning_rate,
                weight_decay=self.config.weight_decay,
            )
            best_loss, best_state, stale = float("inf"), net.state_dict(), 0
            for epoch in range(1, self.config.max_epochs + 1):
                net.train()
                for batch in torch.randperm(len(x_train)).split(self.config.batch_size):
                    optimiser.zero_grad()
                    losses = row_loss(self._forward(net, x_train[batch]), y_train[batch])
                    (losses * w_train[batch]).mean().backward()
                    optimiser.step()
                net.eval()
                with torch.no_grad():
                    valid_loss = float(loss_fn(self._forward(net, x_valid), y_valid_t))
                self.epochs_trained = epoch
                if valid_loss < best_loss - 1e-6:
                    best_loss, stale, self.best_epoch = valid_loss, 0, epoch
                    best_state = {k: v.detach().clone() for k, v in net.state_dict().items()}
                else:
                    stale += 1
                    if stale >= self.config.patience:
                        break
            net.load_state_dict(best_state)
        self.net = net.eval()

    def _target_tensor(self, y: np.ndarray) -> torch.Tensor:
        if self.task == "regression":
            return torch.from_numpy(((y - self.y_mean) / self.y_std).astype(np.float32))
        return torch.from_numpy(y.astype(np.int64))

    def _forward(self, net: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
        out = net(x)
        return out.squeeze(1) if self.task == "regression" else out

    def _outputs(self, X: np.ndarray) -> np.ndarray:
        assert self.net is not None, "TorchMLP used before fit"
        with torch.no_grad():
            return self._forward(self.net, torch.from_numpy(X)).numpy().astype(np.float64)

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        logits = self._outputs(X)
        logits -= logits.max(axis=1, keepdims=True)
        exp = np.exp(logits)
        return exp / exp.sum(axis=1, keepdims=True)

    def predict(self, X: np.ndarray) -> np.ndarray:
        return self._outputs(X) * self.y_std + self.y_mean

    # --- stored as numbers -----------------------------------------------------------------
    def to_parts(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        """Settings (JSON-ready) and weights (the state_dict as arrays) of a fitted MLP."""
        if self.net is None:
            raise ValueError("TorchMLP is not fitted")
        settings = {
            "task": self.task,
            "seed": self.seed,
            "config": {**asdict(self.config), "hidden": list(self.config.hidden)},
            "n_inputs": self.n_inputs,
            "n_outputs": self.n_outputs,
            "y_mean": self.y_mean,
            "y_std": self.y_std,
            "epochs_trained": self.epochs_trained,
            "best_epoch": self.best_epoch,
        }
        return settings, {k: v.detach().numpy() for k, v in self.net.state_dict().items()}

    @classmethod
    def from_parts(cls, settings: dict[str, Any], weights: dict[str, np.ndarray]) -> TorchMLP:
        """The MLP ``to_parts`` described; a weight of the wrong name or shape raises."""
        config = MLPConfig(**{**settings["config"], "hidden": tuple(settings["config"]["hidden"])})
        model = cls(settings["task"], config, int(settings["seed"]))
        model.n_inputs, model.n_outputs = int(settings["n_inputs"]), int(settings["n_outputs"])
        model.y_mean, model.y_std = float(settings["y_mean"]), float(settings["y_std"])
        model.epochs_trained = int(settings["epochs_trained"])
        model.best_epoch = int(settings["best_epoch"])
        net = _network(model.n_inputs, model.n_outputs, config)
        net.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in weights.items()})
        model.net = net.eval()
        return model

    # --- legacy pickles --------------------------------------------------------------------
    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        net = state.pop("net")
        state["weights"] = (
            None if net is None else {k: v.numpy() for k, v in net.state_dict().items()}
        )
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        weights = state.pop("weights")
        self.__dict__.update(state, net=None)
        if weights is not None:
            net = _network(self.n_inputs, self.n_outputs, self.config)
            net.load_state_dict({k: torch.from_numpy(v) for k, v in weights.items()})
            self.net = net.eval()
