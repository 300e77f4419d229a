"""Sanity checks that expose gradient masking and broken evaluations (Carlini et al., "On Evaluating Adversarial
Robustness"; Athalye et al. 2018). Each check is a pure function of accuracies (%), so it can be tested with a
sound and a failing case; :func:`run_sanity` measures those accuracies on one model and returns one row per check.

Tolerances are in accuracy points (config ``sanity.tolerance``); with n images one flipped prediction is 100/n points.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import torch

from . import attacks
from .evaluate import accuracy, fp32_eval


@dataclass
class Check:
    check: str
    passed: bool
    value: float
    reference: float
    tolerance: float
    detail: str

    def row(self, **ids) -> dict:
        return {**ids, **asdict(self)}


def eps_zero(acc_eps0: float, clean: float) -> Check:
    """An attack with eps = 0 cannot change any prediction: it must reproduce clean accuracy exactly."""
    return Check("eps_zero_is_clean", acc_eps0 == clean, acc_eps0, clean, 0.0,
                 "PGD with eps=0 reproduces clean accuracy" if acc_eps0 == clean else
                 "eps=0 changed accuracy: the model or the attack is stochastic or leaks outside the ball")


def monotone(grid: list[float], accs: list[float], tol: float) -> Check:
    """Accuracy may only fall as eps grows (a larger ball contains the smaller one)."""
    rises = [(grid[i], grid[i + 1], accs[i + 1] - accs[i]) for i in range(len(accs) - 1) if accs[i + 1] > accs[i] + tol]
    worst = max((r[2] for r in rises), default=max([0.0] + [accs[i + 1] - accs[i] for i in range(len(accs) - 1)]))
    return Check("monotone_in_eps", not rises, worst, 0.0, tol,
                 "accuracy over eps " + ", ".join(f"{e:.4g}:{a:.1f}" for e, a in zip(grid, accs))
                 + ("" if not rises else f"; rises at {[(round(a, 4), round(b, 4)) for a, b, _ in rises]}"))


def unbounded(acc_large_eps: float, tol: float) -> Check:
    """With eps = 1 any image is reachable, so a working attack drives accuracy to about 0."""
    return Check("unbounded_eps_reaches_zero", acc_large_eps <= tol, acc_large_eps, 0.0, tol,
                 "PGD at eps=1 reaches ~0%" if acc_large_eps <= tol else
                 "PGD at eps=1 does not reach 0%: gradients are masked or the attack is broken")


def more_steps(acc_base: float, acc_stronger: float, tol: float, what: str) -> Check:
    """More iterations or restarts of the same attack must not leave the model more accurate."""
    ok = acc_stronger <= acc_base + tol
    return Check(f"{what}_not_weaker", ok, acc_stronger, acc_base, tol,
                 f"{what}: {acc_stronger:.2f} vs PGD-20 {acc_base:.2f}" + ("" if ok else " (stronger attack helped "
                                                                            "the model: the attack is not converging)"))


def aa_not_weaker(acc_aa: float, others: dict[str, float], tol: float) -> Check:
    """AutoAttack contains stronger attacks than PGD/C&W; on the same images it must not be weaker than the best."""
    best_name, best = min(others.items(), key=lambda kv: kv[1])
    ok = acc_aa <= best + tol
    return Check("autoattack_not_weaker", ok, acc_aa, best, tol,
                 f"AA {acc_aa:.2f} vs best other ({best_name}) {best:.2f} on the same images"
                 + ("" if ok else ": AA weaker than a simpler attack, check the AA run"))


def blackbox_not_stronger(acc_square: float, acc_whitebox: float, tol: float) -> Check:
    """A black-box attack beating the white-box ones means the gradients are not informative (masking)."""
    ok = acc_square >= acc_whitebox - tol
    return Check("blackbox_not_stronger", ok, acc_square, acc_whitebox, tol,
                 f"Square {acc_square:.2f} vs best white-box {acc_whitebox:.2f}"
                 + ("" if ok else ": black-box beats white-box, gradient masking suspected"))


def noise_near_clean(acc_noise: float, clean: float, tol: float) -> Check:
    """Random sign noise of size eps is a weak perturbation; it should cost little accuracy."""
    ok = acc_noise >= clean - tol
    return Check("random_noise_near_clean", ok, acc_noise, clean, tol,
                 f"random +-eps noise {acc_noise:.2f} vs clean {clean:.2f}"
                 + ("" if ok else ": the model is fragile to noise, robust numbers would be meaningless"))


def learned(clean: float, classes: int) -> Check:
    """A model at chance makes every robust accuracy, and every other check, meaningless: demand 1.5x chance."""
    chance = 100.0 / classes
    return Check("clean_above_chance", clean > 1.5 * chance, clean, chance, 0.5 * chance,
                 f"clean accuracy {clean:.2f}% vs chance {chance:.2f}% ({classes} classes)"
                 + ("" if clean > 1.5 * chance else ": the model did not learn (diverged or collapsed training)"))


def natural_breaks(acc_pgd20: float, limit: float) -> Check:
    """A naturally trained model has no robustness: PGD-20 must drive it to about 0%."""
    ok = acc_pgd20 <= limit
    return Check("natural_model_falls", ok, acc_pgd20, 0.0, limit,
                 f"natural model under PGD-20: {acc_pgd20:.2f}%" + ("" if ok else ": the attack is too weak"))


def crosscheck(ours: float, theirs: float, tol: float, library: str) -> Check:
    ok = abs(ours - theirs) <= tol
    return Check(f"crosscheck_{library}_pgd", ok, ours, theirs, tol,
                 f"our PGD-20 {ours:.2f} vs {library} LinfPGD {theirs:.2f} (same eps, steps, step, start)")


# ------------------------------------------------------------------------------------------ measurements
def foolbox_pgd_accuracy(model, x, y, eps, step_size, steps, batch_size) -> float:
    """Robust accuracy under foolbox 3's LinfPGD without random start (an independent implementation)."""
    import foolbox as fb

    fmodel = fb.PyTorchModel(model, bounds=(0, 1))
    attack = fb.attacks.LinfPGD(abs_stepsize=step_size, steps=steps, random_start=False)
    ok = []
    for i in range(0, len(x), batch_size):
        _, adv, _ = attack(fmodel, x[i:i + batch_size], y[i:i + batch_size], epsilons=eps)
        with torch.no_grad():
            ok.append(model(adv).argmax(1) == y[i:i + batch_size])
    return 100 * torch.cat(ok).float().mean().item()


