"""Training recipes: the schedules, initialisations and input modes the trainer runs.

A :class:`Recipe` says how :func:`course_lib.train.train` trains: epochs, batch size, the
learning rate of every epoch (:meth:`Recipe.lr_at`), the KL weight kappa of every step
(:meth:`Recipe.kl_weight`, warmed up from 0 to 1), the sparse layers' initial log sigma^2 and
pruning threshold, the weight initialisation (:data:`INITS`, :func:`init_like_paper_`) and the
input preprocessing (:data:`INPUTS`).

Two recipes per model: :data:`PAPER` (the paper's, as its authors' code runs them: 200 epochs,
for a GPU) and :data:`QUICK` (sized for the course's 2-core CPU).  :func:`get_recipe` picks one
by name, or checks a recipe of your own, for a model name of :data:`course_lib.models.MODELS`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch
from torch import nn

from course_lib import validation as V
from course_lib.layers import SVDO_LAYERS, weight_layers
from course_lib.models import MODELS

#: Input preprocessings a recipe can ask for (``Recipe.inputs``): pixels standardized with the
#: global MNIST mean and std, or pixels in [0, 1] minus the mean training image
#: (:func:`course_lib.data.center_inputs`).
INPUTS = ("standardize", "center")

#: Weight initialisations a recipe can ask for (``Recipe.init``): ``nn.Linear`` /
#: ``nn.Conv2d``'s own, or the paper code's (:func:`init_like_paper_`).
INITS = ("torch", "paper")


@dataclass(frozen=True)
class Recipe:
    """A training schedule.

    Attributes
    ----------
    name : str
        ``"paper"`` or ``"quick"``.
    epochs : int
        Number of passes over the training set.
    batch_size : int
    lr : float
        Adam's initial learning rate; it stays there for ``lr_hold`` epochs, then decays
        linearly per epoch to ``lr * lr_final_frac`` at the last epoch.
    lr_final_frac : float
        Learning rate of the last epoch as a fraction of ``lr``.
    kl_start : float
        Epoch (fractional) until which the KL weight kappa is 0.
    kl_full : float
        Epoch at which kappa reaches 1 (linear ramp in between, per step).
    log_sigma2_init : float
        Initial log sigma^2 of the sparse layers.
    threshold : float
        Pruning threshold on log alpha.
    lr_hold : int, default 0
        Epochs at the constant ``lr`` before the linear decay starts.
    init : {"torch", "paper"}, default "torch"
        Weight initialisation: ``nn.Linear`` / ``nn.Conv2d``'s, or the paper code's
        (:func:`init_like_paper_`).
    inputs : {"standardize", "center"}, default "standardize"
        Input preprocessing: pixels standardized with the global MNIST mean and std (the
        course's default), or pixels in [0, 1] minus the training set's mean image (the
        paper's code; a pixel that is always black is then exactly 0).
    train_clip : bool, default False
        Zero the pruned weights in the training mean as well (the paper's code).

    Raises
    ------
    TypeError
        A setting of the wrong type (a float number of epochs, a string ``train_clip``).
    ValueError
        A setting of a wrong value (0 epochs, a NaN or non-positive learning rate, an unknown
        ``init`` or ``inputs``).
    """

    name: str
    epochs: int
    batch_size: int
    lr: float
    lr_final_frac: float
    kl_start: float
    kl_full: float
    log_sigma2_init: float
    threshold: float
    lr_hold: int = 0
    init: str = "torch"
    inputs: str = "standardize"
    train_clip: bool = False

    def __post_init__(self) -> None:
        checked = {
            "epochs": V.positive_int(self.epochs, "Recipe.epochs"),
            "batch_size": V.positive_int(self.batch_size, "Recipe.batch_size"),
            "lr_hold": V.nonnegative_int(self.lr_hold, "Recipe.lr_hold"),
            "lr": V.positive_float(self.lr, "Recipe.lr"),
            "lr_final_frac": V.positive_float(self.lr_final_frac, "Recipe.lr_final_frac"),
            **{
                field: V.finite_float(getattr(self, field), f"Recipe.{field}")
                for field in ("kl_start", "kl_full", "log_sigma2_init", "threshold")
            },
            "init": V.one_of(self.init, "Recipe.init", INITS),
            "inputs": V.one_of(self.inputs, "Recipe.inputs", INPUTS),
            "train_clip": V.boolean(self.train_clip, "Recipe.train_clip"),
        }
        for field, value in checked.items():  # plain Python values (np.int64 -> int)
            object.__setattr__(self, field, value)

    def kl_weight(self, t: float) -> float:
        """KL weight kappa at fractional epoch ``t`` (0 before ``kl_start``, 1 after ``kl_full``)."""
        if self.kl_full <= self.kl_start:
            return 1.0 if t >= self.kl_start else 0.0
        return min(1.0, max(0.0, (t - self.kl_start) / (self.kl_full - self.kl_start)))

    def lr_at(self, epoch: int) -> float:
        """Learning rate of epoch ``epoch`` (0-based): ``lr`` for the first ``lr_hold``
        epochs, then linear down to ``lr * lr_final_frac`` at the last epoch."""
        decay_epochs = self.epochs - 1 - self.lr_hold
        if epoch <= self.lr_hold or decay_epochs <= 0:
            return self.lr
        frac = min(1.0, (epoch - self.lr_hold) / decay_epochs)
        return self.lr * (1.0 - frac * (1.0 - self.lr_final_frac))


#: The paper's recipes, as its authors' code runs them (Molchanov et al., 2017;
#: ``svdo-lasagne/experiments/lenet/*-ard.py`` and ``nets/optpolicy.py`` in
#: github.com/bayesgroup/variational-dropout-sparsifies-dnn): 200 epochs, batch 100, Adam;
#: kappa = 0 for 5 epochs, then ramped to 1 by epoch 20; log sigma^2 = -10, threshold 3;
#: fully connected weights from N(0, 0.01^2), Glorot-uniform convolutions, zero biases;
#: inputs = pixels / 255 minus the mean training image; ``train_clip``.  The learning rate
#: differs per model: LeNet-300-100 keeps 1e-3 for 100 epochs and then decays linearly
#: (``lr_linear``), LeNet-5 decays linearly from the start (``lr_linear_to0``).  Their last
#: epoch runs at lr / 100 and lr / 200 (the authors' loop ends at exactly 0).
PAPER: dict[str, Recipe] = {
    "lenet300": Recipe(
        "paper",
        epochs=200,
        batch_size=100,
        lr=1e-3,
        lr_final_frac=1 / 100,
        kl_start=5.0,
        kl_full=20.0,
        log_sigma2_init=-10.0,
        threshold=3.0,
        lr_hold=100,
        init="paper",
        inputs="center",
        train_clip=True,
    ),
    "lenet5": Recipe(
        "paper",
        epochs=200,
        batch_size=100,
        lr=1e-3,
        lr_final_frac=1 / 200,
        kl_start=5.0,
        kl_full=20.0,
        log_sigma2_init=-10.0,
        threshold=3.0,
        init="paper",
        inputs="center",
        train_clip=True,
    ),
}

#: CPU-sized schedules (the course's design, tuned on the 2-core CPU): Adam at 3e-3 decayed
#: linearly to 1.5e-4, the KL switched on after half an epoch (LeNet-5: a quarter) and fully
#: on after 2 (1.5) epochs.  LeNet-5's also zeroes pruned weights in the training mean
#: (``train_clip``, from the paper's code; chapter 8 shows what it does).  Measured with one
#: thread (seed 0) on an Intel Xeon: LeNet-300-100, 8 epochs, 1.88 % at 25x (2.02 % at 25x on
#: an AMD EPYC: round-off differs between CPUs); LeNet-5, 4 epochs, 0.94 % at 111x (0.93 % at
#: 79x without train_clip, on the EPYC; see benchmarks/README.md).
QUICK: dict[str, Recipe] = {
    "lenet300": Recipe(
        "quick",
        epochs=8,
        batch_size=100,
        lr=3e-3,
        lr_final_frac=0.05,
        kl_start=0.5,
        kl_full=2.0,
        log_sigma2_init=-10.0,
        threshold=3.0,
    ),
    "lenet5": Recipe(
        "quick",
        epochs=4,
        batch_size=100,
        lr=3e-3,
        lr_final_frac=0.05,
        kl_start=0.25,
        kl_full=1.5,
        log_sigma2_init=-10.0,
        threshold=3.0,
        train_clip=True,
    ),
}

#: Recipe names (the trainer's ``--recipe`` flag).
RECIPES = ("paper", "quick")


def get_recipe(recipe: str | Recipe, model_name: str, epochs: int | None = None) -> Recipe:
    """The recipe ``recipe`` for the model ``model_name``, optionally with other ``epochs``.

    Parameters
    ----------
    recipe : {"paper", "quick"} or Recipe
        A recipe name (:data:`PAPER`, :data:`QUICK`), or a :class:`Recipe` of your own, e.g.
        ``dataclasses.replace(get_recipe("quick", "lenet300"), train_clip=True)``.
    model_name : {"lenet300", "lenet5"}
        A name of :data:`course_lib.models.MODELS`.
    epochs : int, optional
        Override the recipe's number of epochs (the learning rate decays over the new length).

    Returns
    -------
    Recipe

    Raises
    ------
    ValueError
        Unknown recipe or model name, or ``epochs`` < 1.
    TypeError
        ``epochs`` is not an integer.
    """
    V.one_of(model_name, "model_name", sorted(MODELS), meaning="the network")
    if not isinstance(recipe, Recipe):
        recipe = {"paper": PAPER, "quick": QUICK}[V.one_of(recipe, "recipe", RECIPES)][model_name]
    if epochs is not None:
        recipe = dataclasses.replace(recipe, epochs=V.positive_int(epochs, "epochs"))
    return recipe


@torch.no_grad()
def init_like_paper_(net: nn.Module) -> nn.Module:
    """Re-initialise ``net`` as the paper's code does, in place (``Recipe.init == "paper"``).

    The authors' Lasagne layers draw fully connected weights from N(0, 0.01^2) and
    convolution weights from Glorot's uniform distribution, with zero biases (the
    ``"torch"`` default is ``nn.Linear`` / ``nn.Conv2d``'s Kaiming-uniform).  log sigma^2 is
    left as it is.

    Returns
    -------
    The same module.
    """
    for _, module in weight_layers(net):
        weight = module.theta if isinstance(module, SVDO_LAYERS) else module.weight
        if weight.dim() == 2:
            nn.init.normal_(weight, 0.0, 0.01)
        else:
            nn.init.xavier_uniform_(weight)
        if module.bias is not None:
            module.bias.zero_()
    return net