def square_accuracy(model, x, y, eps, queries: int, seed: int, batch_size: int) -> float:
    from pyautoattack.square import SquareAttack

    sq = SquareAttack(model, p_init=0.8, n_queries=queries, eps=eps, norm="Linf", n_restarts=1, seed=seed,
                      verbose=False, device=x.device)
    return accuracy(model, x, y, lambda m, xb, yb: sq.perturb(xb, yb), batch_size)


def spread(predictions: np.ndarray, classes: int, max_share: float) -> Check:
    """A model that predicts (nearly) one class for every image has collapsed; its accuracies say nothing."""
    share = float(np.bincount(predictions, minlength=classes).max() / max(len(predictions), 1))
    ok = share <= max_share
    return Check("predictions_spread", ok, 100 * share, 100 * max_share, 0.0,
                 f"the most frequent predicted class takes {100 * share:.1f}% of the images"
                 + ("" if ok else ": predictions concentrate on one class (collapsed training)"))


def attack_moves(clean: float, robust: float) -> Check:
    """At the table's eps a working attack changes some prediction; equal clean and PGD accuracy means it did not
    (a constant model, or gradients that are zero everywhere)."""
    ok = robust < clean or clean == 0
    return Check("attack_moves_accuracy", ok, robust, clean, 0.0,
                 f"PGD-20 {robust:.2f} vs clean {clean:.2f}" + ("" if ok else ": the attack changed no prediction"))


def run_sanity(model, x, y, eps: float, cfg: dict, natural: bool, evaluated: dict | None = None, seed: int = 0,
               batch_size: int = 500, step_fraction: float = 0.25, autoattack: str | None = "aa") -> list[Check]:
    """Measure and judge every check on one model at the evaluation eps ``eps``; every PGD's step is
    ``step_fraction`` of its own eps. ``evaluated`` maps attack name -> per-example flags (bool array aligned with
    ``x``) from the main evaluations at this eps; ``autoattack`` names the AutoAttack one among them."""
    tol, steps = float(cfg["tolerance"]), int(cfg["steps"])
    torch.manual_seed(seed)
    out = []
    step = step_fraction * eps
    with fp32_eval(model):
        pgd = lambda e, st=steps, r=1: (lambda m, xb, yb: attacks.pgd(  # noqa: E731
            m, xb, yb, e, step_fraction * e, st, restarts=r))
        clean = accuracy(model, x, y, lambda m, xb, yb: xb, batch_size)
        with torch.no_grad():
            predictions = torch.cat([model(x[i:i + batch_size]).argmax(1) for i in range(0, len(x), batch_size)])
        classes = int(model(x[:1]).shape[1])
        out.append(learned(clean, classes))
        out.append(spread(predictions.cpu().numpy(), classes, float(cfg.get("max_class_share", 0.5))))
        out.append(eps_zero(accuracy(model, x, y, pgd(0.0), batch_size), clean))
        grid = [float(k) * eps for k in cfg["eps_grid"]] + [1.0]
        accs = [accuracy(model, x, y, pgd(e), batch_size) for e in grid]
        out.append(monotone(grid, accs, tol))
        out.append(unbounded(accs[-1], tol))
        base = accuracy(model, x, y, pgd(eps), batch_size)
        out.append(attack_moves(clean, base))
        out.append(more_steps(base, accuracy(model, x, y, pgd(eps, 5 * steps), batch_size), tol, f"pgd{5 * steps}"))
        out.append(more_steps(base, accuracy(model, x, y, pgd(eps, steps, int(cfg["restarts"])), batch_size), tol,
                              f"pgd{steps}_x{cfg['restarts']}_restarts"))
        noise = lambda m, xb, yb: (xb + eps * torch.randint_like(xb, 0, 2).mul_(2).sub_(1)).clamp_(0, 1)  # noqa: E731
        out.append(noise_near_clean(accuracy(model, x, y, noise, batch_size), clean, float(cfg["noise_tolerance"])))
        whitebox = min(base, accuracy(model, x, y, lambda m, xb, yb: attacks.cw_inf(m, xb, yb, eps, step, 30),
                                      batch_size))
        out.append(blackbox_not_stronger(square_accuracy(model, x, y, eps, int(cfg["square_queries"]), seed,
                                                         batch_size), whitebox, tol))
        ours = accuracy(model, x, y, lambda m, xb, yb: attacks.pgd(m, xb, yb, eps, step, steps, random_start=False),
                        batch_size)
        out.append(crosscheck(ours, foolbox_pgd_accuracy(model, x, y, eps, step, steps, batch_size),
                              float(cfg["crosscheck_tolerance"]), "foolbox"))
        if natural:
            out.append(natural_breaks(base, float(cfg["natural_max_pgd"])))
    if evaluated and autoattack in evaluated and len(evaluated) > 1:
        n = len(evaluated[autoattack])
        others = {k: 100 * float(np.mean(v[:n])) for k, v in evaluated.items() if k not in (autoattack, "clean")}
        if others:
            out.append(aa_not_weaker(100 * float(np.mean(evaluated[autoattack])), others, tol))
    return out


def run_sanity_job(model_path, data_path, evaluated_paths: list, job: dict, out_csv, device="cpu", log=print):
    """Rule sanity: the checks of one model at the threat model of its record, one CSV row each."""
    import pandas as pd

    from .evaluate import load_test_set
    from .io import atomic_write_text

    model, meta, _, x, y = load_test_set(model_path, data_path, int(job["n_test"]), device)
    evaluated = {a: np.load(p)["correct"] for a, p in zip(job["compare"], evaluated_paths)}
    checks = run_sanity(model, x, y, job["eps"], job, natural=job["natural"], evaluated=evaluated,
                        seed=job["attack_seed"], batch_size=job["batch_size"], step_fraction=job["step_fraction"],
                        autoattack=job.get("autoattack"))
    ids = {k: job[k] for k in ("dataset", "arch", "method", "seed", "threat")} | {"eps": job["eps"], "n": len(x)}
    atomic_write_text(out_csv, pd.DataFrame([c.row(**ids) for c in checks]).to_csv(index=False))
    for c in checks:
        log(f"{'PASS' if c.passed else 'FAIL'} {c.check}: {c.detail}")
    return checks
